"""Players who drop mid-game: pause, come back, or forfeit after the grace."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bench.bot import Api, Bot, BotError
from server import protocol
from tests.conftest import ServerProcess
from tests.helpers import (
    aget,
    close_all,
    collect_snapshots,
    connect_db,
    paddle_path,
    refused_hello,
    seated_bots,
    until_starting,
    writes_held,
)

WAIT = 10.0
GRACE = 2.0
RESUME = 3.0  # seconds of the countdown after BACK


@pytest.fixture(scope="module")
def graceful(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from tests.conftest import start_server

    running = start_server(
        tmp_path_factory.mktemp("reconnect"),
        tls=False,
        extra=("--reconnect-grace", str(GRACE)),
    )
    yield running
    running.stop()


class Heard:
    """Every AWAY and BACK a bot receives."""

    def __init__(self) -> None:
        self.messages: list[tuple[int, dict[str, Any]]] = []

    def __call__(self, bot: Bot, kind: int, message: list[Any]) -> None:
        if kind in (protocol.AWAY, protocol.BACK):
            self.messages.append((kind, message[1]))


def drop(bot: Bot) -> None:
    """Cut the connection with no close frame, as a lost network would."""
    assert bot._ws is not None
    bot._ws.transport.abort()


def ball(bot: Bot) -> tuple[float, float]:
    assert bot.snapshot is not None
    return bot.snapshot.ball_x, bot.snapshot.ball_y


@pytest.fixture
async def game(graceful: ServerProcess) -> AsyncIterator[tuple[str, list[Bot], Heard]]:
    api = Api(graceful.base_url)
    lobby_id, bots = await seated_bots(api)
    heard = Heard()
    bots[0].listener = heard
    await bots[0].start()
    for bot in bots:
        await bot.wait_until(lambda b=bot: b.snapshot is not None, WAIT)
    # Past the first serve, so the ball is moving.
    await bots[0].wait_until(lambda: bots[0].snapshot.serve_wait == 0, WAIT)
    yield lobby_id, bots, heard
    await close_all(bots)


async def test_a_dropped_player_pauses_the_game_and_comes_back(
    graceful: ServerProcess, game: tuple[str, list[Bot], Heard]
) -> None:
    _, (host, guest), heard = game
    drop(guest)
    await host.wait_until(lambda: heard.messages, WAIT)
    kind, away = heard.messages[0]
    assert kind == protocol.AWAY and away["seat"] == 1 and away["grace"] == GRACE

    # Paused: the ball stands still while the guest is away.
    await asyncio.sleep(0.1)
    frozen = ball(host)
    await asyncio.sleep(0.3)
    assert ball(host) == frozen

    back = Bot(guest.name, guest.token, guest.ws_url)
    try:
        await back.connect()
        await back.wait_until(lambda: back.seats == [1], WAIT)
        await host.wait_until(lambda: len(heard.messages) == 2, WAIT)
        kind, message = heard.messages[1]
        assert kind == protocol.BACK and message["seat"] == 1
        assert message["resume_in"] == 3 * 60  # a three-second countdown at 60 Hz

        # The countdown holds the ball still, then play resumes where it was.
        await asyncio.sleep(0.5)
        assert ball(host) == frozen
        await asyncio.sleep(3.0)
        assert ball(host) != frozen
    finally:
        await back.close()


async def test_staying_away_past_the_grace_forfeits(
    graceful: ServerProcess, game: tuple[str, list[Bot], Heard]
) -> None:
    _, (host, guest), _ = game
    drop(guest)
    result = await host.finished(GRACE + WAIT)

    assert result["status"] == "finished" and result["winner"] == 0
    assert result["rounds"][0]["forfeit"] is True
    _, view = await aget(graceful.base_url, f"/api/game/{result['game_id']}/")
    assert view["rounds"][0]["status"] == "forfeit"
    assert view["winner"] == host.name
    with connect_db(graceful.db_path) as db:
        row = db.execute(
            "SELECT status, winner_seat FROM rounds WHERE game_id = ?",
            (result["game_id"],),
        ).fetchone()
    assert tuple(row) == ("forfeit", 0)

    # Too late: the token now gets the final result, not a seat.
    late = await refused_hello(guest.token, guest.ws_url)
    assert late.close_code == protocol.CLOSE_GAME_OVER
    assert late.result == result


async def test_a_forfeit_in_a_game_that_goes_on_refuses_the_late_token(
    graceful: ServerProcess,
) -> None:
    api = Api(graceful.base_url)
    _, bots = await seated_bots(api, players=3)
    try:
        await bots[0].start()
        await bots[0].wait_until(lambda: bots[0].game is not None, WAIT)
        schedule = bots[0].game["rounds"]
        # Drop a player of the first round; the game goes on without them.
        leaver = bots[schedule[0][0]]
        drop(leaver)
        watcher = next(b for b in bots if b is not leaver)
        heard: list[tuple[int, float]] = []  # ROUND_START and ROUND_END, when

        def on_round(bot: Bot, kind: int, message: list[Any]) -> None:
            if kind in (protocol.ROUND_START, protocol.ROUND_END):
                heard.append((kind, time.monotonic()))

        watcher.listener = on_round
        await watcher.wait_until(
            lambda: any(r.get("forfeit") for r in watcher.rounds), GRACE + WAIT
        )
        ended = heard[-1][1]
        # The next round the others play starts after the usual break (2 s),
        # with no resume countdown for the round that the forfeit ended.
        await watcher.wait_until(lambda: heard[-1][0] == protocol.ROUND_START, WAIT)
        assert heard[-1][1] - ended < 2.0 + 0.7
        late = Bot(leaver.name, leaver.token, leaver.ws_url)
        with pytest.raises(BotError):
            await late.connect()
        assert await late.wait_closed(WAIT) == protocol.CLOSE_FORFEITED
        assert [e["code"] for e in late.errors] == ["seat_forfeited"]
        statuses = {p["name"]: p["status"] for p in watcher.lobby["players"]}
        assert statuses[leaver.name] == "forfeited"
    finally:
        await close_all(bots)


async def test_a_local_game_waits_for_its_socket_then_is_interrupted(
    graceful: ServerProcess,
) -> None:
    api = Api(graceful.base_url)
    started = await api.post(
        "/api/start_game/", {"player-1": "a", "player-2": "b", "points_to_win": 99}
    )
    bot = Bot("local", started["token"], started["ws_url"], autoplay=False)
    await bot.connect()
    await bot.wait_until(lambda: bot.snapshot is not None, WAIT)
    drop(bot)

    async def status() -> str:
        _, view = await aget(graceful.base_url, f"/api/game/{started['game_id']}/")
        return str(view["status"])

    await asyncio.sleep(GRACE / 2)
    assert await status() == "running"  # still within the grace
    async with asyncio.timeout(GRACE + WAIT):
        while await status() != "interrupted":
            await asyncio.sleep(0.1)


# Sockets lost while the game is being stored ---------------------------------


def statuses(bot: Bot) -> dict[str, str]:
    """Each member's status in the latest LOBBY ``bot`` has, by name."""
    assert bot.lobby is not None
    return {p["name"]: p["status"] for p in bot.lobby["players"]}


