"""A lobby member that stops reading while the others keep the lobby busy.

protocol.md ("Limits", "Close codes") promises that a socket whose send
buffer stays over 256 KiB for ``--slow-reader-timeout`` seconds is closed
with 4009, which bounds what the server holds for a client that stops
reading. Here seven members of an eight-seat lobby toggle READY within their
message allowance, and every toggle sends a LOBBY message (about 1 KiB with
eight long names) to every member, among them one that said HELLO and has
not read since, through a 4 KiB receive buffer. That is about 0.7 MiB a
second toward the stalled member: the kernel's send buffer for its socket
(up to tcp_wmem's maximum, 4 MiB on a stock Linux) fills in about five
seconds, then the server's own.

Expected, within a budget worked out from those two numbers: the stalled
socket is closed or dropped (its seat shows no socket), and the server's
memory grows by no more than a few times the 256 KiB bound.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import msgpack

from bench.bot import Api, Bot
from server import protocol
from tests.conftest import ServerProcess
from tests.helpers import TIMEOUT, close_all, get
from tests.reliability.support import client_frame, raw_websocket, rss_bytes

SEATS = 8
NAME = 29  # characters, the longest a name may be: a bigger LOBBY message
SLOW_READER_TIMEOUT = 1.0  # seconds, as given to the server
CLOSE_WAIT = 3.0  # seconds the server waits for a close frame before dropping
RSS_BOUND = 4 * 2**20  # bytes: the 256 KiB bound, a second's worth more, slack
TOGGLES_PER_SECOND = 120  # per member; the allowance is 150


async def toggle(bot: Bot, stop: asyncio.Event) -> None:
    """READY on, off, on... at a steady rate inside the message allowance."""
    ready, burst = True, TOGGLES_PER_SECOND // 20
    while not stop.is_set():
        for _ in range(burst):
            await bot.ready(ready)
            ready = not ready
        await asyncio.sleep(0.05)


def kernel_send_buffer() -> int:
    """The most Linux buffers for one socket's unsent bytes: tcp_wmem's maximum."""
    try:
        return int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])
    except (OSError, ValueError, IndexError):
        return 4 * 2**20  # the stock value


def connected(bot: Bot) -> int:
    """Members with a socket, as the latest LOBBY the bot heard shows them."""
    lobby = bot.lobby or {"players": []}
    return sum(p["status"] != "joined" for p in lobby["players"])


async def test_a_member_that_stops_reading_is_cut_off(
    server_factory: Callable[..., ServerProcess],
) -> None:
    server = server_factory(
        tls=False, extra=("--slow-reader-timeout", str(SLOW_READER_TIMEOUT))
    )
    api = Api(server.base_url)
    created = await api.post(
        "/api/create_lobby/", {"host": "h" * NAME, "max_players": SEATS}
    )
    lobby_id = created["lobby_id"]
    seats = [created] + [
        await api.post(
            "/api/join_lobby/", {"lobby_id": lobby_id, "guest_name": f"{n}" * NAME}
        )
        for n in range(1, SEATS)
    ]
    stalled_seat = seats[-1]
    bots = [Bot(s["name"], s["token"], s["ws_url"], autoplay=False) for s in seats[:-1]]
    stalled = await asyncio.to_thread(raw_websocket, server.base_url, 4096)
    stop = asyncio.Event()
    try:
        for bot in bots:
            await bot.connect()
        hello = client_frame(msgpack.packb([protocol.HELLO, stalled_seat["token"]]))
        stalled.sendall(hello)
        await bots[0].wait_until(lambda: connected(bots[0]) == SEATS, TIMEOUT)

        # Time to fill the kernel's buffer and then ours (half as long again
        # for slack), the timeout, the wait for a close frame that never
        # comes, and two seconds for the server to let go of the socket.
        lobby_bytes = len(msgpack.packb([protocol.LOBBY, bots[0].lobby]))
        per_second = len(bots) * TOGGLES_PER_SECOND * lobby_bytes
        fill = (kernel_send_buffer() + 256 * 1024) / per_second
        budget = 1.5 * fill + SLOW_READER_TIMEOUT + CLOSE_WAIT + 2.0

        baseline = peak = rss_bytes(server.process.pid)
        togglers = [asyncio.create_task(toggle(bot, stop)) for bot in bots]
        began = time.monotonic()
        cut_off = False
        while time.monotonic() - began < budget and not cut_off:
            await asyncio.sleep(0.5)
            peak = max(peak, rss_bytes(server.process.pid))
            view = get(server.base_url, f"/api/lobby/{lobby_id}/")[1]
            cut_off = view["players"][-1]["status"] == "joined"
        stop.set()
        await asyncio.gather(*togglers)
    finally:
        stop.set()
        stalled.close()
        await close_all(bots)

    grew = peak - baseline
    assert cut_off, (
        f"still connected after {budget:.0f} s; RSS grew {grew / 2**20:.1f} MiB"
    )
    assert grew < RSS_BOUND, f"RSS grew {grew / 2**20:.1f} MiB"
    assert server.stop() == 0
    assert server.errors() == []
