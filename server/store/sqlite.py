"""The ``Store`` backed by one SQLite file, reached through aiosqlite.

How it works:

- At open, yoyo-migrations brings the schema up to date, in a worker thread,
  over its own short-lived connection. The store's connections open only once
  the schema is current, so no query ever runs against an old one.
- The file is in WAL mode, so reads never wait for a write and a write never
  waits for reads. ``synchronous=FULL`` makes every commit reach the disk
  before the call returns: the server tells players their game was saved.
- Two connections, each with its own aiosqlite thread. The writer runs every
  change as one ``BEGIN IMMEDIATE`` ... ``COMMIT`` transaction, and an
  asyncio lock keeps those transactions from interleaving on it. The reader
  is ``query_only`` and wraps each multi-query read in a transaction so the
  lobby and its members, or the game and its rounds, come from one snapshot.
- On any failure the transaction is rolled back before the lock is released.
  aiosqlite runs a connection's statements in the order they were queued,
  so even a cancelled caller's ROLLBACK lands before the next BEGIN.
- Group commit for the high-rate writes. Lobby creations and joins queue up
  while a transaction is running and are then written together: one
  transaction, one ``executemany`` per table, one fsync, however many there
  are. Each caller still returns only after the commit that holds its rows.
  If a batch fails as a whole, its entries are retried one transaction each,
  so one bad entry fails alone and the others land.
- ``busy_timeout`` only matters when another process (an operator's sqlite3
  shell, a backup) holds the file; our own writes never contend.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import aiosqlite
import orjson
from yoyo import get_backend, read_migrations

from server.store.base import DuplicateIdError, DuplicateNameError, Store, StoreError
from server.store.records import (
    GamePlayerRecord,
    GameRecord,
    LobbyRecord,
    MemberRecord,
    PlayerRecord,
    ProfileRecord,
    RecentGameRecord,
    RoundRecord,
    SessionRecord,
    UserRecord,
)

logger = logging.getLogger(__name__)

# The migrations ship as package data next to this module. yoyo reads a real
# directory, so a zipped install would need importlib.resources.as_file here.
MIGRATIONS_DIR = Path(__file__).parent / "migrations"

# Long enough to ride out an operator's query or a backup; short enough that
# a stuck lock surfaces as an error instead of a hung server.
BUSY_TIMEOUT_MS = 5000

_LOBBY_COLUMNS = "id, host_player_id, status, max_players, points_to_win, created_at"
_MEMBER_COLUMNS = "lobby_id, player_id, seat, name, token_hash, joined_at"
_GAME_COLUMNS = (
    "id, lobby_id, mode, status, seed, rules, created_at, started_at, ended_at,"
    " winner_seat, token_hash"
)
# The member's player kind, read with every member row.
_MEMBER_KIND = "(SELECT kind FROM players p WHERE p.id = player_id) AS kind"
_USER_COLUMNS = "player_id, username, username_key, password_hash, created_at"
_SESSION_COLUMNS = "token_hash, player_id, created_at, expires_at, revoked_at"
_ROUND_COLUMNS = (
    "idx, left_seat, right_seat, left_score, right_score, status, winner_seat, ended_at"
)

# Driver failures we turn into StoreError. OverflowError is what sqlite3
# raises for an integer wider than 64 bits, such as an oversized seed.
_DRIVER_ERRORS = (sqlite3.Error, OverflowError)


async def open_sqlite_store(path: str | Path) -> SqliteStore:
    """Open (creating if needed) the database at ``path`` and migrate it.

    Parent folders are created. The caller owns the store and must ``close``
    it on shutdown; at start-up it should call ``interrupt_unfinished_games``
    before serving, then ``load_open_lobbies``.
    """
    db_path = Path(path).resolve()
    try:
        db_path.parent.mkdir(parents=True, exist_ok=True)
        applied = await asyncio.to_thread(_apply_migrations, db_path)
    except Exception as exc:
        # yoyo raises its own classes (LockTimeout, BadMigration) besides the
        # driver's; all of them mean the schema is not usable.
        raise StoreError(f"could not prepare the database at {db_path}") from exc

    writer = await _connect(db_path, query_only=False)
    try:
        reader = await _connect(db_path, query_only=True)
    except BaseException:
        await writer.close()
        raise
    logger.info("store opened at %s, %d migrations applied", db_path, applied)
    return SqliteStore(writer, reader)


def _apply_migrations(path: Path) -> int:
    """Apply the migrations this file lacks; blocking. Returns how many ran.

    yoyo's lock row keeps two processes from migrating the same file at once.
    A process killed mid-migration leaves that row behind, and the next open
    fails with a LockTimeout until an operator runs ``yoyo break-lock``.
    """
    # yoyo hands the path to SQLite as a URI, where '?', '#' and '%' would
    # otherwise be taken as syntax.
    uri = "sqlite:///" + quote(str(path), safe="/")
    migrations = read_migrations(str(MIGRATIONS_DIR))
    with get_backend(uri) as backend, backend.lock():
        pending = backend.to_apply(migrations)
        backend.apply_migrations(pending)
    return len(pending)


async def _connect(path: Path, *, query_only: bool) -> aiosqlite.Connection:
    # isolation_level=None: the driver opens no transactions of its own, we
    # issue BEGIN and COMMIT ourselves.
    try:
        conn = await aiosqlite.connect(path, isolation_level=None)
    except _DRIVER_ERRORS as exc:
        raise StoreError(f"could not open {path}") from exc
    try:
        conn.row_factory = sqlite3.Row
        await _run(conn, f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        await _run(conn, "PRAGMA foreign_keys = ON")
        await _run(conn, "PRAGMA synchronous = FULL")
        if query_only:
            await _run(conn, "PRAGMA query_only = ON")
        else:
            # The journal mode is stored in the file, so setting it once on
            # the writer is enough for every later connection.
            mode = await _pragma(conn, "journal_mode = WAL")
            if str(mode).lower() != "wal":
                raise StoreError(f"{path} refused WAL mode (got {mode!r})")
        # The pragma is silently ignored by builds without foreign keys.
        if await _pragma(conn, "foreign_keys") != 1:
            raise StoreError(f"SQLite at {path} does not enforce foreign keys")
    except BaseException as exc:
        await conn.close()
        if isinstance(exc, _DRIVER_ERRORS):
            raise StoreError(f"could not configure {path}") from exc
        raise
    return conn


class SqliteStore(Store):
    """``Store`` over one SQLite file. Make one with ``open_sqlite_store``."""

    def __init__(
        self, writer: aiosqlite.Connection, reader: aiosqlite.Connection
    ) -> None:
        self._writer = writer
        self._reader = reader
        self._write_lock = asyncio.Lock()
        self._read_lock = asyncio.Lock()
        self._closed = False
        # Entries waiting for the next group commit, and the task writing them.
        self._queued_lobbies: list[_NewLobby] = []
        self._queued_members: list[_NewMember] = []
        self._committer: asyncio.Task[None] | None = None

    async def close(self) -> None:
        # asyncio.Lock wakes waiters in order, so writes queued before this
        # call still run; those queued after it find the store closed.
        if self._committer is not None:
            await asyncio.gather(self._committer, return_exceptions=True)
        async with self._write_lock:
            if self._closed:
                return
            self._closed = True
            await self._writer.close()
        async with self._read_lock:
            await self._reader.close()

    # Lobbies.

    async def create_lobby(
        self, lobby: LobbyRecord, host: PlayerRecord, host_member: MemberRecord
    ) -> None:
        _require(
            host_member.lobby_id == lobby.id
            and host_member.player_id == host.id == lobby.host_player_id,
            "create_lobby: lobby, host and host_member disagree",
        )
        entry = _NewLobby(lobby, host, host_member, self._future())
        self._queued_lobbies.append(entry)
        await self._commit_soon(entry.done)

    async def add_member(self, member: MemberRecord, player: PlayerRecord) -> None:
        _require(member.player_id == player.id, "add_member: member and player differ")
        entry = _NewMember(member, player, self._future())
        self._queued_members.append(entry)
        await self._commit_soon(entry.done)

    # Group commit.

    def _future(self) -> asyncio.Future[None]:
        if self._closed:
            raise StoreError("the store is closed")
        return asyncio.get_running_loop().create_future()

    async def _commit_soon(self, done: asyncio.Future[None]) -> None:
        """Make sure a committer runs, then wait for ``done``.

        The wait is shielded: a cancelled caller stops waiting, but its entry
        stays in the batch and is written (or fails) with the others.
        """
        if self._committer is None or self._committer.done():
            loop = asyncio.get_running_loop()
            self._committer = loop.create_task(self._commit_queued())
        await asyncio.shield(done)

    async def _commit_queued(self) -> None:
        while self._queued_lobbies or self._queued_members:
            async with self._write_lock:
                # Taken under the lock: all that queued while we waited for
                # the previous transaction joins this one.
                lobbies, self._queued_lobbies = self._queued_lobbies, []
                members, self._queued_members = self._queued_members, []
                if self._closed:
                    queued: list[_NewLobby | _NewMember] = [*lobbies, *members]
                    for item in queued:
                        _settle(item.done, StoreError("the store is closed"))
                    return
                lobbies = await self._drop_taken_lobby_ids(lobbies)
                every: list[_NewLobby | _NewMember] = [*lobbies, *members]
                try:
                    async with self._transaction_held(
                        self._writer, "IMMEDIATE", "group commit"
                    ) as conn:
                        await _insert_lobbies(conn, lobbies)
                        await _insert_members(conn, members)
                except Exception as exc:
                    logger.warning("group commit failed; writing one by one: %s", exc)
                    await self._write_one_by_one(lobbies, members)
                    continue
            for written in every:
                _settle(written.done, None)

    async def _drop_taken_lobby_ids(self, lobbies: list[_NewLobby]) -> list[_NewLobby]:
        """Fail the entries whose lobby id exists or repeats; return the rest."""
        if not lobbies:
            return lobbies
        ids = [e.lobby.id for e in lobbies]
        marks = ", ".join("?" * len(ids))
        try:
            rows = await _fetch(
                self._writer, f"SELECT id FROM lobbies WHERE id IN ({marks})", *ids
            )
        except _DRIVER_ERRORS as exc:
            error = StoreError("could not check lobby ids")
            error.__cause__ = exc
            for entry in lobbies:
                _settle(entry.done, error)
            return []
        taken = {row[0] for row in rows}
        kept: list[_NewLobby] = []
        for entry in lobbies:
            if entry.lobby.id in taken:
                _settle(
                    entry.done, DuplicateIdError(f"lobby id {entry.lobby.id} is taken")
                )
            else:
                taken.add(entry.lobby.id)
                kept.append(entry)
        return kept

    async def _write_one_by_one(
        self, lobbies: list[_NewLobby], members: list[_NewMember]
    ) -> None:
        entries: list[_NewLobby | _NewMember] = [*lobbies, *members]
        for entry in entries:
            try:
                async with self._transaction_held(
                    self._writer, "IMMEDIATE", "write one entry"
                ) as conn:
                    if isinstance(entry, _NewLobby):
                        await _insert_lobbies(conn, [entry])
                    else:
                        await _insert_members(conn, [entry])
            except Exception as exc:
                _settle(entry.done, exc)
            else:
                _settle(entry.done, None)

    async def remove_member(self, lobby_id: str, player_id: str, at: float) -> None:
        async with self._write(f"remove {player_id} from {lobby_id}") as conn:
            changed = await _run(
                conn,
                "UPDATE lobby_members SET left_at = ?"
                " WHERE lobby_id = ? AND player_id = ? AND left_at IS NULL",
                at,
                lobby_id,
                player_id,
            )
            _require(changed == 1, f"{player_id} is not a member of {lobby_id}")

    async def set_lobby_host(self, lobby_id: str, player_id: str) -> None:
        async with self._write(f"set host of {lobby_id}") as conn:
            changed = await _run(
                conn,
                "UPDATE lobbies SET host_player_id = ? WHERE id = ?",
                player_id,
                lobby_id,
            )
            _require(changed == 1, f"no lobby {lobby_id}")

    async def set_lobby_status(self, lobby_id: str, status: str, at: float) -> None:
        async with self._write(f"set status of {lobby_id}") as conn:
            changed = await _run(
                conn,
                "UPDATE lobbies SET status = ?, status_changed_at = ? WHERE id = ?",
                status,
                at,
                lobby_id,
            )
            _require(changed == 1, f"no lobby {lobby_id}")

    async def get_lobby(self, lobby_id: str) -> LobbyRecord | None:
        async with self._read(f"get lobby {lobby_id}") as conn:
            rows = await _fetch(
                conn, f"SELECT {_LOBBY_COLUMNS} FROM lobbies WHERE id = ?", lobby_id
            )
            if not rows:
                return None
            members = await _fetch(
                conn,
                f"SELECT {_MEMBER_COLUMNS}, {_MEMBER_KIND} FROM lobby_members"
                " WHERE lobby_id = ? AND left_at IS NULL ORDER BY seat",
                lobby_id,
            )
        return _lobby(rows[0], [_member(row) for row in members])

    async def load_open_lobbies(self) -> list[LobbyRecord]:
        async with self._read("load open lobbies") as conn:
            lobbies = await _fetch(
                conn,
                f"SELECT {_LOBBY_COLUMNS} FROM lobbies"
                " WHERE status = 'open' ORDER BY created_at, id",
            )
            members = await _fetch(
                conn,
                f"SELECT {_MEMBER_COLUMNS}, {_MEMBER_KIND} FROM lobby_members"
                " WHERE left_at IS NULL AND lobby_id IN"
                " (SELECT id FROM lobbies WHERE status = 'open')"
                " ORDER BY lobby_id, seat",
            )
        by_lobby: dict[str, list[MemberRecord]] = {}
        for row in members:
            by_lobby.setdefault(row["lobby_id"], []).append(_member(row))
        return [_lobby(row, by_lobby.get(row["id"], [])) for row in lobbies]

    # Games.

    async def create_game(
        self, game: GameRecord, new_players: Sequence[PlayerRecord]
    ) -> None:
        try:
            rules = orjson.dumps(game.rules).decode()
        except orjson.JSONEncodeError as exc:
            raise StoreError(f"rules of game {game.id} are not JSON") from exc

        async with self._write(f"create game {game.id}") as conn:
            if await _exists(conn, "SELECT 1 FROM games WHERE id = ?", game.id):
                raise DuplicateIdError(f"game id {game.id} is taken")
            await _insert_players(conn, new_players)
            await _run(
                conn,
                f"INSERT INTO games ({_GAME_COLUMNS})"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                game.id,
                game.lobby_id,
                game.mode,
                game.status,
                game.seed,
                rules,
                game.created_at,
                game.started_at,
                game.ended_at,
                game.winner_seat,
                game.token_hash,
            )
            await _run_many(
                conn,
                "INSERT INTO game_players (game_id, seat, player_id, name)"
                " VALUES (?, ?, ?, ?)",
                [(game.id, p.seat, p.player_id, p.name) for p in game.players],
            )
            await _run_many(
                conn,
                f"INSERT INTO rounds (game_id, {_ROUND_COLUMNS})"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [_round_row(game.id, r) for r in game.rounds],
            )

            if game.lobby_id is not None:
                await _run(
                    conn,
                    "UPDATE lobbies SET status = 'started', status_changed_at = ?"
                    " WHERE id = ?",
                    game.created_at,
                    game.lobby_id,
                )

    async def set_game_running(self, game_id: str, at: float) -> None:
        async with self._write(f"start game {game_id}") as conn:
            changed = await _run(
                conn,
                "UPDATE games SET status = 'running', started_at = ?"
                " WHERE id = ? AND status = 'waiting'",
                at,
                game_id,
            )
            _require(changed == 1, f"game {game_id} is not waiting")

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
        async with self._write(f"finish round {index} of game {game_id}") as conn:
            changed = await _run(
                conn,
                "UPDATE rounds SET left_score = ?, right_score = ?,"
                " winner_seat = ?, status = ?, ended_at = ?"
                " WHERE game_id = ? AND idx = ?"
                " AND status IN ('pending', 'running')",
                left_score,
                right_score,
                winner_seat,
                status,
                at,
                game_id,
                index,
            )
            _require(changed == 1, f"round {index} of {game_id} is not in play")

    async def finish_game(
        self, game_id: str, status: str, winner_seat: int | None, at: float
    ) -> None:
        async with self._write(f"finish game {game_id}") as conn:
            changed = await _run(
                conn,
                "UPDATE games SET status = ?, winner_seat = ?, ended_at = ?"
                " WHERE id = ? AND status IN ('waiting', 'running')",
                status,
                winner_seat,
                at,
                game_id,
            )
            _require(changed == 1, f"game {game_id} has already ended")
            await _insert_ended_tokens(conn, "g.id = ?", game_id)
            if status != "finished":
                await _run(
                    conn,
                    "UPDATE rounds SET status = 'interrupted', ended_at = ?"
                    " WHERE game_id = ? AND status IN ('pending', 'running')",
                    at,
                    game_id,
                )

    async def get_game(self, game_id: str) -> GameRecord | None:
        async with self._read(f"get game {game_id}") as conn:
            return await _load_game(conn, game_id)

    async def get_ended_game(self, token_hash: bytes) -> GameRecord | None:
        async with self._read("get the ended game of a token") as conn:
            rows = await _fetch(
                conn,
                "SELECT game_id FROM ended_tokens WHERE token_hash = ?",
                token_hash,
            )
            return await _load_game(conn, rows[0][0]) if rows else None

    async def interrupt_unfinished_games(self, at: float) -> int:
        async with self._write("interrupt unfinished games") as conn:
            await _insert_ended_tokens(conn, "g.status IN ('waiting', 'running')")
            # Rounds first: the subquery finds their games by the status
            # the second statement is about to overwrite.
            await _run(
                conn,
                "UPDATE rounds SET status = 'interrupted', ended_at = ?"
                " WHERE status IN ('pending', 'running') AND game_id IN"
                " (SELECT id FROM games WHERE status IN ('waiting', 'running'))",
                at,
            )
            # A lobby whose game was cut short cannot start again, and no
            # process holds its sockets any more: it is over.
            await _run(
                conn,
                "UPDATE lobbies SET status = 'closed', status_changed_at = ?"
                " WHERE status = 'started' AND id IN (SELECT lobby_id FROM games"
                " WHERE status IN ('waiting', 'running'))",
                at,
            )
            count = await _run(
                conn,
                "UPDATE games SET status = 'interrupted', ended_at = ?"
                " WHERE status IN ('waiting', 'running')",
                at,
            )
        if count:
            logger.warning("interrupted %d games a previous process left", count)
        return count

    # Accounts.

    async def create_user(self, user: UserRecord, player: PlayerRecord) -> None:
        _require(
            user.player_id == player.id and player.kind == "user",
            "create_user: user and player disagree",
        )
        async with self._write(f"create user {player.id}") as conn:
            taken = "SELECT 1 FROM users WHERE username_key = ?"
            if await _exists(conn, taken, user.username_key):
                raise DuplicateNameError("the username is taken")
            await _insert_players(conn, [player])
            await _run(
                conn,
                f"INSERT INTO users ({_USER_COLUMNS}) VALUES (?, ?, ?, ?, ?)",
                user.player_id,
                user.username,
                user.username_key,
                user.password_hash,
                user.created_at,
            )

    async def get_user(self, username_key: str) -> UserRecord | None:
        async with self._read("get user") as conn:
            rows = await _fetch(
                conn,
                f"SELECT {_USER_COLUMNS} FROM users WHERE username_key = ?",
                username_key,
            )
        return UserRecord(*rows[0]) if rows else None

    async def create_session(self, session: SessionRecord) -> None:
        async with self._write(f"create a session of {session.player_id}") as conn:
            await _run(
                conn,
                f"INSERT INTO sessions ({_SESSION_COLUMNS}) VALUES (?, ?, ?, ?, ?)",
                session.token_hash,
                session.player_id,
                session.created_at,
                session.expires_at,
                session.revoked_at,
            )

    async def get_session(
        self, token_hash: bytes
    ) -> tuple[SessionRecord, PlayerRecord] | None:
        async with self._read("get session") as conn:
            rows = await _fetch(
                conn,
                "SELECT s.token_hash, s.player_id, s.created_at, s.expires_at,"
                " s.revoked_at, p.kind, p.display_name, p.created_at"
                " FROM sessions s JOIN players p ON p.id = s.player_id"
                " WHERE s.token_hash = ?",
                token_hash,
            )
        if not rows:
            return None
        row = rows[0]
        player = PlayerRecord(row[1], row[5], row[6], row[7])
        return SessionRecord(*row[:5]), player

    async def revoke_session(self, token_hash: bytes, at: float) -> None:
        async with self._write("revoke a session") as conn:
            changed = await _run(
                conn,
                "UPDATE sessions SET revoked_at = coalesce(revoked_at, ?)"
                " WHERE token_hash = ?",
                at,
                token_hash,
            )
            _require(changed == 1, "no such session")

    async def purge_sessions(self, now: float) -> int:
        async with self._write("purge sessions") as conn:
            return await _run(
                conn,
                "DELETE FROM sessions WHERE expires_at < ? OR revoked_at < ?",
                now,
                now,
            )

    # Players.

    async def get_profile(self, player_id: str, recent: int) -> ProfileRecord | None:
        async with self._read(f"get profile {player_id}") as conn:
            players = await _fetch(
                conn,
                "SELECT p.id, p.kind, p.display_name, p.created_at, u.username,"
                " EXISTS (SELECT 1 FROM avatars a WHERE a.player_id = p.id)"
                " FROM players p LEFT JOIN users u ON u.player_id = p.id"
                " WHERE p.id = ?",
                player_id,
            )
            if not players:
                return None
            totals = await _fetch(
                conn,
                "SELECT count(*), coalesce(sum(g.winner_seat IS gp.seat), 0)"
                " FROM game_players gp JOIN games g ON g.id = gp.game_id"
                " WHERE gp.player_id = ? AND g.status = 'finished'",
                player_id,
            )
            games = await _fetch(
                conn,
                "SELECT g.id, g.mode, g.status, g.winner_seat IS gp.seat,"
                " g.created_at, g.ended_at"
                " FROM game_players gp JOIN games g ON g.id = gp.game_id"
                " WHERE gp.player_id = ? ORDER BY g.created_at DESC, g.id LIMIT ?",
                player_id,
                recent,
            )
        row = players[0]
        return ProfileRecord(
            player=PlayerRecord(row[0], row[1], row[2], row[3]),
            username=row[4],
            has_avatar=bool(row[5]),
            games_played=totals[0][0],
            wins=totals[0][1],
            recent_games=tuple(
                RecentGameRecord(g[0], g[1], g[2], bool(g[3]), g[4], g[5])
                for g in games
            ),
        )

    async def set_avatar(self, player_id: str, png: bytes, at: float) -> None:
        async with self._write(f"set avatar of {player_id}") as conn:
            await _run(
                conn,
                "INSERT INTO avatars (player_id, png, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT (player_id)"
                " DO UPDATE SET png = excluded.png, updated_at = excluded.updated_at",
                player_id,
                png,
                at,
            )

    async def get_avatar(self, player_id: str) -> bytes | None:
        async with self._read(f"get avatar of {player_id}") as conn:
            rows = await _fetch(
                conn, "SELECT png FROM avatars WHERE player_id = ?", player_id
            )
        return bytes(rows[0][0]) if rows else None

    # Transactions.

    def _write(
        self, what: str
    ) -> contextlib.AbstractAsyncContextManager[aiosqlite.Connection]:
        return self._transaction(self._writer, self._write_lock, "IMMEDIATE", what)

    def _read(
        self, what: str
    ) -> contextlib.AbstractAsyncContextManager[aiosqlite.Connection]:
        return self._transaction(self._reader, self._read_lock, "DEFERRED", what)

    @contextlib.asynccontextmanager
    async def _transaction(
        self, conn: aiosqlite.Connection, lock: asyncio.Lock, kind: str, what: str
    ) -> AsyncIterator[aiosqlite.Connection]:
        """Run the body as one transaction on ``conn``, alone on it.

        ``what`` names the operation in the StoreError raised on failure; it
        goes to our logs only, never to a client.
        """
        async with lock, self._transaction_held(conn, kind, what):
            yield conn

    @contextlib.asynccontextmanager
    async def _transaction_held(
        self, conn: aiosqlite.Connection, kind: str, what: str
    ) -> AsyncIterator[aiosqlite.Connection]:
        """The body of ``_transaction``, for a caller already holding the lock."""
        if self._closed:
            raise StoreError(f"{what}: the store is closed")
        try:
            # IMMEDIATE takes the write lock up front, so a transaction
            # never fails half-way for want of it.
            await _run(conn, f"BEGIN {kind}")
            yield conn
            await _run(conn, "COMMIT")
        except BaseException as exc:
            # A failed COMMIT (a deferred foreign key, a full disk) leaves
            # the transaction open, so this runs for it too. It fails
            # harmlessly when BEGIN itself did not happen.
            with contextlib.suppress(sqlite3.Error):
                await _run(conn, "ROLLBACK")
            if isinstance(exc, _DRIVER_ERRORS):
                raise StoreError(f"{what} failed: {exc}") from exc
            raise


# Statement helpers. Parameters are always bound, never formatted into SQL;
# the f-strings above only splice in our own column lists.


async def _run(conn: aiosqlite.Connection, sql: str, *params: object) -> int:
    """Execute one statement and return how many rows it changed."""
    async with conn.execute(sql, params) as cursor:
        return cursor.rowcount


async def _run_many(
    conn: aiosqlite.Connection, sql: str, rows: Iterable[Sequence[object]]
) -> None:
    """Execute one statement once per row of parameters."""
    async with conn.executemany(sql, rows):
        pass


async def _fetch(
    conn: aiosqlite.Connection, sql: str, *params: object
) -> list[sqlite3.Row]:
    return list(await conn.execute_fetchall(sql, params))


async def _pragma(conn: aiosqlite.Connection, pragma: str) -> object:
    rows = await _fetch(conn, f"PRAGMA {pragma}")
    return rows[0][0] if rows else None


async def _exists(conn: aiosqlite.Connection, sql: str, *params: object) -> bool:
    return bool(await _fetch(conn, sql, *params))


async def _insert_players(
    conn: aiosqlite.Connection, players: Iterable[PlayerRecord]
) -> None:
    # A known player keeps the row it has: ids are the identity, and a guest
    # or user seen before must not have its first-seen time rewritten.
    await _run_many(
        conn,
        "INSERT INTO players (id, kind, display_name, created_at)"
        " VALUES (?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
        [(p.id, p.kind, p.display_name, p.created_at) for p in players],
    )


@dataclass(slots=True)
class _NewLobby:
    lobby: LobbyRecord
    host: PlayerRecord
    member: MemberRecord
    done: asyncio.Future[None]


@dataclass(slots=True)
class _NewMember:
    member: MemberRecord
    player: PlayerRecord
    done: asyncio.Future[None]


def _settle(done: asyncio.Future[None], error: BaseException | None) -> None:
    if done.done():
        return
    if error is None:
        done.set_result(None)
    else:
        done.set_exception(error)
        # A caller that was cancelled never retrieves it; that is not a bug.
        done.add_done_callback(lambda f: f.exception())


async def _insert_lobbies(conn: aiosqlite.Connection, entries: list[_NewLobby]) -> None:
    if not entries:
        return
    await _insert_players(conn, [e.host for e in entries])
    await _run_many(
        conn,
        f"INSERT INTO lobbies ({_LOBBY_COLUMNS}, status_changed_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (
                e.lobby.id,
                e.lobby.host_player_id,
                e.lobby.status,
                e.lobby.max_players,
                e.lobby.points_to_win,
                e.lobby.created_at,
                e.lobby.created_at,
            )
            for e in entries
        ],
    )
    await _insert_member_rows(conn, [e.member for e in entries])


async def _insert_members(
    conn: aiosqlite.Connection, entries: list[_NewMember]
) -> None:
    if not entries:
        return
    await _insert_players(conn, [e.player for e in entries])
    await _insert_member_rows(conn, [e.member for e in entries])


async def _insert_member_rows(
    conn: aiosqlite.Connection, members: list[MemberRecord]
) -> None:
    await _run_many(
        conn,
        f"INSERT INTO lobby_members ({_MEMBER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
        [
            (m.lobby_id, m.player_id, m.seat, m.name, m.token_hash, m.joined_at)
            for m in members
        ],
    )


async def _insert_ended_tokens(
    conn: aiosqlite.Connection, games: str, *params: object
) -> None:
    """Map every token of the games matching ``games`` (on ``games g``) to them.

    A lobby game's tokens are its lobby's current members' (nobody leaves a
    started lobby, so those are its seats); a local game has its own. Both
    reads go by index: the lobby's members by the partial index on current
    seats, which serves lobby_members without one of its own on token_hash.
    OR IGNORE: a hash already mapped (tokens are 256 random bits, so never in
    practice) keeps its first game rather than failing the game's end.
    """
    await _run(
        conn,
        "INSERT OR IGNORE INTO ended_tokens (token_hash, game_id)"
        " SELECT m.token_hash, g.id FROM games g JOIN lobby_members m"
        f" ON m.lobby_id = g.lobby_id AND m.left_at IS NULL WHERE {games}"
        " UNION ALL SELECT g.token_hash, g.id FROM games g"
        f" WHERE g.token_hash IS NOT NULL AND {games}",
        *params,
        *params,
    )


async def _load_game(conn: aiosqlite.Connection, game_id: str) -> GameRecord | None:
    """The game with its players and rounds, read inside the caller's transaction."""
    games = await _fetch(
        conn, f"SELECT {_GAME_COLUMNS} FROM games WHERE id = ?", game_id
    )
    if not games:
        return None
    players = await _fetch(
        conn,
        "SELECT seat, player_id, name FROM game_players"
        " WHERE game_id = ? ORDER BY seat",
        game_id,
    )
    rounds = await _fetch(
        conn,
        f"SELECT {_ROUND_COLUMNS} FROM rounds WHERE game_id = ? ORDER BY idx",
        game_id,
    )
    return _game(games[0], players, rounds)


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise StoreError(message)


