"""Server settings: one frozen value built from defaults and the command line."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Config:
    host: str = "localhost"
    port: int = 8443
    data_dir: Path = Path("data")
    db_path: Path | None = None  # default: <data_dir>/server.db
    tls: bool = True
    cert_file: Path | None = None  # default: a self-signed pair under data_dir
    key_file: Path | None = None
    public_url: str | None = None  # base URL clients reach us at, e.g. behind a proxy
    # Reverse proxies whose X-Forwarded-For names the client (server.net.forwarded).
    trusted_proxies: tuple[IPv4Network | IPv6Network, ...] = ()
    tick_rate: int = 60
    points_to_win: int = 5
    max_players: int = 4

    # Limits. Each one says what happens at the bound where it is enforced.
    max_body: int = 16 * 1024  # HTTP body bytes; more is answered 413
    max_header: int = 8 * 1024  # request line + headers; more is answered 431
    max_frame: int = 4 * 1024  # WebSocket message bytes; more closes with 1009
    max_send_buffer: int = 256 * 1024  # per socket; snapshots are dropped above
    max_lobbies: int = 10_000  # open lobbies in memory; more is answered 503
    # Lobbies one client address may hold, from creation until they close
    # (their game ended included); one more create is answered 429.
    max_lobbies_per_address: int = 20
    max_connections_per_address: int = 1024  # more is answered 429 and closed
    max_catchup_ticks: int = 5  # ticks replayed after a stall; the rest skipped
    hello_timeout: float = 10.0  # seconds a socket has to authenticate
    lobby_idle_timeout: float = 600.0  # seconds an open lobby may have no socket
    seat_timeout: float = 120.0  # seconds a seat in an open lobby may have no socket
    reconnect_grace: float = 15.0  # seconds a dropped player may take to come back
    ping_after: float = 20.0  # seconds of silence before we ping a socket
    ping_timeout: float = 20.0  # further seconds of silence before we close it
    slow_reader_timeout: float = 5.0  # seconds a socket may stay over its buffer
    request_timeout: float = 10.0  # seconds from a request's first byte to its last
    log_level: str = "INFO"

    # Accounts and who may do what.
    guests_may_host: bool = True  # off: only logged-in users create lobbies
    # Origins (scheme://host[:port]) whose pages may open a WebSocket, besides
    # our own; "*" allows any. Requests without an Origin header always may.
    allowed_origins: tuple[str, ...] = ()
    session_ttl: float = 14 * 86400.0  # seconds a login session lasts
    login_failures_per_account: int = 5  # within login_window; then 429
    login_failures_per_address: int = 20  # within login_window; then 429
    login_window: float = 300.0  # seconds a failed login is counted for
    registrations_per_address: int = 10  # within registration_window; then 429
    registration_window: float = 3600.0  # seconds a registration is counted for
    max_avatar_body: int = 512 * 1024  # bytes of an avatar upload; more is 413
    max_avatar_side: int = 1024  # pixels of either side; more is 413

    @property
    def database(self) -> Path:
        return self.db_path if self.db_path is not None else self.data_dir / "server.db"

    @property
    def base_url(self) -> str:
        """The http(s) URL clients use; ``public_url`` wins when set."""
        if self.public_url:
            return self.public_url.rstrip("/")
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{self.host}:{self.port}"

    @property
    def secure_cookies(self) -> bool:
        """Whether clients reach us over TLS, so cookies may say Secure."""
        return self.base_url.startswith("https://")

    @property
    def ws_url(self) -> str:
        base = self.base_url
        if base.startswith("https://"):
            return "wss://" + base[len("https://") :] + "/ws/"
        return "ws://" + base.removeprefix("http://") + "/ws/"
