-- depends: 0001_initial
--
-- Two indexes on lobby_members that no query reads, dropped because every
-- index here is keyed by random values (ids, token hashes), so each one adds
-- a scattered page to every group commit of new lobbies and members: with
-- both gone, create_lobby under wrk went from 3,829-4,252 to 4,652-4,779
-- requests a second on the benchmark machine (bench/README.md, "HTTP").
--
-- lobby_members_by_player: members are only ever looked up by lobby.
-- lobby_members_current_token: a token is 256 random bits, checked in memory
-- by its hash; a clash is not a case to guard in the schema.

DROP INDEX lobby_members_by_player;
DROP INDEX lobby_members_current_token;
