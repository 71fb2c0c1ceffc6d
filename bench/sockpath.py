"""The server's per-player Python work, without the kernel.

``python -m bench.sockpath [--rooms 450] [--ticks 600]``

Builds the real objects of a server with two-player games in play (the
lobby service on a SQLite file in a temporary folder, one
``WebSocketSession`` per player, handshake and HELLO included) on stand-in
transports that only count what is written. Then, as the load test's
workload does per tick, it feeds every socket one masked INPUT frame
through ``data_received`` and runs one pass of ``Room.tick`` over every
room. The figures are the Python side of one player's tick, split into the
input and the snapshot halves: what ``bench.floor`` leaves out, and what
code changes can move.
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import msgpack
import uvloop

from server import protocol
from server.config import Config
from server.lobby.service import LobbyService
from server.net.api import Router
from server.net.context import Context, Metrics
from server.net.ws import WebSocketSession
from server.store import Store, open_sqlite_store

REPEATS = 5


class CountingTransport:
    """Stands in for uvloop's TCP transport: takes writes, sends nothing."""

    def __init__(self) -> None:
        self.writes = 0

    def write(self, data: bytes) -> None:
        self.writes += 1

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


def client_frame(payload: bytes) -> bytes:
    """A masked binary frame as a client sends it (RFC 6455, 5.2)."""
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes((0x82, 0x80 | len(payload))) + mask + masked


def handshake() -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        "GET /ws/ HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
        f"Sec-WebSocket-Key: {key}\r\n\r\n"
    ).encode()


async def build(
    rooms: int, folder: Path
) -> tuple[Context, list[WebSocketSession], Store]:
    config = Config(data_dir=folder, tls=False, points_to_win=99, port=1)
    store = await open_sqlite_store(config.database)
    service = LobbyService(config, store)
    context = Context(config, service, None, Metrics(), None)  # type: ignore[arg-type]
    context.router = Router(context)
    await service.open()
    service.scheduler.stop()  # the benchmark runs the ticks itself

    sessions: list[WebSocketSession] = []
    for _ in range(rooms):
        host = await service.create_lobby("host", None, 2)
        guest = await service.join_lobby(host["lobby_id"], "guest")
        pair = []
        for answer in (host, guest):
            session = WebSocketSession(
                CountingTransport(),  # type: ignore[arg-type]
                context,
                "127.0.0.1:1",
            )
            assert session.start(handshake()) is None
            # The loop below sends far faster than real time: lift the
            # flood limit, which would otherwise close every socket.
            session._rate = session._allowance = float("inf")
            hello = msgpack.packb([protocol.HELLO, answer["token"]])
            session.data_received(client_frame(hello))
            pair.append(session)
        pair[1].data_received(client_frame(msgpack.packb([protocol.READY, True])))
        await service.start_remote(host["token"], host["lobby_id"])
        sessions += pair
    return context, sessions, store


def measure(context: Context, sessions: list[WebSocketSession], ticks: int) -> None:
    scheduler = context.service.scheduler
    rooms = scheduler.rooms
    # One INPUT per player per tick, seq rising; move as float64, as bots send.
    frames = [
        [client_frame(msgpack.packb([protocol.INPUT, seq, 0.5])) for seq in (a, b)]
        for a, b in ((1 + 2 * t, 2 + 2 * t) for t in range(ticks))
    ]

    def inputs() -> float:
        start = time.perf_counter()
        for tick_frames in frames:
            frame = tick_frames[0]
            for session in sessions:
                session.data_received(frame)
        return (time.perf_counter() - start) / (ticks * len(sessions))

    def snapshots() -> float:
        start = time.perf_counter()
        for _ in range(ticks):
            scheduler.tick += 1
            tick = scheduler.tick
            for room in rooms:
                room.tick(tick)
        return (time.perf_counter() - start) / (ticks * len(sessions))

    best_in = best_out = float("inf")
    for _ in range(REPEATS):
        # Sequence numbers must rise from one repeat to the next.
        for room in rooms:
            room.seqs[:] = [0] * len(room.seqs)
        best_in = min(best_in, inputs())
        best_out = min(best_out, snapshots())
    print(f"{len(rooms)} rooms, {len(sessions)} sockets, best of {REPEATS}:")
    print(f"  INPUT in, per player        {best_in * 1e6:6.2f} us")
    print(f"  Room.tick out, per player   {best_out * 1e6:6.2f} us")
    print(f"  both, per player and tick   {(best_in + best_out) * 1e6:6.2f} us")


async def run(rooms: int, ticks: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        context, sessions, store = await build(rooms, Path(folder))
        try:
            measure(context, sessions, ticks)
        finally:
            await context.service.close()
            await store.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.sockpath", description=__doc__)
    p.add_argument("--rooms", type=int, default=450)
    p.add_argument("--ticks", type=int, default=300)
    a = p.parse_args(argv)
    uvloop.run(run(a.rooms, a.ticks))
    print(f"(Python {sys.version.split()[0]})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
