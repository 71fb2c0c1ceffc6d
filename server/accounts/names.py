"""Usernames: what is allowed, and the one form two names are compared in.

A username is 3 to 24 letters, digits, ``_``, ``-`` or ``.``, kept as typed
(NFC). Two usernames are the same account when their keys are equal: the
key is NFKC, casefolded, NFKC again (Unicode's identifier caseless match,
UAX #31), so "Alice", "ALICE" and "Alice" in full-width letters
(U+FF21...) name one account, as do "fin" and "fin" with the U+FB01 ligature.

Letters from two scripts in one name ("paypal" with a Cyrillic U+0430) are
refused: that is how a look-alike of someone else's name is usually made.
A name written wholly in another script that happens to look like a
Latin one (Cyrillic U+0430 U+0441 U+0435 beside Latin "ace") is not
caught; that needs Unicode's confusables table, which the standard library
does not ship.
"""

from __future__ import annotations

import unicodedata

from ..errors import ClientError

MIN_USERNAME = 3
MAX_USERNAME = 24
_PUNCTUATION = frozenset("_-.")
# Scripts that one language writes together count as one.
_SAME_SCRIPT = {"HIRAGANA": "CJK", "KATAKANA": "CJK", "HANGUL": "CJK"}


def username_key(name: str) -> str:
    """The form usernames are compared and stored unique in."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())


def _script(char: str) -> str:
    word = unicodedata.name(char, "UNKNOWN").split(" ", 1)[0]
    return _SAME_SCRIPT.get(word, word)


def clean_username(value: str) -> tuple[str, str]:
    """The username as kept and its key; ClientError if it is not allowed."""
    shown = unicodedata.normalize("NFC", value).strip()
    key = username_key(shown)
    if not MIN_USERNAME <= len(key) <= MAX_USERNAME:
        raise ClientError(
            "invalid_field", f"username is {MIN_USERNAME}..{MAX_USERNAME} characters"
        )
    if not all(c.isalnum() or c in _PUNCTUATION for c in key):
        raise ClientError(
            "invalid_field", "username has only letters, digits, _ - and ."
        )
    scripts = {_script(c) for c in key if c.isalpha()}
    if len(scripts) > 1:
        raise ClientError("invalid_field", "username mixes letters of two scripts")
    return shown, key
