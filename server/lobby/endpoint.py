"""What the lobby and the rooms need of a socket, and nothing more.

``server.net.ws`` implements it over a real WebSocket; tests of the lobby can
implement it with a list. Keeping it this small keeps the lobby free of any
network type.
"""

from __future__ import annotations

from typing import Protocol


class Endpoint(Protocol):
    socket_id: str

    def send(self, data: bytes) -> None:
        """Queue one message; never blocks, never raises for a closed socket."""

    def send_snapshot(self, data: bytes) -> bool:
        """Queue a state snapshot unless the socket is behind; False if dropped.

        Snapshots are latest-wins: a socket whose send buffer is over its
        bound skips this one, and the next tick's snapshot supersedes it.
        """

    def close(self, code: int, reason: str) -> None:
        """Send a close frame with ``code`` after what is queued, then drop."""
