"""Helpers the tests against a running server share: HTTP, raw bytes, the DB.

Everything here talks to the server the way a client would, over loopback
sockets; the database is only ever opened read-only, next to the live server,
or locked without a write, as an operator's shell or a backup may lock it.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import socket
import sqlite3
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.bot import (
    Api,
    Bot,
    BotError,
    Snapshot,
    client_ssl_context,
    everyone_ready,
)
from server import protocol

TIMEOUT = 10.0  # seconds for any one request or wait in a test
TABLES = (
    "players",
    "lobbies",
    "lobby_members",
    "games",
    "game_players",
    "rounds",
    "users",
    "sessions",
    "avatars",
    "ended_tokens",
)
# Crockford's base32 without I, L, O and U; ten characters make a lobby id.
LOBBY_ID = r"[0-9A-HJKMNP-TV-Z]{10}"


def insecure_context() -> ssl.SSLContext:
    """The test server's certificate is self-signed, as a first start makes it."""
    return client_ssl_context(insecure=True)


# HTTP ------------------------------------------------------------------------


def request(
    base_url: str,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any, http.client.HTTPMessage]:
    """One request on a fresh connection: status, JSON answer, headers."""
    url = urlsplit(base_url)
    conn: http.client.HTTPConnection
    if url.scheme == "https":
        conn = http.client.HTTPSConnection(
            url.hostname, url.port, timeout=TIMEOUT, context=insecure_context()
        )
    else:
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=TIMEOUT)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        raw = response.read()
        return response.status, json.loads(raw) if raw else None, response.headers
    finally:
        conn.close()


def post(
    base_url: str,
    path: str,
    body: Any,
    token: str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """POST ``body`` as JSON, with ``headers`` too; (status, JSON answer)."""
    headers = {"Content-Type": "application/json", **(headers or {})}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    status, answer, _ = request(
        base_url, "POST", path, json.dumps(body).encode(), headers
    )
    return status, answer


def get(base_url: str, path: str) -> tuple[int, Any]:
    status, answer, _ = request(base_url, "GET", path)
    return status, answer


async def apost(
    base_url: str, path: str, body: Any, token: str | None = None
) -> tuple[int, Any]:
    """``post`` off the event loop, so sockets in the test keep being read."""
    return await asyncio.to_thread(post, base_url, path, body, token)


async def aget(base_url: str, path: str) -> tuple[int, Any]:
    return await asyncio.to_thread(get, base_url, path)


def assert_healthy(base_url: str) -> None:
    status, answer = get(base_url, "/api/health/")
    assert status == 200
    assert answer["status"] == "ok"


def raw_exchange(base_url: str, data: bytes) -> tuple[bytes, bool]:
    """Send ``data`` as is; what came back, and whether the server then closed.

    Reads until the server closes or is quiet for two seconds.
    """
    url = urlsplit(base_url)
    assert url.hostname is not None and url.port is not None
    sock = socket.create_connection((url.hostname, url.port), timeout=TIMEOUT)
    if url.scheme == "https":
        sock = insecure_context().wrap_socket(sock, server_hostname=url.hostname)
    with sock:
        sock.sendall(data)
        sock.settimeout(2.0)
        received = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                return received, False
            except (ConnectionResetError, ssl.SSLError):
                return received, True
            if not chunk:
                return received, True
            received += chunk


def parse_response(raw: bytes) -> tuple[int, dict[str, str], Any]:
    """Status, headers (lower-case names) and JSON body of one raw response."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", len(body)))
    return status, headers, json.loads(body[:length]) if length else None


# The database ----------------------------------------------------------------


@contextlib.contextmanager
def connect_db(db_path: Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection, closed on exit: tests look, only the server writes."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=TIMEOUT)
    conn.row_factory = sqlite3.Row
    try:
        yield conn
    finally:
        conn.close()


def db_counts(db_path: Path) -> dict[str, int]:
    """Rows in every table, to show that a refused request wrote nothing."""
    with connect_db(db_path) as conn:
        return {
            t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES
        }


@contextlib.contextmanager
def writes_held(db_path: Path) -> Iterator[None]:
    """Hold the database's write lock, writing nothing, until the block ends.

    The server's writes wait meanwhile (its busy timeout is 5 seconds, so
    keep the block shorter): a game started inside it stays "starting".
    """
    conn = sqlite3.connect(db_path, timeout=TIMEOUT, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
    finally:
        conn.close()


async def until_starting(base_url: str, lobby_id: str) -> None:
    """Wait until the host's START has been taken: the game is being stored."""
    async with asyncio.timeout(TIMEOUT):
        while True:
            _, view = await aget(base_url, f"/api/lobby/{lobby_id}/")
            if view["status"] == "starting":
                return
            await asyncio.sleep(0.02)


