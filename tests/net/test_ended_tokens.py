"""Tokens of ended games answer with the game's GAME_END after a restart too."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import msgpack
import pytest

from bench.bot import Api, GameRun, run_lobby_game, run_local_game
from server import protocol
from tests.conftest import ServerProcess, start_server
from tests.helpers import close_all, refused_hello, seated_bots
from tests.reliability.support import client_frame, raw_websocket, read_frames

UNKNOWN = "x" * 43  # shaped like a token, issued by nobody


@dataclass
class Restarted:
    """A server killed with games in every state, then started again."""

    server: ServerProcess
    remote: GameRun  # played to the end
    local: GameRun  # played to the end
    running: list[str]  # tokens of a lobby game in play at the kill
    unopened: str  # token of a local game whose socket never came


async def play_then_leave_games_open(server: ServerProcess) -> dict[str, Any]:
    api = Api(server.base_url)
    remote = await run_lobby_game(api, players=2, points=1)
    local = await run_local_game(api, points=1)
    _, bots = await seated_bots(api, players=2)
    await bots[0].start()
    await bots[0].wait_until(lambda: bots[0].game is not None)
    unopened = await api.post("/api/start_game/", {"player-1": "a", "player-2": "b"})
    await close_all(bots)  # the seats stay away; the game waits for them
    return {
        "remote": remote,
        "local": local,
        "running": [b.token for b in bots],
        "unopened": unopened["token"],
    }


@pytest.fixture(scope="module")
def restarted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Restarted]:
    data_dir = tmp_path_factory.mktemp("ended")
    first = start_server(data_dir, tls=False)
    games = asyncio.run(play_then_leave_games_open(first))
    # Killed, not stopped: the games left open are stored as interrupted by
    # the next start, not by this process's shutdown.
    first.process.kill()
    first.stop()

    second = start_server(data_dir, tls=False)
    yield Restarted(second, **games)
    assert second.stop() == 0
    assert second.errors() == [], "the server logged errors of its own"


async def test_finished_games_answer_with_their_result(restarted: Restarted) -> None:
    ws_url = restarted.server.ws_url
    for run in (restarted.remote, restarted.local):
        assert run.result["status"] == "finished" and run.result["saved"] is True
        for bot in run.bots:
            late = await refused_hello(bot.token, ws_url)
            assert late.close_code == protocol.CLOSE_GAME_OVER
            assert late.errors == []
            # Word for word what the game's sockets got as it ended.
            assert late.result == run.result


async def test_games_cut_short_answer_interrupted(restarted: Restarted) -> None:
    ws_url = restarted.server.ws_url
    for token in [*restarted.running, restarted.unopened]:
        late = await refused_hello(token, ws_url)
        assert late.close_code == protocol.CLOSE_GAME_OVER
        assert late.result is not None
        assert (late.result["status"], late.result["winner"]) == ("interrupted", None)
        assert late.result["saved"] is True
        assert "standings" not in late.result


async def test_an_unknown_token_is_still_refused(restarted: Restarted) -> None:
    late = await refused_hello(UNKNOWN, restarted.server.ws_url)
    assert late.close_code == protocol.CLOSE_INVALID_TOKEN
    assert [e["code"] for e in late.errors] == ["invalid_token"]
    assert late.result is None


def hello_and_listen(base_url: str, *tokens: str) -> tuple[list[Any], int, float]:
    """HELLO once per token in one write, never answering the close frame.

    The messages the server sent, its close code, and the seconds until it
    dropped the connection.
    """
    with raw_websocket(base_url) as sock:
        began = time.monotonic()
        hellos = [client_frame(msgpack.packb([protocol.HELLO, t])) for t in tokens]
        sock.sendall(b"".join(hellos))
        frames = read_frames(sock, 10)
        took = time.monotonic() - began
    assert [op for op, _ in frames][-1] == 0x8
    messages = [msgpack.unpackb(p) for op, p in frames if op == 0x2]
    return messages, int.from_bytes(frames[-1][1][:2], "big"), took


async def test_a_second_hello_during_the_look_up_is_a_bad_frame(
    restarted: Restarted,
) -> None:
    messages, code, _ = await asyncio.to_thread(
        hello_and_listen, restarted.server.base_url, UNKNOWN, UNKNOWN
    )
    codes = [m[1]["code"] for m in messages if m[0] == protocol.ERROR]
    assert codes == ["bad_frame", "invalid_token"]
    assert code == protocol.CLOSE_INVALID_TOKEN


async def test_a_peer_that_ignores_the_close_after_game_end_is_dropped(
    restarted: Restarted,
) -> None:
    # An interrupted game's GAME_END is short enough for read_frames.
    token = restarted.unopened
    messages, code, took = await asyncio.to_thread(
        hello_and_listen, restarted.server.base_url, token
    )
    assert [m[0] for m in messages] == [protocol.GAME_END]
    assert code == protocol.CLOSE_GAME_OVER
    assert took < 6  # the 3 s close timeout, not the 10 s read timeout
