"""The browser client, played in headless Chromium against the real server.

Playwright drives Debian's chromium (``/usr/bin/chromium``); nothing here
downloads a browser. Each page is its own browser context, as two people on
two machines would be. Keys are held with ``keyboard.down`` so paddles sit at
the field's edges and most balls go by: games to one or two points end in
seconds. A screenshot of a game in progress is saved under the test's
tmp_path and copied to ``test-artifacts/`` at the root of the checkout.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

from tests.conftest import ROOT, ServerProcess
from tests.helpers import LOBBY_ID, get

ARTIFACTS = ROOT / "test-artifacts"
WAIT = 15_000  # ms for any one page to show what a step expects
GAME_WAIT = 45_000  # ms for a short game to end


def save_screenshot(page: Any, tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    page.screenshot(path=str(path))
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(path, ARTIFACTS / name)
    print(f"screenshot: {path} (copied to {ARTIFACTS / name})")
    return path


def wait_ticks(page: Any, count: int = 30) -> None:
    """Waits until the page has drawn ``count`` more server ticks."""
    start = page.eval_on_selector("#field", "el => Number(el.dataset.tick || 0)")
    page.wait_for_function(
        f"() => Number(document.getElementById('field').dataset.tick || 0)"
        f" >= {start + count}",
        timeout=WAIT,
    )


def result_of(page: Any) -> dict[str, Any]:
    """What the result screen shows: game, title, winner, rounds' scores."""
    page.wait_for_selector("#result:not([hidden])", timeout=GAME_WAIT)
    title = page.locator("#result-title")
    rounds = page.locator("#result-rounds li")
    return {
        "game_id": page.inner_text("#result-game"),
        "status": title.get_attribute("data-status"),
        "winner": title.get_attribute("data-winner"),
        "scores": [
            rounds.nth(i).get_attribute("data-score") for i in range(rounds.count())
        ],
    }


def stored(server: ServerProcess, game_id: str) -> dict[str, Any]:
    status, game = get(server.base_url, f"/api/game/{game_id}/")
    assert status == 200
    return {
        "game_id": game_id,
        "status": game["status"],
        "winner": game["winner"],
        "scores": ["{}-{}".format(*r["score"]) for r in game["rounds"]],
    }


def seat(open_page: Any, names: list[str], points: int) -> list[Any]:
    """The first name creates a lobby in one page; each other types its ID
    in a page of its own, joins and says ready; every page sees it all."""
    host = open_page(names[0])
    host.fill("#name", names[0])
    host.fill("#create-points", str(points))
    host.fill("#create-seats", str(len(names)))
    host.click("#create")
    host.wait_for_function(
        "() => document.getElementById('lobby-id').textContent.length === 10"
    )
    lobby_id = host.inner_text("#lobby-id")
    assert re.fullmatch(LOBBY_ID, lobby_id)
    host.wait_for_selector(f'#lobby-players li[data-name="{names[0]}"]')
    assert host.is_disabled("#start")

    pages = [host]
    for name in names[1:]:
        guest = open_page(name)
        guest.fill("#name", name)
        guest.locator("#join-id").press_sequentially(lobby_id.lower())
        guest.click("#join")
        guest.wait_for_selector(f'#lobby-players li[data-name="{name}"]')
        assert guest.is_hidden("#start")
        pages.append(guest)
    for page in pages:
        page.wait_for_function(
            f"() => document.querySelectorAll('#lobby-players li').length"
            f" === {len(names)}",
            timeout=WAIT,
        )
    for page in pages[1:]:
        page.check("#ready")
    for page in pages:
        for name in names[1:]:
            page.wait_for_selector(
                f'#lobby-players li[data-name="{name}"][data-status="ready"]',
                timeout=WAIT,
            )
    host.wait_for_selector("#start:not([disabled])", timeout=WAIT)
    return pages


def start_game(pages: list[Any]) -> None:
    pages[0].click("#start")
    for page in pages:
        page.wait_for_selector("#game:not([hidden])", timeout=WAIT)
        wait_ticks(page)


