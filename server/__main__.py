"""``python -m server``: run the game server (see --help)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import uvloop

from .app import StartupError, serve
from .config import Config


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
        "--max-lobbies",
        type=int,
        default=d.max_lobbies,
        help="open lobbies held at once; create answers 503 beyond (%(default)s)",
    )
    p.add_argument(
        "--max-connections-per-address",
        type=int,
        default=d.max_connections_per_address,
        help="open connections one address may hold (%(default)s)",
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
    if a.max_lobbies < 1:
        p.error("--max-lobbies is at least 1")
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
        tick_rate=a.tick_rate,
        points_to_win=a.points_to_win,
        hello_timeout=a.hello_timeout,
        request_timeout=a.request_timeout,
        reconnect_grace=a.reconnect_grace,
        lobby_idle_timeout=a.lobby_idle_timeout,
        ping_after=a.ping_after,
        ping_timeout=a.ping_timeout,
        slow_reader_timeout=a.slow_reader_timeout,
        max_lobbies=a.max_lobbies,
        max_connections_per_address=a.max_connections_per_address,
        log_level=a.log_level.upper(),
    )


def main(argv: list[str] | None = None) -> None:
    config = parse_args(argv)
    logging.basicConfig(
        level=config.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # yoyo reports every step of every migration at INFO; the store says more.
    logging.getLogger("yoyo").setLevel(logging.WARNING)
    try:
        uvloop.run(serve(config))
    except StartupError as exc:
        logging.getLogger("server").error("%s", exc)
        sys.exit(1)


if __name__ == "__main__":
    main()
