"""The real server with one planted bug, for ``test_fault_injection``.

``python -m tests.reliability.fault_server`` takes the server's own flags and
runs ``server.__main__.main`` unchanged, except for one thing: a game with a
player named ``boom`` raises RuntimeError from its tick once its simulation
has stepped ``FAULT_AFTER_TICKS`` times. Every other game runs the real code.

The fault is planted in ``Room.tick`` because that is the call the tick
scheduler guards: whatever inside a tick goes wrong (the simulation, the
codec, a broadcast), the scheduler sees it as this one exception, so this
exercises the same path a real bug would take. Matching on a player's name
lets the test choose which game fails through the public API alone.
"""

from __future__ import annotations

from server.__main__ import main
from server.lobby.room import Room

TRIGGER_NAME = "boom"
# Half a second at 60 ticks per second: long enough that the game's first
# snapshots reach its players, so the failure hits a game in full play.
FAULT_AFTER_TICKS = 30

_real_tick = Room.tick


def _tick_with_fault(room: Room, server_tick: int) -> None:
    if TRIGGER_NAME in room.names and room.game.tick >= FAULT_AFTER_TICKS:
        raise RuntimeError("injected fault")
    _real_tick(room, server_tick)


if __name__ == "__main__":
    # Patched here rather than at import, so importing this module changes
    # nothing for anyone else.
    Room.tick = _tick_with_fault
    main()
