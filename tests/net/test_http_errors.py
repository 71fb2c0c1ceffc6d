"""Every error the HTTP API can give, from the real server over real sockets.

Each refused request must get the status of its code and the body
``{"error": {"code", "message"}}``; afterwards the server still answers a
health check and the database holds not a row more than before.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from bench.bot import Api, Bot
from server.errors import CODES
from tests.conftest import ServerProcess
from tests.helpers import (
    LOBBY_ID,
    apost,
    assert_healthy,
    close_all,
    db_counts,
    get,
    parse_response,
    post,
    raw_exchange,
    request,
    seated_bots,
)

JSON = {"Content-Type": "application/json"}


PLAYER_SUPERSCRIPT = '{"player-1": "a", "player-2": "b", "player-\u00b2": "c"}'.encode()
# A fullwidth 3 beside player-3 must not overwrite it.
PLAYER_FULLWIDTH = (
    '{"player-1": "a", "player-2": "b", "player-3": "c", "player-\uff13": "d"}'
).encode()
# orjson keeps the last of two equal keys; "b" would vanish.
PLAYER_TWICE = b'{"player-1": "a", "player-2": "b", "player-2": "c"}'
# Past int()'s 4300-digit limit for str.
PLAYER_HUGE = ('{"player-1": "a", "player-' + "9" * 5000 + '": "b"}').encode()


def assert_error(status: int, body: Any, code: str) -> None:
    expected = CODES[code]
    assert (status, body["error"]["code"]) == (expected.status, code)
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message"}
    # The fixed text of the code, perhaps with a fixed detail after it.
    assert body["error"]["message"].startswith(expected.message)


@pytest.fixture
def unchanged(server: ServerProcess) -> Iterator[None]:
    """The test's refused requests leave the server serving and the DB as it was.

    A client's mistake is no bug of ours either, so nothing is logged as one.
    """
    before = db_counts(server.db_path)
    yield
    assert_healthy(server.base_url)
    assert db_counts(server.db_path) == before
    assert server.errors() == []


def api_for(server: ServerProcess) -> Api:
    return Api(server.base_url, insecure=True)


# Request shape -------------------------------------------------------------------

CREATE = "/api/create_lobby/"
JOIN = "/api/join_lobby/"
START = "/api/start_game/"

# (id, method, path, body, headers, code)
SHAPE_ERRORS = [
    ("malformed_json", "POST", CREATE, b'{"host": ', JSON, "malformed_json"),
    ("not_utf8", "POST", CREATE, b'{"host": "\xff"}', JSON, "malformed_json"),
    ("array_body", "POST", CREATE, b'["test"]', JSON, "invalid_body"),
    ("string_body", "POST", CREATE, b'"test"', JSON, "invalid_body"),
    ("empty_object", "POST", CREATE, b"{}", JSON, "missing_field"),
    ("host_is_number", "POST", CREATE, b'{"host": 5}', JSON, "invalid_field"),
    ("host_is_blank", "POST", CREATE, b'{"host": "  "}', JSON, "invalid_field"),
    (
        "points_is_string",
        "POST",
        CREATE,
        b'{"host": "a", "points_to_win": "3"}',
        JSON,
        "invalid_field",
    ),
    (
        "points_is_float",
        "POST",
        CREATE,
        b'{"host": "a", "points_to_win": 3.0}',
        JSON,
        "invalid_field",
    ),
    (
        "points_is_zero",
        "POST",
        CREATE,
        b'{"host": "a", "points_to_win": 0}',
        JSON,
        "invalid_field",
    ),
    (
        "max_players_nine",
        "POST",
        CREATE,
        b'{"host": "a", "max_players": 9}',
        JSON,
        "invalid_field",
    ),
    (
        "text_plain",
        "POST",
        CREATE,
        b'{"host": "a"}',
        {"Content-Type": "text/plain"},
        "unsupported_media_type",
    ),
    (
        "form_post",
        "POST",
        CREATE,
        b"host=a",
        {"Content-Type": "application/x-www-form-urlencoded"},
        "unsupported_media_type",
    ),
    ("no_content_type", "POST", CREATE, b'{"host": "a"}', {}, "unsupported_media_type"),
    ("join_no_name", "POST", JOIN, b'{"lobby_id": "X"}', JSON, "missing_field"),
    (
        "join_id_is_number",
        "POST",
        JOIN,
        b'{"lobby_id": 5, "guest_name": "a"}',
        JSON,
        "invalid_field",
    ),
    (
        "join_unknown_lobby",
        "POST",
        JOIN,
        b'{"lobby_id": "ZZZZZZZZZZ", "guest_name": "a"}',
        JSON,
        "unknown_lobby",
    ),
    ("start_nothing", "POST", START, b"{}", JSON, "missing_field"),
    ("start_one_player", "POST", START, b'{"player-1": "a"}', JSON, "too_few_players"),
    (
        "start_numbering_gap",
        "POST",
        START,
        b'{"player-1": "a", "player-3": "b"}',
        JSON,
        "invalid_field",
    ),
    (
        "start_with_unknown_token",
        "POST",
        START,
        b'{"lobby_id": "ZZZZZZZZZZ"}',
        {**JSON, "Authorization": "Bearer not-a-token"},
        "invalid_token",
    ),
    # str.isdigit takes these; only ASCII digits number a player.
    (
        "start_superscript_number",
        "POST",
        START,
        PLAYER_SUPERSCRIPT,
        JSON,
        "invalid_field",
    ),
    ("start_fullwidth_number", "POST", START, PLAYER_FULLWIDTH, JSON, "invalid_field"),
    ("start_huge_number", "POST", START, PLAYER_HUGE, JSON, "invalid_field"),
    ("start_player_twice", "POST", START, PLAYER_TWICE, JSON, "invalid_field"),
    ("unknown_lobby", "GET", "/api/lobby/ZZZZZZZZZZ/", None, {}, "unknown_lobby"),
    ("unknown_game", "GET", "/api/game/ZZZZZZZZZZZZ/", None, {}, "unknown_game"),
    ("unknown_path", "GET", "/api/nothing-here/", None, {}, "not_found"),
    ("outside_api", "GET", "/index.html", None, {}, "not_found"),
    ("plain_get_ws", "GET", "/ws/", None, {}, "upgrade_required"),
    (
        "gzip_body",
        "POST",
        CREATE,
        b'{"host": "x"}',
        {"Content-Type": "application/json", "Content-Encoding": "gzip"},
        "unsupported_media_type",
    ),
]


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "code"),
    [case[1:] for case in SHAPE_ERRORS],
    ids=[case[0] for case in SHAPE_ERRORS],
)
def test_refused_request(
    server: ServerProcess,
    method: str,
    path: str,
    body: bytes | None,
    headers: dict[str, str],
    code: str,
) -> None:
    status, answer, response_headers = request(
        server.base_url, method, path, body, headers
    )
    assert_error(status, answer, code)
    assert response_headers["Content-Type"] == "application/json"


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", CREATE, "POST"),
        ("PUT", JOIN, "POST"),
        ("DELETE", START, "POST"),
        ("POST", "/api/health/", "GET, HEAD"),
        ("POST", "/api/lobby/ZZZZZZZZZZ/", "GET, HEAD"),
    ],
)
def test_wrong_method_names_the_allowed_one(
    server: ServerProcess, method: str, path: str, allowed: str
) -> None:
    status, answer, headers = request(server.base_url, method, path, b"{}", JSON)
    assert_error(status, answer, "method_not_allowed")
    assert headers["Allow"] == allowed


# Bytes that are not a request we take -------------------------------------------


def _post_head(length_header: str) -> bytes:
    return (
        f"POST {CREATE} HTTP/1.1\r\nHost: test\r\n"
        f"Content-Type: application/json\r\n{length_header}\r\n\r\n"
    ).encode()


def _too_large_by_length() -> bytes:
    body = json.dumps({"host": "a", "pad": "x" * (17 * 1024)}).encode()
    return _post_head(f"Content-Length: {len(body)}") + body


def _too_large_chunked() -> bytes:
    # No Content-Length: the server can only count the body as it arrives.
    body = json.dumps({"host": "a", "pad": "x" * (17 * 1024)}).encode()
    chunk = f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
    return _post_head("Transfer-Encoding: chunked") + chunk


def _long_header() -> bytes:
    return f"GET /api/health/ HTTP/1.1\r\nX-Fill: {'a' * 9000}\r\n\r\n".encode()


def _many_headers() -> bytes:
    lines = "".join(f"X-H{i}: {i}\r\n" for i in range(101))
    return f"GET /api/health/ HTTP/1.1\r\n{lines}\r\n".encode()


def _post_upgrade() -> bytes:
    return (
        b"POST /ws/ HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\nContent-Length: 0\r\n\r\n"
    )


RAW_ERRORS = [
    ("upgrade_by_post", _post_upgrade, "method_not_allowed"),
    ("body_17k", _too_large_by_length, "body_too_large"),
    ("body_17k_chunked", _too_large_chunked, "body_too_large"),
    ("header_9k", _long_header, "headers_too_large"),
    ("101_headers", _many_headers, "headers_too_large"),
    ("garbage", lambda: b"\x00\x01\xfe NOT HTTP AT ALL\r\n\r\n", "bad_request"),
    ("bad_version", lambda: b"GET / HTTP/9.Z\r\n\r\n", "bad_request"),
    ("no_version", lambda: b"GET /\r\n\r\n", "bad_request"),
    ("http_0_9", lambda: b"GET /\r\n", "bad_request"),  # one line, nothing after
    ("http_0_9_lf", lambda: b"GET /\n", "bad_request"),
]


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize(
    ("make", "code"),
    [case[1:] for case in RAW_ERRORS],
    ids=[case[0] for case in RAW_ERRORS],
)
def test_unacceptable_bytes_are_answered_then_the_connection_closed(
    server: ServerProcess, make: Callable[[], bytes], code: str
) -> None:
    raw, closed = raw_exchange(server.base_url, make())
    status, headers, body = parse_response(raw)
    assert_error(status, body, code)
    assert headers["connection"] == "close"
    assert closed


@pytest.mark.usefixtures("unchanged")
def test_a_body_too_large_is_refused_before_100_continue(server: ServerProcess) -> None:
    head = _post_head("Content-Length: 99999\r\nExpect: 100-continue")
    raw, closed = raw_exchange(server.base_url, head)
    assert b"100 Continue" not in raw
    status, _, body = parse_response(raw)
    assert_error(status, body, "body_too_large")
    assert closed


@pytest.mark.usefixtures("unchanged")
def test_non_tls_bytes_on_the_tls_port_are_dropped(server: ServerProcess) -> None:
    plain = server.base_url.replace("https://", "http://")
    raw, closed = raw_exchange(plain, b"GET /api/health/ HTTP/1.1\r\n\r\n")
    assert closed
    assert b"HTTP/1.1 200" not in raw


def test_a_blank_line_before_an_upgrade_is_ignored(server: ServerProcess) -> None:
    upgrade = _post_upgrade().replace(b"POST ", b"GET ", 1)
    raw, _ = raw_exchange(server.base_url, b"\r\n" + upgrade)
    assert raw.startswith(b"HTTP/1.1 101"), raw[:80]


def test_pipelined_requests_are_answered_in_order(server: ServerProcess) -> None:
    one = b"GET /api/nothing/ HTTP/1.1\r\nHost: t\r\n\r\n"
    two = b"GET /api/health/ HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    raw, closed = raw_exchange(server.base_url, one + two)
    first, _, rest = raw.partition(b"\r\n\r\n")
    assert first.startswith(b"HTTP/1.1 404")
    assert b"HTTP/1.1 200" in rest
    assert closed


# Lobbies ------------------------------------------------------------------------


def create(server: ServerProcess, **fields: Any) -> dict[str, Any]:
    status, answer = post(server.base_url, CREATE, {"host": "test", **fields})
    assert status == 201, answer
    return answer


def join(server: ServerProcess, lobby_id: str, name: str) -> tuple[int, Any]:
    return post(server.base_url, JOIN, {"lobby_id": lobby_id, "guest_name": name})


def test_an_id_in_a_url_may_be_typed_loosely(server: ServerProcess) -> None:
    lobby_id = create(server)["lobby_id"]
    typed = f"{lobby_id[:5].lower()}%20-{lobby_id[5:]}"  # "%20" is a space
    status, view = get(server.base_url, f"/api/lobby/{typed}/")
    assert status == 200, view
    assert view["lobby_id"] == lobby_id


def test_lobby_full(server: ServerProcess) -> None:
    lobby = create(server, max_players=2)
    status, joined = join(server, lobby["lobby_id"], "test")
    assert status == 200
    assert (joined["name"], joined["renamed"]) == ("test#2", True)

    before = db_counts(server.db_path)
    status, answer = join(server, lobby["lobby_id"], "third")
    assert_error(status, answer, "lobby_full")
    assert db_counts(server.db_path) == before
    assert_healthy(server.base_url)


async def test_lobby_already_started(server: ServerProcess) -> None:
    api = api_for(server)
    lobby_id, bots = await seated_bots(api, 2, max_players=3)
    try:
        status, started = await apost(
            server.base_url, START, {"lobby_id": lobby_id}, bots[0].token
        )
        assert status == 201, started

        before = db_counts(server.db_path)
        status, answer = join(server, lobby_id, "late")
        assert_error(status, answer, "lobby_started")
        status, answer = await apost(
            server.base_url, START, {"lobby_id": lobby_id}, bots[0].token
        )
        assert_error(status, answer, "lobby_started")
        assert db_counts(server.db_path) == before
        assert_healthy(server.base_url)
    finally:
        await close_all(bots)


async def test_remote_start_refusals_then_a_start(server: ServerProcess) -> None:
    """401, 403 and 409 each leave the lobby open and startable."""
    api = api_for(server)
    base = server.base_url
    lobby_id, bots = await seated_bots(api, 2, ready=False)
    _, others = await seated_bots(api, 2, ready=False)
    host, guest = bots
    body = {"lobby_id": lobby_id}
    try:
        before = db_counts(server.db_path)
        status, answer = await apost(base, START, body)
        assert_error(status, answer, "unauthorized")
        basic = {**JSON, "Authorization": "Basic dGVzdDp0ZXN0"}
        status, answer, _ = request(
            base, "POST", START, json.dumps(body).encode(), basic
        )
        assert_error(status, answer, "unauthorized")
        status, answer = await apost(base, START, body, "not-a-token")
        assert_error(status, answer, "invalid_token")
        for token in (guest.token, others[0].token):
            status, answer = await apost(base, START, body, token)
            assert_error(status, answer, "not_host")
        unknown = {"lobby_id": "ZZZZZZZZZZ"}
        status, answer = await apost(base, START, unknown, host.token)
        assert_error(status, answer, "unknown_lobby")

        # Connected but not ready; then not connected at all.
        status, answer = await apost(base, START, body, host.token)
        assert_error(status, answer, "not_ready")
        await guest.ready()
        await guest.close()
        await host.wait_until(lambda: host.lobby["players"][1]["status"] == "joined", 5)
        status, answer = await apost(base, START, body, host.token)
        assert_error(status, answer, "not_ready")
        assert db_counts(server.db_path) == before
        assert_healthy(base)

        # Nothing was left half-done: with the guest back and ready, it starts.
        back = Bot("back", guest.token, guest.ws_url, ssl_context=api.ssl)
        bots.append(back)
        await back.connect()
        await back.ready()
        await host.wait_until(lambda: host.lobby["players"][1]["status"] == "ready", 5)
        status, answer = await apost(base, START, body, host.token)
        assert status == 201, answer
        assert answer["game_mode"] == "remote"
    finally:
        await close_all(bots + others)


async def test_a_lone_host_cannot_start(server: ServerProcess) -> None:
    api = api_for(server)
    lobby_id, (host,) = await seated_bots(api, 1, max_players=2)
    try:
        status, answer = await apost(
            server.base_url, START, {"lobby_id": lobby_id}, host.token
        )
        assert_error(status, answer, "too_few_players")
    finally:
        await host.close()


# Persistence --------------------------------------------------------------------


async def test_an_open_lobby_survives_a_restart(
    server_factory: Callable[..., ServerProcess],
) -> None:
    first = server_factory()
    lobby = create(first, points_to_win=3, max_players=3)
    lobby_id = lobby["lobby_id"]
    assert re.fullmatch(LOBBY_ID, lobby_id)
    status, _ = join(first, lobby_id, "guest")
    assert status == 200
    assert first.stop() == 0

    second = server_factory(first.data_dir)
    status, view = get(second.base_url, f"/api/lobby/{lobby_id}/")
    assert status == 200
    assert view["status"] == "open"
    assert view["points_to_win"] == 3
    assert view["max_players"] == 3
    assert [(p["name"], p["host"]) for p in view["players"]] == [
        ("test", True),
        ("guest", False),
    ]

    status, joined = join(second, lobby_id, "after")
    assert status == 200
    assert joined["seat"] == 2
    # The host's token from before the restart still opens the host's seat.
    host = Bot(
        "test",
        lobby["token"],
        second.ws_url,
        ssl_context=api_for(second).ssl,
    )
    try:
        await host.connect()
        assert host.welcome is not None
        assert host.welcome["lobby_id"] == lobby_id
        assert host.welcome["name"] == "test"
    finally:
        await host.close()
    assert second.errors() == []


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [
        (b"CONNECT localhost:8443 HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_request"),
        (
            b"GET /ws/ HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
            b"Sec-WebSocket-Key: short\r\n\r\n",
            400,
            "bad_handshake",
        ),
        (
            b"GET /ws/ HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Version: 8\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
            400,
            "bad_handshake",
        ),
    ],
)
def test_odd_requests_get_a_json_error_and_a_close(
    server: ServerProcess, raw: bytes, status: int, code: str
) -> None:
    answer, closed = raw_exchange(server.base_url, raw)
    got_status, headers, body = parse_response(answer)
    assert (got_status, body["error"]["code"]) == (status, code)
    assert headers["content-type"] == "application/json"
    assert closed
    assert_healthy(server.base_url)
