"""The server killed outright, and the server asked to stop, in mid-game.

SIGKILL gives the process no chance to tidy up: whatever SQLite committed is
all there is. The next start must find every finished game whole, mark the
game that was running as interrupted (never leave it "running"), close its
lobby, keep every lobby it had answered for, and hand out no ID twice.

SIGTERM is the operator's stop: running games are stored as interrupted with
the score of the round in play (none between two rounds: the round that
ended keeps its result), their sockets hear GAME_END and then 1001,
sockets that never said HELLO get 1001 too, and the process exits 0 within
the server's ten-second shutdown budget. A game still being stored when the
signal comes is waited for and interrupted the same way.

A connection opened before the stop may still send requests while the
server waits for close frames: it gets 503 shutting_down, and nothing is
created.

Last, what a crash may not undo: a LEAVE the server has acknowledged (close
4005, "the token is void") must already be stored.
"""

from __future__ import annotations

import asyncio
import base64
import http.client
import os
import signal
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from bench.bot import Api, Bot, run_lobby_game
from server import protocol
from tests.conftest import ServerProcess
from tests.helpers import (
    TIMEOUT,
    close_all,
    get,
    seated_bots,
    until_starting,
    writes_held,
)
from tests.reliability.support import (
    CHURN_FLAGS,
    LobbyChurn,
    assert_database_sound,
    raw_websocket,
    rows,
)

SHUTDOWN_BUDGET = 10.0  # seconds; app.py's SHUTDOWN_TIMEOUT


async def game_with_a_point(api: Api) -> tuple[str, str, list[Bot]]:
    """A two-bot game to 99 that is under way and has had its first point.

    The bots let every ball pass, so a point comes about two seconds in.
    """
    lobby_id, bots = await seated_bots(api, 2, 99)
    for bot in bots:
        bot.autoplay, bot.skill = True, 0.0
    await bots[0].start()
    await bots[0].wait_until(lambda: bool(bots[0].points), 2 * TIMEOUT)
    assert bots[0].game is not None
    return lobby_id, bots[0].game["game_id"], bots


def ids_in(db: Path, table: str) -> set[str]:
    return {row["id"] for row in rows(db, f"SELECT id FROM {table}")}


def api_for(server: ServerProcess) -> Api:
    return Api(server.base_url)


def local_body() -> dict[str, Any]:
    return {"player-1": "left", "player-2": "right", "points_to_win": 1}


async def test_sigkill_mid_game_then_restart(
    server_factory: Callable[..., ServerProcess],
) -> None:
    first = server_factory(tls=False, extra=CHURN_FLAGS)
    api = Api(first.base_url)

    done = await run_lobby_game(api, 2, 1, skill=(1.0, 0.0), seed=2)
    assert done.result["status"] == "finished"
    open_lobby = await api.post("/api/create_lobby/", {"host": "waiting"})
    await api.post(
        "/api/join_lobby/", {"lobby_id": open_lobby["lobby_id"], "guest_name": "g"}
    )
    cut_lobby, cut_game, bots = await game_with_a_point(api)

    # Kill while lobby writes are in flight, so a half-done one would show.
    # (server_factory's teardown stops only what still runs and checks no
    # exit status, so the killed process needs nothing more.)
    with LobbyChurn(first.base_url, join=False) as churn:
        await asyncio.sleep(0.5)
        first.process.kill()
        assert await asyncio.to_thread(first.process.wait, TIMEOUT) == -signal.SIGKILL
    await close_all(bots)
    assert len(churn.answered) > 10 and set(churn.statuses) == {201}
    assert churn.failures  # the churn was still going when the server died

    second = server_factory(first.data_dir, tls=False)
    base, db = second.base_url, second.db_path
    assert any("interrupted 1 games a previous process left" in x for x in second.log)

    # The finished game is whole: the round, the winner, both agreeing.
    status, view = get(base, f"/api/game/{done.game_id}/")
    assert status == 200 and view["status"] == "finished"
    assert view["winner"] == done.result["winner_name"]
    (round_view,) = view["rounds"]
    assert round_view["status"] == "finished"
    assert round_view["winner"] == view["winner"]
    assert sorted(round_view["score"]) == [0, 1]
    (game_row,) = rows(db, "SELECT * FROM games WHERE id = ?", done.game_id)
    (round_row,) = rows(db, "SELECT * FROM rounds WHERE game_id = ?", done.game_id)
    assert game_row["winner_seat"] == round_row["winner_seat"] is not None

    # The game in play is interrupted, never running; its lobby is closed.
    status, view = get(base, f"/api/game/{cut_game}/")
    assert status == 200 and view["status"] == "interrupted"
    assert view["winner"] is None and view["ended_at"] is not None
    assert "live" not in view
    assert [r["status"] for r in view["rounds"]] == ["interrupted"]
    assert get(base, f"/api/lobby/{cut_lobby}/")[1]["status"] == "closed"

    # Lobbies that were answered for are all there and still open.
    view = get(base, f"/api/lobby/{open_lobby['lobby_id']}/")[1]
    assert view["status"] == "open" and len(view["players"]) == 2
    stored = ids_in(db, "lobbies")
    assert set(churn.answered) <= stored
    assert get(base, f"/api/lobby/{churn.answered[-1]}/")[1]["status"] == "open"

    # Nothing half-written, nothing left looking as if in play.
    assert_database_sound(db)
    assert rows(db, "SELECT id FROM games WHERE status IN ('waiting', 'running')") == []
    in_play = "SELECT game_id FROM rounds WHERE status IN ('pending', 'running')"
    assert rows(db, in_play) == []

    # New IDs are new, and the restarted server plays a game to its end.
    old_lobbies, old_games = stored, ids_in(db, "games")
    new_lobbies = [
        (await api_for(second).post("/api/create_lobby/", {"host": "new"}))["lobby_id"]
        for _ in range(10)
    ]
    new_games = [
        (await api_for(second).post("/api/start_game/", local_body()))["game_id"]
        for _ in range(5)
    ]
    assert len(set(new_lobbies)) == 10 and not set(new_lobbies) & old_lobbies
    assert len(set(new_games)) == 5 and not set(new_games) & old_games
    again = await run_lobby_game(api_for(second), 2, 1, skill=(0.0, 1.0), seed=4)
    assert again.result["status"] == "finished" and again.result["saved"] is True
    assert again.game_id not in old_games

    assert second.stop() == 0
    assert second.errors() == []


