"""The floor under the load test: the workload's I/O with no server behind it.

``python -m bench.floor [--clients 900] [--seconds 10]``

A uvloop process pinned to core 0 accepts N loopback TCP connections and,
60 times a second on absolute deadlines, writes one 47-byte message (a
framed SNAPSHOT's size) to every one of them; a forked process pinned to
core 1 answers each message it reads with one 20-byte message (a framed
INPUT's size), as the load test's bots do. The uvloop side reads those
answers through ``asyncio.Protocol.data_received`` and throws them away.

So the uvloop side does exactly the system calls and event-loop work the
game server does per player and tick (one ``send``, one ``recv``, its share
of ``epoll_wait``), and nothing else: no WebSocket, no msgpack, no game. Its
CPU use is the least any server built on uvloop and the kernel's TCP can
spend on this workload here; the report gives it per client and tick, and
the share of one core it comes to at each client count.

With ``--tick-reads`` the uvloop side reads as the server does since its
tick reader (``server.net.reader``): uvloop's reading paused, and at every
tick one ``epoll_wait`` and one ``read`` per ready socket before the writes.
The report splits the CPU of a tick into its reads and its writes (the
reads are 0 without ``--tick-reads``: they happen outside the tick then).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import select
import socket
import time

import uvloop

SNAPSHOT = b"\x82\x2d" + b"s" * 45  # 47 bytes, as a framed SNAPSHOT
INPUT = b"\x82\x8e" + b"\x00" * 4 + b"i" * 14  # 20 bytes, as a masked INPUT
RATE = 60


def answer(port: int, clients: int, seconds: float) -> None:
    """The players' side: one INPUT back for every SNAPSHOT read."""
    os.sched_setaffinity(0, {1})
    conns = [socket.create_connection(("127.0.0.1", port)) for _ in range(clients)]
    poller = select.epoll()
    by_fd = {}
    for conn in conns:
        conn.setblocking(False)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        poller.register(conn.fileno(), select.EPOLLIN)
        by_fd[conn.fileno()] = conn
    end = time.monotonic() + seconds + 5
    while time.monotonic() < end:
        for fd, _ in poller.poll(0.1):
            conn = by_fd[fd]
            with contextlib.suppress(BlockingIOError):
                if conn.recv(65536):
                    conn.send(INPUT)


class Sink(asyncio.Protocol):
    received = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        Sink.received += 1


async def serve(clients: int, seconds: float, tick_reads: bool) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    sinks: list[Sink] = []

    def made() -> Sink:
        sink = Sink()
        sinks.append(sink)
        return sink

    server = await loop.create_server(made, "127.0.0.1", 0, backlog=4096)
    port = server.sockets[0].getsockname()[1]
    child = os.fork()
    if child == 0:
        try:
            answer(port, clients, seconds)
        finally:
            os._exit(0)
    while len(sinks) < clients:
        await asyncio.sleep(0.05)
    await asyncio.sleep(1.0)

    poller = select.epoll()
    if tick_reads:
        for sink in sinks:
            transport = sink.transport
            transport.pause_reading()  # type: ignore[attr-defined]
            fd = transport.get_extra_info("socket").fileno()
            poller.register(fd, select.EPOLLIN)

    period = 1 / RATE
    done = loop.create_future()
    ticks = 0
    late: list[float] = []
    parts = [0.0, 0.0]  # CPU seconds in the tick: reading, writing
    t0 = time.monotonic()
    cpu0 = time.process_time()
    received0 = Sink.received

    def tick() -> None:
        nonlocal ticks
        now = time.monotonic()
        ticks += 1
        late.append(max(0.0, now - (t0 + ticks * period)))
        c0 = time.thread_time()
        if tick_reads:
            for fd, _ in poller.poll(0):
                if os.read(fd, 65536):
                    Sink.received += 1
        c1 = time.thread_time()
        for sink in sinks:
            sink.transport.write(SNAPSHOT)  # type: ignore[attr-defined]
        c2 = time.thread_time()
        parts[0] += c1 - c0
        parts[1] += c2 - c1
        if now - t0 >= seconds:
            done.set_result(None)
            return
        loop.call_at(loop.time() + (t0 + (ticks + 1) * period - time.monotonic()), tick)

    loop.call_later(period, tick)
    await done
    cpu = time.process_time() - cpu0
    wall = time.monotonic() - t0
    inputs = Sink.received - received0
    server.close()
    for sink in sinks:
        sink.transport.close()
    os.waitpid(child, 0)
    late.sort()
    return {
        "clients": clients,
        "cpu_share": cpu / wall,
        "us_per_client_tick": cpu / (ticks * clients) * 1e6,
        "reads_per_client_tick": inputs / (ticks * clients),
        "read_us": parts[0] / (ticks * clients) * 1e6,
        "write_us": parts[1] / (ticks * clients) * 1e6,
        "late_p99_ms": late[int(0.99 * (len(late) - 1))] * 1e3,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.floor", description=__doc__)
    p.add_argument("--clients", type=int, nargs="+", default=[300, 600, 900])
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument(
        "--tick-reads",
        action="store_true",
        help="read every socket once per tick, as the server does",
    )
    a = p.parse_args(argv)
    os.sched_setaffinity(0, {0})
    print("clients  core share  us/client/tick  reads/client/tick  late p99 ms")
    for clients in a.clients:
        r = uvloop.run(serve(clients, a.seconds, a.tick_reads))
        print(
            f"{r['clients']:7d}  {r['cpu_share']:10.0%}"
            f"  {r['us_per_client_tick']:14.2f}"
            f"  {r['reads_per_client_tick']:17.2f}  {r['late_p99_ms']:11.2f}"
            f"  read {r['read_us']:.2f} us  write {r['write_us']:.2f} us"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
