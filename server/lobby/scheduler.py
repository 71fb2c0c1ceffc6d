"""The one clock that ticks every running game.

Theory of operation. Tick ``n`` is due at ``t0 + n * period`` on the event
loop's monotonic clock; the deadlines are absolute, so the tick count never
drifts from wall time however late any single wake-up is. Each wake-up runs
every tick that has come due since the last one, ticking all rooms once per
tick, then arms a timer for the next deadline.

After a stall (a long garbage collection, a paused process, an overloaded
core) more than ``max_catchup`` ticks may be due. The scheduler runs the last
``max_catchup`` of them back to back and skips the older ones, counting them
in ``skipped``: the game then runs a little behind wall time instead of
fast-forwarding for a visible while. Clients see the skip as a gap in the
server tick numbers of the snapshots.

Time comes from ``time.monotonic`` rather than the loop's clock: uvloop keeps
its clock and timers in whole milliseconds, too coarse to measure lateness
against a 16.7 ms period. A timer that fires up to ``EARLY_SLACK`` before its
deadline (rounding) runs the tick then; an earlier one is re-armed.

Before the due ticks of a wake-up run, each of ``before_ticks`` is called
once: the network takes in there what clients sent since the last wake-up
(``server.net.reader``), so the ticks apply it.

A room whose tick raises is taken out of the rotation and handed to
``on_error``; the other rooms tick on in the same pass.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from .room import Room

logger = logging.getLogger(__name__)

EARLY_SLACK = 0.001  # seconds; uvloop rounds timers to the millisecond


class TickScheduler:
    def __init__(
        self,
        tick_rate: int,
        max_catchup: int,
        on_error: Callable[[Room, BaseException], None],
    ) -> None:
        self.period = 1.0 / tick_rate
        self.max_catchup = max_catchup
        self.on_error = on_error
        self.rooms: list[Room] = []
        self.tick = 0  # the last tick run
        self.skipped = 0  # ticks skipped after stalls, since start
        self.late_max = 0.0  # worst lateness of a wake-up, seconds
        self.observers: list[Callable[[float, float], None]] = []
        self.before_ticks: list[Callable[[], None]] = []
        self._t0 = 0.0
        self._dirty = False
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._t0 = time.monotonic()
        self._arm(self._t0 + self.period, self._t0)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def add(self, room: Room) -> None:
        self.rooms.append(room)

    def discard_finished(self) -> None:
        """Drop rooms marked finished; safe to call from inside a tick.

        Rooms are dropped at the end of the pass, never mid-iteration; a
        finished room is skipped for the rest of the pass it finished in.
        """
        self._dirty = True

    def _arm(self, deadline: float, now: float) -> None:
        assert self._loop is not None
        self._timer = self._loop.call_later(max(0.0, deadline - now), self._wake)

    def _wake(self) -> None:
        t0, period = self._t0, self.period
        woke = time.monotonic()
        due = int((woke - t0) / period)
        deadline = t0 + (self.tick + 1) * period  # of the first tick not run
        if due <= self.tick:
            if deadline - woke > EARLY_SLACK:
                self._arm(deadline, woke)
                return
            due = self.tick + 1
        lateness = max(0.0, woke - deadline)

        behind = due - self.tick
        if behind > self.max_catchup:
            skip = behind - self.max_catchup
            self.skipped += skip
            self.tick += skip
            logger.warning("tick stall: skipped %d ticks", skip)
        for take_in in self.before_ticks:
            take_in()
        while self.tick < due:
            self.tick += 1
            self._run_rooms(self.tick)

        now = time.monotonic()
        if lateness > self.late_max:
            self.late_max = lateness
        for observe in self.observers:
            observe(lateness, now - woke)
        self._arm(t0 + (due + 1) * period, now)

    def _run_rooms(self, tick: int) -> None:
        failed: list[tuple[Room, BaseException]] = []
        for room in self.rooms:
            if room.finished:
                continue
            try:
                room.tick(tick)
            except Exception as exc:
                room.finished = True
                room.error = exc
                failed.append((room, exc))  # handled after the pass
            if room.finished:
                self._dirty = True
        if self._dirty:
            self._dirty = False
            self.rooms = [r for r in self.rooms if not r.finished]
        for room, error in failed:
            self.on_error(room, error)
