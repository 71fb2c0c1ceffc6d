"""The real server, run as a child process, for tests that talk to it.

``start_server`` runs ``python -m server`` on 127.0.0.1 with port 0, so the
server picks a free port, and waits for its "listening on <url>" log line,
which app.py writes only once the store is open and the port accepts. The
server's stderr is drained by a thread into a list for the whole run: a pipe
nobody reads fills up and would stall the server at its next log line.

The game runs at its normal 60 ticks a second, so tests see the physics a
player sees; tests keep games short with a small ``points_to_win`` instead.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 15.0  # seconds from spawn to "listening on"
STOP_TIMEOUT = 15.0  # app.py gives itself 10 s to shut down
_LISTENING = re.compile(r"listening on (\S+)")
# The module-wide servers below serve every test of a module, all from
# 127.0.0.1: together they hold more lobbies and make more accounts than one
# address may by default. tests/net/test_per_address.py tests those limits.
SHARED_FLAGS = (
    *("--max-lobbies-per-address", "1000"),
    *("--registrations-per-address", "1000"),
)


@dataclass
class ServerProcess:
    """One running server: where to reach it, its files and its log."""

    base_url: str
    data_dir: Path
    db_path: Path
    process: subprocess.Popen[str]
    log: list[str] = field(default_factory=list)
    _drain: threading.Thread | None = None

    @property
    def ws_url(self) -> str:
        scheme, rest = self.base_url.split("://", 1)
        return ("wss" if scheme == "https" else "ws") + "://" + rest + "/ws/"

    def stop(self) -> int:
        """SIGTERM, as an operator would; the exit status once it is gone."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError("the server ignored SIGTERM") from None
        if self._drain is not None:
            self._drain.join(STOP_TIMEOUT)
        return code

    def errors(self) -> list[str]:
        """Log lines that report our own bugs: ERROR level and tracebacks."""
        return [
            line
            for line in list(self.log)
            if " ERROR " in line or line.startswith("Traceback")
        ]


def start_server(
    data_dir: Path,
    *,
    tls: bool = True,
    extra: tuple[str, ...] = (),
    module: str = "server",
) -> ServerProcess:
    """Spawn the server on a free port and return once it is listening.

    ``module`` runs another entry point that wraps the real server (the
    fault-injecting one of tests/reliability) with the same flags.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    db_path = data_dir / "server.db"
    args = [
        sys.executable,
        "-m",
        module,
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--data-dir",
        str(data_dir),
        "--db",
        str(db_path),
        *([] if tls else ["--plain-http"]),
        *extra,
    ]
    process = subprocess.Popen(
        args,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    log: list[str] = []
    url: list[str] = []
    listening = threading.Event()

    def drain() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            log.append(line.rstrip("\n"))
            found = _LISTENING.search(line)
            if found and not listening.is_set():
                url.append(found.group(1))
                listening.set()
        listening.set()  # the server exited: stop waiting for it

    thread = threading.Thread(target=drain, name=f"{module}-stderr", daemon=True)
    thread.start()
    if not listening.wait(START_TIMEOUT) or not url:
        process.kill()
        process.wait()
        thread.join(STOP_TIMEOUT)
        shown = "\n".join(log[-30:])
        raise RuntimeError(f"{module} did not start listening:\n{shown}")
    return ServerProcess(url[0], data_dir, db_path, process, log, thread)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A TLS server with the default settings (a self-signed certificate),
    but for the per-address limits (``SHARED_FLAGS``)."""
    running = start_server(tmp_path_factory.mktemp("server"), extra=SHARED_FLAGS)
    yield running
    assert running.stop() == 0
    assert running.errors() == [], "the server logged errors of its own"


@pytest.fixture(scope="module")
def plain_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server started with --plain-http, as behind a TLS-terminating proxy
    (and ``SHARED_FLAGS``)."""
    running = start_server(
        tmp_path_factory.mktemp("plain"), tls=False, extra=SHARED_FLAGS
    )
    yield running
    assert running.stop() == 0
    assert running.errors() == [], "the server logged errors of its own"


@pytest.fixture
def server_factory(
    tmp_path: Path,
) -> Iterator[Callable[..., ServerProcess]]:
    """Start servers on demand (default data dir: this test's tmp_path).

    For tests that restart a server or need its log to themselves; every
    server still running at the end is stopped.
    """
    started: list[ServerProcess] = []

    def factory(
        data_dir: Path | None = None, *, tls: bool = True, extra: tuple[str, ...] = ()
    ) -> ServerProcess:
        running = start_server(data_dir or tmp_path / "data", tls=tls, extra=extra)
        started.append(running)
        return running

    yield factory
    for running in started:
        running.stop()
