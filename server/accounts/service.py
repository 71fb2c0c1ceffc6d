"""Register, log in, log out, and find who a session token belongs to.

Theory of operation. A user is a player of kind "user" with a username and
a password hash (``passwords``). Logging in makes a session: a random
opaque token, handed to the client once, of which the store keeps only the
SHA-256, with an expiry (``Config.session_ttl``). Every request that
presents the token looks the hash up; a session that is revoked (logout) or
past its expiry opens nothing. Guests have no session of this kind: the
seat token a guest gets from create or join is the guest's whole identity.

Passwords never leave this module except as hashes, and never reach a log.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from ..config import Config
from ..errors import ClientError
from ..lobby import ids
from ..store import (
    DuplicateNameError,
    PlayerRecord,
    SessionRecord,
    Store,
    UserRecord,
)
from . import passwords
from .names import clean_username, username_key
from .throttle import LoginThrottle, RegistrationThrottle

logger = logging.getLogger(__name__)

MIN_PASSWORD = 8
RECENT_GAMES = 10  # games a profile lists
# Password hashes computed at once. Each takes 16 MiB and a core for about
# 50 ms; more registers and logins than this wait their turn, so a flood of
# them cannot take every worker thread or much memory.
MAX_HASHING = 2


def check_password(value: str) -> str:
    if not MIN_PASSWORD <= len(value) <= passwords.MAX_PASSWORD:
        raise ClientError(
            "invalid_field",
            f"password is {MIN_PASSWORD}..{passwords.MAX_PASSWORD} characters",
        )
    return value


class AccountService:
    def __init__(self, config: Config, store: Store) -> None:
        self.config = config
        self.store = store
        self._hashing = asyncio.Semaphore(MAX_HASHING)
        self.throttle = LoginThrottle(
            config.login_failures_per_account,
            config.login_failures_per_address,
            config.login_window,
        )
        self.registrations = RegistrationThrottle(
            config.registrations_per_address, config.registration_window
        )

    async def open(self) -> None:
        """Forget sessions that can no longer open anything."""
        purged = await self.store.purge_sessions(time.time())
        logger.info("purged %d expired or revoked sessions", purged)

    async def register(
        self, username: str, password: str, address: str
    ) -> dict[str, Any]:
        """A new account, or ClientError; nothing is logged in.

        A name or password outside the rules is refused at once and not
        counted. Every other attempt counts against ``address``; over its
        bound the attempt is refused before the password is hashed.
        """
        shown, key = clean_username(username)
        checked = check_password(password)
        self.registrations.attempt(address, time.monotonic())
        async with self._hashing:
            hashed = await asyncio.to_thread(passwords.hash_password, checked)
        now = time.time()
        player = PlayerRecord(ids.random_id(16), "user", shown, now)
        user = UserRecord(player.id, shown, key, hashed, now)
        try:
            await self.store.create_user(user, player)
        except DuplicateNameError as exc:
            raise ClientError("username_taken") from exc
        logger.info("user %s registered as player %s from %s", key, player.id, address)
        return {
            "message": f"Account {shown} created; log in to use it.",
            "player_id": player.id,
            "username": shown,
        }

    async def login(
        self, username: str, password: str, address: str
    ) -> tuple[str, SessionRecord, PlayerRecord]:
        """A new session for the user, or ClientError; the token is in the tuple.

        Failed attempts count per account and per address; over either bound
        the attempt is refused before the password is even checked.
        """
        key = username_key(username)
        began = time.monotonic()
        self.throttle.attempt(key, address, began)
        user = await self.store.get_user(key) if key else None
        encoded = user.password_hash if user else passwords.DECOY_HASH
        async with self._hashing:
            good = await asyncio.to_thread(passwords.verify_password, password, encoded)
        if user is None or not good:
            logger.warning("failed login for %r from %s", key[:32], address)
            raise ClientError("invalid_credentials")
        self.throttle.succeeded(key, address, began)

        token, token_hash = ids.new_token()
        now = time.time()
        session = SessionRecord(
            token_hash, user.player_id, now, now + self.config.session_ttl
        )
        await self.store.create_session(session)
        player = PlayerRecord(user.player_id, "user", user.username, user.created_at)
        logger.info("user %s logged in from %s", key, address)
        return token, session, player

    async def logout(self, token: str) -> None:
        """Revoke the session ``token`` opens; ClientError if none is live."""
        found = await self._live(token)
        if found is None:
            raise ClientError("unauthorized")
        await self.store.revoke_session(found[0].token_hash, time.time())
        logger.info("player %s logged out", found[1].id)

    async def authenticate(self, token: str) -> PlayerRecord | None:
        """The user a live session token logs in, or None."""
        found = await self._live(token)
        return None if found is None else found[1]

    async def _live(self, token: str) -> tuple[SessionRecord, PlayerRecord] | None:
        found = await self.store.get_session(ids.hash_token(token))
        if found is None:
            return None
        session, _ = found
        if session.revoked_at is not None or session.expires_at <= time.time():
            return None
        return found

    async def profile(self, player_id: str) -> dict[str, Any]:
        key = ids.normalize_id(player_id)
        record = await self.store.get_profile(key, RECENT_GAMES) if key else None
        if record is None:
            raise ClientError("unknown_player")
        player = record.player
        return {
            "player_id": player.id,
            "kind": player.kind,
            "display_name": player.display_name,
            "username": record.username,
            "avatar_url": f"/api/players/{player.id}/avatar/",
            "has_avatar": record.has_avatar,
            "games_played": record.games_played,
            "wins": record.wins,
            "recent_games": [
                {
                    "game_id": g.game_id,
                    "game_mode": g.mode,
                    "status": g.status,
                    "won": g.won,
                    "created_at": g.created_at,
                    "ended_at": g.ended_at,
                }
                for g in record.recent_games
            ],
            "created_at": player.created_at,
        }
