"""Dead peers are found by pings; floods are cut off; others play on."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Callable

import msgpack
from websockets.asyncio.client import connect

from bench.bot import Api
from server import protocol
from tests.conftest import ServerProcess
from tests.helpers import close_all, seated_bots
from tests.reliability.support import raw_websocket, read_frames

WAIT = 10.0


def test_a_silent_peer_is_pinged_then_closed_4008(
    server_factory: Callable[..., ServerProcess],
) -> None:
    server = server_factory(
        tls=False,
        extra=("--ping-after", "1", "--ping-timeout", "1", "--hello-timeout", "60"),
    )
    began = time.monotonic()
    with raw_websocket(server.base_url) as sock:
        frames = read_frames(sock, 8)
    took = time.monotonic() - began
    opcodes = [op for op, _ in frames]
    assert opcodes[0] == 0x9  # a ping, which this peer never answers
    assert opcodes[-1] == 0x8  # then a close frame
    close_code = int.from_bytes(frames[-1][1][:2], "big")
    assert close_code == protocol.CLOSE_PING_TIMEOUT
    assert 2 <= took < 6


async def test_a_silent_peer_that_answers_pings_stays(
    server_factory: Callable[..., ServerProcess],
) -> None:
    server = server_factory(
        tls=False, extra=("--ping-after", "0.5", "--ping-timeout", "0.5")
    )
    api = Api(server.base_url)
    created = await api.post("/api/create_lobby/", {"host": "quiet"})
    async with connect(server.ws_url) as ws:  # answers pings by itself
        await ws.send(msgpack.packb([protocol.HELLO, created["token"]]))
        await asyncio.sleep(3)  # six ping periods of silence from our side
        await ws.send(msgpack.packb([protocol.PING, 1.0]))
        while True:
            message = msgpack.unpackb(await asyncio.wait_for(ws.recv(), WAIT))
            if message[0] == protocol.PONG:
                break


async def test_a_flood_is_closed_4010_and_other_games_keep_their_rate(
    plain_server: ServerProcess,
) -> None:
    api = Api(plain_server.base_url)
    _, flooders = await seated_bots(api)
    _, players = await seated_bots(api)
    try:
        for bots in (flooders, players):
            await bots[0].start()
        watcher = players[1]
        seen = lambda: sum(watcher.snapshots_by_round.values())  # noqa: E731
        await watcher.wait_until(lambda: seen() > 0, WAIT)

        before = seen()
        began = time.monotonic()
        flooder = flooders[1]
        for seq in range(1, 5001):
            frame = msgpack.packb([protocol.INPUT, seq, 0.5])
            try:
                await flooder.send_raw(frame)
            except Exception:
                break
        code = await flooder.wait_closed(WAIT)
        assert code == protocol.CLOSE_FLOOD

        await asyncio.sleep(1.0)
        rate = (seen() - before) / (time.monotonic() - began)
        assert rate > 50  # at 60 Hz, the other game did not slow down
    finally:
        await close_all(flooders + players)


def test_a_ping_flood_before_hello_is_closed_4010(
    plain_server: ServerProcess,
) -> None:
    # Masked pings with a 125-byte payload, the largest a control frame holds.
    ping = bytes((0x89, 0x80 | 125)) + b"\x00" * 4 + b"p" * 125
    received = bytearray()
    sent = 0

    def read_all(sock: socket.socket) -> None:
        with contextlib.suppress(OSError):  # the server drops a flooder
            while chunk := sock.recv(65536):
                received.extend(chunk)

    with raw_websocket(plain_server.base_url) as sock:
        reader = threading.Thread(target=read_all, args=(sock,))
        reader.start()
        with contextlib.suppress(OSError):
            for _ in range(400):
                sock.sendall(ping * 25)
                sent += 25
        reader.join(10)
    opcodes, codes = parse_frames(bytes(received))
    assert codes == [protocol.CLOSE_FLOOD]
    # Reading stopped at the close: most of the flood was never answered.
    assert opcodes.count(0xA) < sent / 2


def test_pings_past_the_allowance_in_one_read_are_not_answered(
    plain_server: ServerProcess,
) -> None:
    # 2,000 empty masked pings in one write, 12 KB: one read or a few. The
    # allowance is twice the per-second rate, 300 messages at 60 Hz.
    ping = bytes((0x89, 0x80)) + b"\x00" * 4
    with raw_websocket(plain_server.base_url) as sock:
        sock.sendall(ping * 2000)
        received = bytearray()
        with contextlib.suppress(OSError):  # the server drops a flooder
            while chunk := sock.recv(65536):
                received.extend(chunk)
    opcodes, codes = parse_frames(bytes(received))
    assert codes == [protocol.CLOSE_FLOOD]
    assert opcodes.count(0xA) <= 300


def parse_frames(data: bytes) -> tuple[list[int], list[int]]:
    """The opcode of each short server frame, and the code of each close."""
    opcodes, codes = [], []
    while len(data) >= 2:
        length = data[1] & 0x7F
        opcodes.append(data[0] & 0x0F)
        if data[0] & 0x0F == 0x8:
            codes.append(int.from_bytes(data[2:4], "big"))
        data = data[2 + length :]
    return opcodes, codes
