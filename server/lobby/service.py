"""Lobbies, seats, tokens and games: the rules the HTTP API and sockets share.

Theory of operation. Every lobby in play lives in memory in ``lobbies``; the
store holds the record of it. A change that the client will be told about is
written to the store first and applied in memory second, so an answer of
"done" always means "saved". Checks that decide a race (the last seat, a
second start) run synchronously in memory before the write, with a
reservation the write either confirms or rolls back, so exactly one of two
racing requests wins without a lock.

A token opens exactly one thing: a seat in a lobby (remote play) or a local
game (one socket for every seat). ``_tokens`` maps the token's hash to it;
the token itself is never kept. Sockets present the token in their first
message and are bound to what it opens, never to a name or an ID they send.
Once its game has ended a token opens nothing, and HELLO with it gets that
game's GAME_END: from memory for the latest ones (``_results``), else built
from the store, which maps every token of an ended game to it, so the
answer is the same after a restart.

Results are written outside the tick: the room reports a finished round or
game, and ``_persist`` queues the write as a task chained after the room's
previous write, so a game's rows land in order and the final GAME_END goes
out only once the game is committed.

A lobby is held in ``lobbies`` from its creation until it closes, by any
path: the host closes it, it expires, its last member leaves, it is left
without anyone allowed to host, or its game ends. ``_hold`` and ``_drop``
are the only ways in and out, and they keep ``_per_address``, the lobbies
each creating address holds, in step: ``max_lobbies_per_address`` bounds
those, open, starting and started alike, as ``max_lobbies`` bounds them all.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
import unicodedata
from collections.abc import Awaitable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from .. import protocol
from ..config import Config
from ..errors import ClientError, InternalError
from ..protocol import Input
from ..sim.game import Game
from ..sim.rules import Rules
from ..sim.tournament import RoundResult, Standing, standings
from ..store import (
    DuplicateIdError,
    GamePlayerRecord,
    GameRecord,
    LobbyRecord,
    MemberRecord,
    PlayerRecord,
    RoundRecord,
    Store,
)
from . import ids
from .endpoint import Endpoint
from .lobby import CLOSED, MAX_NAME, OPEN, STARTED, STARTING, Lobby, Member
from .room import Room, round_view, standings_view
from .scheduler import TickScheduler

logger = logging.getLogger(__name__)

MAX_LOCAL_PLAYERS = 8
SWEEP_EVERY = 5.0  # seconds between looks for idle lobbies and local games
MAX_RESULTS = 10_000  # GAME_ENDs kept in memory by token; older ones are read back
ID_ATTEMPTS = 8  # fresh random IDs tried before giving up (a clash is ~never)


@dataclass(slots=True, eq=False)
class LocalGame:
    room: Room
    token_hash: bytes
    created: float  # monotonic; a game whose socket never comes expires
    creator: str | None = None  # the client address it counts against, unopened
    endpoint: Endpoint | None = None
    started: bool = False


@dataclass(slots=True, eq=False)
class Session:
    """What one authenticated socket acts for."""

    endpoint: Endpoint
    lobby: Lobby | None = None
    member: Member | None = None
    local: LocalGame | None = None


@dataclass(frozen=True, slots=True)
class StoredToken:
    """A HELLO token this process holds nothing for; see ``hello_stored``."""

    token_hash: bytes


@dataclass(slots=True)
class Counters:
    lobbies_created: int = 0
    games_started: int = 0
    games_finished: int = 0
    games_failed: int = 0


def clean_name(value: str, what: str) -> str:
    """A player name as we keep it: NFC, trimmed, 1..MAX_NAME printable chars."""
    name = unicodedata.normalize("NFC", value).strip()
    if not name:
        raise ClientError("invalid_field", f"{what} is empty")
    if len(name) > MAX_NAME - 3:  # room for a "#NN" suffix
        raise ClientError("invalid_field", f"{what} is longer than {MAX_NAME - 3}")
    if any(unicodedata.category(c)[0] == "C" for c in name):
        raise ClientError("invalid_field", f"{what} has control characters")
    return name


def game_end_view(
    game_id: str,
    status: str,
    winner: int | None,
    names: Sequence[str],
    results: Sequence[RoundResult],
    table: Sequence[Standing] | None = None,
) -> dict[str, Any]:
    """GAME_END's map but for ``saved`` (protocol.md, "GAME_END (71)").

    The winner, standings and rounds are only there for a finished game;
    ``table`` is the final standings, worked out from ``results`` if None.
    """
    view: dict[str, Any] = {"game_id": game_id, "status": status, "winner": winner}
    if status == "finished" and winner is not None:
        if table is None:
            table = standings(len(names), results)
        view["winner_name"] = names[winner]
        view["standings"] = standings_view(table, names)
        view["rounds"] = [round_view(r) for r in results]
    return view


def round_results(record: GameRecord) -> list[RoundResult]:
    """A stored game's rounds that have a winner, as the simulation reports them."""
    return [
        RoundResult(
            r.index,
            r.left_seat,
            r.right_seat,
            (r.left_score, r.right_score),
            r.winner_seat,
            r.status == "forfeit",
        )
        for r in record.rounds
        if r.winner_seat is not None
    ]


