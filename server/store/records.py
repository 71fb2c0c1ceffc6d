"""The plain values that cross the store boundary.

Every ``Store`` method takes and returns these records and nothing else, so the
lobby and the simulation never see a row, a cursor or a driver type, and a
second backend can be written against the same shapes. Records are frozen:
to change something, call the store method that changes it and read it back.

Timestamps are unix seconds as floats. Token hashes are raw digest bytes; the
store never sees a token itself.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PlayerRecord:
    """Someone who has played: a guest made for one lobby or local game, or a user.

    ``kind`` is ``"guest"`` or ``"user"``.
    """

    id: str
    kind: str
    display_name: str
    created_at: float


@dataclass(frozen=True, slots=True)
class MemberRecord:
    """A player's seat in one lobby.

    ``name`` is the name shown in that lobby and is unique among its current
    members ("myname", "myname#2"); the player's own ``display_name`` need not
    be. ``token_hash`` authenticates the member's socket. ``user`` is read
    back from the player's kind (a logged-in user's seat); it is not written.
    """

    lobby_id: str
    player_id: str
    seat: int
    name: str
    token_hash: bytes
    joined_at: float
    user: bool = False


@dataclass(frozen=True, slots=True)
class LobbyRecord:
    """A lobby and, when read from the store, its current members by seat.

    ``status`` is ``"open"``, ``"started"`` or ``"closed"``.
    """

    id: str
    host_player_id: str
    status: str
    max_players: int
    points_to_win: int
    created_at: float
    members: tuple[MemberRecord, ...] = ()


@dataclass(frozen=True, slots=True)
class GamePlayerRecord:
    """Who sat in a seat of a game, under the name shown during that game."""

    seat: int
    player_id: str
    name: str


@dataclass(frozen=True, slots=True)
class RoundRecord:
    """One match between two seats of a game.

    ``status`` is ``"pending"``, ``"running"``, ``"finished"``, ``"forfeit"`` or
    ``"interrupted"``. ``winner_seat`` is one of the two seats, or None while
    the round is unfinished or when it ended without a winner.
    """

    index: int
    left_seat: int
    right_seat: int
    left_score: int = 0
    right_score: int = 0
    status: str = "pending"
    winner_seat: int | None = None
    ended_at: float | None = None


@dataclass(frozen=True, slots=True)
class GameRecord:
    """A game with its seats and rounds.

    ``mode`` is ``"local"`` (every paddle on one socket) or ``"remote"`` (one
    socket per member of ``lobby_id``). ``status`` is ``"waiting"``,
    ``"running"``, ``"finished"``, ``"interrupted"`` or ``"error"``. ``rules``
    holds the simulation's tunables by name. ``token_hash`` is set for local
    games only: it authenticates their one socket. ``seed`` must fit in a
    signed 64-bit integer, the widest integer SQLite stores.
    """

    id: str
    lobby_id: str | None
    mode: str
    status: str
    seed: int
    rules: dict[str, float | int]
    created_at: float
    started_at: float | None
    ended_at: float | None
    winner_seat: int | None
    token_hash: bytes | None
    players: tuple[GamePlayerRecord, ...]
    rounds: tuple[RoundRecord, ...]


@dataclass(frozen=True, slots=True)
class UserRecord:
    """An account: the player it plays as, its names and its password hash.

    ``username`` is shown as the user chose it; ``username_key`` is its
    normalized form (NFKC, casefolded), unique across all users.
    ``password_hash`` is the self-describing string of ``server.accounts``'
    password module; the store never sees a password.
    """

    player_id: str
    username: str
    username_key: str
    password_hash: str
    created_at: float


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A login session. Only the hash of its token is kept.

    It is live while ``revoked_at`` is None and ``expires_at`` is ahead.
    """

    token_hash: bytes
    player_id: str
    created_at: float
    expires_at: float
    revoked_at: float | None = None


@dataclass(frozen=True, slots=True)
class RecentGameRecord:
    """One game a player sat in, as a profile lists it."""

    game_id: str
    mode: str
    status: str
    won: bool
    created_at: float
    ended_at: float | None


@dataclass(frozen=True, slots=True)
class ProfileRecord:
    """What a profile shows of a player: who, and how their games went.

    ``games_played`` counts finished games; ``wins`` those the player won.
    ``username`` is None for a guest.
    """

    player: PlayerRecord
    username: str | None
    has_avatar: bool
    games_played: int
    wins: int
    recent_games: tuple[RecentGameRecord, ...]
