"""One lobby's state: its seats, who holds them, who is ready, who hosts.

Theory of operation. A lobby is a small state machine:

    open  --start-->  started  --game ends-->  closed

While *open*, players take seats over HTTP (create makes the host's seat,
join the others), connect one socket per seat, and say ready or not ready.
The host may start once every member is connected and every member but the
host is ready (the host's start counts as the host's ready), and no seat
given up is still being stored. Seats are numbered in join order; the host
is the lowest seat still held.

This module holds plain state and rules only: it sends nothing, stores
nothing and never awaits. ``server.lobby.service`` applies each change to the
store first and to a ``Lobby`` second, and tells the sockets.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import ClientError
from .endpoint import Endpoint

if TYPE_CHECKING:
    from .room import Room

OPEN = "open"
STARTING = "starting"  # the game row is being written; no joins, no second start
STARTED = "started"
CLOSED = "closed"

MAX_NAME = 32  # characters in a shown name, including a "#N" suffix


@dataclass(slots=True, eq=False)
class Member:
    seat: int
    player_id: str
    name: str
    token_hash: bytes
    joined_at: float
    ready: bool = False
    endpoint: Endpoint | None = None
    away: bool = False  # dropped during the game; may come back within the grace
    forfeited: bool = False  # stayed away past the grace; the token is void
    user: bool = False  # a logged-in user's seat: the name is their username
    # Monotonic time since when the seat has had no socket; None while it has.
    absent_since: float | None = field(default_factory=time.monotonic)


@dataclass(slots=True, eq=False)
class Lobby:
    id: str
    max_players: int
    points_to_win: int
    created_at: float
    status: str = OPEN
    host_seat: int = 0
    members: dict[int, Member] = field(default_factory=dict)
    room: Room | None = None
    game_id: str | None = None
    # Lobby seat -> game seat. Game seats run 0..n-1 in lobby seat order; the
    # two differ once someone has left before the start, leaving a gap.
    game_seats: dict[int, int] = field(default_factory=dict)
    # Monotonic time since when no member has had a socket; None while one
    # has. An open lobby idle for long enough expires.
    idle_since: float | None = None
    # The client address that created it, counted against
    # max_lobbies_per_address while the lobby is held; None if not known.
    creator: str | None = None
    # Seats given up (LEAVE) and gone from ``members`` whose removal is still
    # being stored; until it is, the seat may come back.
    leaving: int = 0

    # Seats and names --------------------------------------------------------

    def unique_name(self, wanted: str) -> str:
        """``wanted``, or ``wanted#2``, ``wanted#3``... if it is taken here."""
        taken = {m.name.casefold() for m in self.members.values()}
        if wanted.casefold() not in taken:
            return wanted
        n = 2
        while True:
            suffix = f"#{n}"
            candidate = wanted[: MAX_NAME - len(suffix)] + suffix
            if candidate.casefold() not in taken:
                return candidate
            n += 1

    def next_seat(self) -> int:
        seat = 0
        while seat in self.members:
            seat += 1
        return seat

    def check_joinable(self) -> None:
        if self.status != OPEN:
            raise ClientError("lobby_started")
        if len(self.members) >= self.max_players:
            raise ClientError("lobby_full")

    def add(self, member: Member) -> None:
        self.check_joinable()
        self.members[member.seat] = member

    def remove(self, seat: int, *, users_host: bool = False) -> Member:
        """Give up a seat; the host role passes to the lowest remaining seat.

        With ``users_host`` it passes to the lowest seat held by a user; if
        no user is left it stays on a guest, and ``host_is_allowed`` then
        answers False: the caller must close the lobby.
        """
        member = self.members.pop(seat)
        if seat == self.host_seat and self.members:
            users = [s for s, m in self.members.items() if m.user]
            self.host_seat = min(users if users and users_host else self.members)
        return member

    def host_is_allowed(self, guests_may_host: bool) -> bool:
        host = self.members.get(self.host_seat)
        return host is not None and (guests_may_host or host.user)

    # Starting --------------------------------------------------------------

    def check_startable(self, by_seat: int) -> None:
        if by_seat != self.host_seat:
            raise ClientError("not_host")
        if self.status != OPEN:
            raise ClientError("lobby_started")
        if len(self.members) < 2:
            raise ClientError("too_few_players")
        if self.leaving:
            # A game built now would have no place for the seat if its
            # removal then failed to be stored and it came back.
            raise ClientError("not_ready", "a member's leave is being stored")
        for m in self.members.values():
            if m.endpoint is None or not (m.ready or m.seat == by_seat):
                raise ClientError("not_ready")

    # Views ------------------------------------------------------------------

    def member_status(self, member: Member) -> str:
        room = self.room
        if member.forfeited:
            return "forfeited"
        if member.away:
            return "away"
        if room is not None and not room.finished:
            seat = self.game_seats.get(member.seat)
            playing = seat is not None and room.is_playing(seat)
            return "playing" if playing else "spectating"
        if member.endpoint is None:
            return "joined"
        return "ready" if member.ready else "connected"

    def view(self) -> dict[str, Any]:
        """The lobby as clients see it: protocol.md, "LOBBY (65)"."""
        host = self.members.get(self.host_seat)
        return {
            "lobby_id": self.id,
            "status": self.status,
            "host": host.name if host else None,
            "host_seat": self.host_seat,
            "max_players": self.max_players,
            "points_to_win": self.points_to_win,
            "game_id": self.game_id,
            "players": [
                {
                    "seat": m.seat,
                    "player_id": m.player_id,
                    "name": m.name,
                    "status": self.member_status(m),
                    "host": m.seat == self.host_seat,
                    "user": m.user,
                }
                for m in sorted(self.members.values(), key=lambda m: m.seat)
            ],
        }

    def endpoints(self) -> list[Endpoint]:
        return [m.endpoint for m in self.members.values() if m.endpoint is not None]
