"""A server that cannot start says why in one line and exits 1."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path


def run_server(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_a_port_in_use_is_one_line_and_exit_1(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_server(
            "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(tmp_path)
        )
    assert done.returncode == 1
    assert "cannot listen on 127.0.0.1" in done.stderr
    assert "Traceback" not in done.stderr
    # Nothing was made: the database opens only after the port is bound.
    assert not (tmp_path / "server.db").exists()


def test_a_missing_certificate_is_one_line_and_exit_1(tmp_path: Path) -> None:
    done = run_server(
        "--port",
        "0",
        "--data-dir",
        str(tmp_path),
        "--cert",
        "/no/such",
        "--key",
        "/no/such",
    )
    assert done.returncode == 1
    assert "cannot set up TLS" in done.stderr and "Traceback" not in done.stderr


def test_an_unusable_database_path_is_one_line_and_exit_1(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    done = run_server("--plain-http", "--port", "0", "--db", str(blocker / "server.db"))
    assert done.returncode == 1
    assert "cannot open the database" in done.stderr
    assert "Traceback" not in done.stderr
