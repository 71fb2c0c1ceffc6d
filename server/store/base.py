"""The narrow interface between the server and its database.

The lobby and the game runner reach persistence only through ``Store``: plain
records in, plain records out, one awaited call per change. Every method that
writes is a single transaction, so a crash leaves each lobby and game either
as it was before the call or as the call left it, never half of each. A
method that returns has made its change durable; what the caller has told a
player was saved survives a power cut.

A backend reports failures as ``StoreError`` with the driver's exception as
its cause. Those are our bugs or a broken disk, never the peer's fault, so
they sit under ``InternalError``:

    InternalError
    +-- StoreError           the write or read did not happen
        +-- DuplicateIdError a new lobby or game reused an existing id
        +-- DuplicateNameError a new user's normalized username is taken
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from server.errors import InternalError
from server.store.records import (
    GameRecord,
    LobbyRecord,
    MemberRecord,
    PlayerRecord,
    ProfileRecord,
    SessionRecord,
    UserRecord,
)


class StoreError(InternalError):
    """A store call failed and changed nothing."""


class DuplicateIdError(StoreError):
    """The id of a new lobby or game is taken; nothing was written.

    Ids are random, so the caller draws a new one and calls again.
    """


class DuplicateNameError(StoreError):
    """A new user's normalized username is taken; nothing was written.

    Unlike a clashing id this is the peer's choice, so the caller tells them.
    """


class Store(Protocol):
    """Everything the server may ask of its database.

    Calls on a closed store raise ``StoreError``. Methods that change a row
    that must exist raise ``StoreError`` when it does not, or when it is not
    in the state the change starts from (documented per method): the lobby
    and game code keep their own state, so a mismatch is a bug to log, not a
    condition to handle.

    A call cancelled while in flight has either happened in full or not at
    all; which one is unknown to the caller, who must read back to find out.
    """

    async def close(self) -> None:
        """Wait for the write in progress, if any, then release the database."""
        ...

    # Lobbies.

    async def create_lobby(
        self, lobby: LobbyRecord, host: PlayerRecord, host_member: MemberRecord
    ) -> None:
        """Write a new lobby, its host player (unless known) and first member.

        ``lobby.members`` is ignored; ``host_member`` is the only member.
        Raises ``DuplicateIdError`` if a lobby ever had ``lobby.id``: lobby ids
        are never reused, so draw a new one and retry.
        """
        ...

    async def add_member(self, member: MemberRecord, player: PlayerRecord) -> None:
        """Seat ``member``, writing ``player`` first unless it is known.

        Among a lobby's current members the seat, the shown name and the
        player are unique, and a token hash is unique across all current
        members; a clash raises ``StoreError``.
        """
        ...

    async def remove_member(self, lobby_id: str, player_id: str, at: float) -> None:
        """Mark the player as having left the lobby at ``at``.

        The row is kept for history, but ``get_lobby`` no longer lists it and
        its seat, name and token hash are free again. Raises ``StoreError`` if
        the player is not a current member.
        """
        ...

    async def set_lobby_host(self, lobby_id: str, player_id: str) -> None:
        """Make ``player_id`` the lobby's host."""
        ...

    async def set_lobby_status(self, lobby_id: str, status: str, at: float) -> None:
        """Set the lobby's status ("open", "started" or "closed") as of ``at``."""
        ...

    async def get_lobby(self, lobby_id: str) -> LobbyRecord | None:
        """Return the lobby with its current members by seat, or None."""
        ...

    async def load_open_lobbies(self) -> list[LobbyRecord]:
        """Return every "open" lobby with its current members, oldest first.

        Called at start-up so that lobbies survive a restart.
        """
        ...

    # Games.

    async def create_game(
        self, game: GameRecord, new_players: Sequence[PlayerRecord]
    ) -> None:
        """Write a game with its seats and rounds, and any players it needs.

        Players already known are left as they are. If ``game.lobby_id`` is
        set, that lobby becomes "started" in the same transaction. Raises
        ``DuplicateIdError`` if the game id is taken: draw a new one.
        """
        ...

    async def set_game_running(self, game_id: str, at: float) -> None:
        """Mark a "waiting" game as "running" since ``at``.

        Raises ``StoreError`` if the game is not "waiting".
        """
        ...

    async def finish_round(
        self,
        game_id: str,
        index: int,
        left_score: int,
        right_score: int,
        winner_seat: int | None,
        status: str,
        at: float,
    ) -> None:
        """Record how a round ended: "finished", "forfeit" or "interrupted".

        Raises ``StoreError`` if the round is not "pending" or "running".
        """
        ...

    async def finish_game(
        self, game_id: str, status: str, winner_seat: int | None, at: float
    ) -> None:
        """Record how a game ended: "finished", "interrupted" or "error".

        In the same transaction the game's tokens (its lobby members' or its
        own) come to map to it for ``get_ended_game``, and unless ``status``
        is "finished", every round not yet ended becomes "interrupted".
        Raises ``StoreError`` if the game has already ended.
        """
        ...

    async def get_game(self, game_id: str) -> GameRecord | None:
        """Return the game with its players by seat and rounds by index."""
        ...

    async def get_ended_game(self, token_hash: bytes) -> GameRecord | None:
        """The ended game one of whose tokens hashes to ``token_hash``, or None.

        Every seat token of a lobby game and the token of a local game map to
        their game once ``finish_game`` or ``interrupt_unfinished_games`` has
        stored its end; a token of a game still in play maps to nothing.
        """
        ...

    async def interrupt_unfinished_games(self, at: float) -> int:
        """Mark every "waiting" or "running" game, and its open rounds, interrupted.

        Call once at start-up, before any game is created: such games belong
        to a process that died. Their tokens then map to them as after
        ``finish_game``. Returns how many games were interrupted.
        """
        ...

    # Accounts.

    async def create_user(self, user: UserRecord, player: PlayerRecord) -> None:
        """Write a new user and its player (of kind "user") in one transaction.

        Raises ``DuplicateNameError`` if ``user.username_key`` is taken.
        """
        ...

    async def get_user(self, username_key: str) -> UserRecord | None:
        """The user whose normalized username is ``username_key``, or None."""
        ...

    async def create_session(self, session: SessionRecord) -> None:
        """Write a new login session."""
        ...

    async def get_session(
        self, token_hash: bytes
    ) -> tuple[SessionRecord, PlayerRecord] | None:
        """The session with that token hash, live or not, and its player."""
        ...

    async def revoke_session(self, token_hash: bytes, at: float) -> None:
        """Mark the session revoked as of ``at``; a revoked one stays as it was.

        Raises ``StoreError`` if there is no such session.
        """
        ...

    async def purge_sessions(self, now: float) -> int:
        """Delete sessions expired or revoked before ``now``; how many went."""
        ...

    # Players.

    async def get_profile(self, player_id: str, recent: int) -> ProfileRecord | None:
        """The player's profile with its ``recent`` latest games, or None."""
        ...

    async def set_avatar(self, player_id: str, png: bytes, at: float) -> None:
        """Store (or replace) the player's avatar, PNG bytes made by us.

        Raises ``StoreError`` if the player does not exist.
        """
        ...

    async def get_avatar(self, player_id: str) -> bytes | None:
        """The player's avatar PNG, or None if it has none."""
        ...
