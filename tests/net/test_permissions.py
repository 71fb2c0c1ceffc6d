"""Who may do what: hosting, seats, starting, closing, sockets and their tokens.

Each test tries the forbidden thing over real sockets, checks the documented
refusal, and checks that nothing changed: no row written, no seat moved.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bench.bot import Api, Bot, BotError
from server import protocol
from tests.conftest import ServerProcess
from tests.helpers import (
    close_all,
    db_counts,
    get,
    login,
    post,
    request,
    seated_bots,
)

WAIT = 5.0


def refused(answer: tuple[int, Any], status: int, code: str) -> None:
    assert (answer[0], answer[1]["error"]["code"]) == (status, code), answer


def test_guests_may_host_by_default(server: ServerProcess) -> None:
    status, created = post(server.base_url, "/api/create_lobby/", {"host": "test"})
    assert status == 201 and created["name"] == "test"


def test_with_guests_barred_only_users_host(server_factory: Any) -> None:
    running = server_factory(extra=("--no-guests-may-host",))
    base = running.base_url
    before = db_counts(running.db_path)
    refused(post(base, "/api/create_lobby/", {"host": "test"}), 401, "login_required")
    assert db_counts(running.db_path) == before

    token = login(base, "olga")
    status, created = post(base, "/api/create_lobby/", {"host": "someone"}, token)
    assert status == 201
    assert created["name"] == "olga"
    _, me = get_me(base, token)
    assert created["player_id"] == me["player_id"]
    # Guests may still join.
    status, _ = post(
        base,
        "/api/join_lobby/",
        {"lobby_id": created["lobby_id"], "guest_name": "guest"},
    )
    assert status == 200


def test_with_guests_barred_the_host_role_goes_only_to_a_user(
    server_factory: Any,
) -> None:
    running = server_factory(extra=("--no-guests-may-host",))
    base = running.base_url
    first, second = login(base, "quinn"), login(base, "rhea")
    _, created = post(base, "/api/create_lobby/", {"max_players": 4}, first)
    lobby_id = created["lobby_id"]
    body = {"lobby_id": lobby_id, "guest_name": "gus"}
    _, guest = post(base, "/api/join_lobby/", body, None)  # seat 1, a guest
    post(base, "/api/join_lobby/", {"lobby_id": lobby_id}, second)  # seat 2
    view = lambda: get(base, f"/api/lobby/{lobby_id}/")[1]  # noqa: E731

    # The host leaves: the role skips the guest at seat 1 for the user.
    assert post(base, "/api/leave_lobby/", {"lobby_id": lobby_id}, first)[0] == 200
    assert view()["host"] == "rhea"

    # The last user leaves: no one may host, so the lobby closes.
    assert post(base, "/api/leave_lobby/", {"lobby_id": lobby_id}, second)[0] == 200
    assert view()["status"] == "closed"
    refused(post(base, "/api/join_lobby/", body), 410, "lobby_closed")
    # And the guest's token is void: it cannot close or start anything.
    refused(
        post(base, "/api/close_lobby/", {"lobby_id": lobby_id}, guest["token"]),
        401,
        "invalid_token",
    )


def get_me(base: str, token: str) -> tuple[int, Any]:
    status, answer, _ = request(
        base, "GET", "/api/me/", headers={"Authorization": f"Bearer {token}"}
    )
    return status, answer


def test_a_user_joins_as_themself_and_holds_one_seat(server: ServerProcess) -> None:
    base = server.base_url
    _, created = post(base, "/api/create_lobby/", {"host": "host"})
    token = login(base, "petra")
    body = {"lobby_id": created["lobby_id"], "guest_name": "impostor"}
    status, joined = post(base, "/api/join_lobby/", body, token)
    assert status == 200 and joined["name"] == "petra"

    before = db_counts(server.db_path)
    refused(post(base, "/api/join_lobby/", body, token), 409, "already_joined")
    assert db_counts(server.db_path) == before
    _, view = get(base, f"/api/lobby/{created['lobby_id']}/")
    shown = [(p["name"], p["user"]) for p in view["players"]]
    assert shown == [("host", False), ("petra", True)]


async def test_only_the_host_starts_or_closes(server: ServerProcess) -> None:
    api = Api(server.base_url, insecure=True)
    lobby_id, bots = await seated_bots(api, 2)
    host, guest = bots
    base = server.base_url
    try:
        stranger = await asyncio.to_thread(login, base, "quinn")
        before = db_counts(server.db_path)
        body = {"lobby_id": lobby_id}
        for path in ("/api/start_game/", "/api/close_lobby/"):
            refused(await asyncio.to_thread(post, base, path, body, guest.token),
                    403, "not_host")  # fmt: skip
            refused(await asyncio.to_thread(post, base, path, body, None),
                    401, "unauthorized")  # fmt: skip
            refused(await asyncio.to_thread(post, base, path, body, stranger),
                    403, "not_host")  # fmt: skip
        await guest.start()
        await guest.wait_until(lambda: "not_host" in codes(guest), WAIT)
        assert db_counts(server.db_path) == before
        _, view = await asyncio.to_thread(get, base, f"/api/lobby/{lobby_id}/")
        assert view["status"] == "open"

        # The host closes it: every seat's socket is told, every token void.
        status, _ = await asyncio.to_thread(
            post, base, "/api/close_lobby/", body, host.token
        )
        assert status == 200
        assert await guest.wait_closed(WAIT) == protocol.CLOSE_LOBBY_CLOSED
        late = Bot("guest", guest.token, guest.ws_url, ssl_context=api.ssl)
        with pytest.raises(BotError):
            await late.connect()
        assert await late.wait_closed(WAIT) == protocol.CLOSE_INVALID_TOKEN
    finally:
        await close_all(bots)


def codes(bot: Bot) -> list[str]:
    return [e["code"] for e in bot.errors]


async def test_a_logged_in_host_starts_with_their_session(
    server: ServerProcess,
) -> None:
    base = server.base_url
    api = Api(base, insecure=True)
    token = await asyncio.to_thread(login, base, "rosa")
    created = await asyncio.to_thread(
        post, base, "/api/create_lobby/", {"max_players": 2}, token
    )
    lobby_id = created[1]["lobby_id"]
    joined = await api.post(
        "/api/join_lobby/", {"lobby_id": lobby_id, "guest_name": "g"}
    )
    bots = [
        Bot("rosa", created[1]["token"], created[1]["ws_url"], ssl_context=api.ssl,
            autoplay=False),
        Bot("g", joined["token"], joined["ws_url"], ssl_context=api.ssl,
            autoplay=False),
    ]  # fmt: skip
    try:
        for bot in bots:
            await bot.connect()
        await bots[1].ready()
        await bots[0].wait_until(
            lambda: any(p["status"] == "ready" for p in bots[0].lobby["players"]),
            WAIT,
        )
        status, game = await asyncio.to_thread(
            post, base, "/api/start_game/", {"lobby_id": lobby_id}, token
        )
        assert status == 201 and game["players"] == ["rosa", "g"]
    finally:
        await close_all(bots)


async def test_only_a_members_token_opens_a_socket(server: ServerProcess) -> None:
    api = Api(server.base_url, insecure=True)
    session = await asyncio.to_thread(login, server.base_url, "sam")
    for token in ("not-a-token", session):  # a login session is not a seat
        bot = Bot("x", token, api.base_url.replace("http", "ws", 1) + "/ws/",
                  ssl_context=api.ssl, autoplay=False)  # fmt: skip
        with pytest.raises(BotError):
            await bot.connect()
        assert await bot.wait_closed(WAIT) == protocol.CLOSE_INVALID_TOKEN


async def test_a_socket_cannot_drive_another_players_paddle(
    server: ServerProcess,
) -> None:
    api = Api(server.base_url, insecure=True)
    _, bots = await seated_bots(api, 2)
    host, guest = bots
    try:
        await host.start()
        for bot in bots:
            await bot.wait_until(lambda b=bot: b.snapshot is not None, WAIT)
        middle = host.game["rules"]["field_height"] / 2
        await guest.send(protocol.INPUT, 1, -1.0, 0)  # the host's seat
        await guest.wait_until(lambda: "forbidden" in codes(guest), WAIT)
        await asyncio.sleep(0.3)
        snap = host.snapshot
        assert (snap.left_y, snap.right_y) == (middle, middle)
    finally:
        await close_all(bots)


async def test_a_seat_given_up_cannot_be_driven_with_its_old_token(
    server: ServerProcess,
) -> None:
    api = Api(server.base_url, insecure=True)
    lobby_id, bots = await seated_bots(api, 2, ready=False, max_players=2)
    host, leaver = bots
    try:
        await leaver.send(protocol.LEAVE)
        assert await leaver.wait_closed(WAIT) == protocol.CLOSE_LEFT
        taker = await api.post(
            "/api/join_lobby/", {"lobby_id": lobby_id, "guest_name": "taker"}
        )
        assert taker["seat"] == 1  # the same seat, someone else's now

        stale = Bot(leaver.name, leaver.token, leaver.ws_url, ssl_context=api.ssl,
                    autoplay=False)  # fmt: skip
        with pytest.raises(BotError):
            await stale.connect()
        assert await stale.wait_closed(WAIT) == protocol.CLOSE_INVALID_TOKEN
        refused(
            await asyncio.to_thread(
                post, server.base_url, "/api/start_game/",
                {"lobby_id": lobby_id}, leaver.token,
            ),
            401, "invalid_token",
        )  # fmt: skip
        _, view = await asyncio.to_thread(
            get, server.base_url, f"/api/lobby/{lobby_id}/"
        )
        assert [p["name"] for p in view["players"]] == [host.name, "taker"]
    finally:
        await close_all(bots)


async def test_leaving_over_http_voids_the_token(server: ServerProcess) -> None:
    api = Api(server.base_url, insecure=True)
    base = server.base_url
    lobby_id, bots = await seated_bots(api, 2, ready=False, max_players=3)
    _, (other,) = await seated_bots(api, 1, ready=False, max_players=2)
    host, guest = bots
    body = {"lobby_id": lobby_id}
    try:
        # A seat in another lobby gives no say in this one.
        before = db_counts(server.db_path)
        refused(await asyncio.to_thread(post, base, "/api/leave_lobby/", body,
                                        other.token), 403, "forbidden")  # fmt: skip
        assert db_counts(server.db_path) == before

        status, left = await asyncio.to_thread(
            post, base, "/api/leave_lobby/", body, guest.token
        )
        assert status == 200 and left["seat"] == 1
        assert await guest.wait_closed(WAIT) == protocol.CLOSE_LEFT
        refused(await asyncio.to_thread(post, base, "/api/leave_lobby/", body,
                                        guest.token), 401, "invalid_token")  # fmt: skip
        stale = Bot("g", guest.token, guest.ws_url, ssl_context=api.ssl)
        with pytest.raises(BotError):
            await stale.connect()
        assert await stale.wait_closed(WAIT) == protocol.CLOSE_INVALID_TOKEN
        _, view = await asyncio.to_thread(get, base, f"/api/lobby/{lobby_id}/")
        assert [p["name"] for p in view["players"]] == [host.name]
    finally:
        await close_all([*bots, other])
