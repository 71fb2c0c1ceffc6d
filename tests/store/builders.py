"""Record builders and file inspection for the store tests.

Tests read the database file with the plain ``sqlite3`` module to check what
did (or did not) reach the disk, instead of reaching into the store's private
connections.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from server.store import (
    GamePlayerRecord,
    GameRecord,
    LobbyRecord,
    MemberRecord,
    PlayerRecord,
    RoundRecord,
    SqliteStore,
)


@contextmanager
def raw(path: Path) -> Iterator[sqlite3.Connection]:
    """A plain connection to the file, for looking at what was written."""
    with closing(sqlite3.connect(path)) as conn:
        yield conn


def count(path: Path, table: str, where: str = "1", *params: object) -> int:
    with raw(path) as conn:
        row = conn.execute(
            f"SELECT COUNT(*) FROM {table} WHERE {where}", params
        ).fetchone()
    return int(row[0])


def player(player_id: str, kind: str = "guest") -> PlayerRecord:
    return PlayerRecord(
        id=player_id, kind=kind, display_name=player_id.title(), created_at=10.0
    )


def member(
    lobby_id: str,
    player_id: str,
    seat: int,
    name: str | None = None,
    token: bytes | None = None,
) -> MemberRecord:
    return MemberRecord(
        lobby_id=lobby_id,
        player_id=player_id,
        seat=seat,
        name=name or player_id,
        token_hash=token or f"{lobby_id}/{player_id}/{seat}".encode(),
        joined_at=20.0 + seat,
    )


def lobby(lobby_id: str, host_id: str, created_at: float = 20.0) -> LobbyRecord:
    return LobbyRecord(
        id=lobby_id,
        host_player_id=host_id,
        status="open",
        max_players=4,
        points_to_win=5,
        created_at=created_at,
    )


async def make_lobby(
    store: SqliteStore, lobby_id: str, host_id: str, created_at: float = 20.0
) -> LobbyRecord:
    record = lobby(lobby_id, host_id, created_at)
    await store.create_lobby(record, player(host_id), member(lobby_id, host_id, 0))
    return record


def game(
    game_id: str,
    player_ids: list[str],
    *,
    lobby_id: str | None = None,
    rounds: tuple[RoundRecord, ...] | None = None,
    winner_seat: int | None = None,
    token_hash: bytes | None = None,
) -> GameRecord:
    """A waiting game; by default every pair of seats meets once."""
    seats = range(len(player_ids))
    if rounds is None:
        pairs = [(a, b) for a in seats for b in seats if a < b]
        rounds = tuple(RoundRecord(i, a, b) for i, (a, b) in enumerate(pairs))
    return GameRecord(
        id=game_id,
        lobby_id=lobby_id,
        mode="remote" if lobby_id else "local",
        status="waiting",
        seed=2**63 - 1,
        rules={"ball_speed": 1.5, "points_to_win": 5},
        created_at=30.0,
        started_at=None,
        ended_at=None,
        winner_seat=winner_seat,
        token_hash=token_hash,
        players=tuple(
            GamePlayerRecord(seat, pid, pid.upper())
            for seat, pid in zip(seats, player_ids, strict=True)
        ),
        rounds=rounds,
    )
