"""``python -m server``: run the game server (see --help)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import uvloop

from .app import StartupError, serve
from .config import Config
from .net.forwarded import parse_networks


def parse_args(argv: list[str] | None = None) -> Config:
    d = Config()
    p = argparse.ArgumentParser(
        prog="python -m server",
        description="Authoritative real-time Pong server: HTTP lobbies, "
        "WebSocket play, SQLite results.",
    )
    p.add_argument("--host", default=d.host, help="address to listen on (%(default)s)")
    p.add_argument("--port", type=int, default=d.port, help="port (%(default)s)")
    p.add_argument(
        "--data-dir", type=Path, default=d.data_dir, help="data folder (%(default)s)"
    )
    p.add_argument("--db", type=Path, help="SQLite file (default: DATA_DIR/server.db)")
    p.add_argument(
        "--tick-rate", type=int, default=d.tick_rate, help="ticks/s (%(default)s)"
    )
    p.add_argument(
        "--points-to-win",
        type=int,
        default=d.points_to_win,
        help="default points that win a round (%(default)s)",
    )
    p.add_argument("--cert", type=Path, help="TLS certificate chain (PEM)")
    p.add_argument("--key", type=Path, help="TLS private key (PEM)")
    p.add_argument(
        "--plain-http",
        action="store_true",
        help="no TLS, for running behind a reverse proxy that terminates it",
    )
    p.add_argument(
        "--public-url",
        help="base URL clients reach the server at, if not https://HOST:PORT",
    )
    p.add_argument(
        "--trusted-proxy",
        action="append",
        default=[],
        metavar="ADDRESS",
        help="a reverse proxy (IP address or CIDR network) whose X-Forwarded-For "
        "names the client, for per-address limits and logs; repeat it or "
        "separate with commas (none: the header is ignored)",
    )
    p.add_argument(
        "--max-lobbies",
        type=int,
        default=d.max_lobbies,
        help="open lobbies held at once; create answers 503 beyond (%(default)s)",
    )
    p.add_argument(
        "--max-lobbies-per-address",
        type=int,
        default=d.max_lobbies_per_address,
        help="lobbies created from one client address held at once, from "
        "creation until closed, expired or their game ended, and its local "
        "games until their socket opens; create and local start_game answer "
        "429 beyond (%(default)s)",
    )
    p.add_argument(
        "--max-connections-per-address",
        type=int,
        default=d.max_connections_per_address,
        help="open connections one address may hold; it is checked before any "
        "header is read, so it counts the TCP peer, never a forwarded "
        "address (%(default)s)",
    )
    p.add_argument(
        "--hello-timeout",
        type=float,
        default=d.hello_timeout,
        help="seconds a new WebSocket has to send HELLO (%(default)s)",
    )
    p.add_argument(
        "--request-timeout",
        type=float,
        default=d.request_timeout,
        help="seconds an HTTP request may take to arrive; then 408 (%(default)s)",
    )
    p.add_argument(
        "--lobby-idle-timeout",
        type=float,
        default=d.lobby_idle_timeout,
        help="seconds an open lobby (or an unopened local game) may go without "
        "a connected socket before it expires (%(default)s)",
    )
    p.add_argument(
        "--seat-timeout",
        type=float,
        default=d.seat_timeout,
        help="seconds a member of an open lobby may go without a connected "
        "socket, while others are connected, before losing the seat (%(default)s)",
    )
    p.add_argument(
        "--reconnect-grace",
        type=float,
        default=d.reconnect_grace,
        help="seconds a player who dropped mid-game may take to come back "
        "before forfeiting (%(default)s)",
    )
    p.add_argument(
        "--ping-after",
        type=float,
        default=d.ping_after,
        help="seconds of silence before a socket is pinged (%(default)s)",
    )
    p.add_argument(
        "--ping-timeout",
        type=float,
        default=d.ping_timeout,
        help="further seconds of silence before it is closed, 4008 (%(default)s)",
    )
    p.add_argument(
        "--slow-reader-timeout",
        type=float,
        default=d.slow_reader_timeout,
        help="seconds a socket may stay over its send buffer; then 4009 (%(default)s)",
    )
    p.add_argument(
        "--guests-may-host",
        action=argparse.BooleanOptionalAction,
        default=d.guests_may_host,
        help="whether guests may create lobbies; with --no-guests-may-host only "
        "logged-in users may (%(default)s)",
    )
    p.add_argument(
        "--allowed-origins",
        default=",".join(d.allowed_origins),
        help="comma-separated origins (https://host:port) whose pages may open a "
        "WebSocket besides our own, or * for any; requests without an Origin "
        "header always may (none)",
    )
    p.add_argument(
        "--session-ttl",
        type=float,
        default=d.session_ttl,
        help="seconds a login session lasts (%(default)s)",
    )
    p.add_argument(
        "--login-failures-per-account",
        type=int,
        default=d.login_failures_per_account,
        help="failed logins to one account within --login-window before "
        "429 (%(default)s)",
    )
    p.add_argument(
        "--login-failures-per-address",
        type=int,
        default=d.login_failures_per_address,
        help="failed logins from one address within --login-window before "
        "429 (%(default)s)",
    )
    p.add_argument(
        "--login-window",
        type=float,
        default=d.login_window,
        help="seconds a failed login counts against its account and address "
        "(%(default)s)",
    )
    p.add_argument(
        "--registrations-per-address",
        type=int,
        default=d.registrations_per_address,
        help="registrations from one client address within "
        "--registration-window before 429; every attempt with a valid name "
        "and password counts, an account made or not (%(default)s)",
    )
    p.add_argument(
        "--registration-window",
        type=float,
        default=d.registration_window,
        help="seconds a registration counts against its address (%(default)s)",
    )
    p.add_argument("--log-level", default=d.log_level, help="(%(default)s)")
    a = p.parse_args(argv)
    if (a.cert is None) != (a.key is None):
        p.error("--cert and --key go together")
    if not 1 <= a.tick_rate <= 1000:
        p.error("--tick-rate is 1..1000")
    if not 1 <= a.points_to_win <= 99:
        p.error("--points-to-win is 1..99")
    if not 1 <= a.lobby_idle_timeout <= 86400:
        p.error("--lobby-idle-timeout is 1..86400 seconds")
    if not 1 <= a.seat_timeout <= 86400:
        p.error("--seat-timeout is 1..86400 seconds")
    if a.max_lobbies < 1 or a.max_lobbies_per_address < 1:
        p.error("--max-lobbies and --max-lobbies-per-address are at least 1")
    if not 60 <= a.session_ttl <= 365 * 86400:
        p.error("--session-ttl is 60..31536000 seconds")
    if a.login_failures_per_account < 1 or a.login_failures_per_address < 1:
        p.error("--login-failures-per-account and -per-address are at least 1")
    if not 1 <= a.login_window <= 86400:
        p.error("--login-window is 1..86400 seconds")
    if a.registrations_per_address < 1:
        p.error("--registrations-per-address is at least 1")
    if not 1 <= a.registration_window <= 7 * 86400:
        p.error("--registration-window is 1..604800 seconds")
    try:
        proxies = parse_networks(a.trusted_proxy)
    except ValueError as exc:
        p.error(f"--trusted-proxy: {exc}")
    origins = tuple(o.strip() for o in a.allowed_origins.split(",") if o.strip())
    timeouts = ("hello_timeout", "request_timeout", "ping_after", "ping_timeout")
    others = ("slow_reader_timeout", "reconnect_grace")
    for name in (*timeouts, *others):
        if not 0.1 <= getattr(a, name) <= 600:
            p.error(f"--{name.replace('_', '-')} is 0.1..600 seconds")
    return Config(
        host=a.host,
        port=a.port,
        data_dir=a.data_dir,
        db_path=a.db,
        tls=not a.plain_http,
        cert_file=a.cert,
        key_file=a.key,
        public_url=a.public_url,
        trusted_proxies=proxies,
        tick_rate=a.tick_rate,
        points_to_win=a.points_to_win,
        hello_timeout=a.hello_timeout,
        request_timeout=a.request_timeout,
        reconnect_grace=a.reconnect_grace,
        lobby_idle_timeout=a.lobby_idle_timeout,
        seat_timeout=a.seat_timeout,
        ping_after=a.ping_after,
        ping_timeout=a.ping_timeout,
        slow_reader_timeout=a.slow_reader_timeout,
        max_lobbies=a.max_lobbies,
        max_lobbies_per_address=a.max_lobbies_per_address,
        max_connections_per_address=a.max_connections_per_address,
        log_level=a.log_level.upper(),
        guests_may_host=a.guests_may_host,
        allowed_origins=origins,
        session_ttl=a.session_ttl,
        login_failures_per_account=a.login_failures_per_account,
        login_failures_per_address=a.login_failures_per_address,
        login_window=a.login_window,
        registrations_per_address=a.registrations_per_address,
        registration_window=a.registration_window,
    )


def main(argv: list[str] | None = None) -> None:
    config = parse_args(argv)
    logging.basicConfig(
        level=config.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # yoyo reports every step of every migration at INFO; the store says more.
    logging.getLogger("yoyo").setLevel(logging.WARNING)
    # aiosqlite logs each statement with its parameters at DEBUG: password
    # hashes and token hashes among them. Never, whatever --log-level says.
    logging.getLogger("aiosqlite").setLevel(logging.INFO)
    try:
        uvloop.run(serve(config))
    except StartupError as exc:
        logging.getLogger("server").error("%s", exc)
        sys.exit(1)


if __name__ == "__main__":
    main()
