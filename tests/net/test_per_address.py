"""Limits per client address, and which address a request counts as.

Two servers for the module: ``direct`` trusts no proxy, so X-Forwarded-For
means nothing to it; ``proxied`` trusts 127.0.0.1, where this test runs,
and so counts each forwarded address on its own. Each test uses addresses
of its own, so the counts of one do not reach another.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ServerProcess, start_server
from tests.helpers import request

LIMITS = ("--login-failures-per-address", "2", "--login-window", "60")


def _running(folder: Path, extra: tuple[str, ...]) -> Iterator[ServerProcess]:
    running = start_server(folder, tls=False, extra=(*LIMITS, *extra))
    yield running
    assert running.stop() == 0
    assert running.errors() == [], "the server logged errors of its own"


@pytest.fixture(scope="module")
def direct(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from _running(tmp_path_factory.mktemp("direct"), ())


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from _running(
        tmp_path_factory.mktemp("proxied"), ("--trusted-proxy", "127.0.0.1")
    )


def send(
    server: ServerProcess, path: str, body: Any, forwarded: str | None = None
) -> tuple[int, Any, Any]:
    """POST ``body`` as JSON, as if a proxy forwarded it for ``forwarded``."""
    headers = {"Content-Type": "application/json"}
    if forwarded is not None:
        headers["X-Forwarded-For"] = forwarded
    return request(server.base_url, "POST", path, json.dumps(body).encode(), headers)


def failed_login(server: ServerProcess, n: int, forwarded: str | None) -> str:
    """A wrong password for a name of its own; the error code."""
    body = {"username": f"nobody{n}", "password": "a wrong guess"}
    status, answer, headers = send(server, "/api/login/", body, forwarded)
    if status == 429:
        assert 1 <= int(headers["Retry-After"]) <= 60
    return str(answer["error"]["code"])


def test_forwarded_for_is_ignored_from_an_untrusted_peer(
    direct: ServerProcess,
) -> None:
    codes = [failed_login(direct, n, f"198.51.100.{n}") for n in range(3)]
    assert codes == ["invalid_credentials"] * 2 + ["too_many_attempts"]


def test_failed_logins_count_per_forwarded_address(proxied: ServerProcess) -> None:
    a, b = "198.51.100.21", "198.51.100.22"
    assert failed_login(proxied, 1, a) == "invalid_credentials"
    assert failed_login(proxied, 2, a) == "invalid_credentials"
    assert failed_login(proxied, 3, a) == "too_many_attempts"
    # A forged entry in front of the proxy's own is not believed.
    assert failed_login(proxied, 4, f"{b}, {a}") == "too_many_attempts"
    assert failed_login(proxied, 5, b) == "invalid_credentials"
    assert failed_login(proxied, 6, None) == "invalid_credentials"  # the proxy
    assert any(f"failed login for 'nobody1' from {a}" in x for x in proxied.log)
