"""Writes that fail around a game's start: the lobby stays whole and is told.

The server runs from ``fault_server``: storing a game with a player named
"unsaved" fails, and so does storing the LEAVE of a member named "stuck",
each a second after it was asked for. Whatever fails, every member must end
up seeing the lobby as it is (open, with its seats), the client that asked
must get a stable error code, and the only ERROR in the log must be the
failed write's own report.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Any

from bench.bot import Api, Bot, everyone_ready
from server import protocol
from tests.conftest import ServerProcess
from tests.helpers import TIMEOUT, aget, close_all, refused_hello, until_starting
from tests.reliability.fault_server import STUCK_NAME, UNSAVED_NAME
from tests.reliability.support import rows, start_module

FAULTY = "tests.reliability.fault_server"
SHUTDOWN_BUDGET = 10.0  # seconds; app.py's SHUTDOWN_TIMEOUT


async def ready_lobby(api: Api, *guests: str) -> tuple[str, list[Bot]]:
    """A lobby hosted by "host" with ``guests``, all connected and ready.

    Returns once every bot has heard the LOBBY that says so, so that any
    LOBBY heard later is news.
    """
    created = await api.post(
        "/api/create_lobby/", {"host": "host", "max_players": len(guests) + 1}
    )
    seats = [created]
    for name in guests:
        body = {"lobby_id": created["lobby_id"], "guest_name": name}
        seats.append(await api.post("/api/join_lobby/", body))
    bots = [Bot(s["name"], s["token"], s["ws_url"], autoplay=False) for s in seats]
    for bot in bots:
        await bot.connect()
        if bot is not bots[0]:
            await bot.ready()
    for bot in bots:
        await all_ready(bot, len(bots))
    return created["lobby_id"], bots


async def all_ready(bot: Bot, players: int) -> None:
    await bot.wait_until(lambda: everyone_ready(bot.lobby, players), TIMEOUT)


def lobby_statuses(bot: Bot) -> list[str]:
    """The status of every LOBBY ``bot`` hears from now on; takes its listener."""
    heard: list[str] = []

    def listen(b: Bot, kind: int, message: list[Any]) -> None:
        if kind == protocol.LOBBY:
            heard.append(message[1]["status"])

    bot.listener = listen
    return heard


async def hears_a_lobby(bot: Bot, statuses: list[str]) -> None:
    await bot.wait_until(lambda: bool(statuses), TIMEOUT)


async def starting_unsaved(
    server: ServerProcess,
) -> tuple[str, list[Bot], list[list[str]]]:
    """A ready lobby with a member named "unsaved", started: its game's write
    is in flight and will fail. Also the LOBBY statuses each bot hears from
    the START on."""
    lobby_id, bots = await ready_lobby(Api(server.base_url), UNSAVED_NAME)
    heard = [lobby_statuses(bot) for bot in bots]
    await bots[0].start()
    await until_starting(server.base_url, lobby_id)
    return lobby_id, bots, heard


async def leave_in_flight(server: ServerProcess, lobby_id: str, stuck: Bot) -> None:
    """``stuck`` sends LEAVE; returns once its seat is freed in memory, while
    the write that will fail is still in flight."""
    await stuck.send(protocol.LEAVE)
    async with asyncio.timeout(TIMEOUT):
        while True:
            _, view = await aget(server.base_url, f"/api/lobby/{lobby_id}/")
            if STUCK_NAME not in {p["name"] for p in view["players"]}:
                return
            await asyncio.sleep(0.02)


def codes(bot: Bot) -> list[str]:
    return [e["code"] for e in bot.errors]


def only_the_write_failed(server: ServerProcess, what: str) -> None:
    """The log's ERRORs are one report of the injected write failure."""
    errors = server.errors()
    assert len(errors) >= 2, errors  # the report, then its traceback(s)
    assert " ERROR " in errors[0] and "message handling failed" in errors[0]
    assert all(line.startswith("Traceback") for line in errors[1:]), errors
    assert any(
        "StoreError" in line and what in line and "injected fault" in line
        for line in server.log
    )


async def test_a_game_that_cannot_be_stored_opens_the_lobby_again(
    tmp_path: Path,
) -> None:
    server = start_module(FAULTY, tmp_path, tls=False)
    bots: list[Bot] = []
    try:
        lobby_id, bots, heard = await starting_unsaved(server)
        host = bots[0]

        # Every member hears that the lobby is open again; the host why.
        for bot, statuses in zip(bots, heard, strict=True):
            await hears_a_lobby(bot, statuses)
            assert statuses == ["open"]
        await host.wait_until(lambda: bool(host.errors), TIMEOUT)
        assert codes(host) == ["internal_error"]
        assert codes(bots[1]) == []
        assert host.lobby is not None
        assert everyone_ready(host.lobby, 2) and host.lobby["game_id"] is None
        assert not any(bot.closed for bot in bots)
        _, view = await aget(server.base_url, f"/api/lobby/{lobby_id}/")
        assert view["status"] == "open"
    finally:
        await close_all(bots)
    assert server.stop() == 0
    assert rows(server.db_path, "SELECT id FROM games") == []
    (lobby,) = rows(server.db_path, "SELECT * FROM lobbies WHERE id = ?", lobby_id)
    assert lobby["status"] == "open"
    only_the_write_failed(server, "create game")


