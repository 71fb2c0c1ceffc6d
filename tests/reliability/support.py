"""What the reliability tests share: starting a server entry point of our own,
raw WebSockets that misbehave, a process's memory, lobby churn, and checks of a
database file after the fact."""

from __future__ import annotations

import base64
import http.client
import os
import socket
import sqlite3
import threading
from pathlib import Path
from urllib.parse import urlsplit

from tests.conftest import ServerProcess, start_server
from tests.helpers import TIMEOUT, connect_db, post


def start_module(
    module: str, data_dir: Path, *, tls: bool = True, extra: tuple[str, ...] = ()
) -> ServerProcess:
    """Run ``python -m module`` with the server's flags, as conftest runs it.

    For entry points that wrap the real server (``fault_server``).
    """
    return start_server(data_dir, tls=tls, extra=extra, module=module)


def raw_websocket(base_url: str, rcvbuf: int | None = None) -> socket.socket:
    """A plain-TCP WebSocket opened by hand, past its 101 answer.

    ``rcvbuf`` shrinks the socket's receive buffer (set before connecting,
    so the window it advertises is small from the start) for a client that
    will stop reading.
    """
    url = urlsplit(base_url)
    assert url.scheme == "http" and url.hostname and url.port
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(TIMEOUT)
    sock.connect((url.hostname, url.port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /ws/ HTTP/1.1\r\nHost: {url.netloc}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)  # one byte at a time: read nothing past the answer
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def read_frames(sock: socket.socket, seconds: float) -> list[tuple[int, bytes]]:
    """(opcode, payload) of each unmasked frame the server sends, until it closes.

    Frames of 126 bytes and more are not parsed: keep answers short.
    """
    sock.settimeout(seconds)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except TimeoutError:
        pass
    frames = []
    while len(data) >= 2:
        opcode, length = data[0] & 0x0F, data[1] & 0x7F
        assert length < 126, "a frame too long for read_frames"
        frames.append((opcode, data[2 : 2 + length]))
        data = data[2 + length :]
    return frames


def client_frame(payload: bytes) -> bytes:
    """One final binary frame, masked as a client must (RFC 6455, 5.3)."""
    assert len(payload) < 126
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes((0x82, 0x80 | len(payload))) + mask + masked


def rss_bytes(pid: int) -> int:
    """Resident memory of a live process, from /proc (Linux only)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for process {pid}")


def assert_database_sound(db_path: Path) -> None:
    """SQLite's own checks, and every game stored whole.

    Whole means with at least two seats and every round of its round-robin,
    as the server writes a game in one transaction. The connection is
    read-only, so this may run beside a live server: it sees what has been
    committed.
    """
    with connect_db(db_path) as conn:
        assert [tuple(r) for r in conn.execute("PRAGMA integrity_check")] == [("ok",)]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        for game_id, players, rounds in conn.execute(
            "SELECT g.id,"
            " (SELECT count(*) FROM game_players p WHERE p.game_id = g.id),"
            " (SELECT count(*) FROM rounds r WHERE r.game_id = g.id)"
            " FROM games g"
        ):
            # Every game is written whole: its seats and its round-robin.
            assert players >= 2, f"game {game_id} has {players} seats"
            assert rounds == players * (players - 1) // 2, f"game {game_id} rounds"


def rows(db_path: Path, sql: str, *params: object) -> list[sqlite3.Row]:
    with connect_db(db_path) as conn:
        return conn.execute(sql, params).fetchall()


# A churn's lobbies all come from this machine's one address and stay open:
# the server under it must let one address hold that many.
CHURN_FLAGS = ("--max-lobbies-per-address", "1000000")


class LobbyChurn:
    """Threads that create lobbies, and join each once, until stopped.

    The server needs ``CHURN_FLAGS``.

    ``answered`` holds every lobby the server said it made: the server writes
    before it answers, so each of them must be in the database from then on.
    A thread stops at its first failed request (the server went away, or a
    bug), which lands in ``failures``.
    """

    def __init__(self, base_url: str, threads: int = 4, *, join: bool = True) -> None:
        self.base_url = base_url
        self.join = join
        self.answered: list[str] = []
        self.statuses: list[int] = []
        self.failures: list[BaseException] = []
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, name="churn", daemon=True)
            for _ in range(threads)
        ]

    def __enter__(self) -> LobbyChurn:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(TIMEOUT)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._once()
            except (OSError, http.client.HTTPException) as exc:
                self.failures.append(exc)
                return

    def _once(self) -> None:
        status, created = post(
            self.base_url, "/api/create_lobby/", {"host": "churn", "max_players": 2}
        )
        self.statuses.append(status)
        if status != 201:
            return
        self.answered.append(created["lobby_id"])
        if self.join:
            body = {"lobby_id": created["lobby_id"], "guest_name": "guest"}
            self.statuses.append(post(self.base_url, "/api/join_lobby/", body)[0])
