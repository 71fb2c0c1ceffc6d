"""The lobby state machine: seats, names, host hand-over, who may start."""

from __future__ import annotations

import pytest

from server.errors import ClientError
from server.lobby.lobby import OPEN, STARTED, Lobby, Member


class Socket:
    socket_id = "s1"

    def send(self, data: bytes) -> None: ...

    def send_snapshot(self, data: bytes) -> bool:
        return True

    def close(self, code: int, reason: str) -> None: ...


def lobby_with(*names: str, max_players: int = 4) -> Lobby:
    lobby = Lobby("ABCDEFGHJK", max_players, 5, 0.0)
    for name in names:
        seat = lobby.next_seat()
        lobby.add(Member(seat, f"p{seat}", lobby.unique_name(name), b"%d" % seat, 0.0))
    return lobby


def test_repeated_names_get_a_number() -> None:
    lobby = lobby_with("myname", "myname", "MyName", "other")
    assert [m.name for m in lobby.members.values()] == [
        "myname",
        "myname#2",
        "MyName#3",
        "other",
    ]


def test_full_and_started_lobbies_refuse_seats() -> None:
    lobby = lobby_with("a", "b", max_players=2)
    with pytest.raises(ClientError) as full:
        lobby.check_joinable()
    assert full.value.code == "lobby_full"
    lobby = lobby_with("a")
    lobby.status = STARTED
    with pytest.raises(ClientError) as started:
        lobby.check_joinable()
    assert started.value.code == "lobby_started"


def test_seats_are_reused_lowest_first_and_host_passes_on() -> None:
    lobby = lobby_with("a", "b", "c")
    lobby.remove(0)
    assert lobby.host_seat == 1
    assert lobby.next_seat() == 0
    lobby.remove(1)
    assert lobby.host_seat == 2


def test_only_the_host_starts_and_only_when_all_are_ready() -> None:
    lobby = lobby_with("a", "b")
    with pytest.raises(ClientError) as not_host:
        lobby.check_startable(1)
    assert not_host.value.code == "not_host"

    with pytest.raises(ClientError) as not_ready:
        lobby.check_startable(0)
    assert not_ready.value.code == "not_ready"

    for m in lobby.members.values():
        m.endpoint = Socket()
    with pytest.raises(ClientError):
        lobby.check_startable(0)  # b is connected but not ready
    lobby.members[1].ready = True
    lobby.check_startable(0)  # the host's start counts as its ready
    assert lobby.status == OPEN


def test_a_lone_host_cannot_start() -> None:
    lobby = lobby_with("a")
    lobby.members[0].endpoint = Socket()
    with pytest.raises(ClientError) as few:
        lobby.check_startable(0)
    assert few.value.code == "too_few_players"


def test_no_start_while_a_leave_is_being_stored() -> None:
    lobby = lobby_with("a", "b", "c")
    for m in lobby.members.values():
        m.endpoint = Socket()
        m.ready = True
    lobby.remove(2)
    lobby.leaving = 1  # c's removal is being written, and may yet fail
    with pytest.raises(ClientError) as leaving:
        lobby.check_startable(0)
    assert leaving.value.code == "not_ready"
    lobby.leaving = 0
    lobby.check_startable(0)


def test_view_shows_statuses() -> None:
    lobby = lobby_with("a", "b", "c")
    lobby.members[0].endpoint = Socket()
    lobby.members[1].endpoint = Socket()
    lobby.members[1].ready = True
    view = lobby.view()
    assert view["host"] == "a"
    assert [p["status"] for p in view["players"]] == ["connected", "ready", "joined"]
    assert [p["host"] for p in view["players"]] == [True, False, False]
