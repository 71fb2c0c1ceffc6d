"""Wiring: open the store, start the lobby service, listen, and stop cleanly."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import signal

from .config import Config
from .lobby.service import LobbyService
from .net.api import Router
from .net.context import Context, Metrics
from .net.http import HttpConnection
from .net.metrics import ServerMetrics
from .net.tls import ensure_self_signed, server_context
from .store import open_sqlite_store

logger = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT = 10.0  # seconds from SIGTERM to exit, whatever is pending


async def serve(config: Config, stop: asyncio.Event | None = None) -> None:
    """Run the server until ``stop`` is set or SIGTERM/SIGINT arrives."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    ssl_context = None
    if config.tls:
        cert, key = config.cert_file, config.key_file
        if cert is None or key is None:
            cert, key = ensure_self_signed(config.data_dir / "tls", config.host)
        ssl_context = server_context(cert, key)

    store = await open_sqlite_store(config.database)
    service = LobbyService(config, store)
    context = Context(config, service, None, Metrics())  # type: ignore[arg-type]
    context.router = Router(context)
    context.exporter = ServerMetrics(context)
    server = await loop.create_server(
        lambda: HttpConnection(context),
        config.host,
        config.port,
        ssl=ssl_context,
        reuse_address=True,
        backlog=1024,
        start_serving=False,
    )
    if config.port == 0:
        port = server.sockets[0].getsockname()[1]
        config = dataclasses.replace(config, port=port)
        context.config = service.config = config

    await service.open()
    await server.start_serving()
    logger.info("listening on %s (database %s)", config.base_url, config.database)

    await stop.wait()
    logger.info("shutting down")
    server.close()
    try:
        async with asyncio.timeout(SHUTDOWN_TIMEOUT):
            await service.close()
            await service.drain()
            await asyncio.sleep(0.2)  # let close frames reach the wire
    except TimeoutError:
        logger.error("shutdown took over %.0f s; exiting anyway", SHUTDOWN_TIMEOUT)
    await store.close()
    logger.info("stopped")