async def start_without(
    server: ServerProcess, lobby_id: str, bots: list[Bot], lost: Bot
) -> None:
    """The host starts the game; ``lost`` closes its socket while the game is
    being stored, and is away from its start. Returns once the others know."""
    watcher = next(b for b in bots if b is not lost)
    with writes_held(server.db_path):
        await bots[0].start()
        await until_starting(server.base_url, lobby_id)
        await lost.close()
        await watcher.wait_until(lambda: statuses(watcher)[lost.name] == "joined", WAIT)
    await watcher.wait_until(lambda: statuses(watcher)[lost.name] == "away", WAIT)


async def test_a_socket_lost_while_the_game_starts_is_away_then_forfeits(
    graceful: ServerProcess,
) -> None:
    api = Api(graceful.base_url)
    lobby_id, bots = await seated_bots(api)
    host, guest = bots
    heard: list[int] = []  # the kind of every message the host gets
    host.listener = lambda bot, kind, message: heard.append(kind)
    try:
        with writes_held(graceful.db_path):
            await host.start()
            await until_starting(graceful.base_url, lobby_id)
            # No way out of a game being started but to be lost from it.
            await guest.send(protocol.LEAVE)
            await guest.wait_until(lambda: bool(guest.errors), WAIT)
            assert [e["code"] for e in guest.errors] == ["lobby_started"]
            await guest.close()
            await host.wait_until(lambda: statuses(host)[guest.name] == "joined", WAIT)

        # The game starts with the guest away, so it waits for the guest...
        await host.wait_until(lambda: host.game is not None, WAIT)
        await host.wait_until(lambda: statuses(host)[guest.name] == "away", WAIT)
        since_start = heard[heard.index(protocol.GAME_START) :]
        told = [k for k in since_start if k in (protocol.AWAY, protocol.LOBBY)]
        assert told[:2] == [protocol.AWAY, protocol.LOBBY]
        await asyncio.sleep(0.3)
        rules = host.game["rules"]
        assert host.snapshot is not None  # still before the first tick:
        assert host.snapshot.serve_wait == rules["serve_delay"] * rules["tick_rate"]

        # ... and once the grace is over, the guest has forfeited.
        result = await host.finished(GRACE + WAIT)
        assert result["status"] == "finished" and result["winner"] == 0
        assert result["rounds"][0]["forfeit"] is True
    finally:
        await close_all(bots)