def test_two_pages_play_a_remote_game_to_the_end(
    open_page: Any, server: ServerProcess, tmp_path: Path
) -> None:
    alice, bob = seat(open_page, ["alice", "bob"], points=2)
    assert alice.inner_text("#lobby-players li[data-name=bob] .badge") == "ready"
    start_game([alice, bob])
    assert "You play on the left" in alice.inner_text("#game-status")
    assert "You play on the right" in bob.inner_text("#game-status")
    assert alice.inner_text("#left-name") == bob.inner_text("#left-name") == "alice"

    # Each paddle to an edge, away from most serves.
    alice.keyboard.down("ArrowUp")
    bob.keyboard.down("s")
    wait_ticks(alice, 90)  # the serve waits a second
    save_screenshot(alice, tmp_path, "remote-game-in-progress.png")

    shown = [result_of(alice), result_of(bob)]
    alice.keyboard.up("ArrowUp")
    bob.keyboard.up("s")
    assert shown[0] == shown[1]
    result = shown[0]
    assert result["status"] == "finished"
    assert result == stored(server, result["game_id"])
    assert max(int(n) for n in result["scores"][0].split("-")) == 2


def test_a_member_not_in_the_round_watches_it(
    open_page: Any, server: ServerProcess
) -> None:
    pages = seat(open_page, ["alice", "bob", "cy"], points=1)
    alice, bob, cy = pages
    start_game(pages)
    # Three players: cy (seat 2) meets bob (seat 1) first; alice watches.
    assert "You are watching; you play in round 2" in alice.inner_text("#game-status")
    assert alice.get_attribute("body", "data-role") == "spectator"
    assert alice.is_visible("#schedule li[data-round='0'].playing")
    alice.wait_for_selector(
        '#game-players li[data-name="alice"][data-status="spectating"]'
    )
    assert "You play on the left" in cy.inner_text("#game-status")

    alice.keyboard.down("ArrowUp")  # no paddle yet: sends nothing
    bob.keyboard.down("s")
    cy.keyboard.down("w")
    alice.wait_for_function(
        "() => document.getElementById('game-status').textContent"
        ".includes('You play on the')",
        timeout=GAME_WAIT,
    )
    assert alice.locator("#schedule li[data-round='0'][data-score]").count() == 1
    shown = [result_of(page) for page in pages]
    for page, key in zip(pages, ["ArrowUp", "s", "w"], strict=True):
        page.keyboard.up(key)
    assert shown[0] == shown[1] == shown[2]
    assert len(shown[0]["scores"]) == 3
    assert shown[0] == stored(server, shown[0]["game_id"])
    assert alice.is_hidden("#error")  # no INPUT was refused


def test_a_local_game_plays_every_round_on_one_keyboard(
    open_page: Any, server: ServerProcess, tmp_path: Path
) -> None:
    page = open_page("local")
    page.click("#local-add")
    names = ["ann", "ben", "cy"]
    inputs = page.locator("#local-names input")
    assert inputs.count() == 3
    for i, name in enumerate(names):
        inputs.nth(i).fill(name)
    page.fill("#local-points", "1")
    page.click("#local-start")
    page.wait_for_selector("#game:not([hidden])", timeout=WAIT)
    wait_ticks(page)
    assert page.locator("#schedule li").count() == 3  # every pair once
    assert page.inner_text("#controls").count("W / S") == 1

    page.keyboard.down("w")  # the left paddle of every round goes up
    page.keyboard.down("ArrowDown")  # and the right one down
    wait_ticks(page, 90)
    save_screenshot(page, tmp_path, "local-game-in-progress.png")
    result = result_of(page)
    page.keyboard.up("w")
    page.keyboard.up("ArrowDown")

    assert result["status"] == "finished"
    assert len(result["scores"]) == 3
    assert all(sorted(s.split("-")) == ["0", "1"] for s in result["scores"])
    assert result == stored(server, result["game_id"])
    _, game = get(server.base_url, f"/api/game/{result['game_id']}/")
    assert game["game_mode"] == "local"
    assert [p["name"] for p in game["players"]] == names