def wait_for(predicate: Any, timeout: float = TIMEOUT, what: str = "") -> None:
    """Poll a condition another process makes true, such as a row landing."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        time.sleep(0.05)


# Bots ------------------------------------------------------------------------


async def seated_bots(
    api: Api,
    players: int = 2,
    points: int = 99,
    *,
    ready: bool = True,
    max_players: int | None = None,
) -> tuple[str, list[Bot]]:
    """A lobby with ``players`` connected bots that send no input of their own.

    The guests have said READY if ``ready``. The default of 99 points keeps a
    game started from it running for as long as a test needs.
    """
    created = await api.post(
        "/api/create_lobby/",
        {
            "host": "host",
            "points_to_win": points,
            "max_players": max_players or players,
        },
    )
    seats = [created]
    for n in range(2, players + 1):
        body = {"lobby_id": created["lobby_id"], "guest_name": f"guest-{n}"}
        seats.append(await api.post("/api/join_lobby/", body))
    bots = [
        Bot(s["name"], s["token"], s["ws_url"], ssl_context=api.ssl, autoplay=False)
        for s in seats
    ]
    for bot in bots:
        await bot.connect()
        if ready and bot is not bots[0]:
            await bot.ready()
    if ready:
        host = bots[0]
        await host.wait_until(lambda: everyone_ready(host.lobby, players), TIMEOUT)
    return created["lobby_id"], bots


def collect_snapshots(bot: Bot) -> list[Snapshot]:
    """Every SNAPSHOT the bot receives from now on, in arrival order.

    It takes the bot's ``listener``.
    """
    seen: list[Snapshot] = []

    def listen(b: Bot, kind: int, message: list[Any]) -> None:
        if kind == protocol.SNAPSHOT:
            seen.append(Snapshot(*message[1:]))

    bot.listener = listen
    return seen


def paddle_path(rules: dict[str, Any], move: float, ticks: int) -> list[float]:
    """A centred paddle's y after each of ``ticks`` ticks of a held ``move``."""
    step = move * rules["paddle_speed"] / rules["tick_rate"]
    low = rules["paddle_height"] / 2
    high = rules["field_height"] - low
    middle = rules["field_height"] / 2
    return [min(high, max(low, middle + step * n)) for n in range(1, ticks + 1)]


async def close_all(bots: list[Bot]) -> None:
    await asyncio.gather(*(b.close() for b in bots))


async def refused_hello(token: str, ws_url: str) -> Bot:
    """HELLO with a token that opens no seat; the bot, once the server closed it.

    Its ``close_code`` says how, ``result`` holds the GAME_END it got (a
    token of an ended game) and ``errors`` the ERRORs.
    """
    late = Bot("late", token, ws_url, ssl_context=insecure_context(), autoplay=False)
    try:
        await late.connect()
    except BotError:
        await late.wait_closed(TIMEOUT)
        return late
    await late.close()
    raise AssertionError("the token opened a seat")


# Accounts --------------------------------------------------------------------

PASSWORD = "correct horse battery"


def login(base_url: str, username: str, password: str = PASSWORD) -> str:
    """Register ``username`` if need be and log in; the bearer session token."""
    status, answer = post(
        base_url, "/api/register/", {"username": username, "password": password}
    )
    assert status in (201, 409), answer
    status, answer = post(
        base_url,
        "/api/login/",
        {"username": username, "password": password, "bearer": True},
    )
    assert status == 200, answer
    return str(answer["token"])


def browser_login(
    base_url: str, username: str, password: str = PASSWORD
) -> tuple[Any, http.client.HTTPMessage]:
    """Register ``username`` if need be and log in as a browser does.

    The JSON answer and the headers, which set the session and CSRF cookies.
    """
    post(base_url, "/api/register/", {"username": username, "password": password})
    body = json.dumps({"username": username, "password": password}).encode()
    status, answer, headers = request(
        base_url, "POST", "/api/login/", body, {"Content-Type": "application/json"}
    )
    assert status == 200, answer
    return answer, headers
