"""Sockets past HELLO are read by the tick: play, drops, closes, floods, shutdown.

Once a plain-TCP socket's HELLO is accepted, ``server.net.reader`` takes it
over from the event loop and the tick scheduler reads it at each wake-up,
just before the due ticks run. These tests check from outside, over real
loopback sockets, that a socket read that way still does everything a socket
does, and that the reader lets go of it whenever the event loop must see it
again: on a drop, after a close handshake and at shutdown.

TLS sockets are never taken over, so every server here runs with
--plain-http. The clock runs at 10 ticks a second: slow enough that the wait
for the next tick, up to 100 ms, is plain to see against loopback's round
trip, and fast enough that nothing here waits long.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import struct
import time
from collections.abc import Callable, Iterator
from typing import Any

import msgpack
import pytest

from bench.bot import Api, Bot
from server import protocol
from server.net.reader import READ_LIMIT
from tests.conftest import ServerProcess, start_server
from tests.helpers import aget, close_all, post, seated_bots
from tests.net.test_reconnect import Heard, drop
from tests.net.test_websocket import (
    collect_snapshots,
    my_ack,
    my_paddle,
    started_game,
    still_open,
)
from tests.reliability.support import client_frame, raw_websocket, read_frames

TICK_RATE = 10
PERIOD = 1 / TICK_RATE
CLOCK = ("--tick-rate", str(TICK_RATE))
WAIT = 5.0  # seconds for anything the server does within a few ticks


@pytest.fixture(scope="module")
def slow_clock(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    running = start_server(
        tmp_path_factory.mktemp("tick-reader"), tls=False, extra=CLOCK
    )
    yield running
    assert running.stop() == 0
    assert running.errors() == [], "the server logged errors of its own"


@pytest.fixture
def api(slow_clock: ServerProcess) -> Api:
    return Api(slow_clock.base_url)


async def open_sockets(base_url: str) -> int:
    _, health = await aget(base_url, "/api/health/")
    return int(health["sockets"])


def clean_end(bot: Bot) -> bool:
    """Whether TCP ended with the server's FIN, not a reset.

    A server that exits with a peer's close frame still unread in its socket
    buffer resets the connection instead: the sign that it never read it.
    """
    assert bot._ws is not None
    return bot._ws.connection_exc is None


# Playing ------------------------------------------------------------------------


async def test_inputs_move_the_paddle_and_are_acked(api: Api) -> None:
    bots = await started_game(api)
    host = bots[0]
    try:
        assert host.game is not None
        middle = host.game["rules"]["field_height"] / 2
        seen = collect_snapshots(host)
        await host.wait_until(lambda: bool(seen), WAIT)
        assert my_ack(host, seen[-1]) == 0

        await host.send(protocol.INPUT, 1, 1.0)
        await host.wait_until(lambda: my_ack(host, seen[-1]) == 1, WAIT)
        await host.wait_until(lambda: my_paddle(host, seen[-1]) > middle + 50, WAIT)
        low = my_paddle(host, seen[-1])

        await host.send(protocol.INPUT, 2, -1.0)
        await host.wait_until(lambda: my_ack(host, seen[-1]) == 2, WAIT)
        await host.wait_until(lambda: my_paddle(host, seen[-1]) < low - 50, WAIT)
        acks = [my_ack(host, s) for s in seen]
        assert acks == sorted(acks) and acks[-1] == 2
        assert not host.errors
        await still_open(host)
    finally:
        await close_all(bots)


async def test_a_ping_is_answered_just_before_the_next_tick(api: Api) -> None:
    bots = await started_game(api)
    host = bots[0]
    heard: list[tuple[int, int, float]] = []  # (type, server tick, arrival)

    def listen(bot: Bot, kind: int, message: list[Any]) -> None:
        if kind == protocol.SNAPSHOT:
            heard.append((kind, message[1], time.monotonic()))
        elif kind == protocol.PONG:
            heard.append((kind, message[2], time.monotonic()))

    host.listener = listen
    try:
        for n in range(5):
            await host.wait_until(lambda: bool(heard), WAIT)
            # Half a period after a snapshot: half a period before the next.
            await asyncio.sleep(PERIOD / 2)
            mark = len(heard)
            await host.ping(float(n))

            def pong_then_snapshot(mark: int = mark) -> bool:
                kinds = [kind for kind, _, _ in heard[mark:]]
                return protocol.PONG in kinds[:-1]

            await host.wait_until(pong_then_snapshot, WAIT)
            at = next(
                i for i in range(mark, len(heard)) if heard[i][0] == protocol.PONG
            )
            _, pong_tick, pong_at = heard[at]
            kind, snapshot_tick, snapshot_at = heard[at + 1]
            before = [h for h in heard[:at] if h[0] == protocol.SNAPSHOT]

            # Handled in the wake-up of the next tick: sent with its snapshot,
            # after the tick the previous snapshot showed.
            assert kind == protocol.SNAPSHOT
            assert pong_tick == before[-1][1]
            assert snapshot_tick == pong_tick + 1
            assert snapshot_at - pong_at < PERIOD / 5
        assert [p[0] for p in host.pongs] == [0.0, 1.0, 2.0, 3.0, 4.0]
    finally:
        await close_all(bots)


# Leaving ------------------------------------------------------------------------


def half_close(bot: Bot) -> None:
    """Send FIN and nothing else: the peer reads end of stream."""
    assert bot._ws is not None
    bot._ws.transport.get_extra_info("socket").shutdown(socket.SHUT_WR)


def reset(bot: Bot) -> None:
    """Abort with a zero linger, so the peer gets a reset and a read error."""
    assert bot._ws is not None
    sock = bot._ws.transport.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    drop(bot)


@pytest.mark.parametrize("cut", [reset, half_close, drop], ids=lambda f: f.__name__)
async def test_a_dropped_socket_is_noticed_and_the_game_ticks_on(
    api: Api, cut: Callable[[Bot], None]
) -> None:
    bots = await started_game(api)
    host, guest = bots
    heard = Heard()
    host.listener = heard
    try:
        ticks_before = host.snapshots_by_round[0]
        began = time.monotonic()
        cut(guest)
        await host.wait_until(lambda: bool(heard.messages), WAIT)
        assert time.monotonic() - began < 2.0
        kind, away = heard.messages[0]
        assert kind == protocol.AWAY and away["seat"] == guest.seats[0]

        # Paused for the away player, but the clock ticks on for the host.
        await host.wait_until(
            lambda: host.snapshots_by_round[0] >= ticks_before + 5, WAIT
        )
        await still_open(host)
        # The server closed its side too, not only noticed the end of ours.
        await guest.wait_closed(WAIT)
    finally:
        await close_all(bots)


@pytest.mark.parametrize("cut", [reset, half_close], ids=lambda f: f.__name__)
async def test_a_dropped_lobby_member_is_noticed(
    api: Api, cut: Callable[[Bot], None]
) -> None:
    # No game, so nothing is written to the socket that could fail: only
    # the reader handing the socket back lets the server see the end.
    _, bots = await seated_bots(api, 2)
    host, guest = bots
    try:
        assert host.lobby is not None
        assert host.lobby["players"][1]["status"] == "ready"
        cut(guest)
        await host.wait_until(
            lambda: (
                host.lobby is not None
                and host.lobby["players"][1]["status"] == "joined"
            ),
            2.0,
        )
        await still_open(host)
    finally:
        await close_all(bots)


async def test_a_close_frame_is_answered_and_the_socket_freed(
    slow_clock: ServerProcess, api: Api
) -> None:
    bots = await started_game(api)
    host, guest = bots
    heard = Heard()
    host.listener = heard
    try:
        # The sockets of earlier tests are gone: only these two are open.
        deadline = time.monotonic() + WAIT
        while await open_sockets(slow_clock.base_url) != 2:
            assert time.monotonic() < deadline, "sockets of earlier tests stay open"
            await asyncio.sleep(0.05)

        began = time.monotonic()
        await guest.close()
        # The server read our close frame at its next tick and answered it;
        # unanswered, the client would wait 10 s and report 1006.
        assert time.monotonic() - began < 1.0
        assert guest.close_code == protocol.CLOSE_NORMAL
        assert clean_end(guest)

        await host.wait_until(lambda: bool(heard.messages), WAIT)
        assert heard.messages[0][0] == protocol.AWAY
        while await open_sockets(slow_clock.base_url) != 1:
            assert time.monotonic() < deadline + WAIT, "the closed socket stays"
            await asyncio.sleep(0.05)
        await still_open(host)
    finally:
        await close_all(bots)


# Floods -------------------------------------------------------------------------


async def test_over_64_kib_at_once_closes_4010_and_others_keep_the_rate(
    api: Api,
) -> None:
    flooders = await started_game(api)
    players = await started_game(api)
    try:
        watcher = players[0]
        seen = collect_snapshots(watcher)
        frames = b"".join(
            client_frame(msgpack.packb([protocol.INPUT, seq, 0.5]))
            for seq in range(1, 4001)
        )
        # Messages are at most 4 KiB (close 1009), so a write this large is
        # many small messages: far more than the rate allowance lets in.
        assert len(frames) > READ_LIMIT
        flooder = flooders[1]
        assert flooder._ws is not None
        began = time.monotonic()
        flooder._ws.transport.write(frames)

        assert await flooder.wait_closed(WAIT) == protocol.CLOSE_FLOOD
        await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - began)))
        ticks = [s.tick for s in seen]
        assert ticks == list(range(ticks[0], ticks[0] + len(ticks)))
        rate = len(ticks) / (time.monotonic() - began)
        assert rate > 0.8 * TICK_RATE
        for bot in players:
            await still_open(bot)
    finally:
        await close_all(flooders + players)


# Shutdown -----------------------------------------------------------------------


async def test_shutdown_completes_the_close_handshake(
    server_factory: Callable[..., ServerProcess],
) -> None:
    server = server_factory(tls=False, extra=CLOCK)
    api = Api(server.base_url)
    players = await started_game(api)
    _, (waiting,) = await seated_bots(api, 1, max_players=2)
    bots = [*players, waiting]
    try:
        # Off the event loop: the bots must keep reading to answer the close.
        assert await asyncio.to_thread(server.stop) == 0
        for bot in bots:
            assert await bot.wait_closed(WAIT) == protocol.CLOSE_GOING_AWAY
            assert clean_end(bot), f"{bot.name}: our close frame was never read"
        assert all(p.result and p.result["status"] == "interrupted" for p in players)
        assert server.errors() == []
    finally:
        await close_all(bots)


def close_frame(code: int) -> bytes:
    """A masked close frame with ``code``, as a client answers a close."""
    frame = client_frame(struct.pack(">H", code))
    return b"\x88" + frame[1:]  # the same frame with the close opcode


def close_code(frames: list[tuple[int, bytes]]) -> int | None:
    """The code of the close frame among ``frames``, if there is one."""
    for opcode, payload in frames:
        if opcode == 0x8:
            return int(struct.unpack(">H", payload[:2])[0])
    return None


async def test_a_hello_behind_the_eleventh_bad_frame_is_not_acted_on(
    slow_clock: ServerProcess, api: Api
) -> None:
    _, bots = await seated_bots(api, 2, ready=False)
    guest = bots[1]
    try:
        sock = raw_websocket(slow_clock.base_url)
        with sock:
            # One write: the socket is closed at the eleventh, and the HELLO
            # parsed from the same read must not take the guest's seat.
            hello = client_frame(msgpack.packb([protocol.HELLO, guest.token]))
            sock.sendall(client_frame(b"\xc1") * 11 + hello)
            frames = await asyncio.to_thread(read_frames, sock, WAIT)
        assert close_code(frames) == protocol.CLOSE_PROTOCOL
        await asyncio.sleep(3 * PERIOD)
        await still_open(guest)
        warnings = [x for x in slow_clock.log if "too many bad frames" in x]
        assert len(warnings) == 1
    finally:
        await close_all(bots)


def test_shutdown_waits_for_a_late_close_answer(
    server_factory: Callable[..., ServerProcess],
) -> None:
    server = server_factory(tls=False, extra=CLOCK)
    sock = raw_websocket(server.base_url)
    with sock:
        server.process.send_signal(signal.SIGTERM)
        sock.settimeout(WAIT)
        head = sock.recv(2)  # the server's close frame, 1001
        assert head[0] == 0x88
        sock.recv(head[1] & 0x7F)
        time.sleep(1.0)
        # Our side has not answered yet: the server must still be waiting.
        sock.setblocking(False)
        with pytest.raises(BlockingIOError):
            sock.recv(1, socket.MSG_PEEK)
        sock.settimeout(WAIT)
        sock.sendall(close_frame(protocol.CLOSE_GOING_AWAY))
        assert sock.recv(1) == b""  # then it ends TCP
    assert server.stop() == 0
    assert server.errors() == []


def test_a_close_answer_behind_a_message_in_one_read_is_heard(
    server_factory: Callable[..., ServerProcess],
) -> None:
    """After our close, a message and the close answer read together: the
    answer must end the connection at once, not after the close timeout."""
    server = server_factory(tls=False, extra=CLOCK)
    created = post(server.base_url, "/api/create_lobby/", {"host": "h"})[1]
    sock = raw_websocket(server.base_url)
    with sock:
        sock.sendall(client_frame(msgpack.packb([protocol.HELLO, created["token"]])))
        time.sleep(3 * PERIOD)  # past HELLO: the tick reads it now
        sock.sendall(client_frame(b"\xc1") * 11)  # closed 4003 at the 11th
        received = b""
        sock.settimeout(WAIT)
        while b"\x88" not in received:
            received += sock.recv(65536)
        ping = client_frame(msgpack.packb([protocol.PING, 1.0]))
        sock.sendall(ping + close_frame(protocol.CLOSE_PROTOCOL))  # one write
        answered = time.monotonic()
        while sock.recv(65536):
            pass
        assert time.monotonic() - answered < 1.0  # the close timeout is 3 s
    assert server.stop() == 0
    assert server.errors() == []
