"""Throttling: failed logins per account and address; registrations per address.

Each key (a normalized username, or a client address) keeps the times of
its failures within the last ``window`` seconds. A key with ``limit`` of
them is refused with ``too_many_attempts`` until the oldest leaves the
window; the answer says how long that is. A successful login clears the
account's count, not the address's.

An attempt is counted as a failure the moment it is let through, before
its password is checked (which takes a while, in a thread): otherwise every
guess sent in parallel would pass the check before the first one failed.
A success then takes its own count back.

Every table is bounded (``MAX_KEYS`` each). At the bound the key touched
longest ago is dropped, so memory stays fixed whatever an attacker sends.
The price: someone who fails logins for more than ``MAX_KEYS`` other names
within a window can push an account's count out early. Refusing every
login at the bound would instead let that same person lock everyone out.

Registrations are counted per address in the same way
(``RegistrationThrottle``, ``too_many_registrations``): each is counted when
it is let through, before its password is hashed, and every one counts, an
account made or not. A taken name still cost a hash, and tells which names
exist. The caller refuses a name or password outside the rules first, which
costs nothing and is not counted.

The address is the client's as ``server.net.forwarded`` finds it: the TCP
peer's, or, for a request from a proxy named by ``--trusted-proxy``, the one
its X-Forwarded-For gives. Behind a proxy not named so, every client has the
proxy's address and the per-address limit counts them all together.
"""

from __future__ import annotations

import collections
import logging
import math

from ..errors import ClientError

logger = logging.getLogger(__name__)

MAX_KEYS = 10_000


class _Window:
    """Failure times per key within a sliding window, oldest key first."""

    def __init__(self, limit: int, window: float, max_keys: int, name: str) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self.name = name  # for the log
        self.failures: collections.OrderedDict[str, collections.deque[float]] = (
            collections.OrderedDict()
        )

    def wait(self, key: str, now: float) -> float:
        """Seconds until ``key`` may try again; 0 if it may now."""
        times = self.failures.get(key)
        if times is None:
            return 0.0
        while times and now - times[0] >= self.window:
            times.popleft()
        if not times:
            del self.failures[key]
            return 0.0
        if len(times) < self.limit:
            return 0.0
        return times[0] + self.window - now

    def add(self, key: str, now: float) -> None:
        times = self.failures.pop(key, None) or collections.deque(maxlen=self.limit)
        times.append(now)
        self.failures[key] = times
        if len(self.failures) > self.max_keys:
            self.failures.popitem(last=False)
            logger.warning("%s table full; dropped its oldest key", self.name)

    def clear(self, key: str) -> None:
        self.failures.pop(key, None)

    def discard(self, key: str, when: float) -> None:
        """Take back the failure counted for ``key`` at ``when``, if still held."""
        times = self.failures.get(key)
        if times is not None and when in times:
            times.remove(when)


def _refuse(code: str, wait: float) -> ClientError:
    """The answer to a key at its limit: when to try again, in whole seconds."""
    seconds = max(1, math.ceil(wait))
    return ClientError(code, f"try again in {seconds} s", retry_after=seconds)


class LoginThrottle:
    def __init__(
        self,
        per_account: int,
        per_address: int,
        window: float,
        max_keys: int = MAX_KEYS,
    ) -> None:
        self.accounts = _Window(per_account, window, max_keys, "login (accounts)")
        self.addresses = _Window(per_address, window, max_keys, "login (addresses)")

    def attempt(self, account: str, address: str, now: float) -> None:
        """Let one attempt through, counted as failed until ``succeeded``.

        Raises ``too_many_attempts`` if either key is at its limit.
        """
        wait = max(self.accounts.wait(account, now), self.addresses.wait(address, now))
        if wait > 0:
            raise _refuse("too_many_attempts", wait)
        self.accounts.add(account, now)
        self.addresses.add(address, now)

    def succeeded(self, account: str, address: str, began: float) -> None:
        """The attempt let through at ``began`` was right: clear the account."""
        self.accounts.clear(account)
        self.addresses.discard(address, began)


class RegistrationThrottle:
    def __init__(self, per_address: int, window: float, max_keys: int = MAX_KEYS):
        self.addresses = _Window(per_address, window, max_keys, "registration")

    def attempt(self, address: str, now: float) -> None:
        """Let one registration through, counted whatever its outcome.

        Raises ``too_many_registrations`` if the address is at its limit.
        """
        wait = self.addresses.wait(address, now)
        if wait > 0:
            raise _refuse("too_many_registrations", wait)
        self.addresses.add(address, now)
