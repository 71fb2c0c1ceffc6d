"""Cross-site defences: CSRF for cookie sessions, JSON bodies, WebSocket origins."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ServerProcess
from tests.helpers import (
    PASSWORD,
    browser_login,
    db_counts,
    login,
    parse_response,
    post,
    raw_exchange,
    request,
)

CURL_TIMEOUT = 30


def curl(*args: str) -> Any:
    """Run the real curl, as the README's examples do; its JSON answer."""
    done = subprocess.run(
        ["curl", "-sk", *args],
        capture_output=True,
        text=True,
        timeout=CURL_TIMEOUT,
        check=True,
    )
    return json.loads(done.stdout)


def cookie_session(base_url: str, username: str) -> tuple[str, str]:
    """Log in as a browser does; the Cookie header and the CSRF token."""
    answer, headers = browser_login(base_url, username)
    pairs = [c.split(";", 1)[0] for c in headers.get_all("Set-Cookie")]
    return "; ".join(pairs), answer["csrf_token"]


def test_the_curl_cookie_jar_flow(server: ServerProcess, tmp_path: Path) -> None:
    base, jar = server.base_url, str(tmp_path / "cookies.txt")
    json_type = "Content-Type: application/json"
    account = json.dumps({"username": "lena", "password": PASSWORD})
    curl("-d", account, "-H", json_type, f"{base}/api/register/")
    curl("-c", jar, "-d", account, "-H", json_type, f"{base}/api/login/")
    csrf_token = curl("-b", jar, "-c", jar, f"{base}/api/csrf/")["csrf_token"]

    created = curl(
        "-b", jar, "-d", '{"host": "test"}', "-H", json_type,
        "-H", f"X-CSRFToken: {csrf_token}", f"{base}/api/create_lobby/",
    )  # fmt: skip
    assert created["host"] is True
    assert created["name"] == "lena"  # the user hosts, not the name in the body

    before = db_counts(server.db_path)
    for header in ([], ["-H", "X-CSRFToken: wrong"]):
        refused = curl(
            "-b", jar, "-d", '{"host": "test"}', "-H", json_type, *header,
            f"{base}/api/create_lobby/",
        )  # fmt: skip
        assert refused["error"]["code"] == "csrf_failed"
    assert db_counts(server.db_path) == before


@pytest.mark.parametrize(
    "csrf", [None, "", "x" * 43], ids=["missing", "empty", "wrong"]
)
def test_cookie_requests_without_the_right_csrf_token_change_nothing(
    server: ServerProcess, csrf: str | None
) -> None:
    cookie, _ = cookie_session(server.base_url, "mia")
    headers = {"Content-Type": "application/json", "Cookie": cookie}
    if csrf is not None:
        headers["X-CSRFToken"] = csrf
    before = db_counts(server.db_path)
    for path, body in [
        ("/api/create_lobby/", {"host": "x"}),
        ("/api/logout/", {}),
    ]:
        status, answer, _ = request(
            server.base_url, "POST", path, json.dumps(body).encode(), headers
        )
        assert (status, answer["error"]["code"]) == (403, "csrf_failed")
        assert "X-CSRFToken" in answer["error"]["message"]
    assert db_counts(server.db_path) == before
    # The session survived the refused logout.
    status, _, _ = request(server.base_url, "GET", "/api/me/", headers=headers)
    assert status == 200


def test_bearer_requests_need_no_csrf_token(server: ServerProcess) -> None:
    token = login(server.base_url, "nina")
    status, created = post(server.base_url, "/api/create_lobby/", {}, token)
    assert status == 201 and created["name"] == "nina"


def test_the_csrf_endpoint_keeps_a_valid_cookie(server: ServerProcess) -> None:
    status, first, headers = request(server.base_url, "GET", "/api/csrf/")
    assert status == 200
    cookie = headers["Set-Cookie"].split(";", 1)[0]
    assert cookie == f"csrftoken={first['csrf_token']}"
    _, again, _ = request(
        server.base_url, "GET", "/api/csrf/", headers={"Cookie": cookie}
    )
    assert again["csrf_token"] == first["csrf_token"]


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"],
)
def test_form_and_text_posts_are_refused(
    server: ServerProcess, content_type: str
) -> None:
    before = db_counts(server.db_path)
    for path in ("/api/create_lobby/", "/api/register/", "/api/logout/"):
        status, answer, _ = request(
            server.base_url,
            "POST",
            path,
            b'{"host": "x", "username": "oscar", "password": "long enough"}',
            {"Content-Type": content_type},
        )
        assert (status, answer["error"]["code"]) == (415, "unsupported_media_type")
    assert db_counts(server.db_path) == before


def upgrade(server: ServerProcess, origin: str | None) -> tuple[int, Any]:
    host = server.base_url.split("://", 1)[1]
    lines = [
        "GET /ws/ HTTP/1.1",
        f"Host: {host}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
    ]
    if origin is not None:
        lines.append(f"Origin: {origin}")
    raw, _ = raw_exchange(server.base_url, ("\r\n".join(lines) + "\r\n\r\n").encode())
    head = raw.split(b"\r\n", 1)[0]
    status = int(head.split()[1])
    return status, parse_response(raw)[2] if status != 101 else None


def test_upgrades_from_other_origins_are_refused(server: ServerProcess) -> None:
    status, answer = upgrade(server, "https://evil.example")
    assert (status, answer["error"]["code"]) == (403, "origin_not_allowed")
    assert upgrade(server, None)[0] == 101  # not a browser
    assert upgrade(server, server.base_url)[0] == 101  # our own pages


def test_allowed_origins_are_configurable(server_factory: Any) -> None:
    running = server_factory(extra=("--allowed-origins", "https://game.example"))
    assert upgrade(running, "https://game.example")[0] == 101
    assert upgrade(running, "https://evil.example")[0] == 403


def test_a_planted_cookie_we_could_not_have_made_is_refused(
    server: ServerProcess,
) -> None:
    cookie, _ = cookie_session(server.base_url, "olga")
    session = next(p for p in cookie.split("; ") if p.startswith("sessionid="))
    headers = {
        "Content-Type": "application/json",
        "Cookie": f"{session}; csrftoken=x",
        "X-CSRFToken": "x",  # matches the cookie, but is no token of ours
    }
    before = db_counts(server.db_path)
    status, answer, _ = request(
        server.base_url, "POST", "/api/create_lobby/", b'{"host": "x"}', headers
    )
    assert (status, answer["error"]["code"]) == (403, "csrf_failed")
    assert db_counts(server.db_path) == before