async def test_a_move_sent_while_round_0_waits_holds_once_it_begins(
    graceful: ServerProcess,
) -> None:
    api = Api(graceful.base_url)
    lobby_id, bots = await seated_bots(api)
    host, guest = bots
    seen = collect_snapshots(host)
    back = Bot(guest.name, guest.token, guest.ws_url, autoplay=False)
    try:
        # The guest is away from the start: round 0 waits before its first tick.
        await start_without(graceful, lobby_id, bots, guest)
        assert host.game is not None
        rules = host.game["rules"]
        middle = rules["field_height"] / 2
        serve_wait = rules["serve_delay"] * rules["tick_rate"]

        # The host's move is acked, but nothing moves while the round waits.
        await host.send(protocol.INPUT, 1, -1.0)
        await host.wait_until(lambda: bool(seen) and seen[-1].left_ack == 1, WAIT)
        await back.connect()
        resumed = RESUME + WAIT
        await host.wait_until(
            lambda: sum(s.serve_wait < serve_wait for s in seen) >= 40, resumed
        )
        waiting = [s for s in seen if s.serve_wait == serve_wait]
        assert {(s.left_y, s.right_y) for s in waiting} == {(middle, middle)}

        # Round 0's first tick applies it, and it holds from there.
        played = [s for s in seen if s.serve_wait < serve_wait][:40]
        assert [s.left_y for s in played] == paddle_path(rules, -1.0, 40)
        assert {s.right_y for s in played} == {middle}
    finally:
        await back.close()
        await close_all(bots)


async def test_a_forfeit_before_round_0_begins_ends_it_then_the_break(
    graceful: ServerProcess,
) -> None:
    api = Api(graceful.base_url)
    lobby_id, bots = await seated_bots(api, 4)
    host, watcher = bots[0], bots[3]
    heard: list[tuple[int, Any]] = []  # SNAPSHOT (its tick), ROUND_END, ROUND_START
    watcher.listener = lambda bot, kind, message: heard.append((kind, message[1]))
    try:
        # The host, seat 0, plays round 0 against seat 3, but is away from
        # the start: round 0 waits before its first tick until the grace ends.
        await start_without(graceful, lobby_id, bots, host)
        assert watcher.game is not None
        assert watcher.game["rounds"][:2] == [[0, 3], [2, 1]]
        rules = watcher.game["rules"]
        tick_rate = rules["tick_rate"]
        await watcher.wait_until(
            lambda: watcher.round is not None, GRACE + rules["round_break"] + WAIT
        )
    finally:
        await close_all(bots)

    kinds = [kind for kind, _ in heard]
    ended = kinds.index(protocol.ROUND_END)
    started = kinds.index(protocol.ROUND_START)
    assert heard[ended][1] == {
        "round": 0,
        "left": 0,
        "right": 3,
        "score": [0, 0],
        "winner": 3,
        "forfeit": True,
    }
    assert heard[started][1]["round"] == 1

    # Round 0 ends at the grace, with no countdown first...
    ticks = [tick for kind, tick in heard[:ended] if kind == protocol.SNAPSHOT]
    waited = ticks[-1] - ticks[0]
    assert GRACE * tick_rate - 5 <= waited <= (GRACE + 0.5) * tick_rate
    # ... and the whole break follows before round 1.
    in_break = kinds[ended:started].count(protocol.SNAPSHOT)
    assert in_break == rules["round_break"] * tick_rate


async def test_a_forfeit_in_the_break_lets_the_break_go_on_at_once(
    graceful: ServerProcess,
) -> None:
    api = Api(graceful.base_url)
    _, bots = await seated_bots(api, 3, points=1)
    watcher, leaver = bots[0], bots[1]
    heard: list[tuple[int, Any]] = []  # SNAPSHOT (its tick), AWAY, ROUND_START...
    watcher.listener = lambda bot, kind, message: heard.append((kind, message[1]))
    try:
        await watcher.start()
        await watcher.wait_until(lambda: watcher.round is not None, WAIT)
        assert watcher.game is not None
        assert watcher.game["rounds"] == [[2, 1], [2, 0], [0, 1]]
        rules = watcher.game["rules"]
        tick_rate = rules["tick_rate"]
        # Paddles away from the middle, for a point (and the round) soon.
        await bots[2].send(protocol.INPUT, 1, 1.0)
        await leaver.send(protocol.INPUT, 1, -1.0)
        await leaver.wait_until(lambda: bool(leaver.rounds), 30.0)
        # Seat 1 drops in the break after its round, which waits for it.
        drop(leaver)
        await watcher.wait_until(
            lambda: watcher.round is not None and watcher.round["round"] == 1,
            GRACE + rules["round_break"] + WAIT,
        )
    finally:
        await close_all(bots)

    kinds = [kind for kind, _ in heard]
    ended = kinds.index(protocol.ROUND_END)
    away = kinds.index(protocol.AWAY)
    started = kinds.index(protocol.ROUND_START, away)
    assert ended < away
    break_ticks = rules["round_break"] * tick_rate
    left = break_ticks - kinds[ended:away].count(protocol.SNAPSHOT)
    before = [tick for kind, tick in heard[:away] if kind == protocol.SNAPSHOT]
    after = [tick for kind, tick in heard[started:] if kind == protocol.SNAPSHOT]
    # The grace, then the rest of the break: no countdown in between.
    waited = after[0] - before[-1]
    assert GRACE * tick_rate + left <= waited <= (GRACE + 0.5) * tick_rate + left
