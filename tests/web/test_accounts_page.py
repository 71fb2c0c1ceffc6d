"""The page with accounts: register, log in, an avatar, and cookie sessions.

A user's session lives in the ``sessionid`` cookie, so every POST or PUT the
page makes must carry the ``csrftoken`` cookie's value as ``X-CSRFToken``;
without it the server answers 403 csrf_failed. Playwright's request context
shares the page's cookies, which lets a test log a browser in the way any
other page of the site would have.
"""

from __future__ import annotations

import io
from typing import Any

from PIL import Image

from tests.conftest import ServerProcess
from tests.helpers import PASSWORD
from tests.web.test_browser import GAME_WAIT, WAIT, result_of, stored, wait_ticks

AVATAR_SIZE = (48, 40)  # smaller than the default avatar's 160 x 160


def avatar_png() -> bytes:
    picture = Image.new("RGB", AVATAR_SIZE, (200, 40, 90))
    out = io.BytesIO()
    picture.save(out, format="PNG")
    return out.getvalue()


def shown_avatar(page: Any, name: str) -> dict[str, Any]:
    """The lobby entry's picture once loaded: its src and natural size."""
    selector = f'#lobby-players li[data-name="{name}"] img.avatar'
    page.wait_for_function(
        f"() => {{ const img = document.querySelector('{selector}');"
        " return img !== null && img.complete && img.naturalWidth > 0; }",
        timeout=WAIT,
    )
    return page.eval_on_selector(
        selector,
        "img => ({src: img.getAttribute('src'), width: img.naturalWidth,"
        " height: img.naturalHeight})",
    )


def test_a_user_registers_uploads_an_avatar_and_plays_a_guest(
    open_page: Any, server: ServerProcess
) -> None:
    ann = open_page("ann")
    ann.fill("#username", "ann")
    ann.fill("#password", PASSWORD)
    ann.click("#register")
    ann.wait_for_selector("#user-box:not([hidden])", timeout=WAIT)
    assert ann.is_hidden("#guest-box")
    assert ann.inner_text("#me-name") == "ann"
    player_id = ann.evaluate("() => fetch('/api/me/').then(r => r.json())")["player_id"]

    ann.set_input_files(
        "#avatar-file",
        {"name": "me.png", "mimeType": "image/png", "buffer": avatar_png()},
    )
    ann.wait_for_function(
        "() => { const img = document.getElementById('me-avatar');"
        f" return img.complete && img.naturalWidth === {AVATAR_SIZE[0]}; }}",
        timeout=WAIT,
    )

    ann.fill("#create-points", "1")
    ann.fill("#create-seats", "2")
    ann.click("#create")
    ann.wait_for_selector('#lobby-players li[data-name="ann"]', timeout=WAIT)
    lobby_id = ann.inner_text("#lobby-id")

    guest = open_page("guest")
    guest.fill("#name", "bo")
    guest.fill("#join-id", lobby_id)
    guest.click("#join")
    for page in (ann, guest):
        page.wait_for_selector('#lobby-players li[data-name="bo"]', timeout=WAIT)
        picture = shown_avatar(page, "ann")
        # The uploader's page adds a version, so it drops the old picture.
        src, _, version = picture.pop("src").partition("?v=")
        assert src == f"/api/players/{player_id}/avatar/"
        assert bool(version) == (page is ann)
        assert picture == {"width": AVATAR_SIZE[0], "height": AVATAR_SIZE[1]}
        user = page.locator('#lobby-players li[data-name="ann"]')
        assert user.get_attribute("data-user") == "true"
        assert user.locator(".tag.account").inner_text() == "account"
        other = page.locator('#lobby-players li[data-name="bo"]')
        assert other.get_attribute("data-user") == "false"
        assert other.locator(".tag.account").count() == 0
        assert shown_avatar(page, "bo")["width"] == 160  # the server's default

    guest.check("#ready")
    ann.wait_for_selector("#start:not([disabled])", timeout=WAIT)
    ann.click("#start")
    for page in (ann, guest):
        page.wait_for_selector("#game:not([hidden])", timeout=WAIT)
        wait_ticks(page)
    assert ann.inner_text("#left-name") == "ann"
    ann.keyboard.down("ArrowUp")
    guest.keyboard.down("s")
    shown = [result_of(ann), result_of(guest)]
    ann.keyboard.up("ArrowUp")
    guest.keyboard.up("s")
    assert shown[0] == shown[1] == stored(server, shown[0]["game_id"])
    assert shown[0]["status"] == "finished"
    for page in (ann, guest):
        page.wait_for_selector("#connection[data-state='none']", timeout=GAME_WAIT)
        assert page.is_hidden("#banner")

    ann.click("#again")
    ann.click("#logout")
    ann.wait_for_selector("#guest-box:not([hidden])", timeout=WAIT)
    # Asked outside the page, whose console would log the 401 as an error.
    assert ann.request.get(server.base_url + "/api/me/").status == 401


def test_a_page_with_a_session_cookie_creates_and_starts_as_the_user(
    open_page: Any, server: ServerProcess
) -> None:
    page = open_page("cleo")
    answer = page.request.post(
        server.base_url + "/api/register/",
        data={"username": "cleo", "password": PASSWORD},
    )
    assert answer.status == 201
    answer = page.request.post(
        server.base_url + "/api/login/",
        data={"username": "cleo", "password": PASSWORD},
    )
    assert answer.status == 200
    # A name as a guest would have typed earlier; a user needs none. With the
    # csrftoken cookie gone the page must fetch a new one first.
    page.evaluate(
        "() => { localStorage.setItem('pong.name', 'someone');"
        " localStorage.setItem('pong.account', '1'); }"
    )
    page.context.clear_cookies(name="csrftoken")
    page.reload()
    page.wait_for_function("() => window.pongClient !== undefined")

    # The server takes the session over the name; without X-CSRFToken it
    # answers 403 csrf_failed and the page stays home with an error.
    page.click("#create")
    page.wait_for_selector(
        '#lobby-players li[data-name="cleo"][data-user="true"]', timeout=WAIT
    )
    assert page.is_hidden("#error")
    page.wait_for_function(
        "() => document.getElementById('me-name').textContent === 'cleo'",
        timeout=WAIT,
    )
    page.click("#leave")
    page.wait_for_selector("#home:not([hidden])", timeout=WAIT)

    page.click("#local-start")
    page.wait_for_selector("#game:not([hidden])", timeout=WAIT)
    wait_ticks(page)
    assert page.is_hidden("#error")