def test_a_dropped_connection_is_shown_and_restored(open_page: Any) -> None:
    alice, bob = seat(open_page, ["alice", "bob"], points=99)
    start_game([alice, bob])

    bob.evaluate("window.pongClient.dropConnection()")
    assert "Connection lost" in bob.inner_text("#banner")
    assert bob.get_attribute("#connection", "data-state") == "lost"

    bob.wait_for_selector("#banner", state="hidden", timeout=WAIT)
    assert bob.get_attribute("#connection", "data-state") == "open"
    alice.wait_for_function(
        "() => document.getElementById('events').textContent.includes('bob is back')",
        timeout=WAIT,
    )
    assert "bob lost connection" in alice.inner_text("#events")
    for page in (alice, bob):
        page.wait_for_selector(
            '#game-players li[data-name="bob"][data-status="playing"]', timeout=WAIT
        )
        wait_ticks(page)  # the game goes on, for both

    # Offline, the socket looks open but goes silent: the page notices.
    bob.context.set_offline(True)
    bob.wait_for_selector("#connection[data-state='lost']", timeout=WAIT)
    assert "Connection lost" in bob.inner_text("#banner")
    bob.context.set_offline(False)
    bob.wait_for_selector("#banner", state="hidden", timeout=WAIT)
    wait_ticks(bob)

    # A reload of the tab takes the same seat back.
    bob.reload()
    bob.wait_for_selector("#game:not([hidden])", timeout=WAIT)
    wait_ticks(bob)
    assert "You play on the right" in bob.inner_text("#game-status")
    assert bob.locator("#schedule li").count() == 1


def test_leaving_the_lobby_frees_the_seat(
    open_page: Any, server: ServerProcess
) -> None:
    alice, bob = seat(open_page, ["alice", "bob"], points=1)
    lobby_id = alice.inner_text("#lobby-id")
    bob.click("#leave")
    bob.wait_for_selector("#home:not([hidden])", timeout=WAIT)
    alice.wait_for_function(
        "() => document.querySelectorAll('#lobby-players li').length === 1",
        timeout=WAIT,
    )
    assert alice.is_disabled("#start")
    _, lobby = get(server.base_url, f"/api/lobby/{lobby_id}/")
    assert [p["name"] for p in lobby["players"]] == ["alice"]


def test_a_void_seat_sends_the_page_back_to_the_start(open_page: Any) -> None:
    page = open_page("stale")
    seat = {"kind": "lobby", "token": "x" * 43, "lobbyId": "0" * 10, "name": "x"}
    page.evaluate(
        "(seat) => sessionStorage.setItem('pong.seat', JSON.stringify(seat))", seat
    )
    page.reload()
    page.wait_for_function(
        "() => document.getElementById('banner').textContent"
        ".includes('no longer valid')",
        timeout=WAIT,
    )
    assert page.is_visible("#home")
    assert page.evaluate("() => sessionStorage.getItem('pong.seat')") is None


def test_a_link_lost_after_the_game_leaves_no_banner_on_the_result(
    open_page: Any,
) -> None:
    alice, bob = seat(open_page, ["alice", "bob"], points=1)
    # The server's close after GAME_END (4006) reaches bob as a plain drop,
    # as a failing network would show it: he retries, is told the game is
    # over, and stays on the result, which no stale banner may cover.
    dropped: list[int] = []

    def drop_the_last_close(ws: Any) -> None:
        server = ws.connect_to_server()

        def closed(code: int | None, reason: str | None) -> None:
            if code == 4006 and not dropped:
                dropped.append(code)
                ws.close(code=4000, reason="dropped")
            else:
                ws.close(code=code, reason=reason or "")

        server.on_close(closed)

    bob.route_web_socket("**/ws/", drop_the_last_close)
    bob.evaluate("window.pongClient.dropConnection()")  # back through the route
    bob.wait_for_selector("#connection[data-state='open']", timeout=WAIT)
    bob.check("#ready")  # a new socket says READY again
    alice.wait_for_selector("#start:not([disabled])", timeout=WAIT)
    start_game([alice, bob])
    alice.keyboard.down("ArrowUp")
    bob.keyboard.down("s")
    shown = [result_of(alice), result_of(bob)]
    alice.keyboard.up("ArrowUp")
    bob.keyboard.up("s")
    assert shown[0] == shown[1]
    bob.wait_for_selector("#connection[data-state='none']", timeout=WAIT)
    assert dropped == [4006]
    assert bob.is_visible("#result")
    assert bob.is_hidden("#banner")