async def test_sigterm_mid_game_interrupts_and_exits_cleanly(
    server_factory: Callable[..., ServerProcess],
) -> None:
    server = server_factory(tls=False)
    api = Api(server.base_url)
    lobby_id, game_id, bots = await game_with_a_point(api)
    try:
        async with connect(server.ws_url) as silent:  # never says HELLO
            began = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            ends = await asyncio.gather(*(b.finished(TIMEOUT) for b in bots))
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(silent.recv(), TIMEOUT)
            assert silent.close_code == protocol.CLOSE_GOING_AWAY
    finally:
        await close_all(bots)
    code = await asyncio.to_thread(server.process.wait, SHUTDOWN_BUDGET + 2)
    took = time.monotonic() - began
    assert code == 0 and took < SHUTDOWN_BUDGET

    expected = {"game_id": game_id, "status": "interrupted", "winner": None}
    for bot, end in zip(bots, ends, strict=True):
        assert end == {**expected, "saved": True}
        # GAME_END came, then the close: 1001, the server going away.
        assert bot.close_code == protocol.CLOSE_GOING_AWAY

    # The round in play is stored with the score every socket last saw.
    score = bots[0].points[-1]["score"]
    assert bots[1].points[-1]["score"] == score
    (game,) = rows(server.db_path, "SELECT * FROM games WHERE id = ?", game_id)
    assert game["status"] == "interrupted" and game["ended_at"] is not None
    (round_row,) = rows(
        server.db_path, "SELECT * FROM rounds WHERE game_id = ?", game_id
    )
    assert round_row["status"] == "interrupted" and round_row["winner_seat"] is None
    assert [round_row["left_score"], round_row["right_score"]] == score
    assert sum(score) >= 1
    (lobby,) = rows(server.db_path, "SELECT * FROM lobbies WHERE id = ?", lobby_id)
    assert lobby["status"] == "closed"
    assert_database_sound(server.db_path)
    said = f"game {game_id} interrupted: server shutting down"
    assert any(said in line for line in server.log)
    assert server.errors() == []


