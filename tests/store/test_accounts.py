"""The store's users, sessions, profiles and avatars against a real file."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.store import (
    DuplicateNameError,
    PlayerRecord,
    SessionRecord,
    SqliteStore,
    StoreError,
    UserRecord,
)
from tests.store.builders import count, game, lobby, member, player


def user(player_id: str, key: str) -> tuple[UserRecord, PlayerRecord]:
    return (
        UserRecord(player_id, key.title(), key, "scrypt$1$1$1$salt$key", 5.0),
        PlayerRecord(player_id, "user", key.title(), 5.0),
    )


async def test_user_round_trip(store: SqliteStore) -> None:
    await store.create_user(*user("U1", "ann"))
    found = await store.get_user("ann")
    assert found == user("U1", "ann")[0]
    assert await store.get_user("bob") is None


async def test_taken_username_key_writes_nothing(
    store: SqliteStore, db_path: Path
) -> None:
    await store.create_user(*user("U1", "ann"))
    with pytest.raises(DuplicateNameError):
        await store.create_user(*user("U2", "ann"))
    assert count(db_path, "players") == 1
    assert count(db_path, "users") == 1


async def test_session_round_trip_and_revoke(store: SqliteStore) -> None:
    await store.create_user(*user("U1", "ann"))
    session = SessionRecord(b"h" * 32, "U1", 10.0, 100.0)
    await store.create_session(session)
    found = await store.get_session(b"h" * 32)
    assert found is not None
    assert found[0] == session
    assert found[1].id == "U1" and found[1].display_name == "Ann"

    await store.revoke_session(b"h" * 32, 20.0)
    await store.revoke_session(b"h" * 32, 30.0)  # the first revocation stays
    found = await store.get_session(b"h" * 32)
    assert found is not None and found[0].revoked_at == 20.0
    with pytest.raises(StoreError):
        await store.revoke_session(b"x" * 32, 20.0)


async def test_purge_drops_dead_sessions_only(
    store: SqliteStore, db_path: Path
) -> None:
    await store.create_user(*user("U1", "ann"))
    await store.create_session(SessionRecord(b"live", "U1", 1.0, 500.0))
    await store.create_session(SessionRecord(b"old", "U1", 1.0, 50.0))
    await store.create_session(SessionRecord(b"out", "U1", 1.0, 500.0, 60.0))
    assert await store.purge_sessions(100.0) == 2
    assert count(db_path, "sessions") == 1
    assert await store.get_session(b"live") is not None


async def test_session_needs_a_player(store: SqliteStore) -> None:
    with pytest.raises(StoreError):
        await store.create_session(SessionRecord(b"h", "nobody", 1.0, 2.0))


async def test_profile_counts_finished_games_and_wins(store: SqliteStore) -> None:
    record = game("G1", ["ann", "bob"])
    await store.create_game(record, [player("ann"), player("bob")])
    await store.set_game_running("G1", 30.0)
    await store.finish_round("G1", 0, 5, 1, 0, "finished", 40.0)
    await store.finish_game("G1", "finished", 0, 41.0)

    ann = await store.get_profile("ann", 10)
    bob = await store.get_profile("bob", 10)
    assert ann is not None and bob is not None
    assert (ann.games_played, ann.wins) == (1, 1)
    assert (bob.games_played, bob.wins) == (1, 0)
    assert [(g.game_id, g.won) for g in ann.recent_games] == [("G1", True)]
    assert ann.username is None and not ann.has_avatar
    assert await store.get_profile("nobody", 10) is None


async def test_avatar_set_replace_and_read(store: SqliteStore, db_path: Path) -> None:
    await store.create_user(*user("U1", "ann"))
    assert await store.get_avatar("U1") is None
    await store.set_avatar("U1", b"one", 1.0)
    await store.set_avatar("U1", b"two", 2.0)
    assert await store.get_avatar("U1") == b"two"
    assert count(db_path, "avatars") == 1
    profile = await store.get_profile("U1", 10)
    assert profile is not None and profile.has_avatar and profile.username == "Ann"
    with pytest.raises(StoreError):
        await store.set_avatar("nobody", b"x", 1.0)


async def test_a_users_seat_reads_back_as_a_users(store: SqliteStore) -> None:
    record, account = user("U1", "ann")
    await store.create_user(record, account)
    await store.create_lobby(lobby("L1", "U1"), account, member("L1", "U1", 0))
    await store.add_member(member("L1", "bob", 1), player("bob"))
    (loaded,) = await store.load_open_lobbies()
    assert [(m.player_id, m.user) for m in loaded.members] == [
        ("U1", True),
        ("bob", False),
    ]
