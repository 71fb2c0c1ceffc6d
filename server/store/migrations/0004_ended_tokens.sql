-- depends: 0003_accounts
--
-- Which game each token of an ended game belonged to, so that a socket
-- presenting it after a restart gets that game's final result instead of
-- "invalid token" (protocol.md, "Tokens").
--
-- One row per seat token of a lobby game (its members' token hashes) and
-- per local game (its own token hash), written in the transaction that
-- stores the game's end. It is a table of its own, keyed by the hash,
-- rather than an index on lobby_members.token_hash: migration 0002 dropped
-- that index to keep lobby creation fast, and this table is written once
-- per ended game, off that path.
--
-- Games that had ended before this migration get their rows here, from the
-- same sources the store uses from now on: a lobby game's current members
-- (members cannot leave once the game has started, so those are its seats)
-- and a local game's token. Every ended status counts: 'finished',
-- 'interrupted' and 'error' games alike answer with their result. A hash
-- seen twice (never expected: tokens are 256 random bits) keeps its first
-- game.

CREATE TABLE ended_tokens (
    token_hash BLOB PRIMARY KEY,
    game_id    TEXT NOT NULL REFERENCES games (id)
) STRICT, WITHOUT ROWID;

INSERT OR IGNORE INTO ended_tokens (token_hash, game_id)
    SELECT m.token_hash, g.id
    FROM games g JOIN lobby_members m
        ON m.lobby_id = g.lobby_id AND m.left_at IS NULL
    WHERE g.status IN ('finished', 'interrupted', 'error')
    UNION ALL
    SELECT g.token_hash, g.id FROM games g
    WHERE g.token_hash IS NOT NULL
        AND g.status IN ('finished', 'interrupted', 'error');
