"""Accounts over HTTP: register, log in, "me", log out; sessions by bearer or cookie."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.conftest import ServerProcess
from tests.helpers import (
    PASSWORD,
    browser_login,
    connect_db,
    db_counts,
    get,
    login,
    post,
    request,
)


def register(base_url: str, username: str, password: str = PASSWORD) -> tuple[int, Any]:
    return post(
        base_url, "/api/register/", {"username": username, "password": password}
    )


def me(base_url: str, token: str) -> tuple[int, Any]:
    status, answer, _ = request(
        base_url, "GET", "/api/me/", headers={"Authorization": f"Bearer {token}"}
    )
    return status, answer


def test_register_login_me_logout_with_a_bearer_token(server: ServerProcess) -> None:
    status, created = register(server.base_url, "Carol")
    assert status == 201 and created["username"] == "Carol"
    token = login(server.base_url, "carol")  # any case logs in

    status, profile = me(server.base_url, token)
    assert status == 200
    assert profile["player_id"] == created["player_id"]
    assert (profile["kind"], profile["username"]) == ("user", "Carol")
    assert (profile["games_played"], profile["wins"]) == (0, 0)

    status, _ = post(server.base_url, "/api/logout/", {}, token)
    assert status == 200
    status, answer = me(server.base_url, token)
    assert (status, answer["error"]["code"]) == (401, "login_required")
    status, answer = post(server.base_url, "/api/logout/", {}, token)
    assert (status, answer["error"]["code"]) == (401, "unauthorized")


def test_usernames_are_unique_whatever_the_case_or_width(
    server: ServerProcess,
) -> None:
    assert register(server.base_url, "Dave")[0] == 201
    before = db_counts(server.db_path)
    # Upper case, full-width letters, and a ligature that NFKC unfolds.
    for same in ("DAVE", "\uff24\uff41\uff56\uff45", "dave "):
        status, answer = register(server.base_url, same)
        assert (status, answer["error"]["code"]) == (409, "username_taken"), same
    assert register(server.base_url, "\ufb01n")[0] == 201
    status, answer = register(server.base_url, "fin")
    assert (status, answer["error"]["code"]) == (409, "username_taken")
    assert db_counts(server.db_path)["users"] == before["users"] + 1


def test_bad_usernames_and_passwords_are_refused(server: ServerProcess) -> None:
    before = db_counts(server.db_path)
    for username, password in [
        ("ab", PASSWORD),  # too short
        ("has space", PASSWORD),
        ("p\u0430ypal", PASSWORD),  # a Cyrillic letter among Latin ones
        ("erin", "short"),
    ]:
        status, answer = register(server.base_url, username, password)
        assert (status, answer["error"]["code"]) == (400, "invalid_field")
    assert db_counts(server.db_path) == before


def test_passwords_are_kept_only_as_scrypt_hashes_and_never_logged(
    server: ServerProcess,
) -> None:
    token = login(server.base_url, "frank", "frank's secret words")
    with connect_db(server.db_path) as conn:
        (stored,) = conn.execute(
            "SELECT password_hash FROM users WHERE username_key = 'frank'"
        ).fetchone()
        sessions = [
            bytes(r[0]) for r in conn.execute("SELECT token_hash FROM sessions")
        ]
    assert stored.startswith("scrypt$16384$8$1$")
    assert "secret" not in stored
    assert token.encode() not in b"".join(sessions)
    log = "\n".join(server.log)
    assert "frank's secret words" not in log and token not in log


def test_a_wrong_password_and_an_unknown_user_look_alike(
    server: ServerProcess,
) -> None:
    register(server.base_url, "grace")
    before = db_counts(server.db_path)
    for username, password in [("grace", "not the password"), ("nobody", PASSWORD)]:
        status, answer = post(
            server.base_url,
            "/api/login/",
            {"username": username, "password": password},
        )
        assert (status, answer["error"]["code"]) == (401, "invalid_credentials")
    assert db_counts(server.db_path) == before


def test_cookie_login_sets_httponly_samesite_secure_cookies(
    server: ServerProcess,
) -> None:
    answer, headers = browser_login(server.base_url, "heidi")
    assert "token" not in answer
    cookies = {c.split("=", 1)[0]: c for c in headers.get_all("Set-Cookie")}
    session = cookies["sessionid"]
    assert "HttpOnly" in session and "SameSite=Lax" in session
    assert "Secure" in session and "Path=/" in session
    csrf = cookies["csrftoken"]
    assert "HttpOnly" not in csrf and f"csrftoken={answer['csrf_token']}" in csrf

    # The cookie alone opens "me" (a safe request: no CSRF token needed).
    value = session.split(";", 1)[0]
    status, profile, _ = request(
        server.base_url, "GET", "/api/me/", headers={"Cookie": value}
    )
    assert status == 200 and profile["username"] == "heidi"


def test_cookies_are_not_secure_without_tls(plain_server: ServerProcess) -> None:
    _, headers = browser_login(plain_server.base_url, "ivan")
    assert all("Secure" not in c for c in headers.get_all("Set-Cookie"))


def test_profile_of_a_guest_and_of_nobody(server: ServerProcess) -> None:
    _, created = post(server.base_url, "/api/create_lobby/", {"host": "judy"})
    status, profile = get(server.base_url, f"/api/players/{created['player_id']}/")
    assert status == 200
    assert (profile["kind"], profile["display_name"]) == ("guest", "judy")
    assert profile["username"] is None
    status, answer = get(server.base_url, "/api/players/NOSUCHPLAYER0000/")
    assert (status, answer["error"]["code"]) == (404, "unknown_player")


def test_debug_logging_shows_no_password_hash(
    server_factory: Callable[..., ServerProcess],
) -> None:
    running = server_factory(tls=False, extra=("--log-level", "DEBUG"))
    login(running.base_url, "hugo", "hugo's secret words")
    with connect_db(running.db_path) as conn:
        (stored,) = conn.execute(
            "SELECT password_hash FROM users WHERE username_key = 'hugo'"
        ).fetchone()
    salt_and_hash = stored.rsplit("$", 2)[1:]
    log = "\n".join(running.log)
    assert not any(part in log for part in salt_and_hash)