async def test_sigterm_while_a_game_is_being_stored(
    server_factory: Callable[..., ServerProcess],
) -> None:
    """A START whose game is being written at SIGTERM is waited for: the game,
    once stored, is interrupted like any other at shutdown, not left
    "running" for the next start to find."""
    server = server_factory(tls=False)
    api = Api(server.base_url)
    lobby_id, bots = await seated_bots(api)
    try:
        # Another process holds the write lock (the server waits up to its
        # five-second busy timeout), so the game stays "starting" until then.
        with writes_held(server.db_path):
            await bots[0].start()
            await until_starting(server.base_url, lobby_id)
            began = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            await asyncio.sleep(1.0)
        ends = await asyncio.gather(*(b.finished(TIMEOUT) for b in bots))
    finally:
        await close_all(bots)
    code = await asyncio.to_thread(server.process.wait, SHUTDOWN_BUDGET + 2)
    assert code == 0 and time.monotonic() - began < SHUTDOWN_BUDGET

    game_id = ends[0]["game_id"]
    expected = {"game_id": game_id, "status": "interrupted", "winner": None}
    for bot, end in zip(bots, ends, strict=True):
        assert end == {**expected, "saved": True}
        assert bot.close_code == protocol.CLOSE_GOING_AWAY
        assert bot.errors == []
    db = server.db_path
    (game,) = rows(db, "SELECT * FROM games WHERE lobby_id = ?", lobby_id)
    assert game["id"] == game_id and game["status"] == "interrupted"
    played = rows(db, "SELECT status FROM rounds WHERE game_id = ?", game_id)
    assert [r["status"] for r in played] == ["interrupted"]
    (lobby,) = rows(db, "SELECT * FROM lobbies WHERE id = ?", lobby_id)
    assert lobby["status"] == "closed"
    assert_database_sound(db)
    assert server.errors() == []


# A tick a second: the moment between the end of a break and the tick that
# starts the next round lasts a whole second, long enough to act in.
SLOW_TICK_RATE = 1


async def test_sigterm_after_a_break_before_the_next_round(
    server_factory: Callable[..., ServerProcess],
) -> None:
    """At that moment the ended round keeps its result: shutdown stores the
    game as interrupted without touching it, and a socket that comes back
    then is not told that the ended round is starting."""
    server = server_factory(tls=False, extra=("--tick-rate", str(SLOW_TICK_RATE)))
    api = Api(server.base_url)
    _, bots = await seated_bots(api, 3, points=1)
    host = bots[0]
    heard: list[tuple[int, Any]] = []  # what the host hears: (kind, tick or map)
    host.listener = lambda bot, kind, message: heard.append((kind, message[1]))
    starts: list[int] = []  # the round of each ROUND_START a late socket hears
    late = Bot(host.name, host.token, host.ws_url, autoplay=False)
    late.listener = lambda bot, kind, message: (
        starts.append(message[1]["round"]) if kind == protocol.ROUND_START else None
    )
    try:
        await host.start()
        await host.wait_until(lambda: host.game is not None, TIMEOUT)
        assert host.game is not None
        assert host.game["rounds"][:2] == [[2, 1], [2, 0]]  # the host watches
        rules = host.game["rules"]
        break_ticks = int(rules["round_break"] * rules["tick_rate"])
        # Paddles away from the middle: round 0's one point comes soon.
        await bots[2].send(protocol.INPUT, 1, 1.0)
        await bots[1].send(protocol.INPUT, 1, -1.0)
        await host.wait_until(lambda: bool(host.rounds), 3 * TIMEOUT)

        def break_over() -> bool:
            kinds = [kind for kind, _ in heard]
            after = heard[kinds.index(protocol.ROUND_END) + 1 :]
            ticks = [tick for kind, tick in after if kind == protocol.SNAPSHOT]
            return len(ticks) > break_ticks  # the ending tick's, then the break's

        await host.wait_until(break_over, TIMEOUT)
        await late.connect()  # takes the host's seat, a spectator's
        server.process.send_signal(signal.SIGTERM)
        ends = await asyncio.gather(
            *(bot.finished(TIMEOUT) for bot in (late, *bots[1:]))
        )
    finally:
        await late.close()
        await close_all(bots)
    assert await asyncio.to_thread(server.process.wait, SHUTDOWN_BUDGET + 2) == 0

    # SIGTERM came before round 1 began, and the late socket heard no start.
    assert bots[1].round is not None and bots[1].round["round"] == 0
    assert starts == []
    game_id = ends[0]["game_id"]
    for end in ends:
        assert end == {
            "game_id": game_id,
            "status": "interrupted",
            "winner": None,
            "saved": True,
        }
    played = rows(
        server.db_path, "SELECT * FROM rounds WHERE game_id = ? ORDER BY idx", game_id
    )
    assert [r["status"] for r in played] == ["finished", "interrupted", "interrupted"]
    assert played[0]["winner_seat"] is not None
    assert sorted([played[0]["left_score"], played[0]["right_score"]]) == [0, 1]
    assert server.errors() == []


