"""A bounded soak: many games and a stream of short-lived lobbies, with memory.

Ten two-bot lobby games to 99 points play throughout, so none ends. Beside
them two loops make lobbies and tear them down again the whole time: create,
join, open both seats' sockets, LEAVE from both, which closes the lobby. An
eleventh game has a spectator that said HELLO and then never reads again,
on a socket with a tiny receive buffer.

The server's resident memory is sampled from /proc every few seconds. After
a warm-up (imports, first allocations, SQLite and allocator caches filling)
it may grow by at most RSS_BOUND. Why 8 MiB: the server holds two SQLite
connections whose page caches (2 MiB each by default) keep filling as the
churn grows the file by about 2 KiB a lobby, which accounts for up to 4 MiB
of honest growth; the rest is headroom for the allocator. What it catches:
every churn cycle opens two sockets, and a socket the server failed to let
go of costs about 10 KiB (measured), so leaking them would add tens of MiB
over the run. A leak of a few hundred bytes per lobby would hide inside the
cache growth, so the churn's own state is also checked directly: at the end
/api/health/ must count exactly the soak games' lobbies, games and sockets.

The non-reading spectator. At 60 snapshots a second (about 3 KB/s) the
slow-reader close (4009) cannot be reached in bounded time on loopback: the
kernel's send buffer for the socket grows to 4 MiB (tcp_wmem) before the
server's own 256 KiB bound even starts to fill, which takes over twenty
minutes. What does happen, and is checked, is that the server drops the
socket through its keepalive, since a client that never reads never answers
a ping (4008, with --ping-after and --ping-timeout shortened here), that the
game goes on at full rate for its two players meanwhile, and that memory
stays flat. ``test_slow_reader`` provokes the 4009 path itself.

SOAK_SECONDS sets the length (45 by default, as in CI).
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Callable
from typing import Any

import msgpack

from bench.bot import Api, Bot, GameRun, everyone_ready, run_lobby_game
from server import protocol
from tests.conftest import ServerProcess
from tests.helpers import TIMEOUT, get, wait_for
from tests.reliability.support import client_frame, raw_websocket, rss_bytes

SOAK_SECONDS = float(os.environ.get("SOAK_SECONDS", "45"))
WARM_UP = 10.0  # seconds before the baseline sample
SAMPLE_EVERY = 3.0  # seconds between two samples
RSS_BOUND = 8 * 2**20  # bytes of growth allowed after the warm-up; see above
GAMES = 10
CHURNERS = 2
MIN_RATE = 55.0  # snapshots per second each game averages, at a 60 Hz tick
KEEPALIVE = ("--ping-after", "3", "--ping-timeout", "3")


class SnapshotClock:
    """Counts the snapshots one socket of each game receives."""

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}

    def listener(self, game: int) -> Callable[[Bot, int, list[Any]], None]:
        self.counts[game] = 0

        def count(bot: Bot, kind: int, message: list[Any]) -> None:
            if kind == protocol.SNAPSHOT:
                self.counts[game] += 1

        return count


def counters(server: ServerProcess) -> dict[str, int]:
    health = get(server.base_url, "/api/health/")[1]
    return {k: health[k] for k in ("running_games", "open_lobbies", "sockets")}


async def churn_once(api: Api) -> None:
    """A lobby made, joined, connected and left by both: closed, forgotten."""
    created = await api.post("/api/create_lobby/", {"host": "c", "max_players": 2})
    body = {"lobby_id": created["lobby_id"], "guest_name": "g"}
    joined = await api.post("/api/join_lobby/", body)
    for seat in (joined, created):
        bot = Bot(seat["name"], seat["token"], seat["ws_url"], autoplay=False)
        try:
            await bot.connect()
            await bot.send(protocol.LEAVE)
            assert await bot.wait_closed(TIMEOUT) == protocol.CLOSE_LEFT
        finally:
            await bot.close()


async def churn(api: Api, stop: asyncio.Event, cycles: list[int]) -> None:
    while not stop.is_set():
        await churn_once(api)
        cycles.append(1)


async def stalled_spectator_game(
    api: Api, clock: SnapshotClock
) -> tuple[str, list[Bot], socket.socket]:
    """Three seats: two playing bots, and a host that never reads after HELLO.

    The host's seat is 0, which watches round 0 (seats 2 and 1 play it).
    """
    created = await api.post(
        "/api/create_lobby/",
        {"host": "stalled", "points_to_win": 99, "max_players": 3},
    )
    lobby_id = created["lobby_id"]
    seats = [
        await api.post(
            "/api/join_lobby/", {"lobby_id": lobby_id, "guest_name": f"player-{n}"}
        )
        for n in (1, 2)
    ]
    bots = [
        Bot(s["name"], s["token"], s["ws_url"], skill=1.0, listener=clock.listener(n))
        for n, s in zip((GAMES, GAMES + 1), seats, strict=True)
    ]
    for bot in bots:
        await bot.connect()
        await bot.ready()
    stalled = await asyncio.to_thread(raw_websocket, api.base_url, 4096)
    stalled.sendall(client_frame(msgpack.packb([protocol.HELLO, created["token"]])))
    await bots[0].wait_until(lambda: everyone_ready(bots[0].lobby, 3), TIMEOUT)
    await api.post("/api/start_game/", {"lobby_id": lobby_id}, token=created["token"])
    return lobby_id, bots, stalled


async def test_soak_memory_stays_flat(
    server_factory: Callable[..., ServerProcess],
) -> None:
    server = server_factory(tls=False, extra=KEEPALIVE)
    pid = server.process.pid
    api = Api(server.base_url)
    clock = SnapshotClock()
    games = [
        asyncio.create_task(
            run_lobby_game(api, 2, 99, skill=0.5, seed=n, listener=clock.listener(n))
        )
        for n in range(GAMES)
    ]
    lobby_id, players, stalled = await stalled_spectator_game(api, clock)
    stop, cycles = asyncio.Event(), []
    churners = [asyncio.create_task(churn(api, stop, cycles)) for _ in range(CHURNERS)]

    async with asyncio.timeout(TIMEOUT):
        while len(clock.counts) < GAMES + 2 or not all(clock.counts.values()):
            await asyncio.sleep(0.05)
    counted = dict(clock.counts)
    began = time.monotonic()
    samples: list[tuple[float, int]] = []
    try:
        while (now := time.monotonic() - began) < SOAK_SECONDS:
            samples.append((now, rss_bytes(pid)))
            for task in (*games, *churners):
                if task.done():  # a game ended early, or a churn cycle failed
                    task.result()
                    raise AssertionError(f"{task} ended during the soak")
            await asyncio.sleep(SAMPLE_EVERY)
        took = time.monotonic() - began
        rates = {n: (clock.counts[n] - counted[n]) / took for n in counted}
        stop.set()
        await asyncio.gather(*churners)

        # Only the soak's own games are left: the churn kept nothing, and
        # the stalled socket is gone. (The last churn socket may take a
        # moment to be let go after its close handshake.)
        expected = {
            "running_games": GAMES + 1,
            "open_lobbies": GAMES + 1,
            "sockets": 2 * GAMES + 2,
        }
        wait_for(lambda: counters(server) == expected, what=f"health at {expected}")
        view = get(server.base_url, f"/api/lobby/{lobby_id}/")[1]
        assert view["players"][0]["status"] in ("away", "forfeited")
        assert any("no sign of life; closing" in line for line in server.log)
    finally:
        stalled.close()
        stop.set()
        for bot in players:
            await bot.close()
        code = server.stop()
    ends: list[GameRun] = await asyncio.gather(*games)
    assert code == 0

    # Memory after the warm-up stayed within the bound.
    baseline = next(rss for t, rss in samples if t >= WARM_UP)
    peak = max(rss for t, rss in samples if t >= WARM_UP)
    grew = peak - baseline
    assert grew < RSS_BOUND, f"RSS grew {grew / 2**20:.1f} MiB after the warm-up"

    # Every game kept its rate, the churn kept going, nothing went wrong.
    slow = {n: round(rate, 1) for n, rate in rates.items() if rate < MIN_RATE}
    assert slow == {}, f"games below {MIN_RATE} snapshots a second"
    assert len(cycles) > 100
    assert [run.result["status"] for run in ends] == ["interrupted"] * GAMES
    assert server.errors() == []
