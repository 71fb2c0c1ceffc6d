"""Persistence: lobbies, players and game results, behind the ``Store`` interface.

The rest of the server imports from here only: the interface and its errors
from ``base``, the plain records from ``records``, and ``open_sqlite_store``
to make the one backend there is today.
"""

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
from server.store.sqlite import SqliteStore, open_sqlite_store

__all__ = [
    "DuplicateIdError",
    "DuplicateNameError",
    "GamePlayerRecord",
    "GameRecord",
    "LobbyRecord",
    "MemberRecord",
    "PlayerRecord",
    "ProfileRecord",
    "RecentGameRecord",
    "RoundRecord",
    "SessionRecord",
    "SqliteStore",
    "Store",
    "StoreError",
    "UserRecord",
    "open_sqlite_store",
]
