"""The browser client, played in headless Chromium against the real server.

Playwright drives Debian's chromium (``/usr/bin/chromium``); nothing here
downloads a browser. Each page is its own browser context, as two people on
two machines would be. Keys are held with ``keyboard.down`` so paddles sit at
the field's edges and most balls go by: games to one or two points end in
seconds. A screenshot of a game in progress is saved under the test's
tmp_path and copied to ``test-artifacts/`` at the root of the checkout.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, ServerProcess
from tests.helpers import LOBBY_ID, get

playwright_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"
WAIT = 15_000  # ms for any one page to show what a step expects
GAME_WAIT = 45_000  # ms for a short game to end
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
]


def find_chromium() -> str:
    if os.path.exists(CHROMIUM):
        return CHROMIUM
    if os.environ.get("CI") == "true":
        pytest.fail("chromium is not installed; .ci/run installs Debian's chromium")
    pytest.skip("chromium is not installed (apt-get install -y chromium)")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = find_chromium()
    with playwright_api.sync_playwright() as driver:
        launched = driver.chromium.launch(
            executable_path=executable, args=CHROMIUM_ARGS, headless=True
        )
        yield launched
        launched.close()


@pytest.fixture
def open_page(browser: Any, server: ServerProcess) -> Iterator[Any]:
    """Opens the client in a fresh context; every page's errors fail the test."""
    contexts: list[Any] = []
    errors: list[str] = []

    def page_for(name: str) -> Any:
        context = browser.new_context(
            ignore_https_errors=True, viewport={"width": 1100, "height": 1000}
        )
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(f"{name}: {exc}"))
        page.on(
            "console",
            lambda msg: (
                errors.append(f"{name}: {msg.text}") if msg.type == "error" else None
            ),
        )
        page.goto(server.base_url + "/")
        page.wait_for_function("() => window.pongClient !== undefined")
        return page

    yield page_for
    for context in contexts:
        context.close()
    assert errors == [], "the page reported errors"


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


def seat_two(open_page: Any, points: int) -> tuple[Any, Any, str]:
    """Alice creates a lobby in one page; Bob types its ID in another, joins
    and says ready; both pages see it. Returns the pages and the lobby ID."""
    alice = open_page("alice")
    alice.fill("#name", "alice")
    alice.fill("#create-points", str(points))
    alice.fill("#create-seats", "2")
    alice.click("#create")
    alice.wait_for_function(
        "() => document.getElementById('lobby-id').textContent.length === 10"
    )
    lobby_id = alice.inner_text("#lobby-id")
    assert re.fullmatch(LOBBY_ID, lobby_id)
    alice.wait_for_selector('#lobby-players li[data-name="alice"]')
    assert alice.is_disabled("#start")

    bob = open_page("bob")
    bob.fill("#name", "bob")
    bob.locator("#join-id").press_sequentially(lobby_id.lower())
    bob.click("#join")
    for page in (alice, bob):
        page.wait_for_selector(
            '#lobby-players li[data-name="bob"][data-status="connected"]',
            timeout=WAIT,
        )
    assert bob.is_hidden("#start")
    bob.check("#ready")
    for page in (alice, bob):
        page.wait_for_selector(
            '#lobby-players li[data-name="bob"][data-status="ready"]', timeout=WAIT
        )
    alice.wait_for_selector("#start:not([disabled])", timeout=WAIT)
    return alice, bob, lobby_id


def test_two_pages_play_a_remote_game_to_the_end(
    open_page: Any, server: ServerProcess, tmp_path: Path
) -> None:
    alice, bob, _ = seat_two(open_page, points=2)
    alice.click("#start")
    for page in (alice, bob):
        page.wait_for_selector("#game:not([hidden])", timeout=WAIT)
        wait_ticks(page)
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
    alice, bob, _ = seat_two(open_page, points=99)
    alice.click("#start")
    for page in (alice, bob):
        page.wait_for_selector("#game:not([hidden])", timeout=WAIT)
        wait_ticks(page)

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
