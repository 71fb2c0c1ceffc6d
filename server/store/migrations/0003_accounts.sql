-- depends: 0002_lean_member_indexes
--
-- Accounts, their login sessions and player avatars.
--
-- A user is a player of kind 'user' with a username and a password hash.
-- ``username`` is kept as the user typed it (NFC); ``username_key`` is its
-- NFKC + casefold form, so "Alice", "ALICE" and "Ａｌｉｃｅ" are one account.
-- The password hash is a self-describing scrypt string; no password is
-- ever stored.
--
-- A session row holds only the SHA-256 of its token. Expired and revoked
-- rows are deleted at start-up (the one table here whose rows go away: a
-- dead session is of no use to anyone, and its hash names no player's
-- history).

CREATE TABLE users (
    player_id     TEXT PRIMARY KEY REFERENCES players (id),
    username      TEXT NOT NULL CHECK (username <> ''),
    username_key  TEXT NOT NULL UNIQUE CHECK (username_key <> ''),
    password_hash TEXT NOT NULL,
    created_at    REAL NOT NULL
) STRICT;

CREATE TABLE sessions (
    token_hash BLOB PRIMARY KEY,
    player_id  TEXT NOT NULL REFERENCES players (id),
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    revoked_at REAL
) STRICT;

CREATE TABLE avatars (
    player_id  TEXT PRIMARY KEY REFERENCES players (id),
    png        BLOB NOT NULL,
    updated_at REAL NOT NULL
) STRICT;
