"""Login throttling: failed attempts counted per account and per address.

Each key (a normalized username, or a client address) keeps the times of
its failures within the last ``window`` seconds. A key with ``limit`` of
them is refused with ``too_many_attempts`` until the oldest leaves the
window; the answer says how long that is. A successful login clears the
account's count, not the address's.

An attempt is counted as a failure the moment it is let through, before
its password is checked (which takes a while, in a thread): otherwise every
guess sent in parallel would pass the check before the first one failed.
A success then takes its own count back.

Both tables are bounded (``MAX_KEYS`` each). At the bound the key touched
longest ago is dropped, so memory stays fixed whatever an attacker sends.
The price: someone who fails logins for more than ``MAX_KEYS`` other names
within a window can push an account's count out early. Refusing every
login at the bound would instead let that same person lock everyone out.

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

    def __init__(self, limit: int, window: float, max_keys: int) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
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
            logger.warning("login throttle table full; dropped its oldest key")

    def clear(self, key: str) -> None:
        self.failures.pop(key, None)

    def discard(self, key: str, when: float) -> None:
        """Take back the failure counted for ``key`` at ``when``, if still held."""
        times = self.failures.get(key)
        if times is not None and when in times:
            times.remove(when)


class LoginThrottle:
    def __init__(
        self,
        per_account: int,
        per_address: int,
        window: float,
        max_keys: int = MAX_KEYS,
    ) -> None:
        self.accounts = _Window(per_account, window, max_keys)
        self.addresses = _Window(per_address, window, max_keys)

    def attempt(self, account: str, address: str, now: float) -> None:
        """Let one attempt through, counted as failed until ``succeeded``.

        Raises ``too_many_attempts`` if either key is at its limit.
        """
        wait = max(self.accounts.wait(account, now), self.addresses.wait(address, now))
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            raise ClientError(
                "too_many_attempts", f"try again in {seconds} s", retry_after=seconds
            )
        self.accounts.add(account, now)
        self.addresses.add(address, now)

    def succeeded(self, account: str, address: str, began: float) -> None:
        """The attempt let through at ``began`` was right: clear the account."""
        self.accounts.clear(account)
        self.addresses.discard(address, began)
