"""Wiring: open the store, start the lobby service, listen, and stop cleanly."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
import signal
import ssl

from .accounts.service import AccountService
from .config import Config
from .lobby.service import LobbyService
from .net.api import Router
from .net.context import Context, Metrics
from .net.http import HttpConnection
from .net.metrics import ServerMetrics
from .net.tls import ensure_self_signed, server_context
from .net.ws import CLOSE_TIMEOUT
from .protocol import CLOSE_GOING_AWAY
from .store import StoreError, open_sqlite_store

logger = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT = 10.0  # seconds from SIGTERM to exit, whatever is pending


class StartupError(Exception):
    """The server cannot start; the message says why, in one line."""


async def serve(config: Config, stop: asyncio.Event | None = None) -> None:
    """Run the server until ``stop`` is set or SIGTERM/SIGINT arrives.

    Raises StartupError, with nothing left running, if it cannot start.
    """
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()

    ssl_context = None
    if config.tls:
        cert, key = config.cert_file, config.key_file
        try:
            if cert is None or key is None:
                cert, key = ensure_self_signed(config.data_dir / "tls", config.host)
            ssl_context = server_context(cert, key)
        except (OSError, ssl.SSLError, ValueError) as exc:
            raise StartupError(f"cannot set up TLS: {exc}") from exc

    # Bind before opening anything else, so a port in use fails fast.
    context = Context(config, None, None, Metrics(), None)  # type: ignore[arg-type]
    try:
        server = await loop.create_server(
            lambda: HttpConnection(context),
            config.host,
            config.port,
            ssl=ssl_context,
            ssl_handshake_timeout=config.request_timeout if ssl_context else None,
            reuse_address=True,
            backlog=1024,
            start_serving=False,
        )
    except OSError as exc:
        raise StartupError(
            f"cannot listen on {config.host}:{config.port}: {exc.strerror or exc}"
        ) from exc

    try:
        store = await open_sqlite_store(config.database)
    except StoreError as exc:
        server.close()
        cause = exc.__cause__ or exc
        raise StartupError(f"cannot open the database: {cause}") from exc
    service = LobbyService(config, store)
    context.service = service
    context.accounts = AccountService(config, store)
    context.router = Router(context)
    context.exporter = ServerMetrics(context)
    service.scheduler.before_ticks.append(context.reader.read)
    if config.port == 0:
        port = server.sockets[0].getsockname()[1]
        config = dataclasses.replace(config, port=port)
        context.config = service.config = context.accounts.config = config

    await context.accounts.open()
    await service.open()
    # Everything made so far lives as long as the process: keep it out of the
    # collector's full passes, which would otherwise walk it and stall ticks.
    gc.collect()
    gc.freeze()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await server.start_serving()
    logger.info("listening on %s (database %s)", config.base_url, config.database)

    await stop.wait()
    logger.info("shutting down")
    server.close()
    # Connections opened before keep sending: their requests and upgrades
    # are refused from now on (server.net.http).
    context.stopping = True
    try:
        async with asyncio.timeout(SHUTDOWN_TIMEOUT):
            await service.close()
            # The clock has stopped: sockets go back to the event loop's
            # reading, so close frames from peers are still heard.
            context.reader.close()
            await service.drain()
            # Sockets not bound to a game or lobby (no HELLO yet) close too.
            for session in list(context.sessions):
                session.close(CLOSE_GOING_AWAY, "server shutting down")
            # Wait for the peers' close frames, as for any close: each socket
            # is dropped by its own timer after CLOSE_TIMEOUT at the latest.
            deadline = loop.time() + CLOSE_TIMEOUT
            while context.sessions and loop.time() < deadline:
                await asyncio.sleep(0.05)
    except TimeoutError:
        logger.error("shutdown took over %.0f s; exiting anyway", SHUTDOWN_TIMEOUT)
    await store.close()
    logger.info("stopped")
