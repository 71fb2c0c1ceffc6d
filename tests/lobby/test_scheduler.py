"""The tick clock, on a real event loop with small stand-in rooms."""

from __future__ import annotations

import asyncio
import time

from server.lobby.scheduler import TickScheduler


class CountingRoom:
    """Implements what the scheduler uses of a room: tick() and finished."""

    def __init__(self, stall_at: int | None = None, fail_at: int | None = None):
        self.ticks: list[int] = []
        self.finished = False
        self.error: BaseException | None = None
        self.stall_at = stall_at
        self.fail_at = fail_at

    def tick(self, server_tick: int) -> None:
        self.ticks.append(server_tick)
        if server_tick == self.stall_at:
            time.sleep(0.5)  # blocks the loop, as a stalled process would
        if server_tick == self.fail_at:
            raise RuntimeError("bug in this game")


async def run_for(scheduler: TickScheduler, seconds: float) -> None:
    scheduler.start()
    try:
        await asyncio.sleep(seconds)
    finally:
        scheduler.stop()


async def test_tick_count_follows_wall_time() -> None:
    scheduler = TickScheduler(100, 5, lambda room, exc: None)
    room = CountingRoom()
    scheduler.add(room)  # type: ignore[arg-type]
    started = time.monotonic()
    await run_for(scheduler, 1.0)
    elapsed = time.monotonic() - started
    # Absolute deadlines: after ~1 s at 100 Hz the count is ~100, not less
    # because of accumulated per-wake-up lateness.
    assert abs(scheduler.tick - elapsed * 100) <= 3
    assert room.ticks == list(range(1, scheduler.tick + 1))
    assert scheduler.skipped == 0


async def test_stall_catches_up_a_bounded_number_then_skips() -> None:
    scheduler = TickScheduler(100, 5, lambda room, exc: None)
    room = CountingRoom(stall_at=10)
    scheduler.add(room)  # type: ignore[arg-type]
    await run_for(scheduler, 1.0)
    # The 0.5 s stall put ~50 ticks due at once: 5 are run, the rest skipped.
    assert 40 <= scheduler.skipped <= 50
    gaps = [b - a for a, b in zip(room.ticks, room.ticks[1:], strict=False)]
    assert max(gaps) == scheduler.skipped + 1
    assert sorted(set(gaps)) == [1, scheduler.skipped + 1]
    # Ticks stay tied to wall time: the count is where the clock is.
    assert scheduler.tick >= 95


async def test_a_failing_room_is_dropped_and_the_others_tick_on() -> None:
    failures: list[tuple[object, BaseException]] = []
    scheduler = TickScheduler(100, 5, lambda room, exc: failures.append((room, exc)))
    bad, good = CountingRoom(fail_at=5), CountingRoom()
    scheduler.add(bad)  # type: ignore[arg-type]
    scheduler.add(good)  # type: ignore[arg-type]
    await run_for(scheduler, 0.3)
    assert len(failures) == 1 and failures[0][0] is bad
    assert isinstance(failures[0][1], RuntimeError)
    assert bad.finished and bad.ticks == [1, 2, 3, 4, 5]
    assert good.ticks == list(range(1, scheduler.tick + 1))
    assert scheduler.tick > 20
    assert bad not in scheduler.rooms


async def test_finished_rooms_leave_the_rotation() -> None:
    scheduler = TickScheduler(100, 5, lambda room, exc: None)
    room = CountingRoom()
    scheduler.add(room)  # type: ignore[arg-type]
    scheduler.start()
    await asyncio.sleep(0.1)
    room.finished = True
    scheduler.discard_finished()
    seen = len(room.ticks)
    await asyncio.sleep(0.1)
    scheduler.stop()
    assert len(room.ticks) == seen
    assert scheduler.rooms == []
