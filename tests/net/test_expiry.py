"""Idle lobbies and unopened local games expire, and then answer "gone"."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from bench.bot import Api, ApiError, Bot
from server import protocol
from tests.conftest import ServerProcess
from tests.helpers import aget, refused_hello

IDLE = 1.0


async def test_an_idle_lobby_expires_and_answers_gone(
    server_factory: Callable[..., ServerProcess],
) -> None:
    server = server_factory(tls=False, extra=("--lobby-idle-timeout", str(IDLE)))
    api = Api(server.base_url)
    idle = await api.post("/api/create_lobby/", {"host": "nobody"})
    kept = await api.post("/api/create_lobby/", {"host": "present"})
    present = Bot("present", kept["token"], kept["ws_url"], autoplay=False)
    await present.connect()
    try:
        _, health = await aget(server.base_url, "/api/health/")
        assert health["open_lobbies"] == 2

        await asyncio.sleep(IDLE * 2.5)

        with pytest.raises(ApiError) as gone:
            await api.post(
                "/api/join_lobby/", {"lobby_id": idle["lobby_id"], "guest_name": "x"}
            )
        assert gone.value.status == 410 and gone.value.code == "lobby_closed"
        _, view = await aget(server.base_url, f"/api/lobby/{idle['lobby_id']}/")
        assert view["status"] == "closed"
        _, health = await aget(server.base_url, "/api/health/")
        assert health["open_lobbies"] == 1  # the one with a socket stays

        late = await refused_hello(idle["token"], idle["ws_url"])
        assert late.close_code == protocol.CLOSE_INVALID_TOKEN

        joined = await api.post(
            "/api/join_lobby/", {"lobby_id": kept["lobby_id"], "guest_name": "y"}
        )
        assert joined["seat"] == 1
    finally:
        await present.close()


async def test_an_unopened_local_game_expires_as_interrupted(
    server_factory: Callable[..., ServerProcess],
) -> None:
    server = server_factory(tls=False, extra=("--lobby-idle-timeout", str(IDLE)))
    api = Api(server.base_url)
    game = await api.post("/api/start_game/", {"player-1": "a", "player-2": "b"})
    _, health = await aget(server.base_url, "/api/health/")
    assert health["unopened_local_games"] == 1
    await asyncio.sleep(IDLE * 2.5)
    _, health = await aget(server.base_url, "/api/health/")
    assert health["unopened_local_games"] == 0
    _, view = await aget(server.base_url, f"/api/game/{game['game_id']}/")
    assert view["status"] == "interrupted"
    late = await refused_hello(game["token"], game["ws_url"])
    assert late.close_code == protocol.CLOSE_GAME_OVER
    assert late.result is not None and late.result["status"] == "interrupted"
