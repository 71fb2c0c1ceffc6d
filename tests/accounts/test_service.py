"""Accounts against a real store file: session expiry, and the throttle's bounds."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from server.accounts.names import clean_username, username_key
from server.accounts.passwords import hash_password, verify_password
from server.accounts.service import AccountService
from server.accounts.throttle import LoginThrottle
from server.config import Config
from server.errors import ClientError
from server.store import open_sqlite_store


@pytest.fixture
async def accounts(tmp_path: Path) -> AsyncIterator[AccountService]:
    store = await open_sqlite_store(tmp_path / "accounts.db")
    yield AccountService(Config(session_ttl=0.3), store)
    await store.close()


async def test_a_session_stops_working_when_it_expires(
    accounts: AccountService,
) -> None:
    await accounts.register("kim", "long enough", "127.0.0.1")
    token, _, player = await accounts.login("kim", "long enough", "10.0.0.1")
    assert await accounts.authenticate(token) == player
    await asyncio.sleep(0.4)
    assert await accounts.authenticate(token) is None
    with pytest.raises(ClientError) as refused:
        await accounts.logout(token)
    assert refused.value.code == "unauthorized"
    assert await accounts.store.purge_sessions(10**10) == 1


def test_password_hashes_are_salted_and_verify() -> None:
    first, second = hash_password("hunter2!!"), hash_password("hunter2!!")
    assert first != second
    assert verify_password("hunter2!!", first)
    assert not verify_password("hunter3!!", first)
    assert not verify_password("hunter2!!", "md5$whatever")


def test_username_keys_fold_case_and_compatibility_forms() -> None:
    assert username_key("\uff2b\uff29\uff2d") == username_key("Kim") == "kim"
    assert clean_username("  Kim ") == ("Kim", "kim")


def test_throttle_counts_within_the_window_and_says_when() -> None:
    gate = LoginThrottle(per_account=2, per_address=3, window=10.0)
    gate.attempt("a", "ip", 0.0)  # both fail
    gate.attempt("a", "ip", 1.0)
    with pytest.raises(ClientError) as refused:
        gate.attempt("a", "ip", 2.0)
    assert refused.value.retry_after == 8
    assert "try again in 8 s" in refused.value.message
    gate.attempt("a", "ip", 10.5)  # the first failure has left the window
    gate.attempt("b", "other", 2.0)
    for n, name in enumerate("bc"):  # three accounts, one address, in the window
        gate.attempt(name, "ip", 11.0 + n)
    with pytest.raises(ClientError):
        gate.attempt("e", "ip", 14.0)


def test_attempts_in_flight_count_before_their_passwords_are_checked() -> None:
    gate = LoginThrottle(per_account=3, per_address=100, window=60.0)
    for n in range(3):  # three guesses sent at once, none answered yet
        gate.attempt("a", "ip", float(n))
    with pytest.raises(ClientError):
        gate.attempt("a", "ip", 3.0)


def test_a_success_takes_back_its_own_count() -> None:
    gate = LoginThrottle(per_account=2, per_address=2, window=60.0)
    gate.attempt("a", "ip", 0.0)
    gate.succeeded("a", "ip", 0.0)
    gate.attempt("b", "ip", 1.0)  # the address's budget is whole again
    gate.attempt("b", "ip", 2.0)
    with pytest.raises(ClientError):
        gate.attempt("c", "ip", 3.0)


def test_throttle_tables_are_bounded() -> None:
    gate = LoginThrottle(per_account=1, per_address=100, window=60.0, max_keys=3)
    for n in range(5):
        gate.attempt(f"user{n}", "ip", float(n))
    assert list(gate.accounts.failures) == ["user2", "user3", "user4"]
