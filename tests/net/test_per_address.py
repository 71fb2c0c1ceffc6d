"""Limits per client address, and which address a request counts as.

Two servers for the module: ``direct`` trusts no proxy, so X-Forwarded-For
means nothing to it; ``proxied`` trusts 127.0.0.1, where this test runs,
and so counts each forwarded address on its own. Each test uses addresses
of its own, so the counts of one do not reach another.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from bench.bot import Api, Bot, run_lobby_game
from tests.conftest import ServerProcess, start_server
from tests.helpers import PASSWORD, post, request, wait_for

LIMITS = (
    *("--login-failures-per-address", "2", "--login-window", "60"),
    *("--max-lobbies-per-address", "2"),
    *("--registrations-per-address", "2", "--registration-window", "60"),
)


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


def code_of(status: int, answer: Any, headers: Any) -> str:
    """The error code, or "ok"; a 429 must say when to try again."""
    if status == 429:
        wait = int(headers["Retry-After"])
        assert 1 <= wait <= 60
        assert f"try again in {wait} s" in answer["error"]["message"]
    return "ok" if status < 400 else str(answer["error"]["code"])


def failed_login(server: ServerProcess, n: int, forwarded: str | None) -> str:
    """A wrong password for a name of its own; the error code."""
    body = {"username": f"nobody{n}", "password": "a wrong guess"}
    return code_of(*send(server, "/api/login/", body, forwarded))


def register(
    server: ServerProcess, name: str, forwarded: str, password: str = PASSWORD
) -> str:
    body = {"username": name, "password": password}
    return code_of(*send(server, "/api/register/", body, forwarded))


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


def create(server: ServerProcess, forwarded: str | None = None) -> tuple[str, Any]:
    """Create a lobby, as a proxy's client ``forwarded`` if given.

    "created" or the error code, and the answer.
    """
    headers = {} if forwarded is None else {"X-Forwarded-For": forwarded}
    status, answer = post(
        server.base_url, "/api/create_lobby/", {"host": "h"}, headers=headers
    )
    if status == 201:
        return "created", answer
    code = answer["error"]["code"]
    if code == "too_many_lobbies":
        assert status == 429
    return code, answer


def test_lobbies_count_per_forwarded_address(
    direct: ServerProcess, proxied: ServerProcess
) -> None:
    codes = [create(direct, f"198.51.100.{n}")[0] for n in range(30, 33)]
    assert codes == ["created", "created", "too_many_lobbies"]

    a, b = "198.51.100.31", "2001:db8::31"
    assert [create(proxied, a)[0] for _ in range(3)] == [
        "created",
        "created",
        "too_many_lobbies",
    ]
    code, answer = create(proxied, f"{b}, {a}")  # forged: still a
    assert code == "too_many_lobbies"
    assert "at most 2 at once" in answer["error"]["message"]
    assert [create(proxied, b)[0] for _ in range(3)] == [
        "created",
        "created",
        "too_many_lobbies",
    ]


def test_a_lobby_closed_or_left_stops_counting(proxied: ServerProcess) -> None:
    a = "198.51.100.41"
    headers = {"X-Forwarded-For": a}
    first, second = create(proxied, a)[1], create(proxied, a)[1]
    assert create(proxied, a)[0] == "too_many_lobbies"

    # The host closes one: a place is free, once.
    body = {"lobby_id": first["lobby_id"]}
    closed = post(proxied.base_url, "/api/close_lobby/", body, first["token"])
    assert closed[0] == 200
    third = create(proxied, a)[1]
    assert create(proxied, a)[0] == "too_many_lobbies"

    # The last member leaves another: the same (any client may send it).
    body = {"lobby_id": second["lobby_id"]}
    left = post(proxied.base_url, "/api/leave_lobby/", body, second["token"])
    assert left[0] == 200
    assert create(proxied, a)[0] == "created"
    assert create(proxied, a)[0] == "too_many_lobbies"

    # A refused close (not the host's token) changes nothing.
    body = {"lobby_id": third["lobby_id"]}
    status, _ = post(
        proxied.base_url, "/api/close_lobby/", body, "not a token", headers
    )
    assert status == 401
    assert create(proxied, a)[0] == "too_many_lobbies"


async def test_a_lobby_whose_game_ended_stops_counting(
    proxied: ServerProcess,
) -> None:
    # This test's address is the proxy's own: no X-Forwarded-For.
    assert create(proxied)[0] == "created"
    run = await run_lobby_game(Api(proxied.base_url), 2, 1, skill=(1.0, 0.0))
    assert run.result["status"] == "finished"
    assert create(proxied)[0] == "created"  # the game's lobby no longer counts
    assert create(proxied)[0] == "too_many_lobbies"


def start_local(server: ServerProcess, forwarded: str) -> tuple[str, Any]:
    """Start a local game as the proxy's client ``forwarded``: code, answer."""
    body = {"player-1": "a", "player-2": "b"}
    status, answer = post(
        server.base_url,
        "/api/start_game/",
        body,
        headers={"X-Forwarded-For": forwarded},
    )
    return ("started" if status == 201 else answer["error"]["code"]), answer


async def test_unopened_local_games_count_until_their_socket_opens(
    proxied: ServerProcess,
) -> None:
    a = "198.51.100.61"
    code, first = start_local(proxied, a)
    assert code == "started"
    assert start_local(proxied, a)[0] == "started"
    assert start_local(proxied, a)[0] == "too_many_lobbies"
    assert create(proxied, a)[0] == "too_many_lobbies"  # one allowance for both

    bot = Bot("local", first["token"], first["ws_url"])
    await bot.connect()
    try:
        await bot.wait_until(lambda: bot.game is not None, 5)
        assert start_local(proxied, a)[0] == "started"  # the opened one is out
        assert start_local(proxied, a)[0] == "too_many_lobbies"
    finally:
        await bot.close()


def test_an_expired_lobby_stops_counting(
    server_factory: Callable[..., ServerProcess],
) -> None:
    flags = ("--max-lobbies-per-address", "1", "--lobby-idle-timeout", "1")
    server = server_factory(tls=False, extra=flags)
    assert create(server)[0] == "created"
    assert create(server)[0] == "too_many_lobbies"
    wait_for(lambda: create(server)[0] == "created", what="the lobby to expire")
    assert any("expired: idle" in line for line in server.log)


def test_registrations_count_per_forwarded_address(
    direct: ServerProcess, proxied: ServerProcess
) -> None:
    codes = [register(direct, f"dora{n}", f"198.51.100.{n}") for n in range(3)]
    assert codes == ["ok", "ok", "too_many_registrations"]

    a, b = "198.51.100.51", "198.51.100.52"
    assert register(proxied, "ella", a) == "ok"
    assert register(proxied, "ELLA", a) == "username_taken"  # counted too
    assert register(proxied, "ella2", a) == "too_many_registrations"
    assert register(proxied, "ella3", f"{b}, {a}") == "too_many_registrations"
    # A name or password outside the rules costs nothing and is not counted.
    assert register(proxied, "fay", b, password="short") == "invalid_field"
    assert register(proxied, "fay", b) == "ok"
    assert register(proxied, "fay2", b) == "ok"
    assert register(proxied, "fay3", b) == "too_many_registrations"


def test_registrations_sent_in_parallel_are_held_to_the_limit(
    proxied: ServerProcess,
) -> None:
    names = [f"gil{n}" for n in range(8)]
    with ThreadPoolExecutor(len(names)) as pool:
        codes = list(pool.map(lambda n: register(proxied, n, "198.51.100.61"), names))
    assert codes.count("ok") == 2
    assert codes.count("too_many_registrations") == len(names) - 2