async def test_a_start_waits_for_no_leave_that_may_yet_fail(tmp_path: Path) -> None:
    """A LEAVE being stored keeps START from building the game without it.

    The seat is freed in memory before the write, so a START meanwhile would
    leave it out of the game; if the write then failed, the seat would come
    back to a lobby whose game has no place for it.
    """
    server = start_module(FAULTY, tmp_path, tls=False)
    api = Api(server.base_url)
    back: Bot | None = None
    try:
        lobby_id, bots = await ready_lobby(api, "guest", STUCK_NAME)
        host, stuck = bots[0], bots[2]
        await leave_in_flight(server, lobby_id, stuck)
        await host.start()

        # The leave is not stored: the member keeps its seat and its token.
        await stuck.wait_until(lambda: bool(stuck.errors), TIMEOUT)
        assert codes(stuck) == ["internal_error"]
        back = Bot(STUCK_NAME, stuck.token, stuck.ws_url, autoplay=False)
        await back.connect()
        assert back.welcome is not None and back.game is None
        assert not back.errors and not back.closed

        # The START was refused while the leave could still go either way.
        await host.wait_until(lambda: bool(host.errors), TIMEOUT)
        assert codes(host) == ["not_ready"]
        assert host.game is None
        await back.ready()
        await host.wait_until(lambda: everyone_ready(host.lobby, 3), TIMEOUT)
        await host.start()
        await back.wait_until(
            lambda: back is not None and back.game is not None, TIMEOUT
        )
        assert back.seats == [2]
        assert host.game is not None and len(host.game["players"]) == 3
        assert not back.errors
    finally:
        if back is not None:
            await back.close()
        await close_all(bots)
    assert server.stop() == 0
    only_the_write_failed(server, f"from {lobby_id}")
    assert not any("KeyError" in line for line in server.log)


async def test_a_leave_that_fails_in_a_lobby_closed_meanwhile_voids_the_seat(
    tmp_path: Path,
) -> None:
    """The seat goes with the lobby: no token left open on a closed lobby."""
    server = start_module(FAULTY, tmp_path, tls=False)
    api = Api(server.base_url)
    try:
        lobby_id, bots = await ready_lobby(api, "guest", STUCK_NAME)
        host, stuck = bots[0], bots[2]
        await leave_in_flight(server, lobby_id, stuck)
        closing = {"lobby_id": lobby_id}
        await api.post("/api/close_lobby/", closing, host.token)
        assert await bots[1].wait_closed(TIMEOUT) == protocol.CLOSE_LOBBY_CLOSED

        # The leave then fails to be stored: the seat is void all the same.
        assert await stuck.wait_closed(TIMEOUT) == protocol.CLOSE_LOBBY_CLOSED
        assert codes(stuck) == []
        back = await refused_hello(stuck.token, stuck.ws_url)
        assert back.close_code == protocol.CLOSE_INVALID_TOKEN
    finally:
        await close_all(bots)
    assert server.stop() == 0
    assert server.errors() == []
    assert any("leave not stored" in line for line in server.log)


async def test_sigterm_while_a_game_that_cannot_be_stored_is_being_stored(
    tmp_path: Path,
) -> None:
    """Shutdown waits for the start to fail, then closes the open lobby's
    sockets as it closes any lobby's; nothing is left half-started."""
    server = start_module(FAULTY, tmp_path, tls=False)
    bots: list[Bot] = []
    try:
        lobby_id, bots, heard = await starting_unsaved(server)
        host = bots[0]
        began = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        for bot in bots:
            assert await bot.wait_closed(TIMEOUT) == protocol.CLOSE_GOING_AWAY
    finally:
        await close_all(bots)
    code = await asyncio.to_thread(server.process.wait, SHUTDOWN_BUDGET + 2)
    assert code == 0 and time.monotonic() - began < SHUTDOWN_BUDGET

    # The start failed before the sockets closed, and every member heard so.
    assert codes(host) == ["internal_error"]
    assert heard == [["open"], ["open"]]
    assert all(bot.game is None and bot.result is None for bot in bots)
    assert rows(server.db_path, "SELECT id FROM games") == []
    (lobby,) = rows(server.db_path, "SELECT * FROM lobbies WHERE id = ?", lobby_id)
    assert lobby["status"] == "open"
    only_the_write_failed(server, "create game")