# Rows to records.


def _round_row(game_id: str, r: RoundRecord) -> tuple[object, ...]:
    return (
        game_id,
        r.index,
        r.left_seat,
        r.right_seat,
        r.left_score,
        r.right_score,
        r.status,
        r.winner_seat,
        r.ended_at,
    )


def _member(row: sqlite3.Row) -> MemberRecord:
    return MemberRecord(
        lobby_id=row["lobby_id"],
        player_id=row["player_id"],
        seat=row["seat"],
        name=row["name"],
        token_hash=row["token_hash"],
        joined_at=row["joined_at"],
        user=row["kind"] == "user",
    )


def _lobby(row: sqlite3.Row, members: Iterable[MemberRecord]) -> LobbyRecord:
    return LobbyRecord(
        id=row["id"],
        host_player_id=row["host_player_id"],
        status=row["status"],
        max_players=row["max_players"],
        points_to_win=row["points_to_win"],
        created_at=row["created_at"],
        members=tuple(members),
    )


def _game(
    row: sqlite3.Row, players: Iterable[sqlite3.Row], rounds: Iterable[sqlite3.Row]
) -> GameRecord:
    rules = orjson.loads(row["rules"])
    if not isinstance(rules, dict):
        raise StoreError(f"rules of game {row['id']} are not a JSON object")
    return GameRecord(
        id=row["id"],
        lobby_id=row["lobby_id"],
        mode=row["mode"],
        status=row["status"],
        seed=row["seed"],
        rules=rules,
        created_at=row["created_at"],
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        winner_seat=row["winner_seat"],
        token_hash=row["token_hash"],
        players=tuple(
            GamePlayerRecord(seat=p["seat"], player_id=p["player_id"], name=p["name"])
            for p in players
        ),
        rounds=tuple(
            RoundRecord(
                index=r["idx"],
                left_seat=r["left_seat"],
                right_seat=r["right_seat"],
                left_score=r["left_score"],
                right_score=r["right_score"],
                status=r["status"],
                winner_seat=r["winner_seat"],
                ended_at=r["ended_at"],
            )
            for r in rounds
        ),
    )
