"""Password guessing is throttled per account and per address, with a "when"."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tests.helpers import PASSWORD, db_counts, post, request


def attempt(base: str, username: str, password: str) -> tuple[int, Any, Any]:
    body = json.dumps({"username": username, "password": password}).encode()
    return request(
        base, "POST", "/api/login/", body, {"Content-Type": "application/json"}
    )


def test_brute_force_on_one_account_is_refused(server_factory: Any) -> None:
    running = server_factory(
        tls=False, extra=("--login-failures-per-account", "3", "--login-window", "60")
    )
    base = running.base_url
    post(base, "/api/register/", {"username": "tess", "password": PASSWORD})
    for n in range(3):
        status, answer, _ = attempt(base, "tess", f"guess {n:04}")
        assert (status, answer["error"]["code"]) == (401, "invalid_credentials")

    before = db_counts(running.db_path)
    # Refused before the password is looked at: even the right one.
    for password in ("guess 0003", PASSWORD):
        status, answer, headers = attempt(base, "TESS", password)
        assert (status, answer["error"]["code"]) == (429, "too_many_attempts")
        wait = int(headers["Retry-After"])
        assert 1 <= wait <= 60
        assert f"try again in {wait} s" in answer["error"]["message"]
    assert db_counts(running.db_path) == before  # no session made

    # Other accounts from the same address are not locked by this one.
    post(base, "/api/register/", {"username": "uma", "password": PASSWORD})
    assert attempt(base, "uma", PASSWORD)[0] == 200


def test_guessing_across_accounts_is_refused_per_address(
    server_factory: Any,
) -> None:
    running = server_factory(
        tls=False, extra=("--login-failures-per-address", "4", "--login-window", "60")
    )
    base = running.base_url
    post(base, "/api/register/", {"username": "vera", "password": PASSWORD})
    for n in range(4):
        assert attempt(base, f"name{n}", "whatever1")[0] == 401
    status, answer, headers = attempt(base, "vera", PASSWORD)
    assert (status, answer["error"]["code"]) == (429, "too_many_attempts")
    assert "Retry-After" in headers


def test_guesses_sent_in_parallel_are_held_to_the_limit(server_factory: Any) -> None:
    running = server_factory(
        tls=False, extra=("--login-failures-per-account", "3", "--login-window", "60")
    )
    base = running.base_url
    post(base, "/api/register/", {"username": "wren", "password": PASSWORD})
    guesses = [f"guess {n:04}" for n in range(30)]  # thirty at once
    with ThreadPoolExecutor(len(guesses)) as pool:
        statuses = list(pool.map(lambda p: attempt(base, "wren", p)[0], guesses))
    assert statuses.count(401) == 3  # only the limit's worth were checked
    assert statuses.count(429) == len(guesses) - 3
    assert attempt(base, "wren", PASSWORD)[0] == 429  # and the account is shut
