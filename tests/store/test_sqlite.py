"""The SQLite store against real files: schema, lobbies, games, atomicity."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
from pathlib import Path

import pytest

from server.errors import GameServerError
from server.store import (
    DuplicateIdError,
    MemberRecord,
    RoundRecord,
    SqliteStore,
    StoreError,
    open_sqlite_store,
)
from tests.helpers import TABLES as ALL_TABLES
from tests.store.builders import count, game, lobby, make_lobby, member, player, raw

TABLES = set(ALL_TABLES)
# Every migration the package ships, in the order yoyo applies them.
MIGRATIONS = sorted(
    path.stem
    for path in (Path(__file__).parents[2] / "server/store/migrations").glob("*.sql")
)


def schema(path: Path) -> list[tuple[str, str]]:
    with raw(path) as conn:
        rows = conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name"
        ).fetchall()
    return [(str(name), str(sql)) for name, sql in rows]


# Schema and connection settings.


async def test_new_file_is_migrated_in_wal_mode(db_path: Path) -> None:
    store = await open_sqlite_store(db_path)
    await store.close()

    with raw(db_path) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        applied = conn.execute("SELECT migration_id FROM _yoyo_migration").fetchall()
        (mode,) = conn.execute("PRAGMA journal_mode").fetchone()
    assert tables >= TABLES
    assert MIGRATIONS[0] == "0001_initial"
    assert applied == [(name,) for name in MIGRATIONS]
    assert mode == "wal"


async def test_reopen_applies_nothing_and_keeps_data(db_path: Path) -> None:
    store = await open_sqlite_store(db_path)
    await make_lobby(store, "L1", "ann")
    await store.close()
    before = schema(db_path)

    store = await open_sqlite_store(db_path)
    try:
        assert await store.get_lobby("L1") is not None
    finally:
        await store.close()

    assert schema(db_path) == before
    assert count(db_path, "_yoyo_log", "operation = 'apply'") == len(MIGRATIONS)


async def test_foreign_keys_are_enforced(store: SqliteStore) -> None:
    with pytest.raises(StoreError):
        await store.add_member(member("nowhere", "ann", 0), player("ann"))
    with pytest.raises(StoreError):
        await store.create_game(game("G1", ["a", "b"], lobby_id="nowhere"), [])


async def test_errors_belong_to_the_project_tree() -> None:
    assert issubclass(DuplicateIdError, StoreError)
    assert issubclass(StoreError, GameServerError)


async def test_closed_store_refuses_calls(db_path: Path) -> None:
    store = await open_sqlite_store(db_path)
    await store.close()
    await store.close()  # A second close is harmless.

    with pytest.raises(StoreError):
        await store.get_lobby("L1")
    with pytest.raises(StoreError):
        await make_lobby(store, "L1", "ann")


# Lobbies.


async def test_lobby_round_trip(store: SqliteStore) -> None:
    created = await make_lobby(store, "L1", "ann")
    await store.add_member(member("L1", "cat", 2), player("cat", "user"))
    await store.add_member(member("L1", "bob", 1), player("bob"))

    got = await store.get_lobby("L1")

    assert got is not None
    assert dataclasses.replace(got, members=()) == created
    assert [m.player_id for m in got.members] == ["ann", "bob", "cat"]
    assert got.members[1] == member("L1", "bob", 1)
    assert await store.get_lobby("L2") is None


async def test_duplicate_lobby_id_writes_nothing(
    store: SqliteStore, db_path: Path
) -> None:
    await make_lobby(store, "L1", "ann")

    with pytest.raises(DuplicateIdError):
        await store.create_lobby(
            lobby("L1", "bob"), player("bob"), member("L1", "bob", 1)
        )

    assert count(db_path, "players", "id = 'bob'") == 0
    assert count(db_path, "lobby_members") == 1
    got = await store.get_lobby("L1")
    assert got is not None
    assert got.host_player_id == "ann"


async def test_lobby_ids_stay_taken_after_closing(store: SqliteStore) -> None:
    await make_lobby(store, "L1", "ann")
    await store.set_lobby_status("L1", "closed", 40.0)

    with pytest.raises(DuplicateIdError):
        await make_lobby(store, "L1", "bob")


async def test_known_player_is_not_rewritten(store: SqliteStore, db_path: Path) -> None:
    await make_lobby(store, "L1", "ann")
    renamed = dataclasses.replace(player("ann"), display_name="Other", created_at=99.0)

    await store.create_lobby(lobby("L2", "ann"), renamed, member("L2", "ann", 0))

    with raw(db_path) as conn:
        row = conn.execute("SELECT display_name, created_at FROM players").fetchall()
    assert row == [("Ann", 10.0)]


async def test_removed_member_is_not_listed_and_frees_seat_and_name(
    store: SqliteStore,
) -> None:
    await make_lobby(store, "L1", "ann")
    await store.add_member(member("L1", "bob", 1, name="x"), player("bob"))

    await store.remove_member("L1", "bob", 50.0)

    got = await store.get_lobby("L1")
    assert got is not None
    assert [m.player_id for m in got.members] == ["ann"]
    await store.add_member(member("L1", "cat", 1, name="x"), player("cat"))
    await store.add_member(member("L1", "bob", 2, name="bob"), player("bob"))
    got = await store.get_lobby("L1")
    assert got is not None
    assert [(m.seat, m.player_id) for m in got.members] == [
        (0, "ann"),
        (1, "cat"),
        (2, "bob"),
    ]


async def test_removing_a_non_member_fails(store: SqliteStore) -> None:
    await make_lobby(store, "L1", "ann")
    await store.add_member(member("L1", "bob", 1), player("bob"))
    await store.remove_member("L1", "bob", 50.0)

    with pytest.raises(StoreError):
        await store.remove_member("L1", "bob", 51.0)
    with pytest.raises(StoreError):
        await store.remove_member("L1", "zed", 51.0)


async def test_name_is_unique_per_lobby(store: SqliteStore, db_path: Path) -> None:
    await make_lobby(store, "L1", "ann")
    await make_lobby(store, "L2", "cat")

    with pytest.raises(StoreError):
        await store.add_member(member("L1", "bob", 1, name="ann"), player("bob"))

    assert count(db_path, "players", "id = 'bob'") == 0
    await store.add_member(member("L1", "bob", 1, name="ann#2"), player("bob"))
    await store.add_member(member("L2", "dan", 1, name="ann"), player("dan"))


@pytest.mark.parametrize(
    "clash",
    [
        member("L1", "bob", 0),  # seat taken
        member("L1", "ann", 1, name="again"),  # already a member
    ],
    ids=["seat", "player"],
)
async def test_member_clashes_are_refused(
    store: SqliteStore, clash: MemberRecord
) -> None:
    await make_lobby(store, "L1", "ann")

    with pytest.raises(StoreError):
        await store.add_member(clash, player(clash.player_id))

    got = await store.get_lobby("L1")
    assert got is not None
    assert len(got.members) == 1


async def test_host_and_status_changes(store: SqliteStore) -> None:
    await make_lobby(store, "L1", "ann")
    await store.add_member(member("L1", "bob", 1), player("bob"))

    await store.set_lobby_host("L1", "bob")
    await store.set_lobby_status("L1", "closed", 60.0)

    got = await store.get_lobby("L1")
    assert got is not None
    assert (got.host_player_id, got.status) == ("bob", "closed")
    with pytest.raises(StoreError):
        await store.set_lobby_status("L1", "paused", 61.0)
    with pytest.raises(StoreError):
        await store.set_lobby_host("nowhere", "bob")
    with pytest.raises(StoreError):
        await store.set_lobby_status("nowhere", "closed", 61.0)


async def test_open_lobbies_survive_a_restart(db_path: Path) -> None:
    store = await open_sqlite_store(db_path)
    await make_lobby(store, "B", "ann", created_at=2.0)
    await make_lobby(store, "A", "bob", created_at=1.0)
    await make_lobby(store, "S", "cat", created_at=3.0)
    await make_lobby(store, "C", "dan", created_at=4.0)
    await store.add_member(member("B", "eve", 1), player("eve"))
    await store.add_member(member("B", "fay", 2), player("fay"))
    await store.remove_member("B", "eve", 5.0)
    await store.create_game(game("G", ["cat", "gus"], lobby_id="S"), [player("gus")])
    await store.set_lobby_status("C", "closed", 6.0)
    await store.close()

    store = await open_sqlite_store(db_path)
    try:
        loaded = await store.load_open_lobbies()
    finally:
        await store.close()

    assert [lb.id for lb in loaded] == ["A", "B"]
    assert [m.player_id for m in loaded[1].members] == ["ann", "fay"]
    assert loaded[0].members == (member("A", "bob", 0),)


# Games.


async def test_game_round_trip_and_lobby_starts(store: SqliteStore) -> None:
    await make_lobby(store, "L1", "ann")
    await store.add_member(member("L1", "bob", 1), player("bob"))
    await store.add_member(member("L1", "cat", 2), player("cat"))
    record = game("G1", ["ann", "bob", "cat"], lobby_id="L1")

    await store.create_game(record, [])

    assert await store.get_game("G1") == record
    assert await store.get_game("G2") is None
    got = await store.get_lobby("L1")
    assert got is not None
    assert got.status == "started"


async def test_local_game_with_guests(store: SqliteStore, db_path: Path) -> None:
    guests = [player("g1"), player("g2")]
    record = game("G1", ["g1", "g2"], token_hash=b"local-token")

    await store.create_game(record, guests)

    got = await store.get_game("G1")
    assert got == record
    assert got.rules == {"ball_speed": 1.5, "points_to_win": 5}
    assert isinstance(got.rules["points_to_win"], int)
    assert count(db_path, "players") == 2


async def test_game_plays_to_the_end(store: SqliteStore) -> None:
    await store.create_game(game("G1", ["a", "b", "c"]), [player(p) for p in "abc"])

    await store.set_game_running("G1", 31.0)
    await store.finish_round("G1", 0, 5, 3, 0, "finished", 32.0)
    await store.finish_round("G1", 1, 0, 0, None, "forfeit", 33.0)
    await store.finish_round("G1", 2, 5, 1, 1, "finished", 34.0)
    await store.finish_game("G1", "finished", 0, 35.0)

    got = await store.get_game("G1")
    assert got is not None
    assert (got.status, got.winner_seat) == ("finished", 0)
    assert (got.started_at, got.ended_at) == (31.0, 35.0)
    assert got.rounds == (
        RoundRecord(0, 0, 1, 5, 3, "finished", 0, 32.0),
        RoundRecord(1, 0, 2, 0, 0, "forfeit", None, 33.0),
        RoundRecord(2, 1, 2, 5, 1, "finished", 1, 34.0),
    )


async def test_ending_early_interrupts_open_rounds(store: SqliteStore) -> None:
    await store.create_game(game("G1", ["a", "b", "c"]), [player(p) for p in "abc"])
    await store.set_game_running("G1", 31.0)
    await store.finish_round("G1", 0, 5, 3, 0, "finished", 32.0)

    await store.finish_game("G1", "error", None, 40.0)

    got = await store.get_game("G1")
    assert got is not None
    assert (got.status, got.ended_at) == ("error", 40.0)
    assert [(r.status, r.ended_at) for r in got.rounds] == [
        ("finished", 32.0),
        ("interrupted", 40.0),
        ("interrupted", 40.0),
    ]


async def test_state_changes_must_start_from_the_right_state(
    store: SqliteStore,
) -> None:
    await store.create_game(game("G1", ["a", "b"]), [player("a"), player("b")])
    await store.set_game_running("G1", 31.0)
    await store.finish_round("G1", 0, 5, 3, 0, "finished", 32.0)

    with pytest.raises(StoreError):
        await store.set_game_running("G1", 33.0)
    with pytest.raises(StoreError):
        await store.finish_round("G1", 0, 1, 5, 1, "finished", 33.0)
    with pytest.raises(StoreError):
        await store.finish_round("G1", 7, 1, 5, 1, "finished", 33.0)
    with pytest.raises(StoreError):
        await store.set_game_running("nowhere", 33.0)
    await store.finish_game("G1", "finished", 0, 34.0)
    with pytest.raises(StoreError):
        await store.finish_game("G1", "error", None, 35.0)

    got = await store.get_game("G1")
    assert got is not None
    assert (got.status, got.rounds[0].left_score) == ("finished", 5)


@pytest.mark.parametrize(
    ("winner", "status", "left_score"),
    [(2, "finished", 5), (0, "finished", -1), (0, "pending", 5), (0, "won", 5)],
    ids=["winner-not-playing", "negative-score", "not-an-end", "unknown-status"],
)
async def test_bad_round_results_are_refused(
    store: SqliteStore, winner: int, status: str, left_score: int
) -> None:
    await store.create_game(game("G1", ["a", "b", "c"]), [player(p) for p in "abc"])

    with pytest.raises(StoreError):
        await store.finish_round("G1", 0, left_score, 3, winner, status, 32.0)

    got = await store.get_game("G1")
    assert got is not None
    assert got.rounds[0] == RoundRecord(0, 0, 1)


def assert_no_game(db_path: Path, *player_ids: str) -> None:
    assert count(db_path, "games") == 0
    assert count(db_path, "game_players") == 0
    assert count(db_path, "rounds") == 0
    for player_id in player_ids:
        assert count(db_path, "players", "id = ?", player_id) == 0


async def test_failed_create_game_writes_nothing(
    store: SqliteStore, db_path: Path
) -> None:
    await make_lobby(store, "L1", "ann")
    bad_round = (RoundRecord(0, 0, 1), RoundRecord(1, 0, 5))
    record = game("G1", ["ann", "new"], lobby_id="L1", rounds=bad_round)

    with pytest.raises(StoreError):
        await store.create_game(record, [player("new")])

    assert_no_game(db_path, "new")
    got = await store.get_lobby("L1")
    assert got is not None
    assert got.status == "open"


async def test_winner_without_a_seat_fails_at_commit(
    store: SqliteStore, db_path: Path
) -> None:
    # The game's winner is checked only at COMMIT (a deferred key), which
    # exercises the rollback of a transaction whose COMMIT failed.
    record = game("G1", ["a", "b"], winner_seat=9)

    with pytest.raises(StoreError):
        await store.create_game(record, [player("a"), player("b")])

    assert_no_game(db_path, "a", "b")
    await store.create_game(game("G1", ["a", "b"]), [player("a"), player("b")])


async def test_seed_too_wide_for_sqlite_is_refused(
    store: SqliteStore, db_path: Path
) -> None:
    record = dataclasses.replace(game("G1", ["a", "b"]), seed=2**64 - 1)

    with pytest.raises(StoreError):
        await store.create_game(record, [player("a"), player("b")])

    assert_no_game(db_path, "a", "b")


async def test_duplicate_game_id_writes_nothing(
    store: SqliteStore, db_path: Path
) -> None:
    first = game("G1", ["a", "b"])
    await store.create_game(first, [player("a"), player("b")])
    second = game("G1", ["c", "d"], rounds=())

    with pytest.raises(DuplicateIdError):
        await store.create_game(second, [player("c"), player("d")])

    assert await store.get_game("G1") == first
    assert count(db_path, "players", "id IN ('c', 'd')") == 0
    assert count(db_path, "game_players") == 2


# Crashes, restarts and load.


async def start_three_games(store: SqliteStore) -> None:
    """A running game with one round played, a waiting game, a finished one."""
    await store.create_game(game("run", ["a", "b", "c"]), [player(p) for p in "abc"])
    await store.set_game_running("run", 31.0)
    await store.finish_round("run", 0, 5, 2, 0, "finished", 32.0)
    await store.create_game(game("wait", ["a", "b"]), [])
    await store.create_game(game("done", ["a", "b"]), [])
    await store.finish_round("done", 0, 5, 0, 0, "finished", 33.0)
    await store.finish_game("done", "finished", 0, 34.0)


async def check_interrupted(store: SqliteStore) -> None:
    assert await store.interrupt_unfinished_games(500.0) == 2
    assert await store.interrupt_unfinished_games(501.0) == 0

    run, wait, done = [await store.get_game(g) for g in ("run", "wait", "done")]
    assert run is not None and wait is not None and done is not None
    assert (run.status, run.ended_at, wait.status) == (
        "interrupted",
        500.0,
        "interrupted",
    )
    assert [r.status for r in run.rounds] == ["finished", "interrupted", "interrupted"]
    assert [r.ended_at for r in run.rounds] == [32.0, 500.0, 500.0]
    assert [r.status for r in wait.rounds] == ["interrupted"]
    assert (done.status, done.ended_at, done.rounds[0].status) == (
        "finished",
        34.0,
        "finished",
    )


async def test_unfinished_games_are_interrupted_after_restart(db_path: Path) -> None:
    store = await open_sqlite_store(db_path)
    await start_three_games(store)
    await store.close()

    store = await open_sqlite_store(db_path)
    try:
        await check_interrupted(store)
    finally:
        await store.close()


async def test_committed_writes_survive_a_crash(
    store: SqliteStore, db_path: Path, tmp_path: Path
) -> None:
    # Copying the files while the store is still open gives what a killed
    # process leaves: no checkpoint, the last commits only in the WAL.
    await start_three_games(store)
    crashed = tmp_path / "crashed" / "pong.db"
    crashed.parent.mkdir()
    shutil.copy(db_path, crashed)
    shutil.copy(db_path.with_name("pong.db-wal"), crashed.with_name("pong.db-wal"))

    reopened = await open_sqlite_store(crashed)
    try:
        await check_interrupted(reopened)
    finally:
        await reopened.close()


async def test_concurrent_writes_all_land(store: SqliteStore) -> None:
    ids = [f"L{i:03}" for i in range(200)]

    await asyncio.gather(
        *(make_lobby(store, lobby_id, f"host-{lobby_id}") for lobby_id in ids),
        *(store.get_lobby(lobby_id) for lobby_id in ids[::10]),
    )

    loaded = await store.load_open_lobbies()
    assert sorted(lb.id for lb in loaded) == ids
    assert all(len(lb.members) == 1 for lb in loaded)


async def test_cancelled_write_is_all_or_nothing(
    store: SqliteStore, db_path: Path
) -> None:
    # Cancel after a growing delay so the cancellation lands on different
    # statements of the transaction, COMMIT included, then check nothing is
    # half there and the store still takes writes.
    for step in range(20):
        lobby_id = f"L{step}"
        task = asyncio.create_task(make_lobby(store, lobby_id, f"h{step}"))
        await asyncio.sleep(step * 0.0002)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

        await make_lobby(store, f"after-{step}", f"a{step}")
        written = [
            count(db_path, "players", "id = ?", f"h{step}"),
            count(db_path, "lobbies", "id = ?", lobby_id),
            count(db_path, "lobby_members", "lobby_id = ?", lobby_id),
        ]
        assert written in ([0, 0, 0], [1, 1, 1])


async def test_a_lobby_whose_game_was_cut_short_is_closed(
    store: SqliteStore,
) -> None:
    await make_lobby(store, "L1", "a")
    await store.add_member(member("L1", "b", 1), player("b"))
    await store.create_game(game("G9", ["a", "b"], lobby_id="L1"), [])
    await store.set_game_running("G9", 40.0)
    started = await store.get_lobby("L1")
    assert started is not None and started.status == "started"

    assert await store.interrupt_unfinished_games(50.0) == 1

    closed = await store.get_lobby("L1")
    assert closed is not None and closed.status == "closed"
    assert await store.load_open_lobbies() == []


async def test_group_commit_fails_only_the_bad_entries(
    store: SqliteStore, db_path: Path
) -> None:
    await make_lobby(store, "TAKEN", "t0")
    # One batch: good lobbies, an id already in the file, an id repeated within
    # the batch, and a join that clashes on a seat. Each bad entry fails on
    # its own; every good one lands.
    lobbies = [
        store.create_lobby(
            lobby(f"L{i}", f"h{i}"), player(f"h{i}"), member(f"L{i}", f"h{i}", 0)
        )
        for i in range(20)
    ]
    dup_file = store.create_lobby(
        lobby("TAKEN", "x1"), player("x1"), member("TAKEN", "x1", 0)
    )
    dup_batch = store.create_lobby(
        lobby("L3", "x2"), player("x2"), member("L3", "x2", 0)
    )
    joins = [
        store.add_member(member("L0", f"j{i}", i + 1), player(f"j{i}"))
        for i in range(2)
    ]
    clash = store.add_member(member("L0", "j9", 1), player("j9"))  # seat 1 again

    results = await asyncio.gather(
        *lobbies, dup_file, dup_batch, *joins, clash, return_exceptions=True
    )

    assert results[:20] == [None] * 20
    assert isinstance(results[20], DuplicateIdError)
    assert isinstance(results[21], DuplicateIdError)
    assert results[22:24] == [None, None]
    assert isinstance(results[24], GameServerError)
    assert count(db_path, "lobbies") == 21
    assert count(db_path, "players", "id IN ('x1', 'x2', 'j9')") == 0
    l0 = await store.get_lobby("L0")
    assert l0 is not None and [m.player_id for m in l0.members] == ["h0", "j0", "j1"]


# Tokens of ended games.

GUESTS = (player("a"), player("b"))  # the players of a local game


async def lobby_game(store: SqliteStore, lobby_id: str, game_id: str) -> None:
    """A lobby whose members ann and bob play ``game_id``; cat left before it."""
    await make_lobby(store, lobby_id, "ann")
    await store.add_member(member(lobby_id, "bob", 1), player("bob"))
    await store.add_member(member(lobby_id, "cat", 2), player("cat"))
    await store.remove_member(lobby_id, "cat", 25.0)
    await store.create_game(game(game_id, ["ann", "bob"], lobby_id=lobby_id), [])


async def ended_game_id(store: SqliteStore, token_hash: bytes) -> str | None:
    record = await store.get_ended_game(token_hash)
    return None if record is None else record.id


async def test_an_ended_game_maps_every_token_to_it(store: SqliteStore) -> None:
    await lobby_game(store, "L1", "G1")
    await store.create_game(game("G2", ["a", "b"], token_hash=b"local"), GUESTS)
    assert await store.get_ended_game(b"L1/ann/0") is None  # still in play

    await store.finish_game("G1", "finished", 1, 40.0)
    await store.finish_game("G2", "interrupted", None, 41.0)

    assert await store.get_ended_game(b"L1/bob/1") == await store.get_game("G1")
    assert await ended_game_id(store, b"L1/ann/0") == "G1"
    assert await ended_game_id(store, b"local") == "G2"
    assert await ended_game_id(store, b"L1/cat/2") is None  # left before the game
    assert await ended_game_id(store, b"unknown") is None


async def test_games_interrupted_at_start_up_map_their_tokens(
    store: SqliteStore,
) -> None:
    await lobby_game(store, "L1", "G1")
    await store.create_game(game("G2", ["a", "b"], token_hash=b"local"), GUESTS)

    assert await store.interrupt_unfinished_games(50.0) == 2

    interrupted = await store.get_ended_game(b"L1/ann/0")
    assert interrupted is not None and interrupted.status == "interrupted"
    assert await ended_game_id(store, b"L1/bob/1") == "G1"
    assert await ended_game_id(store, b"local") == "G2"


async def test_the_migration_maps_the_tokens_of_games_ended_before_it(
    db_path: Path,
) -> None:
    # A file as it stood before migration 0004: games of every ending, one
    # still running, and no table of ended tokens.
    store = await open_sqlite_store(db_path)
    await lobby_game(store, "L1", "done")
    await lobby_game(store, "L2", "failed")
    await lobby_game(store, "L3", "running")
    await store.create_game(game("local", ["a", "b"], token_hash=b"local"), GUESTS)
    await store.finish_game("done", "finished", 0, 40.0)
    await store.finish_game("failed", "error", None, 41.0)
    await store.finish_game("local", "interrupted", None, 42.0)
    await store.close()
    with raw(db_path) as conn:
        conn.execute("DROP TABLE ended_tokens")
        conn.execute(
            "DELETE FROM _yoyo_migration WHERE migration_id = '0004_ended_tokens'"
        )
        conn.commit()

    store = await open_sqlite_store(db_path)
    try:
        assert count(db_path, "ended_tokens") == 5
        for token, game_id in [
            (b"L1/ann/0", "done"),
            (b"L1/bob/1", "done"),
            (b"L2/bob/1", "failed"),
            (b"local", "local"),
            (b"L1/cat/2", None),
            (b"L3/ann/0", None),
        ]:
            assert await ended_game_id(store, token) == game_id, token
    finally:
        await store.close()
