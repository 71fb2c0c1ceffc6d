"""The WebSocket protocol against the real server: hello, refusals, closes, play.

Sockets here are ``bench.bot.Bot`` objects with autoplay off, so each test
sends exactly the frames it means to; ``Bot`` records everything the server
sends back. Games are started with 99 points to win so that they outlast any
test; the module's server interrupts them when it stops.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections.abc import AsyncIterator, Callable

import msgpack
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from bench.bot import Api, Bot, BotError, Snapshot
from server import protocol
from tests.conftest import ServerProcess
from tests.helpers import (
    close_all,
    collect_snapshots,
    insecure_context,
    paddle_path,
    seated_bots,
    writes_held,
)

WAIT = 5.0  # seconds for anything the server does at once or within a few ticks


@pytest.fixture
def api(server: ServerProcess) -> Api:
    return Api(server.base_url, insecure=True)


@pytest.fixture
async def member(api: Api) -> AsyncIterator[Bot]:
    """The connected host of a fresh lobby, alone in it."""
    _, (host,) = await seated_bots(api, 1, max_players=2)
    yield host
    await host.close()


async def still_open(bot: Bot) -> None:
    """PING answered: the socket is open and the server still reads it."""
    marker = time.monotonic()
    await bot.ping(marker)
    await bot.wait_until(lambda: any(p[0] == marker for p in bot.pongs), WAIT)
    assert not bot.closed


def codes(bot: Bot) -> list[str]:
    return [e["code"] for e in bot.errors]


async def started_game(api: Api, players: int = 2) -> list[Bot]:
    """Bots in a running game, each past its first snapshot."""
    _, bots = await seated_bots(api, players)
    await bots[0].start()
    for bot in bots:
        await bot.wait_until(
            lambda b=bot: b.round is not None and b.snapshot is not None, WAIT
        )
    return bots


# Hello ---------------------------------------------------------------------------


async def test_hello_with_unknown_token_closes_4002(server: ServerProcess) -> None:
    bot = Bot("x", "not-a-token", server.ws_url, ssl_context=insecure_context())
    with pytest.raises(BotError):
        await bot.connect()
    await bot.wait_closed(WAIT)
    assert bot.close_code == 4002
    assert codes(bot) == ["invalid_token"]
    assert bot.welcome is None


async def test_no_hello_closes_4001_after_the_hello_timeout(
    server_factory: Callable[..., ServerProcess],
) -> None:
    quick = server_factory(extra=("--hello-timeout", "1.5"))
    began = time.monotonic()
    async with connect(quick.ws_url, ssl=insecure_context()) as ws:
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 10)
        assert ws.close_code == 4001
    assert 1.4 < time.monotonic() - began < 5


async def test_messages_before_hello_are_refused(
    server: ServerProcess, api: Api
) -> None:
    created = await api.post("/api/create_lobby/", {"host": "h"})
    async with connect(server.ws_url, ssl=insecure_context()) as ws:
        await ws.send(msgpack.packb([protocol.PING, 1.0]))
        error = msgpack.unpackb(await asyncio.wait_for(ws.recv(), WAIT))
        assert error[0] == protocol.ERROR
        assert error[1]["code"] == "not_authenticated"
        await ws.send(msgpack.packb([protocol.HELLO, created["token"]]))
        welcome = msgpack.unpackb(await asyncio.wait_for(ws.recv(), WAIT))
        assert welcome[0] == protocol.WELCOME
        assert welcome[1]["lobby_id"] == created["lobby_id"]


async def test_second_hello_is_a_bad_frame(member: Bot) -> None:
    await member.send(protocol.HELLO, member.token)
    await still_open(member)
    assert codes(member) == ["bad_frame"]


async def test_same_token_replaces_the_first_socket(api: Api) -> None:
    _, (host, guest) = await seated_bots(api, 2, ready=False)
    second = Bot("again", guest.token, guest.ws_url, ssl_context=api.ssl)
    try:
        await second.connect()
        assert await guest.wait_closed(WAIT) == 4004
        # The seat now answers to the new socket.
        await second.ready()
        await host.wait_until(
            lambda: host.lobby["players"][1]["status"] == "ready", WAIT
        )
        await still_open(second)
    finally:
        await close_all([host, guest, second])


# Frames the server refuses ----------------------------------------------------------


async def test_text_frame_closes_1003(member: Bot) -> None:
    await member.send_raw("[6, 1.0]")
    assert await member.wait_closed(WAIT) == 1003


async def test_message_over_4_kib_closes_1009(member: Bot) -> None:
    await member.send_raw(b"\x00" * (4 * 1024 + 1))
    assert await member.wait_closed(WAIT) == 1009


BAD_FRAMES = [
    ("not_msgpack", b"\xc1", "bad_frame"),
    ("truncated", b"\x93\x04\x01", "bad_frame"),
    ("two_messages", msgpack.packb([6, 1.0]) * 2, "bad_frame"),
    ("map", msgpack.packb({"type": 6}), "bad_frame"),
    ("empty_array", msgpack.packb([]), "bad_frame"),
    ("type_as_string", msgpack.packb(["6", 1.0]), "bad_frame"),
    ("unknown_type", msgpack.packb([99]), "unknown_type"),
    ("server_type", msgpack.packb([protocol.PONG, 1.0, 1]), "unknown_type"),
    ("ready_as_string", msgpack.packb([2, "yes"]), "bad_frame"),
    ("ready_as_int", msgpack.packb([2, 1]), "bad_frame"),
    ("start_with_field", msgpack.packb([3, 1]), "bad_frame"),
    ("input_seq_float", msgpack.packb([4, 1.5, 0.5]), "bad_frame"),
    ("input_seq_negative", msgpack.packb([4, -1, 0.5]), "bad_frame"),
    ("input_seq_over_uint32", msgpack.packb([4, 2**32, 0.5]), "bad_frame"),
    ("input_move_nan", msgpack.packb([4, 1, math.nan]), "bad_frame"),
    ("input_move_infinite", msgpack.packb([4, 1, -math.inf]), "bad_frame"),
    ("input_move_over_1", msgpack.packb([4, 1, 1.01]), "bad_frame"),
    ("input_move_under_minus_1", msgpack.packb([4, 1, -2]), "bad_frame"),
    ("input_move_string", msgpack.packb([4, 1, "up"]), "bad_frame"),
    ("input_move_bool", msgpack.packb([4, 1, True]), "bad_frame"),
    ("input_five_fields", msgpack.packb([4, 1, 0.5, 0, 0]), "bad_frame"),
    ("input_seat_64", msgpack.packb([4, 1, 0.5, 64]), "bad_frame"),
    ("ping_nan", msgpack.packb([6, math.nan]), "bad_frame"),
    ("string_over_256", msgpack.packb([6, "x" * 257]), "bad_frame"),
    ("binary_value", msgpack.packb([6, b"\x00\x01"]), "bad_frame"),
    ("array_over_8", msgpack.packb([6, *range(8)]), "bad_frame"),
]


@pytest.mark.parametrize(
    ("frame", "code"),
    [case[1:] for case in BAD_FRAMES],
    ids=[case[0] for case in BAD_FRAMES],
)
async def test_bad_frame_gets_error_and_socket_stays_open(
    member: Bot, frame: bytes, code: str
) -> None:
    await member.send_raw(frame)
    await member.wait_until(lambda: bool(member.errors), WAIT)
    await still_open(member)
    assert codes(member) == [code]
    assert set(member.errors[0]) == {"code", "message"}


async def test_the_eleventh_bad_frame_closes_4003(member: Bot) -> None:
    for n in range(1, 11):
        await member.send_raw(b"\xc1")
        await member.wait_until(lambda n=n: len(member.errors) == n, WAIT)
    await still_open(member)
    await member.send_raw(b"\xc1")
    assert await member.wait_closed(WAIT) == 4003
    assert codes(member) == ["bad_frame"] * 11


async def test_input_before_a_game_is_not_in_game_and_not_counted(
    member: Bot,
) -> None:
    # Refusals for timing do not count toward the limit of ten.
    for seq in range(1, 13):
        await member.send(protocol.INPUT, seq, 0.5)
    await member.wait_until(lambda: len(member.errors) == 12, WAIT)
    await still_open(member)
    assert set(codes(member)) == {"not_in_game"}


# Lobby updates -------------------------------------------------------------------


async def test_lobby_updates_reach_the_other_member_live(api: Api) -> None:
    created = await api.post("/api/create_lobby/", {"host": "host", "max_players": 2})
    host = Bot("host", created["token"], created["ws_url"], ssl_context=api.ssl)
    guest: Bot | None = None

    def guest_status() -> str | None:
        players = host.lobby["players"] if host.lobby else []
        return players[1]["status"] if len(players) > 1 else None

    try:
        await host.connect()
        await host.wait_until(lambda: host.lobby is not None, WAIT)
        assert [p["status"] for p in host.lobby["players"]] == ["connected"]

        joined = await api.post(
            "/api/join_lobby/",
            {"lobby_id": created["lobby_id"], "guest_name": "guest"},
        )
        await host.wait_until(lambda: guest_status() == "joined", WAIT)
        guest = Bot("guest", joined["token"], joined["ws_url"], ssl_context=api.ssl)
        await guest.connect()
        await host.wait_until(lambda: guest_status() == "connected", WAIT)
        await guest.ready()
        await host.wait_until(lambda: guest_status() == "ready", WAIT)
        await guest.ready(False)
        await host.wait_until(lambda: guest_status() == "connected", WAIT)
        await guest.ready()
        await host.wait_until(lambda: guest_status() == "ready", WAIT)
        await guest.close()
        # A closed socket clears READY: the host may not start without it.
        await host.wait_until(lambda: guest_status() == "joined", WAIT)
        await host.start()
        await host.wait_until(lambda: bool(host.errors), WAIT)
        assert codes(host) == ["not_ready"]
        assert host.game is None
    finally:
        await close_all([b for b in (host, guest) if b is not None])


async def test_leave_closes_4005_and_voids_the_token(api: Api) -> None:
    _, (host, guest) = await seated_bots(api, 2, ready=False)
    try:
        await guest.send(protocol.LEAVE)
        assert await guest.wait_closed(WAIT) == 4005
        await host.wait_until(lambda: len(host.lobby["players"]) == 1, WAIT)
        again = Bot("again", guest.token, guest.ws_url, ssl_context=api.ssl)
        with pytest.raises(BotError):
            await again.connect()
        assert again.close_code == 4002
    finally:
        await close_all([host, guest])


# Playing -------------------------------------------------------------------------


def my_paddle(bot: Bot, snap: Snapshot) -> float:
    assert bot.round is not None
    return snap.left_y if bot.round["left"] in bot.seats else snap.right_y


def other_paddle(bot: Bot, snap: Snapshot) -> float:
    assert bot.round is not None
    return snap.right_y if bot.round["left"] in bot.seats else snap.left_y


def my_ack(bot: Bot, snap: Snapshot) -> int:
    assert bot.round is not None
    return snap.left_ack if bot.round["left"] in bot.seats else snap.right_ack


async def test_a_socket_moves_only_its_own_paddle(api: Api) -> None:
    bots = await started_game(api)
    host, guest = bots
    try:
        assert (host.seats, guest.seats) == ([0], [1])
        middle = host.game["rules"]["field_height"] / 2
        seen = collect_snapshots(host)

        await host.send(protocol.INPUT, 1, 1.0, 1)
        await guest.send(protocol.INPUT, 1, -1.0, 0)
        await host.wait_until(lambda: len(seen) >= 10, WAIT)
        assert codes(host) == ["forbidden"]
        assert codes(guest) == ["forbidden"]
        assert {(s.left_y, s.right_y) for s in seen} == {(middle, middle)}

        # Naming its own seat is allowed and moves its own paddle only.
        await host.send(protocol.INPUT, 2, 1.0, 0)
        await host.wait_until(lambda: my_paddle(host, seen[-1]) > middle + 20, WAIT)
        assert other_paddle(host, seen[-1]) == middle
        await still_open(host)
        await still_open(guest)
    finally:
        await close_all(bots)


async def test_snapshots_tick_forward_and_ack_the_last_input(api: Api) -> None:
    bots = await started_game(api)
    host = bots[0]
    try:
        seen = collect_snapshots(host)
        for seq in (5, 6, 7):
            await host.send(protocol.INPUT, seq, 0.5)
            await host.wait_until(
                lambda s=seq: bool(seen) and my_ack(host, seen[-1]) == s, WAIT
            )
        moving_at = my_paddle(host, seen[-1])

        # A stale sequence number is ignored: no ack, no change of direction.
        await host.send(protocol.INPUT, 6, -1.0)
        mark = len(seen)
        await host.wait_until(lambda: len(seen) >= mark + 5, WAIT)
        assert {my_ack(host, s) for s in seen[mark:]} == {7}
        assert my_paddle(host, seen[-1]) > moving_at
        assert not host.errors

        ticks = [s.tick for s in seen]
        assert ticks == sorted(set(ticks))
        assert all(s.round == 0 for s in seen)
        acks = [my_ack(host, s) for s in seen]
        assert acks == sorted(acks)
    finally:
        await close_all(bots)


async def test_a_flood_of_inputs_moves_one_step_per_tick(api: Api) -> None:
    bots = await started_game(api)
    host = bots[0]
    try:
        rules = host.game["rules"]
        step = rules["paddle_speed"] / rules["tick_rate"]
        seen = collect_snapshots(host)
        for seq in range(1, 51):
            await host.send(protocol.INPUT, seq, 1.0)
        await host.wait_until(lambda: bool(seen) and my_ack(host, seen[-1]) == 50, WAIT)
        mark = len(seen)
        await host.wait_until(lambda: len(seen) >= mark + 15, WAIT)

        moves = [
            (my_paddle(host, b) - my_paddle(host, a), b.tick - a.tick)
            for a, b in itertools.pairwise(seen)
        ]
        # float32 positions: allow for their rounding, not for a second step.
        assert all(dy <= step * ticks + 1e-3 for dy, ticks in moves)
        assert any(abs(dy - step) < 1e-3 for dy, ticks in moves if ticks == 1)
        assert not host.errors
    finally:
        await close_all(bots)


# Moves sent before a round's first tick -------------------------------------

SLOW_TICK_RATE = 10  # GAME_START comes up to a tenth of a second before tick 1


async def move_at_game_start(api: Api) -> tuple[Bot, list[Snapshot]]:
    """A game whose host sends a move once GAME_START is in; the host, closed
    after 8 snapshots, and those snapshots."""
    _, bots = await seated_bots(api)
    host = bots[0]  # on the left in round 0
    seen = collect_snapshots(host)
    try:
        await host.start()
        await host.wait_until(lambda: host.game is not None, WAIT)
        await host.send(protocol.INPUT, 1, -1.0)
        await host.wait_until(lambda: len(seen) >= 8, WAIT)
    finally:
        await close_all(bots)
    return host, seen[:8]


async def test_a_move_sent_before_round_0_begins_holds(
    server_factory: Callable[..., ServerProcess],
) -> None:
    slow = server_factory(tls=False, extra=("--tick-rate", str(SLOW_TICK_RATE)))
    api = Api(slow.base_url)
    for _ in range(5):
        host, seen = await move_at_game_start(api)
        if seen[0].left_ack == 1:
            break  # the move came before round 0's first tick, as meant here
    else:
        pytest.fail("five times, the first tick came before the move did")

    # The first tick applies it, and it holds until the paddle meets the top.
    assert host.game is not None
    assert [s.left_y for s in seen] == paddle_path(host.game["rules"], -1.0, 8)
    assert {s.left_ack for s in seen} == {1}
    assert not host.errors


async def test_a_move_sent_in_the_break_holds_in_the_next_round(api: Api) -> None:
    _, bots = await seated_bots(api, 3, points=1)
    try:
        await bots[0].start()
        await bots[0].wait_until(lambda: bots[0].round is not None, WAIT)
        assert bots[0].game is not None
        rules = bots[0].game["rules"]
        # Seat 2 plays round 0 against seat 1, then round 1 on the left again.
        assert bots[0].game["rounds"][:2] == [[2, 1], [2, 0]]
        both, once = bots[2], bots[1]
        # Paddles away from the middle, for a point (and the round) soon.
        await both.send(protocol.INPUT, 1, 1.0)
        await once.send(protocol.INPUT, 1, -1.0)
        await both.wait_until(lambda: bool(both.rounds), 30.0)

        seen = collect_snapshots(both)
        await both.send(protocol.INPUT, 2, -1.0)  # in the break
        await both.wait_until(
            lambda: sum(s.round == 1 for s in seen) >= 40, rules["round_break"] + WAIT
        )
        assert not both.errors
        in_break = [s for s in seen if s.round == 0]
        assert in_break and in_break[-1].left_ack == 2

        # Round 1 starts with the move held: the paddle goes all the way up.
        round_1 = [s for s in seen if s.round == 1][:40]
        assert [s.left_y for s in round_1] == paddle_path(rules, -1.0, 40)
        assert {s.left_ack for s in round_1} == {2}
    finally:
        await close_all(bots)


async def test_an_input_after_the_last_point_is_ignored_quietly(
    server: ServerProcess, api: Api
) -> None:
    """Inputs in flight when the game ends get no ERROR: none could be avoided."""
    _, bots = await seated_bots(api, 2, points=1)
    try:
        await bots[0].start()
        host = bots[0]
        await host.wait_until(
            lambda: bool(host.snapshot and host.snapshot.ball_vx), WAIT
        )
        snap = bots[0].snapshot
        assert snap is not None
        # Both paddles away from where the ball goes: a point within a second.
        away = -1.0 if snap.ball_vy > 0 else 1.0
        for bot in bots:
            await bot.send(protocol.INPUT, 1, away)
        # Storing the game's end waits while another process holds the
        # write lock, so the game stays finished and unannounced meanwhile.
        with writes_held(server.db_path):
            await bots[0].wait_until(lambda: bool(bots[0].rounds), WAIT)
            for bot in bots:
                await bot.send(protocol.INPUT, 2, 0.0)
            await still_open(bots[0])
            assert bots[0].result is None  # GAME_END waits for the write
        for bot in bots:
            result = await bot.finished(WAIT)
            assert result["status"] == "finished" and result["saved"]
            assert bot.errors == []
    finally:
        await close_all(bots)


async def test_a_spectator_may_not_send_input(api: Api) -> None:
    bots = await started_game(api, 3)
    try:
        pair = (bots[0].round["left"], bots[0].round["right"])
        (watcher,) = [b for b in bots if b.seats[0] not in pair]
        watched = watcher.snapshots_by_round[0]
        await watcher.send(protocol.INPUT, 1, 1.0)
        await watcher.wait_until(lambda: bool(watcher.errors), WAIT)
        assert codes(watcher) == ["not_in_game"]
        await watcher.wait_until(
            lambda: watcher.snapshots_by_round[0] > watched + 5, WAIT
        )
        assert watcher.lobby is not None
        statuses = {p["seat"]: p["status"] for p in watcher.lobby["players"]}
        assert statuses[watcher.seats[0]] == "spectating"
        assert {statuses[s] for s in pair} == {"playing"}
    finally:
        await close_all(bots)


async def test_local_socket_rules(server: ServerProcess, api: Api) -> None:
    started = await api.post(
        "/api/start_game/", {"player-1": "a", "player-2": "b", "points_to_win": 99}
    )
    bot = Bot("local", started["token"], started["ws_url"], ssl_context=api.ssl)
    bot.autoplay = False
    try:
        await bot.connect()
        await bot.wait_until(lambda: bot.snapshot is not None, WAIT)
        assert bot.seats == [0, 1]
        await bot.send(protocol.INPUT, 1, 1.0)  # no seat named
        await bot.send(protocol.INPUT, 2, 1.0, 2)  # no such seat
        await bot.ready()
        await bot.start()
        await bot.wait_until(lambda: len(bot.errors) == 4, WAIT)
        assert sorted(codes(bot)) == sorted(
            ["invalid_field", "invalid_field", "forbidden", "forbidden"]
        )
        await still_open(bot)
    finally:
        await bot.close()