async def test_a_leave_is_stored_before_it_is_acknowledged(
    server_factory: Callable[..., ServerProcess],
) -> None:
    server = server_factory(tls=False)
    api = Api(server.base_url)
    created = await api.post("/api/create_lobby/", {"host": "leaver"})
    bot = Bot("leaver", created["token"], created["ws_url"], autoplay=False)
    await bot.connect()

    # Another process holds SQLite's write lock for a second, as a backup
    # or a stalled disk would; the server's writes wait for it (its busy
    # timeout is five seconds). Reads go on, under WAL.
    holder = sqlite3.connect(server.db_path, timeout=TIMEOUT, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        await bot.send(protocol.LEAVE)
        await asyncio.sleep(1.0)
        acknowledged_unsaved = bot.closed
        holder.execute("ROLLBACK")
    finally:
        holder.close()
    try:
        assert await bot.wait_closed(TIMEOUT) == protocol.CLOSE_LEFT
    finally:
        await bot.close()
    assert not acknowledged_unsaved, "4005 came before the leave could be stored"
    view = get(server.base_url, f"/api/lobby/{created['lobby_id']}/")[1]
    assert view["status"] == "closed"
    assert server.stop() == 0 and server.errors() == []


def test_requests_on_open_connections_are_refused_once_stopping(
    server_factory: Callable[..., ServerProcess],
) -> None:
    """Between SIGTERM and exit, keep-alive connections create nothing.

    The wait for peers' close frames holds the process up to three seconds;
    a connection opened before may send requests meanwhile. They, and an
    upgrade, are answered 503 shutting_down and the connection closes.
    """
    server = server_factory(tls=False)
    url = urlsplit(server.base_url)
    # A socket that never answers our close keeps the server in its wait.
    silent = raw_websocket(server.base_url)
    lobby_conn = http.client.HTTPConnection(url.netloc, timeout=TIMEOUT)
    upgrade_conn = http.client.HTTPConnection(url.netloc, timeout=TIMEOUT)
    try:
        for conn in (lobby_conn, upgrade_conn):
            conn.request("GET", "/api/health/")
            with conn.getresponse() as answer:
                assert answer.status == 200 and not answer.will_close
                answer.read()

        server.process.send_signal(signal.SIGTERM)
        close = silent.recv(64)  # our close frame: shutdown has begun
        assert close[0] & 0x0F == 0x8
        assert int.from_bytes(close[2:4], "big") == protocol.CLOSE_GOING_AWAY

        body = orjson.dumps({"host": "latecomer"})
        json_type = {"Content-Type": "application/json"}
        lobby_conn.request("POST", "/api/create_lobby/", body, json_type)
        upgrade_conn.request(
            "GET",
            "/ws/",
            headers={
                "Upgrade": "websocket",
                "Connection": "Upgrade",
                "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
                "Sec-WebSocket-Version": "13",
            },
        )
        for conn in (lobby_conn, upgrade_conn):
            with conn.getresponse() as answer:
                assert answer.status == 503 and answer.will_close
                error = orjson.loads(answer.read())["error"]
                assert error["code"] == "shutting_down"
    finally:
        silent.close()
        lobby_conn.close()
        upgrade_conn.close()
    assert server.process.wait(SHUTDOWN_BUDGET + 2) == 0
    assert rows(server.db_path, "SELECT id FROM lobbies") == []
    assert server.errors() == []


async def test_a_leave_being_stored_at_sigterm_is_acknowledged_first(
    server_factory: Callable[..., ServerProcess],
) -> None:
    """A socket told 1001 may reconnect: so its LEAVE must not be stored.

    Shutdown waits for a leave in flight; the leave is stored, its socket
    gets 4005 as always, and only the others get 1001.
    """
    server = server_factory(tls=False)
    api = api_for(server)
    lobby_id, (host, guest) = await seated_bots(api, 2)
    try:
        with writes_held(server.db_path):  # the leave's write waits here
            await guest.send(protocol.LEAVE)
            async with asyncio.timeout(TIMEOUT):
                while True:  # the seat is freed in memory, its write waiting
                    _, view = get(server.base_url, f"/api/lobby/{lobby_id}/")
                    if len(view["players"]) == 1:
                        break
                    await asyncio.sleep(0.02)
            server.process.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.5)
            assert not guest.closed and not host.closed  # shutdown waits
        assert await guest.wait_closed(TIMEOUT) == protocol.CLOSE_LEFT
        assert await host.wait_closed(TIMEOUT) == protocol.CLOSE_GOING_AWAY
    finally:
        await close_all([host, guest])
    assert await asyncio.to_thread(server.process.wait, SHUTDOWN_BUDGET) == 0
    members = rows(
        server.db_path,
        "SELECT name FROM lobby_members WHERE lobby_id = ? AND left_at IS NULL",
        lobby_id,
    )
    assert [m["name"] for m in members] == [host.name]
    assert server.errors() == []