class LobbyService:
    def __init__(self, config: Config, store: Store) -> None:
        self.config = config
        self.store = store
        self.rules = Rules(tick_rate=config.tick_rate)
        self.rules.validate()
        self.scheduler = TickScheduler(
            config.tick_rate, config.max_catchup_ticks, self._room_failed
        )
        self.lobbies: dict[str, Lobby] = {}
        self.rooms: dict[str, Room] = {}  # running games by game id
        self.counters = Counters()
        self._tokens: dict[bytes, tuple[Lobby, Member] | LocalGame] = {}
        self._lobby_of_room: dict[str, Lobby] = {}
        self._saving: dict[str, asyncio.Future[None]] = {}
        self._lobby_writes: set[asyncio.Task[None]] = set()
        # Reconnect grace timers, per away member or per local game.
        self._grace: dict[Member | LocalGame, asyncio.TimerHandle] = {}
        # GAME_END of recently ended games by token hash, for late reconnects;
        # the store answers for the others (hello_stored).
        self._results: collections.OrderedDict[bytes, bytes] = collections.OrderedDict()
        self._local_tokens: dict[str, bytes] = {}  # local game id -> token hash
        self._waiting_local: dict[str, LocalGame] = {}  # no socket yet, by id
        self._sweeper: asyncio.TimerHandle | None = None
        self._closing = False  # close has begun: no more starts or leaves
        # Starts and leaves whose writes are in flight; close waits for them.
        self._in_flight: set[asyncio.Future[None]] = set()
        self._creating = 0  # lobby creations awaiting their write
        # Lobbies held (and creations awaiting their write) per creating
        # address. An address is a key only while it holds one, so the table
        # has at most max_lobbies keys.
        self._per_address: dict[str, int] = {}

    # Start and stop -------------------------------------------------------

    async def open(self) -> None:
        """Recover from the last run, load open lobbies, start the clock."""
        await self.store.interrupt_unfinished_games(time.time())  # it logs them
        for record in await self.store.load_open_lobbies():
            self._load_lobby(record)
        logger.info("loaded %d open lobbies", len(self.lobbies))
        self.scheduler.start()
        self._arm_sweep()

    async def close(self) -> None:
        """Interrupt running games, store them, close every socket.

        No START or LEAVE is taken from here on. One in flight, being
        stored, is waited for first. A game stored then is interrupted with
        the others (GAME_END, then 1001); a lobby whose game was not stored,
        open again, closes its sockets with every other lobby's. A leave
        stored then is acknowledged as always (4005), so a socket told 1001
        still holds its seat.
        """
        self._closing = True
        self.scheduler.stop()
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._in_flight:
            await asyncio.gather(*self._in_flight)
        for room in list(self.rooms.values()):
            self._interrupt(room, "server shutting down", protocol.CLOSE_GOING_AWAY)
        for local in list(self._waiting_local.values()):
            self._drop_unopened(local, "server shutting down")
        await self.drain()
        for lobby in self.lobbies.values():
            for endpoint in lobby.endpoints():
                endpoint.close(protocol.CLOSE_GOING_AWAY, "server shutting down")

    def _load_lobby(self, record: LobbyRecord) -> None:
        lobby = Lobby(
            record.id,
            record.max_players,
            record.points_to_win,
            record.created_at,
            idle_since=time.monotonic(),
        )
        for m in record.members:
            member = Member(
                m.seat, m.player_id, m.name, m.token_hash, m.joined_at, user=m.user
            )
            lobby.members[m.seat] = member
            self._tokens[m.token_hash] = (lobby, member)
            if m.player_id == record.host_player_id:
                lobby.host_seat = m.seat
        # The store does not keep who created a lobby, so one restored at a
        # start counts against no address (creator None).
        self._hold(lobby)

    # Lobbies over HTTP ------------------------------------------------------

    async def create_lobby(
        self,
        host_name: str | None,
        points_to_win: int | None,
        max_players: int | None,
        user: PlayerRecord | None = None,
        address: str | None = None,
    ) -> dict[str, Any]:
        """A new lobby hosted by ``user`` if logged in, else by a new guest.

        A user hosts under their own name (``host_name`` is ignored); a guest
        needs ``host_name``, and may host only while guests_may_host is on.
        ``address`` is the client's; it may hold max_lobbies_per_address
        lobbies at once (None: not counted).
        """
        if user is not None:
            name = user.display_name
        elif not self.config.guests_may_host:
            raise ClientError("login_required", "guests may not host here")
        elif host_name is None:
            raise ClientError("missing_field", "host")
        else:
            name = clean_name(host_name, "host")
        points = self._points(points_to_win)
        seats = self.config.max_players if max_players is None else max_players
        if not 2 <= seats <= MAX_LOCAL_PLAYERS:
            raise ClientError("invalid_field", f"max_players is 2..{MAX_LOCAL_PLAYERS}")
        self._check_room_for(address)

        now = time.time()
        player = user or PlayerRecord(ids.random_id(16), "guest", name, now)
        token, token_hash = ids.new_token()
        # Hold a place under max_lobbies, and under the address's limit,
        # while the write is awaited, so that concurrent creates cannot all
        # pass the checks above. _hold counts the address again; this
        # place is given back either way.
        self._creating += 1
        self._count(address, 1)
        try:
            lobby_id = await self._insert_lobby(player, token_hash, seats, points)
        finally:
            self._creating -= 1
            self._count(address, -1)

        lobby = Lobby(
            lobby_id, seats, points, now, idle_since=time.monotonic(), creator=address
        )
        host = Member(0, player.id, name, token_hash, now, user=user is not None)
        lobby.members[0] = host
        self._hold(lobby)
        self._tokens[token_hash] = (lobby, host)
        self.counters.lobbies_created += 1
        logger.info("lobby %s created by %r", lobby_id, name)
        return {
            "message": f"Lobby {lobby_id} created; you are its host.",
            "lobby_id": lobby_id,
            "player_id": player.id,
            "seat": 0,
            "name": name,
            "host": True,
            "max_players": seats,
            "points_to_win": points,
            "token": token,
            "ws_url": self.config.ws_url,
        }

    async def _insert_lobby(
        self, player: PlayerRecord, token_hash: bytes, seats: int, points: int
    ) -> str:
        """Store a new lobby under a fresh random ID; the ID."""
        now = time.time()
        name = player.display_name
        for _ in range(ID_ATTEMPTS):
            lobby_id = ids.random_id(ids.LOBBY_ID_LENGTH)
            if lobby_id in self.lobbies:
                continue
            record = LobbyRecord(lobby_id, player.id, OPEN, seats, points, now)
            member = MemberRecord(lobby_id, player.id, 0, name, token_hash, now)
            try:
                await self.store.create_lobby(record, player, member)
            except DuplicateIdError:
                continue
            return lobby_id
        raise InternalError("no free lobby id after several attempts")

    async def join_lobby(
        self, lobby_id: str, guest_name: str | None, user: PlayerRecord | None = None
    ) -> dict[str, Any]:
        """A seat for ``user`` if logged in (one per lobby), else for a new guest."""
        if user is not None:
            wanted = user.display_name
        elif guest_name is None:
            raise ClientError("missing_field", "guest_name")
        else:
            wanted = clean_name(guest_name, "guest_name")
        lobby = await self._open_lobby(lobby_id)
        if user is not None and any(
            m.player_id == user.id for m in lobby.members.values()
        ):
            raise ClientError("already_joined")
        lobby.check_joinable()

        # Reserve the seat now, synchronously: of two racing joins for the last
        # seat, the second sees the first's reservation and gets lobby_full.
        now = time.time()
        name = lobby.unique_name(wanted)
        seat = lobby.next_seat()
        player = user or PlayerRecord(ids.random_id(16), "guest", name, now)
        token, token_hash = ids.new_token()
        member = Member(seat, player.id, name, token_hash, now, user=user is not None)
        lobby.add(member)
        try:
            await self.store.add_member(
                MemberRecord(lobby.id, player.id, seat, name, token_hash, now), player
            )
        except BaseException:
            lobby.remove(seat)
            raise
        self._tokens[token_hash] = (lobby, member)
        self._broadcast_lobby(lobby)

        renamed = name != wanted
        message = f"Joined lobby {lobby.id} as {name}."
        if renamed:
            message += f" The name {wanted} was taken here, so you are {name}."
        logger.info("lobby %s: %r joined at seat %d", lobby.id, name, seat)
        return {
            "message": message,
            "lobby_id": lobby.id,
            "player_id": player.id,
            "seat": seat,
            "name": name,
            "renamed": renamed,
            "host": False,
            "token": token,
            "ws_url": self.config.ws_url,
        }

    async def _open_lobby(self, lobby_id: str) -> Lobby:
        key = ids.normalize_id(lobby_id)
        lobby = self.lobbies.get(key)
        if lobby is not None:
            return lobby
        if len(key) == ids.LOBBY_ID_LENGTH:
            record = await self.store.get_lobby(key)
            if record is not None:
                code = "lobby_started" if record.status == STARTED else "lobby_closed"
                raise ClientError(code)
        raise ClientError("unknown_lobby")

    async def lobby_view(self, lobby_id: str) -> dict[str, Any]:
        key = ids.normalize_id(lobby_id)
        lobby = self.lobbies.get(key)
        if lobby is not None:
            return lobby.view()
        record = await self.store.get_lobby(key) if key else None
        if record is None:
            raise ClientError("unknown_lobby")
        host = next(
            (m for m in record.members if m.player_id == record.host_player_id), None
        )
        return {
            "lobby_id": record.id,
            "status": record.status,
            "host": host.name if host else None,
            "host_seat": host.seat if host else None,
            "max_players": record.max_players,
            "points_to_win": record.points_to_win,
            "game_id": None,
            "players": [
                {
                    "seat": m.seat,
                    "player_id": m.player_id,
                    "name": m.name,
                    "status": "closed" if record.status == CLOSED else "joined",
                    "host": m.player_id == record.host_player_id,
                    "user": m.user,
                }
                for m in record.members
            ],
        }

    @property
    def unopened_local_games(self) -> int:
        """Local games waiting for their socket; they count as lobbies do."""
        return len(self._waiting_local)

    def _open_count(self) -> int:
        """Open lobbies and unopened local games: what max_lobbies bounds."""
        return len(self.lobbies) + len(self._waiting_local) + self._creating

    def _check_room_for(self, address: str | None) -> None:
        """Refuse a new lobby or local game if the server or ``address`` is full."""
        if self._open_count() >= self.config.max_lobbies:
            raise ClientError("server_busy")
        limit = self.config.max_lobbies_per_address
        if address is not None and self._per_address.get(address, 0) >= limit:
            logger.warning("%s: refused a lobby, holds %d already", address, limit)
            raise ClientError("too_many_lobbies", f"at most {limit} at once")

    def _hold(self, lobby: Lobby) -> None:
        """Keep ``lobby`` in memory, counted against its creator's address."""
        self.lobbies[lobby.id] = lobby
        self._count(lobby.creator, 1)

    def _drop(self, lobby: Lobby) -> None:
        """Forget a lobby that has closed, if held; its address counts one less."""
        if self.lobbies.get(lobby.id) is lobby:
            del self.lobbies[lobby.id]
            self._count(lobby.creator, -1)

    def _count(self, address: str | None, change: int) -> None:
        if address is None:
            return
        held = self._per_address.get(address, 0) + change
        if held:
            self._per_address[address] = held
        else:
            del self._per_address[address]

    def _points(self, points_to_win: int | None) -> int:
        if points_to_win is None:
            return self.config.points_to_win
        if not 1 <= points_to_win <= 99:
            raise ClientError("invalid_field", "points_to_win is 1..99")
        return points_to_win

    # Games --------------------------------------------------------------

    async def start_local(
        self,
        names: list[str],
        points_to_win: int | None,
        address: str | None = None,
    ) -> dict[str, Any]:
        """A local game: every player on one device, one socket for all.

        Until its socket opens it counts like a lobby: against max_lobbies,
        and against ``address``'s max_lobbies_per_address (None: not counted).
        """
        if len(names) < 2:
            raise ClientError("too_few_players")
        if len(names) > MAX_LOCAL_PLAYERS:
            raise ClientError("invalid_field", f"at most {MAX_LOCAL_PLAYERS} players")
        self._check_room_for(address)
        shown: list[str] = []
        for i, raw in enumerate(names):
            name = clean_name(raw, f"player-{i + 1}")
            taken = {s.casefold() for s in shown}
            n, unique = 2, name
            while unique.casefold() in taken:
                unique, n = f"{name}#{n}", n + 1
            shown.append(unique)

        now = time.time()
        players = [PlayerRecord(ids.random_id(16), "guest", s, now) for s in shown]
        token, token_hash = ids.new_token()
        game, record = self._new_game(
            None, "local", players, self._points(points_to_win), token_hash, now
        )
        # Counted before the write is awaited, so that concurrent starts
        # cannot all pass the check above; given back if the write fails.
        self._count(address, 1)
        try:
            await self._insert_game(record, players)
        except BaseException:
            self._count(address, -1)
            raise
        room = Room(record.id, "local", game, shown, self)
        local = LocalGame(room, token_hash, time.monotonic(), creator=address)
        self._tokens[token_hash] = local
        self._waiting_local[room.game_id] = local
        self._local_tokens[room.game_id] = token_hash
        self.counters.games_started += 1
        logger.info("local game %s created for %d players", record.id, len(shown))
        return {
            **self._game_summary(room),
            "message": "Local game created; open the socket to begin.",
            "token": token,
            "ws_url": self.config.ws_url,
        }

    async def start_remote(
        self, token: str | None, lobby_id: str, user: PlayerRecord | None = None
    ) -> dict[str, Any]:
        """The host starts the lobby's game over HTTP (as START does on a socket)."""
        lobby, member = await self._acting_member(token, user, lobby_id)
        room = await self._start_lobby_game(lobby, member)
        return self._game_summary(room)

    async def close_lobby(
        self, token: str | None, lobby_id: str, user: PlayerRecord | None = None
    ) -> dict[str, Any]:
        """The host closes an open lobby: every seat's token stops working."""
        lobby, member = await self._acting_member(token, user, lobby_id)
        if member.seat != lobby.host_seat:
            raise ClientError("not_host")
        if lobby.status != OPEN:
            raise ClientError("lobby_started")
        lobby.status = CLOSED
        self._drop(lobby)
        try:
            await self.store.set_lobby_status(lobby.id, CLOSED, time.time())
        except BaseException:
            lobby.status = OPEN
            self._hold(lobby)
            raise
        self._void_seats(lobby, "the host closed it")
        logger.info("lobby %s closed by its host", lobby.id)
        return {"lobby_id": lobby.id, "status": CLOSED}

    def _void_seats(self, lobby: Lobby, reason: str) -> None:
        """A closed lobby's tokens stop working; its sockets close with 4011."""
        for seated in lobby.members.values():
            self._void_seat(seated, reason)

    def _void_seat(self, member: Member, reason: str) -> None:
        self._tokens.pop(member.token_hash, None)
        if member.endpoint is not None:
            member.endpoint.close(protocol.CLOSE_LOBBY_CLOSED, reason)
            member.endpoint = None

    async def _acting_member(
        self,
        token: str | None,
        user: PlayerRecord | None,
        lobby_id: str,
        no_seat: str = "not_host",
        detail: str | None = None,
    ) -> tuple[Lobby, Member]:
        """The lobby and the member a seat token or a logged-in user acts as.

        Raises ``no_seat`` when neither holds a seat in that lobby: by
        default ``not_host``, so a caller that then requires the host needs
        no second message.
        """
        bound = self._tokens.get(ids.hash_token(token)) if token else None
        if bound is None and user is None:
            raise ClientError("invalid_token" if token else "unauthorized")
        lobby = await self._open_lobby(lobby_id)
        if isinstance(bound, tuple) and bound[0] is lobby:
            return lobby, bound[1]
        for member in lobby.members.values():
            if user is not None and member.player_id == user.id:
                return lobby, member
        raise ClientError(no_seat, detail)

    async def _start_lobby_game(self, lobby: Lobby, by: Member) -> Room:
        if self._closing:
            raise ClientError("shutting_down")
        lobby.check_startable(by.seat)
        lobby.status = STARTING
        # Shutdown waits for the start to settle (see close), so that a game
        # stored meanwhile ends as interrupted, not left "running".
        with self._awaited_at_close():
            return await self._store_and_start(lobby)

    @contextlib.contextmanager
    def _awaited_at_close(self) -> Iterator[None]:
        """``close`` waits until the block has ended, whichever way it ends."""
        settled: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._in_flight.add(settled)
        try:
            yield
        finally:
            self._in_flight.discard(settled)
            settled.set_result(None)

    async def _store_and_start(self, lobby: Lobby) -> Room:
        """Store the starting lobby's game, then start it; OPEN again if not."""
        members = sorted(lobby.members.values(), key=lambda m: m.seat)
        now = time.time()
        players = [PlayerRecord(m.player_id, "guest", m.name, now) for m in members]
        game, record = self._new_game(
            lobby.id, "remote", players, lobby.points_to_win, None, now
        )
        try:
            await self._insert_game(record, ())
        except BaseException:
            # Nothing was stored: the lobby is open again, as it was, and its
            # members, who may have seen it starting, hear so.
            lobby.status = OPEN
            self._broadcast_lobby(lobby)
            raise

        room = Room(record.id, "remote", game, [m.name for m in members], self)
        lobby.game_seats = {m.seat: i for i, m in enumerate(members)}
        lobby.status = STARTED
        lobby.room = room
        lobby.game_id = record.id
        self.rooms[room.game_id] = room
        self._lobby_of_room[room.game_id] = lobby
        for m in members:
            if m.endpoint is not None:
                room.audience.append(m.endpoint)
                m.endpoint.send(room.start_message([lobby.game_seats[m.seat]]))

        # While the game was being stored, no member could join, leave or
        # ready (the lobby was no longer open), but sockets could close or
        # come back. One that closed and has not come back is a player lost
        # mid-game, from the first tick: away, with its grace.
        for m in members:
            if m.endpoint is None:
                self._away(lobby, m, room, lobby.game_seats[m.seat])
        self._broadcast_lobby(lobby)
        self.scheduler.add(room)
        self.counters.games_started += 1
        logger.info("lobby %s: game %s started", lobby.id, room.game_id)
        return room

    def _new_game(
        self,
        lobby_id: str | None,
        mode: str,
        players: list[PlayerRecord],
        points: int,
        token_hash: bytes | None,
        now: float,
    ) -> tuple[Game, GameRecord]:
        rules = Rules(tick_rate=self.config.tick_rate, points_to_win=points)
        seed = int.from_bytes(ids.new_token()[1][:8], "big") >> 1
        game = Game(rules, len(players), seed)
        record = GameRecord(
            id=ids.random_id(ids.GAME_ID_LENGTH),
            lobby_id=lobby_id,
            mode=mode,
            status="waiting" if mode == "local" else "running",
            seed=seed,
            rules=rules.to_wire(),
            created_at=now,
            started_at=None if mode == "local" else now,
            ended_at=None,
            winner_seat=None,
            token_hash=token_hash,
            players=tuple(
                GamePlayerRecord(i, p.id, p.display_name) for i, p in enumerate(players)
            ),
            rounds=tuple(
                RoundRecord(i, a, b) for i, (a, b) in enumerate(game.schedule)
            ),
        )
        return game, record

    async def _insert_game(
        self, record: GameRecord, new_players: tuple[PlayerRecord, ...] | list[Any]
    ) -> None:
        for _ in range(ID_ATTEMPTS):
            try:
                await self.store.create_game(record, new_players)
                return
            except DuplicateIdError:
                record = replace(record, id=ids.random_id(ids.GAME_ID_LENGTH))
        raise InternalError("no free game id after several attempts")

    def _game_summary(self, room: Room) -> dict[str, Any]:
        game = room.game
        return {
            "game_id": room.game_id,
            "game_mode": room.mode,
            "players": room.names,
            "points_to_win": game.rules.points_to_win,
            "rounds": [
                {"round": i, "players": [room.names[a], room.names[b]], "seats": [a, b]}
                for i, (a, b) in enumerate(game.schedule)
            ],
            "winner_rule": (
                "most rounds won, then point difference, then points scored, "
                "then the earlier seat"
            ),
        }

    async def game_view(self, game_id: str) -> dict[str, Any]:
        record = await self.store.get_game(ids.normalize_id(game_id))
        if record is None:
            raise ClientError("unknown_game")
        names = [p.name for p in record.players]
        done = round_results(record)
        view: dict[str, Any] = {
            "game_id": record.id,
            "lobby_id": record.lobby_id,
            "game_mode": record.mode,
            "status": record.status,
            "points_to_win": record.rules.get("points_to_win"),
            "players": [
                {"seat": p.seat, "player_id": p.player_id, "name": p.name}
                for p in record.players
            ],
            "rounds": [
                {
                    "round": r.index,
                    "players": [names[r.left_seat], names[r.right_seat]],
                    "seats": [r.left_seat, r.right_seat],
                    "score": [r.left_score, r.right_score],
                    "status": r.status,
                    "winner": None if r.winner_seat is None else names[r.winner_seat],
                }
                for r in record.rounds
            ],
            "standings": standings_view(standings(len(names), done), names),
            "winner": None if record.winner_seat is None else names[record.winner_seat],
            "winner_seat": record.winner_seat,
            "created_at": record.created_at,
            "started_at": record.started_at,
            "ended_at": record.ended_at,
        }
        room = self.rooms.get(record.id)
        if room is not None and not room.finished:
            r = room.game.round
            view["live"] = {"round": room.game.round_index, "score": list(r.score)}
        return view

    # Sockets ------------------------------------------------------------------

    def hello(self, endpoint: Endpoint, token: str) -> Session | StoredToken | None:
        """Bind a socket to what its token opens; ClientError if it may not.

        A token whose game has ended here gets that game's GAME_END and a
        close (4006) instead of a seat, and None is returned. A token this
        process knows nothing of comes back as ``StoredToken``: the caller
        must then await ``hello_stored`` with it, which answers the socket.
        """
        token_hash = ids.hash_token(token)
        bound = self._tokens.get(token_hash)
        if bound is None:
            final = self._results.get(token_hash)
            if final is None:
                return StoredToken(token_hash)
            endpoint.send(final)
            endpoint.close(protocol.CLOSE_GAME_OVER, "game over")
            return None
        if isinstance(bound, LocalGame):
            return self._hello_local(endpoint, bound)

        lobby, member = bound
        if member.forfeited:
            raise ClientError("seat_forfeited")
        old = member.endpoint
        member.endpoint = endpoint
        member.absent_since = None
        lobby.idle_since = None
        session = Session(endpoint, lobby=lobby, member=member)
        rules = replace(self.rules, points_to_win=lobby.points_to_win)
        welcome = self._welcome(
            endpoint, rules, lobby.id, member.player_id, member.name
        )
        endpoint.send(welcome)
        room = lobby.room
        if room is not None and not room.finished:
            if old is not None and old in room.audience:
                room.audience.remove(old)
            room.audience.append(endpoint)
            seat = lobby.game_seats[member.seat]
            # A new socket for the seat starts its input sequence afresh.
            room.seqs[seat] = room.acks[seat] = 0
            room.moves[seat] = 0.0
            endpoint.send(room.start_message([seat]))
            round_start = room.round_message()
            if round_start is not None:
                endpoint.send(round_start)
            if member.away:
                self._back(lobby, member, room, seat)
        if old is not None:
            old.close(protocol.CLOSE_REPLACED, "another socket took this seat")
        self._broadcast_lobby(lobby)
        return session

    async def hello_stored(self, endpoint: Endpoint, lookup: StoredToken) -> None:
        """Answer HELLO with a token of a game that ended before this process.

        Sends the stored game's GAME_END and closes the socket (4006), as
        ``hello`` does for a game that ended here; raises ClientError
        ``invalid_token`` if the store knows no ended game for the token.
        The look-up is one primary-key read (a game's three on a hit), and
        the caller allows one per socket, which either answer closes: a
        stream of made-up tokens costs a connection each.
        """
        record = await self.store.get_ended_game(lookup.token_hash)
        if record is None:
            raise ClientError("invalid_token")
        names = [p.name for p in record.players]
        view = game_end_view(
            record.id, record.status, record.winner_seat, names, round_results(record)
        )
        final = protocol.pack([protocol.GAME_END, {**view, "saved": True}])
        self._remember_result(lookup.token_hash, final)
        logger.info("game %s: a token of it answered from the store", record.id)
        endpoint.send(final)
        endpoint.close(protocol.CLOSE_GAME_OVER, "game over")

    def _hello_local(self, endpoint: Endpoint, local: LocalGame) -> Session:
        room = local.room
        if room.finished:
            raise ClientError("invalid_token")
        old = local.endpoint
        local.endpoint = endpoint
        room.audience[:] = [endpoint]
        timer = self._grace.pop(local, None)
        if timer is not None:
            timer.cancel()
        endpoint.send(self._welcome(endpoint, room.game.rules, None, None, None))
        endpoint.send(room.start_message(list(range(room.game.n_players))))
        round_start = room.round_message()
        if local.started and round_start is not None:
            endpoint.send(round_start)
        if old is not None:
            old.close(protocol.CLOSE_REPLACED, "another socket took this game")
        if room.away:
            for seat in range(room.game.n_players):
                room.set_away(seat, False)
            back = {"seat": None, "name": None, "resume_in": room.countdown}
            endpoint.send(protocol.pack([protocol.BACK, back]))
        if not local.started:
            local.started = True
            del self._waiting_local[room.game_id]
            self._count(local.creator, -1)
            self.rooms[room.game_id] = room
            self._persist(room, self.store.set_game_running(room.game_id, time.time()))
            self.scheduler.add(room)
            logger.info("local game %s started", room.game_id)
        return Session(endpoint, local=local)

    def _welcome(
        self,
        endpoint: Endpoint,
        rules: Rules,
        lobby_id: str | None,
        player_id: str | None,
        name: str | None,
    ) -> bytes:
        return protocol.pack(
            [
                protocol.WELCOME,
                {
                    "socket_id": endpoint.socket_id,
                    "lobby_id": lobby_id,
                    "player_id": player_id,
                    "name": name,
                    "tick_rate": self.config.tick_rate,
                    "rules": rules.to_wire(),
                },
            ]
        )

    def ready(self, session: Session, ready: bool) -> None:
        lobby, member = self._seat(session)
        if lobby.status != OPEN:
            raise ClientError("lobby_started")
        if member.ready != ready:
            member.ready = ready
            self._broadcast_lobby(lobby)

    async def start_game(self, session: Session) -> None:
        lobby, member = self._seat(session)
        await self._start_lobby_game(lobby, member)

    def plain_input(self, session: Session, seq: int, move: float) -> bool:
        """Apply a remote INPUT that needs no error; False to use ``input``.

        The per-tick path: a player with a paddle in the round in play. Any
        other case returns False, and ``input`` decides and explains.
        """
        lobby = session.lobby
        member = session.member
        if lobby is None or member is None:
            return False
        room = lobby.room
        if room is None or room.finished:
            return False
        return room.submit(lobby.game_seats[member.seat], seq, move)

    def input(self, session: Session, message: Input) -> None:
        local = session.local
        if local is not None:
            room = local.room
            seat = message.seat
            if seat is None or seat >= room.game.n_players:
                raise ClientError("invalid_field", "a local input names a valid seat")
        else:
            lobby, member = self._seat(session)
            maybe_room = lobby.room
            if maybe_room is None:
                raise ClientError("not_in_game")
            room = maybe_room
            seat = lobby.game_seats[member.seat]
            if message.seat is not None and message.seat != seat:
                raise ClientError("forbidden", "a socket moves only its own paddle")
        if room.finished:
            # Sent before its sender heard the last point: the input changes
            # nothing, and GAME_END follows once the game's end is stored.
            return
        if not room.submit(seat, message.seq, message.move):
            raise ClientError("not_in_game")

    async def leave(self, session: Session) -> None:
        """The player gives up the seat; the token stops working.

        The seat is freed in memory at once (so no second LEAVE can use it),
        stored, and only then acknowledged with close 4005. Until the write
        has settled the lobby cannot start: if it fails the seat comes back.
        """
        lobby, member = self._seat(session)
        await self._give_up(lobby, member)

    async def leave_lobby(
        self, token: str | None, lobby_id: str, user: PlayerRecord | None = None
    ) -> dict[str, Any]:
        """LEAVE over HTTP: the seat a token or a logged-in user holds."""
        lobby, member = await self._acting_member(
            token, user, lobby_id, "forbidden", "no seat in this lobby"
        )
        await self._give_up(lobby, member)
        return {"lobby_id": lobby.id, "seat": member.seat, "left": True}

    async def _give_up(self, lobby: Lobby, member: Member) -> None:
        if self._closing:
            raise ClientError("shutting_down")
        if lobby.status != OPEN:
            raise ClientError("lobby_started")
        guests_may_host = self.config.guests_may_host
        was_host = member.seat == lobby.host_seat
        lobby.remove(member.seat, users_host=not guests_may_host)
        del self._tokens[member.token_hash]
        emptied = not lobby.members
        # With guests barred from hosting, the last user leaving closes it.
        closed = emptied or not lobby.host_is_allowed(guests_may_host)
        if closed:
            lobby.status = CLOSED
            self._drop(lobby)

        # Shutdown waits for the leave to settle (see close): a stored one is
        # acknowledged with 4005 before any socket is told 1001.
        with self._awaited_at_close():
            now = time.time()
            lobby.leaving += 1
            try:
                await self.store.remove_member(lobby.id, member.player_id, now)
                if closed:
                    await self.store.set_lobby_status(lobby.id, CLOSED, now)
                else:
                    host = lobby.members[lobby.host_seat]
                    await self.store.set_lobby_host(lobby.id, host.player_id)
            except Exception as exc:
                if lobby.status == CLOSED and not closed:
                    # The lobby closed meanwhile (its host, or the last other
                    # member leaving): the seat goes with it, stored or not.
                    logger.warning("lobby %s: leave not stored", lobby.id)
                    self._void_seat(member, "lobby closed")
                    return
                # Not stored: the player keeps the seat it asked to give up.
                self._restore_member(lobby, member, closed, was_host)
                raise InternalError(f"lobby {lobby.id}: leave not stored") from exc
            finally:
                lobby.leaving -= 1

            if member.endpoint is not None:
                member.endpoint.close(protocol.CLOSE_LEFT, "left the lobby")
                member.endpoint = None
            if emptied:
                logger.info("lobby %s closed: everyone left", lobby.id)
                return
            if closed:
                self._void_seats(lobby, "no host left")
                logger.info("lobby %s closed: no user left to host it", lobby.id)
                return
            if not lobby.endpoints():
                lobby.idle_since = time.monotonic()
            self._broadcast_lobby(lobby)

    async def _give_up_absent(self, lobby: Lobby, member: Member) -> None:
        # Still so once this task runs: no START, no socket, no LEAVE since.
        seated = lobby.members.get(member.seat) is member
        away = seated and member.endpoint is None
        if lobby.status == OPEN and away and not self._closing:
            await self._give_up(lobby, member)

    def _restore_member(
        self, lobby: Lobby, member: Member, closed: bool, was_host: bool
    ) -> None:
        if closed:
            lobby.status = OPEN
            self._hold(lobby)
        if member.seat not in lobby.members:
            lobby.members[member.seat] = member
            if was_host:
                lobby.host_seat = member.seat
            self._tokens[member.token_hash] = (lobby, member)

    def disconnect(self, session: Session) -> None:
        """The socket closed. The seat stays; the same token may reconnect."""
        endpoint = session.endpoint
        local = session.local
        if local is not None:
            if local.endpoint is endpoint and not local.room.finished:
                self._local_away(local)
            return
        member, lobby = session.member, session.lobby
        if member is None or lobby is None or member.endpoint is not endpoint:
            return
        member.endpoint = None
        member.ready = False
        member.absent_since = time.monotonic()
        room = lobby.room
        if room is not None and endpoint in room.audience:
            room.audience.remove(endpoint)
        seat = lobby.game_seats.get(member.seat)
        if room is not None and not room.finished and seat is not None:
            self._away(lobby, member, room, seat)
        if not lobby.endpoints():
            lobby.idle_since = time.monotonic()
        self._broadcast_lobby(lobby)

    # Expiry --------------------------------------------------------------

    def _arm_sweep(self) -> None:
        config = self.config
        every = min(SWEEP_EVERY, config.lobby_idle_timeout / 2, config.seat_timeout / 2)
        self._sweeper = asyncio.get_running_loop().call_later(every, self._sweep)

    def _sweep(self) -> None:
        """Expire open lobbies and unopened local games left idle too long.

        An expired lobby is closed in the store and forgotten here: its
        tokens stop working, and joining it answers lobby_closed (410).

        In an open lobby where someone is connected, a member whose seat has
        had no socket for ``seat_timeout`` gives it up, as with LEAVE: a
        player who vanished (the host included, whose role passes on) would
        otherwise keep the others from ever starting. A lobby where nobody
        is connected is left whole until it expires.
        """
        now = time.monotonic()
        limit = self.config.lobby_idle_timeout
        seat_limit = self.config.seat_timeout
        for lobby in list(self.lobbies.values()):
            if lobby.status != OPEN:
                continue
            idle = lobby.idle_since
            if idle is not None and now - idle > limit:
                self._expire(lobby)
                continue
            if idle is not None:
                continue  # nobody connected
            for member in list(lobby.members.values()):
                absent = member.absent_since
                if absent is not None and now - absent > seat_limit:
                    member.absent_since = None  # one give-up per absence
                    logger.info(
                        "lobby %s: seat %d given up, no socket for %.0f s",
                        lobby.id,
                        member.seat,
                        now - absent,
                    )
                    self._persist_lobby(self._give_up_absent(lobby, member))
        for local in list(self._waiting_local.values()):
            if now - local.created > limit:
                self._drop_unopened(local, "expired unopened")
        self._arm_sweep()

    def _drop_unopened(self, local: LocalGame, why: str) -> None:
        """A local game whose socket never came ends as interrupted.

        As any ended game's, its token then answers HELLO with the GAME_END.
        """
        del self._waiting_local[local.room.game_id]
        self._count(local.creator, -1)
        self._interrupt(local.room, why)

    def _expire(self, lobby: Lobby) -> None:
        lobby.status = CLOSED
        self._drop(lobby)
        for member in lobby.members.values():
            self._tokens.pop(member.token_hash, None)
        self._persist_lobby(self.store.set_lobby_status(lobby.id, CLOSED, time.time()))
        logger.info("lobby %s expired: idle", lobby.id)

    # Away and back --------------------------------------------------------

    def _local_away(self, local: LocalGame) -> None:
        """Every seat is on the one socket: the whole game waits for it."""
        room = local.room
        local.endpoint = None
        room.audience.clear()
        for seat in range(room.game.n_players):
            room.set_away(seat, True)
        self._grace[local] = asyncio.get_running_loop().call_later(
            self.config.reconnect_grace,
            self._interrupt,
            room,
            "the local game's socket stayed away",
        )

    def _away(self, lobby: Lobby, member: Member, room: Room, seat: int) -> None:
        """A player's socket dropped mid-game: pause, and start the grace."""
        member.away = True
        room.set_away(seat, True)
        grace = self.config.reconnect_grace
        loop = asyncio.get_running_loop()
        self._grace[member] = loop.call_later(
            grace, self._forfeit, lobby, member, room, seat
        )
        logger.info("game %s: %r is away", room.game_id, member.name)
        room.broadcast(
            protocol.pack(
                [
                    protocol.AWAY,
                    {"seat": seat, "name": member.name, "grace": grace},
                ]
            )
        )

    def _back(self, lobby: Lobby, member: Member, room: Room, seat: int) -> None:
        member.away = False
        timer = self._grace.pop(member, None)
        if timer is not None:
            timer.cancel()
        room.set_away(seat, False)
        logger.info("game %s: %r is back", room.game_id, member.name)
        room.broadcast(
            protocol.pack(
                [
                    protocol.BACK,
                    {"seat": seat, "name": member.name, "resume_in": room.countdown},
                ]
            )
        )

    def _forfeit(self, lobby: Lobby, member: Member, room: Room, seat: int) -> None:
        """The grace is over: the seat forfeits its rounds; its token is void."""
        self._grace.pop(member, None)
        if room.finished or not member.away:
            return
        member.away = False
        member.forfeited = True
        logger.info("game %s: %r forfeits", room.game_id, member.name)
        room.forfeit(seat)
        self._broadcast_lobby(lobby)

    def _seat(self, session: Session) -> tuple[Lobby, Member]:
        lobby, member = session.lobby, session.member
        if lobby is None or member is None:
            raise ClientError("forbidden", "this socket has no lobby seat")
        if lobby.members.get(member.seat) is not member:
            # The seat was given up (LEAVE, over HTTP too) or the lobby closed.
            raise ClientError("forbidden", "this socket's seat was given up")
        return lobby, member

    def _broadcast_lobby(self, lobby: Lobby) -> None:
        endpoints = lobby.endpoints()
        if endpoints:
            data = protocol.pack([protocol.LOBBY, lobby.view()])
            for endpoint in endpoints:
                endpoint.send(data)

    # Results (RoomListener), written after the tick ------------------------

    def round_ended(self, room: Room, result: RoundResult) -> None:
        status = "forfeit" if result.forfeit else "finished"
        left, right = result.score
        self._persist(
            room,
            self.store.finish_round(
                room.game_id,
                result.index,
                left,
                right,
                result.winner,
                status,
                time.time(),
            ),
        )

    def game_ended(self, room: Room, winner: int, final: tuple[Standing, ...]) -> None:
        self.scheduler.discard_finished()
        logger.info("game %s finished: %r wins", room.game_id, room.names[winner])
        message = game_end_view(
            room.game_id, "finished", winner, room.names, room.game.results, final
        )
        self._finish(room, "finished", winner, message)

    def _room_failed(self, room: Room, exc: BaseException) -> None:
        logger.error(
            "game %s failed at tick %d", room.game_id, room.game.tick, exc_info=exc
        )
        self.counters.games_failed += 1
        room.broadcast(protocol.error("game_error", "The game stopped: server error."))
        message = game_end_view(room.game_id, "error", None, room.names, ())
        self._finish(room, "error", None, message, protocol.CLOSE_INTERNAL)

    def _interrupt(
        self, room: Room, why: str, close_code: int = protocol.CLOSE_GAME_OVER
    ) -> None:
        if room.finished:
            return
        room.finished = True
        self.scheduler.discard_finished()
        logger.info("game %s interrupted: %s", room.game_id, why)
        message = game_end_view(room.game_id, "interrupted", None, room.names, ())

        # Keep the score of the round in play; the store marks it interrupted.
        game = room.game
        if game.tick and not game.in_break and not game.finished:
            left, right = game.round.score
            write = self.store.finish_round(
                room.game_id,
                game.round_index,
                left,
                right,
                None,
                "interrupted",
                time.time(),
            )
            self._persist(room, write)
        self._finish(room, "interrupted", None, message, close_code)

    def _finish(
        self,
        room: Room,
        status: str,
        winner: int | None,
        message: dict[str, Any],
        close_code: int = protocol.CLOSE_GAME_OVER,
    ) -> None:
        """Store the game's end, then tell its sockets, then release it all."""
        audience = list(room.audience)
        going = close_code == protocol.CLOSE_GOING_AWAY
        reason = "server shutting down" if going else "game over"

        async def commit() -> None:
            saved = True
            try:
                await self.store.finish_game(room.game_id, status, winner, time.time())
            except Exception:
                saved = False
                logger.exception("game %s: could not store its end", room.game_id)
            data = protocol.pack([protocol.GAME_END, {**message, "saved": saved}])
            for endpoint in audience:
                endpoint.send(data)
                endpoint.close(close_code, reason)
            self._release(room, data)

        self._persist(room, commit())
        if status == "finished":
            self.counters.games_finished += 1

    def _release(self, room: Room, final: bytes) -> None:
        """Forget a game that has ended; its tokens now get ``final``."""
        self.rooms.pop(room.game_id, None)
        lobby = self._lobby_of_room.pop(room.game_id, None)
        if lobby is not None:
            lobby.status = CLOSED
            self._drop(lobby)
            hashes = [member.token_hash for member in lobby.members.values()]
            for member in lobby.members.values():
                timer = self._grace.pop(member, None)
                if timer is not None:
                    timer.cancel()
            self._persist_lobby(
                self.store.set_lobby_status(lobby.id, CLOSED, time.time())
            )
        else:
            local_hash = self._local_tokens.pop(room.game_id, None)
            hashes = [] if local_hash is None else [local_hash]
        for token_hash in hashes:
            bound = self._tokens.pop(token_hash, None)
            if isinstance(bound, LocalGame):
                timer = self._grace.pop(bound, None)
                if timer is not None:
                    timer.cancel()
            self._remember_result(token_hash, final)

    def _remember_result(self, token_hash: bytes, final: bytes) -> None:
        """Answer the token's next HELLO with ``final`` without the store."""
        self._results[token_hash] = final
        if len(self._results) > MAX_RESULTS:
            self._results.popitem(last=False)

    def _persist(self, room: Room, write: Awaitable[None]) -> None:
        """Run ``write`` after the room's earlier writes, outside the tick."""
        previous = self._saving.get(room.game_id)

        async def chained() -> None:
            if previous is not None:
                await asyncio.shield(previous)
            try:
                await write
            except Exception:
                logger.exception("game %s: a write failed", room.game_id)

        task = asyncio.get_running_loop().create_task(chained())
        self._saving[room.game_id] = task
        task.add_done_callback(lambda t: self._forget_save(room.game_id, t))

    def _forget_save(self, game_id: str, task: asyncio.Future[None]) -> None:
        if self._saving.get(game_id) is task:
            del self._saving[game_id]

    async def _wait_saves(self, room: Room) -> None:
        task = self._saving.get(room.game_id)
        if task is not None:
            await asyncio.shield(task)

    def _persist_lobby(self, write: Awaitable[None]) -> None:
        async def run() -> None:
            try:
                await write
            except Exception:
                logger.exception("a lobby write failed")

        task = asyncio.get_running_loop().create_task(run())
        self._lobby_writes.add(task)
        task.add_done_callback(self._lobby_writes.discard)

    async def drain(self) -> None:
        """Wait for every queued write; used at shutdown and by tests."""
        while self._saving or self._lobby_writes:
            pending = [*self._saving.values(), *self._lobby_writes]
            await asyncio.gather(*pending, return_exceptions=True)
