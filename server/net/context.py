"""What every connection shares: settings, the lobby service, the router."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..accounts.service import AccountService
from ..config import Config
from ..lobby.service import LobbyService
from .reader import TickReader

if TYPE_CHECKING:
    from .api import Router
    from .metrics import ServerMetrics
    from .ws import WebSocketSession


@dataclass(slots=True)
class Metrics:
    """Plain counters, cheap enough for the hot path; exported by /api/health/."""

    connections: int = 0  # open TCP connections, HTTP and WebSocket
    sockets: int = 0  # open WebSockets
    frames_in: int = 0
    frames_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    dropped_snapshots: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    http_responses: dict[int, int] = field(default_factory=dict)


@dataclass(slots=True)
class Context:
    config: Config
    service: LobbyService
    router: Router
    metrics: Metrics
    accounts: AccountService
    exporter: ServerMetrics | None = None
    per_address: dict[str, int] = field(default_factory=dict)  # open connections
    sessions: set[WebSocketSession] = field(default_factory=set)  # open sockets
    reader: TickReader = field(default_factory=TickReader)  # sockets past HELLO
    stopping: bool = False  # shutdown has begun: no new requests or upgrades
