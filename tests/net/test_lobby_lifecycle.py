"""Seats under contention, and the host role when the host leaves."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from bench.bot import Api, ApiError, Bot, BotError
from server import protocol
from tests.conftest import ServerProcess
from tests.helpers import close_all, connect_db, seated_bots

WAIT = 10.0


async def test_racing_joins_for_the_last_seat_one_wins(
    plain_server: ServerProcess,
) -> None:
    api = Api(plain_server.base_url)
    created = await api.post("/api/create_lobby/", {"host": "h", "max_players": 3})
    lobby_id = created["lobby_id"]
    await api.post("/api/join_lobby/", {"lobby_id": lobby_id, "guest_name": "first"})

    async def join(n: int) -> str:
        try:
            body = {"lobby_id": lobby_id, "guest_name": f"racer{n}"}
            await api.post("/api/join_lobby/", body)
        except ApiError as exc:
            return exc.code
        return "joined"

    outcomes = await asyncio.gather(*(join(n) for n in range(12)))
    assert sorted(outcomes) == ["joined"] + ["lobby_full"] * 11
    with connect_db(plain_server.db_path) as db:
        (members,) = db.execute(
            "SELECT COUNT(*) FROM lobby_members WHERE lobby_id = ? AND left_at IS NULL",
            (lobby_id,),
        ).fetchone()
    assert members == 3


async def test_the_host_leaving_hands_the_lobby_to_the_next_member(
    plain_server: ServerProcess,
) -> None:
    api = Api(plain_server.base_url)
    _, bots = await seated_bots(api, players=3, ready=False)
    host, second, third = bots
    try:
        await host.send(protocol.LEAVE)
        assert await host.wait_closed(WAIT) == protocol.CLOSE_LEFT

        def second_hosts() -> bool:
            lobby = second.lobby or {}
            return lobby.get("host") == second.name and len(lobby["players"]) == 2

        await second.wait_until(second_hosts, WAIT)
        await new_host_starts_and_old_token_is_void(host, second, third)
    finally:
        await close_all(bots)


async def new_host_starts_and_old_token_is_void(
    old_host: Bot, new_host: Bot, other: Bot
) -> None:
    """The lobby is not stuck: its new host starts once the other is ready."""
    await other.ready()
    await new_host.wait_until(
        lambda: any(p["status"] == "ready" for p in (new_host.lobby or {})["players"]),
        WAIT,
    )
    await new_host.start()
    await other.wait_until(lambda: other.game is not None, WAIT)

    # The old host's token no longer opens anything.
    late = Bot(old_host.name, old_host.token, old_host.ws_url)
    with pytest.raises(BotError):
        await late.connect()
    assert await late.wait_closed(WAIT) == protocol.CLOSE_INVALID_TOKEN


async def test_the_last_member_leaving_closes_the_lobby(
    plain_server: ServerProcess,
) -> None:
    api = Api(plain_server.base_url)
    created = await api.post("/api/create_lobby/", {"host": "alone"})
    bot = Bot("alone", created["token"], created["ws_url"], autoplay=False)
    await bot.connect()
    await bot.send(protocol.LEAVE)
    assert await bot.wait_closed(WAIT) == protocol.CLOSE_LEFT
    await asyncio.sleep(0.2)  # the store write follows the answer
    view = await api.get(f"/api/lobby/{created['lobby_id']}/")
    assert view["status"] == "closed"


async def test_max_lobbies_holds_under_concurrent_creates(
    server_factory: Callable[..., ServerProcess],
) -> None:
    server = server_factory(tls=False, extra=("--max-lobbies", "20"))
    api = Api(server.base_url)

    async def create(n: int) -> str:
        try:
            await api.post("/api/create_lobby/", {"host": f"h{n}"})
        except ApiError as exc:
            return exc.code
        return "created"

    outcomes = await asyncio.gather(*(create(n) for n in range(60)))
    assert outcomes.count("created") == 20
    assert outcomes.count("server_busy") == 40
    with connect_db(server.db_path) as db:
        assert db.execute("SELECT COUNT(*) FROM lobbies").fetchone()[0] == 20


async def test_a_host_who_vanishes_hands_the_lobby_on_after_the_seat_timeout(
    server_factory: Callable[..., ServerProcess],
) -> None:
    server = server_factory(tls=False, extra=("--seat-timeout", "1"))
    api = Api(server.base_url)
    lobby_id, bots = await seated_bots(api, players=3, ready=False)
    host, second, third = bots
    try:
        # The host's socket goes and does not come back: no LEAVE was sent.
        await host.close()

        def second_hosts() -> bool:
            lobby = second.lobby or {}
            names = [p["name"] for p in lobby.get("players", [])]
            return lobby.get("host") == second.name and host.name not in names

        await second.wait_until(second_hosts, WAIT)
        with connect_db(server.db_path) as db:
            (left_at,) = db.execute(
                "SELECT left_at FROM lobby_members m JOIN players p"
                " ON p.id = m.player_id WHERE m.lobby_id = ? AND p.display_name = ?",
                (lobby_id, host.name),
            ).fetchone()
        assert left_at is not None  # stored as given up, not only in memory
        await new_host_starts_and_old_token_is_void(host, second, third)
    finally:
        await close_all(bots)


async def test_a_lobby_nobody_is_connected_to_keeps_its_seats(
    server_factory: Callable[..., ServerProcess],
) -> None:
    server = server_factory(tls=False, extra=("--seat-timeout", "1"))
    api = Api(server.base_url)
    created = await api.post("/api/create_lobby/", {"host": "h"})
    await api.post(
        "/api/join_lobby/", {"lobby_id": created["lobby_id"], "guest_name": "g"}
    )
    await asyncio.sleep(2.5)  # past the seat timeout, with no socket at all
    view = await api.get(f"/api/lobby/{created['lobby_id']}/")
    assert [p["name"] for p in view["players"]] == ["h", "g"]
