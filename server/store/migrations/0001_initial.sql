-- Players, lobbies and their members, games with their seats and rounds.
--
-- Timestamps are unix seconds (REAL). Status columns are checked against the
-- values the records document, so a bug writes nothing rather than a state
-- the rest of the server cannot read back. STRICT tables need SQLite 3.37.
--
-- Nothing is ever deleted: a lobby id stays taken forever (the server draws
-- ids at random and must never hand out one a player may still hold), and
-- members who leave keep their row with left_at set.

CREATE TABLE players (
    id           TEXT PRIMARY KEY,
    kind         TEXT NOT NULL CHECK (kind IN ('guest', 'user')),
    display_name TEXT NOT NULL,
    created_at   REAL NOT NULL
) STRICT;

CREATE TABLE lobbies (
    id                TEXT PRIMARY KEY,
    host_player_id    TEXT NOT NULL REFERENCES players (id),
    status            TEXT NOT NULL
                      CHECK (status IN ('open', 'started', 'closed')),
    max_players       INTEGER NOT NULL CHECK (max_players >= 2),
    points_to_win     INTEGER NOT NULL CHECK (points_to_win >= 1),
    created_at        REAL NOT NULL,
    status_changed_at REAL NOT NULL
) STRICT;

-- Start-up reloads the open lobbies.
CREATE INDEX lobbies_by_status ON lobbies (status);

CREATE TABLE lobby_members (
    id         INTEGER PRIMARY KEY,
    lobby_id   TEXT NOT NULL REFERENCES lobbies (id),
    player_id  TEXT NOT NULL REFERENCES players (id),
    seat       INTEGER NOT NULL CHECK (seat >= 0),
    name       TEXT NOT NULL CHECK (name <> ''),
    token_hash BLOB NOT NULL,
    joined_at  REAL NOT NULL,
    left_at    REAL
) STRICT;

-- Uniqueness holds among current members only, so that a seat, a name or a
-- player freed by someone leaving can be taken again. The first index also
-- serves reading a lobby's members in seat order.
CREATE UNIQUE INDEX lobby_members_current_seat
    ON lobby_members (lobby_id, seat) WHERE left_at IS NULL;
CREATE UNIQUE INDEX lobby_members_current_name
    ON lobby_members (lobby_id, name) WHERE left_at IS NULL;
CREATE UNIQUE INDEX lobby_members_current_player
    ON lobby_members (lobby_id, player_id) WHERE left_at IS NULL;
CREATE UNIQUE INDEX lobby_members_current_token
    ON lobby_members (token_hash) WHERE left_at IS NULL;
CREATE INDEX lobby_members_by_player ON lobby_members (player_id);

CREATE TABLE games (
    id          TEXT PRIMARY KEY,
    lobby_id    TEXT REFERENCES lobbies (id),
    mode        TEXT NOT NULL CHECK (mode IN ('local', 'remote')),
    status      TEXT NOT NULL CHECK (
                    status IN ('waiting', 'running', 'finished', 'interrupted',
                               'error')
                ),
    seed        INTEGER NOT NULL,
    rules       TEXT NOT NULL,
    created_at  REAL NOT NULL,
    started_at  REAL,
    ended_at    REAL,
    winner_seat INTEGER,
    token_hash  BLOB UNIQUE,
    CHECK ((status IN ('waiting', 'running')) = (ended_at IS NULL)),
    -- Deferred because the seats are written after the game they belong to.
    FOREIGN KEY (id, winner_seat) REFERENCES game_players (game_id, seat)
        DEFERRABLE INITIALLY DEFERRED
) STRICT;

-- Start-up looks for games a dead process left unfinished.
CREATE INDEX games_by_status ON games (status);
CREATE INDEX games_by_lobby ON games (lobby_id);

CREATE TABLE game_players (
    game_id   TEXT NOT NULL REFERENCES games (id),
    seat      INTEGER NOT NULL CHECK (seat >= 0),
    player_id TEXT NOT NULL REFERENCES players (id),
    name      TEXT NOT NULL,
    PRIMARY KEY (game_id, seat)
) STRICT;

CREATE INDEX game_players_by_player ON game_players (player_id);

CREATE TABLE rounds (
    game_id     TEXT NOT NULL REFERENCES games (id),
    idx         INTEGER NOT NULL CHECK (idx >= 0),
    left_seat   INTEGER NOT NULL,
    right_seat  INTEGER NOT NULL,
    left_score  INTEGER NOT NULL DEFAULT 0 CHECK (left_score >= 0),
    right_score INTEGER NOT NULL DEFAULT 0 CHECK (right_score >= 0),
    status      TEXT NOT NULL DEFAULT 'pending' CHECK (
                    status IN ('pending', 'running', 'finished', 'forfeit',
                               'interrupted')
                ),
    winner_seat INTEGER CHECK (winner_seat IN (left_seat, right_seat)),
    ended_at    REAL,
    PRIMARY KEY (game_id, idx),
    CHECK (left_seat <> right_seat),
    CHECK ((status IN ('pending', 'running')) = (ended_at IS NULL)),
    FOREIGN KEY (game_id, left_seat) REFERENCES game_players (game_id, seat),
    FOREIGN KEY (game_id, right_seat) REFERENCES game_players (game_id, seat)
) STRICT;
