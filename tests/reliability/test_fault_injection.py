"""A bug inside one game's tick ends that game alone; the others play on.

The server runs from ``fault_server``, which makes any game with a player
named "boom" raise from its tick half a second in. Beside it a healthy game
plays to its end. The failing game must end the documented way (ERROR
``game_error``, GAME_END with status "error", close 1011, stored as "error",
its lobby closed), and the healthy game must not notice: full snapshot rate
through and after the failure, then a normal finish.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bench.bot import Api, Bot, BotError, everyone_ready, run_lobby_game
from server import protocol
from tests.conftest import ServerProcess
from tests.helpers import TIMEOUT, get
from tests.reliability.fault_server import FAULT_AFTER_TICKS, TRIGGER_NAME
from tests.reliability.support import assert_database_sound, rows, start_module

WINDOW = 2.0  # seconds over which the healthy game's snapshot rate is measured
MIN_RATE = 58.0  # snapshots per second at a 60 Hz tick, allowing for jitter


async def eventually(predicate: Callable[[], bool], what: str) -> None:
    try:
        async with asyncio.timeout(TIMEOUT):
            while not predicate():
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


async def boom_lobby(api: Api) -> tuple[str, list[Bot]]:
    """A two-seat lobby hosted by the trigger name, both seats connected, ready."""
    created = await api.post(
        "/api/create_lobby/",
        {"host": TRIGGER_NAME, "points_to_win": 99, "max_players": 2},
    )
    joined = await api.post(
        "/api/join_lobby/",
        {"lobby_id": created["lobby_id"], "guest_name": "bystander"},
    )
    bots = [
        Bot(s["name"], s["token"], s["ws_url"], autoplay=False)
        for s in (created, joined)
    ]
    for bot in bots:
        await bot.connect()
    await bots[1].ready()
    await bots[0].wait_until(lambda: everyone_ready(bots[0].lobby, 2), TIMEOUT)
    return created["lobby_id"], bots


async def test_a_game_whose_tick_raises_ends_alone(tmp_path: Path) -> None:
    server = start_module("tests.reliability.fault_server", tmp_path, tls=False)
    try:
        boom_id, healthy_id = await play_both(server)
    finally:
        code = server.stop()
    assert code == 0

    # Exactly one report of our own bug, with its cause, and nothing else.
    errors = server.errors()
    assert len(errors) == 2, errors
    assert f"game {boom_id} failed at tick {FAULT_AFTER_TICKS}" in errors[0]
    assert errors[1].startswith("Traceback")
    assert "RuntimeError: injected fault" in server.log

    (boom,) = rows(server.db_path, "SELECT * FROM games WHERE id = ?", boom_id)
    assert boom["status"] == "error"
    assert boom["winner_seat"] is None and boom["ended_at"] is not None
    (round_row,) = rows(
        server.db_path, "SELECT * FROM rounds WHERE game_id = ?", boom_id
    )
    assert round_row["status"] == "interrupted"
    (healthy,) = rows(server.db_path, "SELECT * FROM games WHERE id = ?", healthy_id)
    assert healthy["status"] == "finished" and healthy["winner_seat"] is not None
    assert_database_sound(server.db_path)


async def play_both(server: ServerProcess) -> tuple[str, str]:
    api = Api(server.base_url)
    arrivals: list[float] = []

    def clock_snapshots(bot: Bot, kind: int, message: list[Any]) -> None:
        if kind == protocol.SNAPSHOT:
            arrivals.append(time.monotonic())

    # Bots that let every ball pass: three points take about six seconds,
    # which outlasts the failing game and the measuring window after it.
    healthy = asyncio.create_task(
        run_lobby_game(api, 2, 3, skill=0.0, seed=1, listener=clock_snapshots)
    )
    await eventually(lambda: len(arrivals) >= 10, "the healthy game's snapshots")

    lobby_id, bots = await boom_lobby(api)
    try:
        await bots[0].start()
        ends = await asyncio.gather(*(b.finished(TIMEOUT) for b in bots))
    finally:
        await asyncio.gather(*(b.close() for b in bots))
    failed_at = time.monotonic()
    boom_id = ends[0]["game_id"]
    for bot, end in zip(bots, ends, strict=True):
        # It was in full play when it failed, then ended the documented way.
        assert bot.snapshots_by_round[0] >= FAULT_AFTER_TICKS - 5
        assert [e["code"] for e in bot.errors] == ["game_error"]
        assert end == {
            "game_id": boom_id,
            "status": "error",
            "winner": None,
            "saved": True,
        }
        assert bot.close_code == protocol.CLOSE_INTERNAL

    # The healthy game kept its clock through the failure and after it.
    await asyncio.sleep(WINDOW)
    assert not healthy.done(), "the healthy game ended before it was measured"
    seen = [t for t in arrivals if failed_at <= t < failed_at + WINDOW]
    assert len(seen) / WINDOW >= MIN_RATE

    run = await asyncio.wait_for(healthy, 4 * TIMEOUT)
    assert run.result["status"] == "finished" and run.result["saved"] is True
    assert run.game_id != boom_id

    # Over HTTP: the failed game reads as an error, its lobby as closed, and
    # a late HELLO with one of its tokens is told how it ended.
    status, view = get(server.base_url, f"/api/game/{boom_id}/")
    assert status == 200 and view["status"] == "error" and view["winner"] is None
    status, lobby = get(server.base_url, f"/api/lobby/{lobby_id}/")
    assert status == 200 and lobby["status"] == "closed"
    late = Bot(TRIGGER_NAME, bots[0].token, bots[0].ws_url, autoplay=False)
    with pytest.raises(BotError):  # no WELCOME: the seat's game is over
        await late.connect()
    await late.close()
    assert late.result is not None and late.result["status"] == "error"
    assert late.close_code == protocol.CLOSE_GAME_OVER
    health = get(server.base_url, "/api/health/")[1]
    assert health["status"] == "ok" and health["running_games"] == 0
    return boom_id, run.game_id
