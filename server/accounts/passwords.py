"""Password hashing with the standard library's scrypt.

A hash is kept as one self-describing string,
``scrypt$<n>$<r>$<p>$<salt>$<key>`` (salt and key in URL-safe base64), so
the cost can be raised later and old hashes still verify with the cost they
were made with. Each password gets its own 16-byte random salt.

Hashing is slow on purpose (about 50 ms of CPU and 16 MiB here); callers on
the event loop run it in a thread (``asyncio.to_thread``) so ticks go on.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

# RFC 7914's interactive-login parameters: n = 2**14, r = 8, p = 1.
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
KEY_BYTES = 32
# scrypt needs 128 * n * r bytes; leave room for larger n in stored hashes.
MAX_MEMORY = 128 * 1024 * 1024
MAX_PASSWORD = 1024  # characters; scrypt reads all of it, so bound the work


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _derive(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8", "surrogatepass"),
        salt=salt,
        n=n,
        r=r,
        p=p,
        maxmem=MAX_MEMORY,
        dklen=KEY_BYTES,
    )


def hash_password(password: str) -> str:
    """A fresh salted hash of ``password``, to store instead of it."""
    salt = secrets.token_bytes(SALT_BYTES)
    key = _derive(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(key)}"


def verify_password(password: str, encoded: str) -> bool:
    """Whether ``password`` is the one ``encoded`` was made from.

    The final comparison takes the same time whatever the bytes; a hash
    string we cannot read verifies nothing.
    """
    try:
        scheme, n, r, p, salt, key = encoded.split("$")
        if scheme != "scrypt":
            return False
        expected = _unb64(key)
        actual = _derive(password, _unb64(salt), int(n), int(r), int(p))
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


# Verified against when the username is unknown, so that a wrong username
# costs the same time as a wrong password and does not reveal who exists.
DECOY_HASH = (
    f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(b'0' * SALT_BYTES)}"
    f"${_b64(b'0' * KEY_BYTES)}"
)
