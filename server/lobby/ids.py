"""Identifiers and secrets: lobby and game IDs, player IDs, socket tokens."""

from __future__ import annotations

import hashlib
import secrets

# Crockford's base32: no I, L, O or U, so an ID read aloud or typed by hand
# cannot be confused. Ten characters carry 50 random bits: guessing a live
# lobby among ten thousand takes about 10**11 tries.
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_TYPO = str.maketrans({"I": "1", "L": "1", "O": "0"})
LOBBY_ID_LENGTH = 10
GAME_ID_LENGTH = 12


def random_id(length: int) -> str:
    """``length`` characters, 5 random bits each, from one draw of the OS RNG."""
    bits = secrets.randbits(5 * length)
    return "".join(ALPHABET[(bits >> (5 * i)) & 31] for i in range(length))


def normalize_id(text: str) -> str:
    """Read an ID as typed: any case, dashes and spaces ignored, O as 0."""
    return text.replace("-", "").replace(" ", "").upper().translate(_TYPO)


def new_token() -> tuple[str, bytes]:
    """A fresh socket token and its hash; only the hash is ever stored."""
    token = secrets.token_urlsafe(32)
    return token, hash_token(token)


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
