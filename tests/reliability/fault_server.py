"""The real server with planted faults, for the tests that need one.

``python -m tests.reliability.fault_server`` takes the server's own flags and
runs ``server.__main__.main`` unchanged, except for these, each chosen by a
player's name so a test picks the game or lobby it breaks through the public
API alone; every other game and lobby runs the real code:

- a game with a player named ``boom`` raises RuntimeError from its tick once
  its simulation has stepped ``FAULT_AFTER_TICKS`` times;
- storing a new game with a player named ``unsaved`` fails, and storing the
  LEAVE of a member named ``stuck`` fails: each write waits
  ``STORE_FAULT_DELAY`` seconds first, so a test can act while it is in
  flight, then raises ``StoreError`` as a broken disk would make the real
  store do, having written nothing.

The tick fault is planted in ``Room.tick`` because that is the call the tick
scheduler guards: whatever inside a tick goes wrong (the simulation, the
codec, a broadcast), the scheduler sees it as this one exception, so this
exercises the same path a real bug would take. The store faults are planted
in the store, the boundary the lobby service sees failures through.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from server.__main__ import main
from server.lobby.room import Room
from server.store import GameRecord, PlayerRecord, StoreError
from server.store.sqlite import SqliteStore

TRIGGER_NAME = "boom"
# Half a second at 60 ticks per second: long enough that the game's first
# snapshots reach its players, so the failure hits a game in full play.
FAULT_AFTER_TICKS = 30
UNSAVED_NAME = "unsaved"  # a game with this player cannot be stored
STUCK_NAME = "stuck"  # this member's LEAVE cannot be stored
STORE_FAULT_DELAY = 1.0  # seconds a failing write takes before it fails

_real_tick = Room.tick
_real_create_game = SqliteStore.create_game
_real_remove_member = SqliteStore.remove_member


def _tick_with_fault(room: Room, server_tick: int) -> None:
    if TRIGGER_NAME in room.names and room.game.tick >= FAULT_AFTER_TICKS:
        raise RuntimeError("injected fault")
    _real_tick(room, server_tick)


async def _create_game_with_fault(
    store: SqliteStore, game: GameRecord, new_players: Sequence[PlayerRecord]
) -> None:
    if any(p.name == UNSAVED_NAME for p in game.players):
        await asyncio.sleep(STORE_FAULT_DELAY)
        raise StoreError(f"create game {game.id} failed: injected fault")
    await _real_create_game(store, game, new_players)


async def _remove_member_with_fault(
    store: SqliteStore, lobby_id: str, player_id: str, at: float
) -> None:
    lobby = await store.get_lobby(lobby_id)
    members = lobby.members if lobby is not None else ()
    if any(m.player_id == player_id and m.name == STUCK_NAME for m in members):
        await asyncio.sleep(STORE_FAULT_DELAY)
        raise StoreError(f"remove {player_id} from {lobby_id}: injected fault")
    await _real_remove_member(store, lobby_id, player_id, at)


if __name__ == "__main__":
    # Patched here rather than at import, so importing this module changes
    # nothing for anyone else.
    Room.tick = _tick_with_fault
    SqliteStore.create_game = _create_game_with_fault
    SqliteStore.remove_member = _remove_member_with_fault
    main()
