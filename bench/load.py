"""Load generator: many two-player games against one server, and what it held.

``python -m bench.load --spawn --rooms 150 --duration 20 --json out.json``
starts a server pinned to core 0, pins itself to core 1, plays 150 games
(300 sockets) for 20 seconds after a short warm-up, and prints what the
clients saw and what the server's own clock and /metrics said about the same
window. ``--url http://HOST:PORT`` drives a server that is already running
instead. ``--capacity`` raises the room count step by step on a fresh server
each time until the workload no longer holds. bench/README.md has the
workload, the commands and the figures.

Theory of operation. Everything runs in this one process on uvloop, so the
generator's cost is one core's worth at most, and it says when it used that
core up (then the figures describe the generator, not the server).

- Set-up goes through the real HTTP API over a few keep-alive connections
  (``HttpClient``, bounded): create a lobby, join it, open both sockets, say
  HELLO, the guest says READY; once every room is ready, each host starts
  its game over HTTP.
- Each socket is a ``Bot``, an ``asyncio.Protocol`` speaking the client side
  of RFC 6455 by hand: after the upgrade the server sends unfragmented binary
  frames, nearly all under 126 bytes, so parsing is a few slices; an INPUT
  frame is one ``struct.pack``. That costs 2-3.5 us a snapshot and its reply,
  against 13 us through websockets' Sans-I/O protocol (bench/README.md), a
  difference worth a third of our core at 300 rooms.
- A bot answers each SNAPSHOT with one INPUT that steers its paddle toward the
  ball, and counts: snapshots, ticks missing between consecutive snapshots,
  and for each input the time until a snapshot acknowledges it.
- The measured window starts after the warm-up: /metrics is scraped, the
  server's CPU time and RSS read from /proc, and every counter noted; at its
  end the same again, and the report is built from the differences.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import ipaddress
import json
import math
import os
import re
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import msgpack
import uvloop

ROOT = Path(__file__).resolve().parent.parent
# The cores we were given, read before ``pin_generator`` narrows them.
CPUS = frozenset(os.sched_getaffinity(0))
SERVER_CPU, GENERATOR_CPU = 0, 1

WARMUP = 3.0  # seconds of play before the window, so set-up work has drained
SETUP_CONCURRENCY = 32  # HTTP connections and socket opens in flight at once
# Sockets are spread over this many loopback source addresses, so that no
# address comes near the server's per-address connection cap (1,024).
LOOPBACK_SOURCES = 64
# Seconds for all rooms to be created, joined and started: a base, and more
# per room.
SETUP_TIMEOUT = 60.0
SETUP_TIMEOUT_PER_ROOM = 0.25
SERVER_START_TIMEOUT = 20.0  # seconds for a spawned server to print its URL
SERVER_STOP_TIMEOUT = 15.0  # seconds from SIGTERM before a spawned server is killed

# The workload holds when every client gets nearly every tick and the server
# wakes nearly on time: the two conditions of a capacity step.
HELD_MIN_RATE = 59.0  # snapshots per second per client, at 60 Hz
HELD_MAX_P99_LATENESS = 0.002  # seconds
GENERATOR_BOUND = 0.9  # share of our core above which we are the bottleneck
# Shares of the server's core, taken by the hypervisor or by other programs,
# above which a run is marked noisy. The kernel's loopback work for the
# server's sockets mostly lands in the server's own system time, so "other"
# stays near zero on a quiet machine.
NOISY_STEAL = 0.05
NOISY_OTHER = 0.10

# Message types of protocol.md that bots read or send. Copied rather than
# imported so the bench measures the wire, not our codec module.
HELLO, READY, INPUT = 1, 2, 4
WELCOME, LOBBY, GAME_START, ROUND_START, SNAPSHOT = 64, 65, 66, 67, 68
GAME_END, ERROR = 71, 72
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455, section 1.3

# An INPUT frame: FIN+binary, masked 16-byte payload, mask key, then the
# msgpack array [4, seq as uint32, move as float64]. The key is zero, which
# leaves the payload as it is: the key exists to stop cache poisoning of
# proxies (RFC 6455, section 10.3), there is none on this path, and the server
# unmasks every frame with the same work whatever the key. A random key per
# frame cost about 1 us more in Python, a third of our own work per message.
_input_frame = struct.Struct(">BBIBBBIBd").pack
_INPUT_HEAD = (0x82, 0x80 | 16, 0, 0x93, INPUT, 0xCE)
_MSGPACK_FLOAT64 = 0xCB


class LoadError(Exception):
    """The run could not be set up: the server refused or went away."""


# The spawned server ----------------------------------------------------------


class SpawnedServer:
    """``python -m server`` on core 0, plain HTTP, a temporary data folder."""

    def __init__(self, tick_rate: int) -> None:
        self.tick_rate = tick_rate
        self.tmp = tempfile.TemporaryDirectory(prefix="pong-load-")
        self.data_dir = Path(self.tmp.name)
        self.log_path = self.data_dir / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.pinned = False

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> None:
        command = [
            sys.executable,
            "-m",
            "server",
            "--plain-http",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--data-dir",
            str(self.data_dir),
            "--tick-rate",
            str(self.tick_rate),
            # Every room comes from this one address.
            "--max-lobbies-per-address",
            "1000000",
        ]
        # taskset execs the server in place, so the pid we hold is the server's.
        if shutil.which("taskset") and {SERVER_CPU, GENERATOR_CPU} <= CPUS:
            command = ["taskset", "-c", str(SERVER_CPU), *command]
            self.pinned = True
        with self.log_path.open("wb") as log:
            # Logs go to a file, not a pipe: a pipe nobody drains would stall
            # the server the moment it fills.
            self.proc = subprocess.Popen(
                command, cwd=ROOT, stdin=subprocess.DEVNULL, stderr=log
            )
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while time.monotonic() < deadline:
            found = re.search(r"listening on (\S+)", self.log_path.read_text())
            if found:
                self.url = found.group(1)
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise LoadError("the server did not start:\n" + self.log_tail())

    def log_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text().splitlines()[-lines:])
        return ""

    def stop(self) -> None:
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(SERVER_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.tmp.cleanup()


def git_commit() -> str | None:
    """The commit of the tree the spawned server runs, "+dirty" if edited."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "server"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+dirty" if dirty else "")


def pin_generator() -> bool:
    """Keep this process off the server's core; True if it could."""
    if not {SERVER_CPU, GENERATOR_CPU} <= CPUS:
        return False
    os.sched_setaffinity(0, {GENERATOR_CPU})
    return True


# /proc ---------------------------------------------------------------------


def proc_cpu_seconds(pid: int) -> float:
    """User plus system CPU time of ``pid`` so far (proc(5), fields 14 and 15)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name may hold spaces; the fields after it never do.
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise LoadError(f"no VmRSS for pid {pid}")


def core_times() -> dict[int, tuple[int, int, int]]:
    """Per core: (busy, stolen, total) jiffies so far, from /proc/stat.

    Busy is everything but idle and iowait, whoever ran: it shows work on a
    core that is not the process pinned to it, such as another program or
    the kernel's loopback delivery. Stolen is time the hypervisor gave to
    another guest.
    """
    cores = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *values = line.split()
        if name.startswith("cpu") and name != "cpu":
            user, nice, system, idle, iowait, irq, softirq, steal = map(int, values[:8])
            busy = user + nice + system + irq + softirq
            cores[int(name[3:])] = (busy, steal, busy + idle + iowait + steal)
    return cores


def core_share(start: Reading, end: Reading, cpu: int) -> dict[str, float] | None:
    """Busy and stolen shares of one core over the window."""
    if cpu not in start.cores or cpu not in end.cores:
        return None
    (b0, s0, t0), (b1, s1, t1) = start.cores[cpu], end.cores[cpu]
    busy, steal, total = b1 - b0, s1 - s0, t1 - t0
    if total <= 0:
        return None
    return {"busy": busy / total, "steal": steal / total}


# HTTP ----------------------------------------------------------------------


class HttpClient:
    """A few keep-alive HTTP/1.1 connections to one server, reused in turn.

    Only what the server sends is handled: every response carries
    Content-Length. Set-up is not measured, but 2,000 fresh connections would
    still be 2,000 handshakes the server spends time on before the window.
    """

    def __init__(self, host: str, port: int, limit: int) -> None:
        self.host = host
        self.port = port
        self.slots = asyncio.Semaphore(limit)
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        token: str | None = None,
    ) -> tuple[int, bytes]:
        async with self.slots:
            if self.idle:
                reader, writer = self.idle.pop()
            else:
                reader, writer = await asyncio.open_connection(self.host, self.port)
            try:
                status, data = await self._exchange(
                    reader, writer, method, path, body, token
                )
            except BaseException:
                writer.close()
                raise
            self.idle.append((reader, writer))
            return status, data

    async def _exchange(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        token: str | None,
    ) -> tuple[int, bytes]:
        payload = b"" if body is None else json.dumps(body).encode()
        head = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        if body is not None:
            head.append("Content-Type: application/json")
        if token is not None:
            head.append(f"Authorization: Bearer {token}")
        head.append(f"Content-Length: {len(payload)}")
        writer.write("\r\n".join(head).encode() + b"\r\n\r\n" + payload)

        header = await reader.readuntil(b"\r\n\r\n")
        lines = header.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        return status, await reader.readexactly(length)

    async def json(
        self, path: str, body: dict[str, Any], token: str | None = None
    ) -> dict[str, Any]:
        status, data = await self.request("POST", path, body, token)
        answer: dict[str, Any] = json.loads(data)
        if status >= 300:
            error = answer.get("error", {})
            raise LoadError(f"{path}: HTTP {status} {error.get('code')}")
        return answer

    def close(self) -> None:
        for _, writer in self.idle:
            writer.close()
        self.idle.clear()


# /metrics --------------------------------------------------------------------


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text format to ``{'name{labels}': value}``; comments skipped."""
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            samples[key] = float(value)
    return samples


def bucket_counts(
    before: dict[str, float], after: dict[str, float], name: str
) -> list[tuple[float, float]]:
    """(upper bound, cumulative count) of a histogram over the window."""
    pattern = re.compile(re.escape(name) + r'_bucket\{le="([^"]+)"\}')
    buckets = []
    for key, value in after.items():
        found = pattern.fullmatch(key)
        if found:
            buckets.append((float(found.group(1)), value - before.get(key, 0.0)))
    return sorted(buckets)


def bucket_quantile(buckets: list[tuple[float, float]], q: float) -> float | None:
    """Estimate a quantile by linear interpolation inside its bucket.

    This is what Prometheus' histogram_quantile does: exact only to the bucket
    bounds, which for tick lateness are 0.1, 0.25, 0.5, 1, 2, 4, 8 ms, ...
    Falling into the last, unbounded bucket gives the largest finite bound.
    """
    total = buckets[-1][1] if buckets else 0.0
    if total <= 0:
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower
            inside = count - below
            share = (rank - below) / inside if inside else 1.0
            return lower + (bound - lower) * share
        lower, below = bound, count
    return lower


def bucket_max(buckets: list[tuple[float, float]]) -> float | None:
    """The upper bound of the highest non-empty bucket: the worst is below it."""
    total = buckets[-1][1] if buckets else 0.0
    if total <= 0:
        return None
    for bound, count in buckets:
        if count >= total:
            return None if math.isinf(bound) else bound
    return None


def over(buckets: list[tuple[float, float]], limit: float) -> float:
    """Observations above the smallest bucket bound at or over ``limit``."""
    total = buckets[-1][1] if buckets else 0.0
    for bound, count in buckets:
        if bound >= limit:
            return total - count
    return 0.0


# The bots -------------------------------------------------------------------


@dataclass(slots=True)
class Shared:
    """What every bot of a run adds to, and the switch for the window."""

    measuring: bool = False
    stopping: bool = False
    rtts: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    unexpected_closes: int = 0

    def error(self, code: str) -> None:
        self.errors[code] = self.errors.get(code, 0) + 1


class Bot(asyncio.Protocol):
    """One player's WebSocket, client side, with the paddle policy built in."""

    def __init__(self, shared: Shared, token: str, upgrade: bytes, accept: str) -> None:
        self.shared = shared
        self.token = token
        self.upgrade = upgrade
        self.accept = accept
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.open = False
        loop = asyncio.get_running_loop()
        self.opened: asyncio.Future[None] = loop.create_future()
        self.welcomed: asyncio.Future[None] = loop.create_future()
        self.playing: asyncio.Future[None] = loop.create_future()
        self.lobby: dict[str, Any] = {}
        self.lobby_changed = asyncio.Event()
        self.seat: int | None = None
        self.side = 0  # 0 drives the left paddle, 1 the right
        self.paddle_step = 8.0  # field units per tick at full move; from WELCOME
        self.seq = 0
        self.sent: deque[tuple[int, float]] = deque()
        self.last_tick = -1
        self.snapshots = 0
        self.missing = 0
        self.closed = False

    # Opening ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCP transport implements asyncio.Transport without
        # subclassing it, so this is a cast, not a check.
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self.upgrade)

    def _handshake(self, data: bytes) -> bytes | None:
        """Consume the 101 response; the bytes after it, or None if incomplete."""
        end = data.find(b"\r\n\r\n")
        if end < 0:
            self.buffer = data
            return None
        head = data[:end].decode("latin-1")
        if not head.startswith("HTTP/1.1 101") or self.accept not in head:
            self._fail("handshake_refused")
            return None
        self.open = True
        self.opened.set_result(None)
        self.send(msgpack.packb([HELLO, self.token]))
        return data[end + 4 :]

    # Receiving -------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self.buffer:
            data = self.buffer + data
            self.buffer = b""
        if not self.open:
            rest = self._handshake(data)
            if not rest:
                return
            data = rest

        replies: list[bytes] = []
        pos, size = 0, len(data)
        while size - pos >= 2:
            first, length = data[pos], data[pos + 1]
            start = pos + 2
            if length >= 126:
                # Only GAME_END and LOBBY views grow past 125 bytes.
                wide = 2 if length == 126 else 8
                if size - start < wide:
                    break
                length = int.from_bytes(data[start : start + wide], "big")
                start += wide
            end = start + length
            if end > size:
                break
            opcode = first & 0x0F
            if opcode == 2:
                self._message(data[start:end], replies)
            elif opcode == 8:
                self._closed_by_server(data[start:end])
            elif opcode == 9:
                # A ping: the server pings only sockets silent for a while,
                # which ours are not, but an unanswered ping closes (4008).
                self.send(data[start:end], opcode=0xA)
            pos = end
        if pos < size:
            self.buffer = data[pos:]
        if replies and self.transport is not None:
            self.transport.write(b"".join(replies))

    def _message(self, payload: bytes, replies: list[bytes]) -> None:
        message = msgpack.unpackb(payload)
        if message[0] == SNAPSHOT:
            self._snapshot(message, replies)
        else:
            self._control(message)

    def _snapshot(self, m: list[Any], replies: list[bytes]) -> None:
        # [68, tick, round, bx, by, bvx, bvy, left_y, right_y, ls, rs, la, ra, w]
        tick = m[1]
        if tick > self.last_tick + 1 and self.last_tick >= 0:
            self.missing += tick - self.last_tick - 1
        self.last_tick = tick
        self.snapshots += 1

        now = time.perf_counter()
        side = self.side
        ack = m[11 + side]
        sent = self.sent
        if sent and sent[0][0] <= ack:
            shared = self.shared
            while sent and sent[0][0] <= ack:
                t = sent.popleft()[1]
                if shared.measuring:
                    shared.rtts.append(now - t)

        # Steer toward the ball, in proportion, so the paddle settles on it.
        move = (m[4] - m[7 + side]) / self.paddle_step
        move = 1.0 if move > 1.0 else -1.0 if move < -1.0 else move
        self.seq = seq = self.seq + 1
        replies.append(_input_frame(*_INPUT_HEAD, seq, _MSGPACK_FLOAT64, move))
        sent.append((seq, now))

    def _control(self, m: list[Any]) -> None:
        kind = m[0]
        if kind == WELCOME:
            rules = m[1].get("rules", {})
            speed, rate = rules.get("paddle_speed"), rules.get("tick_rate")
            if speed and rate:
                self.paddle_step = speed / rate
            if not self.welcomed.done():
                self.welcomed.set_result(None)
        elif kind == LOBBY:
            self.lobby = m[1]
            self.lobby_changed.set()
        elif kind == GAME_START:
            you = m[1].get("you") or [None]
            self.seat = you[0]
        elif kind == ROUND_START:
            self.side = 1 if m[1].get("right") == self.seat else 0
            if not self.playing.done():
                self.playing.set_result(None)
        elif kind == ERROR:
            self.shared.error(str(m[1].get("code")))
        elif kind == GAME_END and not self.shared.stopping:
            self.shared.error("game_ended_early")

    def _closed_by_server(self, payload: bytes) -> None:
        code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
        if not self.shared.stopping:
            self.shared.unexpected_closes += 1
            self.shared.error(f"close_{code}")
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed and not self.shared.stopping:
            self.shared.unexpected_closes += 1
        self.closed = True
        self._fail("connection_lost")

    def _fail(self, why: str) -> None:
        error = LoadError(why)
        for waiter in (self.opened, self.welcomed, self.playing):
            if not waiter.done():
                waiter.set_exception(error)
                # Retrieved here so that a bot nobody awaits logs nothing.
                waiter.exception()
        self.lobby_changed.set()
        if self.transport is not None:
            self.transport.close()

    # Sending ---------------------------------------------------------------

    def send(self, payload: bytes, opcode: int = 0x2) -> None:
        """One frame, binary unless told, zero mask key (see ``_input_frame``)."""
        size = len(payload)
        first = 0x80 | opcode
        if size < 126:
            head = bytes((first, 0x80 | size))
        else:
            head = bytes((first, 0x80 | 126)) + size.to_bytes(2, "big")
        if self.transport is not None:
            self.transport.write(head + b"\0\0\0\0" + payload)

    def close(self) -> None:
        """Close politely (1000), then drop the connection."""
        if self.transport is not None and not self.closed:
            self.closed = True
            self.transport.write(b"\x88\x82\0\0\0\0\x03\xe8")
            self.transport.close()


def upgrade_request(host: str, port: int) -> tuple[bytes, str]:
    """The opening handshake (RFC 6455, section 4.1) and the accept it expects."""
    key = base64.b64encode(os.urandom(16)).decode()
    accept = base64.b64encode(hashlib.sha1(key.encode() + WS_GUID).digest()).decode()
    request = (
        f"GET /ws/ HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n"
    )
    return request.encode(), accept


# One run ---------------------------------------------------------------------


@dataclass(slots=True)
class Target:
    url: str
    host: str
    port: int
    pid: int | None  # the server's, when known: CPU and RSS come from /proc


@dataclass(slots=True)
class Room:
    host: Bot
    guest: Bot
    lobby_id: str
    host_token: str


@dataclass(slots=True)
class Reading:
    """Everything read at one end of the measured window."""

    metrics: dict[str, float]
    wall: float
    own_cpu: float
    server_cpu: float | None
    rss: int | None
    cores: dict[int, tuple[int, int, int]]
    counts: list[tuple[int, int]]  # (snapshots, missing ticks) per bot


@dataclass(frozen=True, slots=True)
class Settings:
    """How long to measure, and what counts as holding the workload."""

    duration: float = 20.0
    warmup: float = WARMUP
    max_p99_lateness: float = HELD_MAX_P99_LATENESS


class Run:
    def __init__(self, target: Target, rooms: int, settings: Settings) -> None:
        self.target = target
        self.rooms_wanted = rooms
        self.duration = settings.duration
        self.warmup = settings.warmup
        self.max_p99_lateness = settings.max_p99_lateness
        self.shared = Shared()
        self.http = HttpClient(target.host, target.port, SETUP_CONCURRENCY)
        self.connects = asyncio.Semaphore(SETUP_CONCURRENCY)
        self.loopback = _is_loopback_v4(target.host)
        self.opened_sockets = 0
        self.rooms: list[Room] = []

    async def metrics(self) -> dict[str, float]:
        status, data = await self.http.request("GET", "/metrics")
        if status != 200:
            raise LoadError(f"/metrics answered HTTP {status}")
        return parse_metrics(data.decode())

    async def connect(self, token: str) -> Bot:
        host, port = self.target.host, self.target.port
        request, accept = upgrade_request(host, port)
        loop = asyncio.get_running_loop()
        local = None
        if self.loopback:
            # The server caps connections per client address; real players
            # come from many. Every 127.x.y.z is this machine on Linux.
            self.opened_sockets += 1
            source = self.opened_sockets % LOOPBACK_SOURCES
            local = (f"127.0.{source // 256}.{source % 256 + 1}", 0)
        async with self.connects:
            _, bot = await loop.create_connection(
                lambda: Bot(self.shared, token, request, accept),
                host,
                port,
                local_addr=local,
            )
            await bot.opened
        await bot.welcomed
        return bot

    async def prepare_room(self, index: int) -> Room:
        """Create, join, connect, ready: one game, through the real API."""
        http = self.http
        made = await http.json(
            "/api/create_lobby/",
            {"host": f"h{index}", "points_to_win": 99, "max_players": 2},
        )
        lobby_id, host_token = made["lobby_id"], made["token"]
        joined = await http.json(
            "/api/join_lobby/", {"lobby_id": lobby_id, "guest_name": f"g{index}"}
        )
        host, guest = await asyncio.gather(
            self.connect(host_token), self.connect(joined["token"])
        )
        guest.send(msgpack.packb([READY, True]))
        while not _guest_ready(host.lobby):
            host.lobby_changed.clear()
            await host.lobby_changed.wait()
            if host.closed:
                raise LoadError("host socket closed before the start")
        return Room(host, guest, lobby_id, host_token)

    async def start_room(self, room: Room) -> Room:
        await self.http.json(
            "/api/start_game/", {"lobby_id": room.lobby_id}, token=room.host_token
        )
        await asyncio.gather(room.host.playing, room.guest.playing)
        return room

    async def set_up(self) -> None:
        """Prepare every room, then start every game.

        Games start only once all rooms are ready: set-up then runs against
        an idle server, and a room count beyond what the server can tick
        still gets set up, instead of crawling behind the games already on.
        """
        limit = SETUP_TIMEOUT + SETUP_TIMEOUT_PER_ROOM * self.rooms_wanted
        try:
            async with asyncio.timeout(limit):
                prepared = await asyncio.gather(
                    *(self.prepare_room(i) for i in range(self.rooms_wanted)),
                    return_exceptions=True,
                )
                started = await asyncio.gather(
                    *(self.start_room(r) for r in self._kept(prepared)),
                    return_exceptions=True,
                )
        except TimeoutError:
            raise LoadError(
                f"set-up of {self.rooms_wanted} rooms took over {limit:.0f} s"
            ) from None
        self.rooms = self._kept(started)

    def _kept(self, results: list[Room | BaseException]) -> list[Room]:
        """The rooms that made it; each failure is counted as an error."""
        kept = []
        for result in results:
            if isinstance(result, Room):
                kept.append(result)
            elif isinstance(result, Exception):
                self.shared.error("setup: " + str(result)[:60])
            else:
                raise result
        return kept

    def bots(self) -> Iterator[Bot]:
        for room in self.rooms:
            yield room.host
            yield room.guest

    async def read(self) -> Reading:
        pid = self.target.pid
        return Reading(
            metrics=await self.metrics(),
            wall=time.perf_counter(),
            own_cpu=time.process_time(),
            server_cpu=proc_cpu_seconds(pid) if pid else None,
            rss=proc_rss_bytes(pid) if pid else None,
            cores=core_times(),
            counts=[(b.snapshots, b.missing) for b in self.bots()],
        )

    async def execute(self) -> dict[str, Any]:
        pid = self.target.pid
        rss_idle = proc_rss_bytes(pid) if pid else None
        await self.set_up()
        if not self.rooms:
            raise LoadError("no room could be started: " + repr(self.shared.errors))
        await asyncio.sleep(self.warmup)

        # The window: the same readings at both ends, differenced.
        before = await self.read()
        self.shared.measuring = True
        await asyncio.sleep(self.duration)
        self.shared.measuring = False
        after = await self.read()

        self.shared.stopping = True
        for bot in self.bots():
            bot.close()
        self.http.close()
        await asyncio.sleep(0.2)  # let the close frames reach the wire
        return self.report(before, after, rss_idle)

    def report(
        self, start: Reading, end: Reading, rss_idle: int | None
    ) -> dict[str, Any]:
        before, after = start.metrics, end.metrics
        wall = end.wall - start.wall
        own_cpu = (end.own_cpu - start.own_cpu) / wall
        pairs = list(zip(end.counts, start.counts, strict=True))
        rates = [(a[0] - b[0]) / wall for a, b in pairs]
        missing = sum(a[1] - b[1] for a, b in pairs)
        server_cpu = None
        if start.server_cpu is not None and end.server_cpu is not None:
            server_cpu = (end.server_cpu - start.server_cpu) / wall
        rss = end.rss

        def delta(name: str) -> float:
            return after.get(name, 0.0) - before.get(name, 0.0)

        lateness = bucket_counts(before, after, "pong_tick_lateness_seconds")
        duration = bucket_counts(before, after, "pong_tick_duration_seconds")
        ticks = delta("pong_ticks_total")
        # The server's rate as run in the window, to the nearest whole tick:
        # with --url we are not told the --tick-rate it was started with.
        period = 1.0 / (max(1.0, round(ticks / wall)) if ticks else 60.0)
        rtts = sorted(self.shared.rtts)
        clients = len(rates)
        shared = self.shared
        generator_bound = own_cpu > GENERATOR_BOUND
        p99_lateness = bucket_quantile(lateness, 0.99)
        why_not = []
        if not rates or min(rates) < HELD_MIN_RATE:
            why_not.append(f"a client below {HELD_MIN_RATE:g} snapshots/s")
        if p99_lateness is None or p99_lateness > self.max_p99_lateness:
            why_not.append(f"p99 lateness over {self.max_p99_lateness * 1000:g} ms")
        if len(self.rooms) < self.rooms_wanted:
            why_not.append("not every room started")
        held = not why_not
        if generator_bound:
            verdict = "generator-bound: not a server capacity figure"
        elif held:
            verdict = "held"
        else:
            verdict = "did not hold: " + ", ".join(why_not)
        server_core = core_share(start, end, SERVER_CPU)
        noise = []
        if server_core is not None:
            # Tail latency follows whatever else runs on the server's core: a
            # core taken away for a few ms makes every tick in that time late.
            if server_cpu is not None:
                server_core["other"] = max(0.0, server_core["busy"] - server_cpu)
                if server_core["other"] > NOISY_OTHER:
                    noise.append(f"{server_core['other']:.0%} used by other programs")
            if server_core["steal"] > NOISY_STEAL:
                noise.append(f"{server_core['steal']:.0%} stolen by the hypervisor")
        if noise:
            verdict += f" (noisy: core {SERVER_CPU} {', '.join(noise)})"
        return {
            "rooms": self.rooms_wanted,
            "rooms_started": len(self.rooms),
            "clients": clients,
            "window_s": round(wall, 3),
            "tick_rate": round(1.0 / period, 2),
            "snapshots_per_client_s": {
                "min": min(rates) if rates else 0.0,
                "median": statistics.median(rates) if rates else 0.0,
            },
            "clients_below_min_rate": sum(r < HELD_MIN_RATE for r in rates),
            "missing_ticks": missing,
            "tick_lateness_s": {
                "p50": bucket_quantile(lateness, 0.5),
                "p99": p99_lateness,
                "max_le": bucket_max(lateness),
                "from_buckets": True,
            },
            "tick_duration_s": {
                "p50": bucket_quantile(duration, 0.5),
                "p99": bucket_quantile(duration, 0.99),
                "max_le": bucket_max(duration),
                "from_buckets": True,
            },
            "wakeups": delta("pong_tick_lateness_seconds_count"),
            "overruns": over(duration, period),
            "skipped_ticks": delta("pong_skipped_ticks_total"),
            "dropped_snapshots": delta("pong_dropped_snapshots_total"),
            "input_rtt_s": {
                "p50": _quantile(rtts, 0.5),
                "p99": _quantile(rtts, 0.99),
                "samples": len(rtts),
            },
            "server_cpu": server_cpu,
            "server_rss_bytes": rss,
            "server_rss_idle_bytes": rss_idle,
            "rss_per_client_bytes": (
                (rss - rss_idle) / clients if rss and rss_idle and clients else None
            ),
            "bytes_out_per_tick": delta("pong_bytes_out_total") / ticks if ticks else 0,
            "generator_cpu": own_cpu,
            "server_core": server_core,
            "generator_core": core_share(start, end, GENERATOR_CPU),
            "generator_bound": generator_bound,
            "errors": sum(shared.errors.values()),
            "error_codes": dict(shared.errors),
            "unexpected_closes": shared.unexpected_closes,
            "held": held and not generator_bound,
            "verdict": verdict,
            "noisy": bool(noise),
        }


def _is_loopback_v4(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.version == 4 and address.is_loopback


def _guest_ready(view: dict[str, Any]) -> bool:
    players = view.get("players", [])
    return len(players) >= 2 and all(
        p["host"] or p["status"] == "ready" for p in players
    )


def _quantile(ordered: list[float], q: float) -> float | None:
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# Running, and reporting ------------------------------------------------------


def target_from_url(url: str, pid: int | None) -> Target:
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise LoadError("--url takes http://HOST:PORT; the bench speaks no TLS")
    return Target(url, parts.hostname, parts.port or 80, pid)


def run_once(
    url: str | None, pid: int | None, rooms: int, settings: Settings
) -> dict[str, Any]:
    """One run against ``url``, or against a server of our own if it is None."""
    server = None
    if url is None:
        server = SpawnedServer(tick_rate=60)
        server.start()
        url, pid = server.url, server.pid
    try:
        run = Run(target_from_url(url, pid), rooms, settings)
        report = uvloop.run(run.execute())
    except (LoadError, OSError):
        if server is not None:
            print(server.log_tail(), file=sys.stderr)
        raise
    finally:
        if server is not None:
            server.stop()
    report["server_pinned"] = server.pinned if server else None
    report["server_commit"] = git_commit() if server else None
    return report


def capacity(
    start: int, step: int, most: int, settings: Settings, retries: int
) -> dict[str, Any]:
    """Raise the room count, a fresh server each step, until it does not hold.

    A step that fails while the machine was noisy (see ``NOISY_STEAL``) is
    run again, up to ``retries`` times: on a shared machine one burst of
    someone else's work would otherwise decide the answer.
    """
    steps: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    stopped = f"held up to --max {most}"
    for rooms in range(start, most + 1, step):
        try:
            for _ in range(retries + 1):
                report = run_once(None, None, rooms, settings)
                steps.append(report)
                print(step_line(report), flush=True)
                if report["held"] or not report["noisy"]:
                    break
        except (LoadError, OSError) as exc:
            # A server too busy to answer set-up in time has not held either.
            steps.append({"rooms": rooms, "error": str(exc)})
            stopped = f"set-up failed at {rooms} rooms: {exc}"
            print(f"rooms {rooms:>4}: {stopped}", flush=True)
            break
        if report["generator_bound"]:
            stopped = f"generator-bound at {rooms} rooms: not a server figure"
            break
        if not report["held"]:
            stopped = f"did not hold at {rooms} rooms"
            break
        best = report
    return {
        "capacity_rooms": best["rooms"] if best else None,
        "criteria": {
            "min_snapshots_per_client_s": HELD_MIN_RATE,
            "max_p99_tick_lateness_s": settings.max_p99_lateness,
        },
        "stopped": stopped,
        "best": best,
        "steps": steps,
    }


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.2f} ms"


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


def _core(share: dict[str, float] | None) -> str:
    if share is None:
        return "-"
    text = f"{_pct(share['busy'])} (stolen {_pct(share['steal'])}"
    if "other" in share:
        text += f", others {_pct(share['other'])}"
    return text + ")"


def table(r: dict[str, Any]) -> str:
    rss, per_client = r["server_rss_bytes"], r["rss_per_client_bytes"]
    rows = [
        ("rooms (started) / clients", f"{r['rooms']} ({r['rooms_started']}) / "
         f"{r['clients']}"),
        ("window", f"{r['window_s']:.1f} s at {r['tick_rate']:g} ticks/s"),
        ("snapshots/s per client, min / median",
         f"{r['snapshots_per_client_s']['min']:.2f} / "
         f"{r['snapshots_per_client_s']['median']:.2f}"),
        (f"clients below {HELD_MIN_RATE:g}/s", str(r["clients_below_min_rate"])),
        ("missing ticks seen by clients", str(r["missing_ticks"])),
        ("tick lateness p50 / p99 / max<= (buckets)",
         " / ".join(_ms(r["tick_lateness_s"][k]) for k in ("p50", "p99", "max_le"))),
        ("tick duration p50 / p99 / max<= (buckets)",
         " / ".join(_ms(r["tick_duration_s"][k]) for k in ("p50", "p99", "max_le"))),
        ("wake-ups / overruns (> 1 period)",
         f"{r['wakeups']:.0f} / {r['overruns']:.0f}"),
        ("skipped ticks / dropped snapshots",
         f"{r['skipped_ticks']:.0f} / {r['dropped_snapshots']:.0f}"),
        ("input->ack round trip p50 / p99",
         f"{_ms(r['input_rtt_s']['p50'])} / {_ms(r['input_rtt_s']['p99'])}"),
        ("server CPU (one core = 100%)", _pct(r["server_cpu"])),
        ("server RSS / per client",
         f"{_num(rss and rss / 2**20)} MiB / {_num(per_client and per_client / 1024)}"
         " KiB"),
        ("bytes sent per tick (payload)", _num(r["bytes_out_per_tick"], 0)),
        ("generator CPU (one core = 100%)", _pct(r["generator_cpu"])),
        ("core 0 / core 1 busy, all programs",
         f"{_core(r['server_core'])} / {_core(r['generator_core'])}"),
        ("errors / unexpected closes",
         f"{r['errors']} / {r['unexpected_closes']}"
         + (f"  {r['error_codes']}" if r["error_codes"] else "")),
        ("verdict", r["verdict"]),
    ]  # fmt: skip
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def step_line(r: dict[str, Any]) -> str:
    return (
        f"rooms {r['rooms']:>4}: min {r['snapshots_per_client_s']['min']:6.2f}/s, "
        f"lateness p99 {_ms(r['tick_lateness_s']['p99'])}, "
        f"server CPU {_pct(r['server_cpu'])}, generator CPU "
        f"{_pct(r['generator_cpu'])}: {r['verdict']}"
    )


def _finite(value: Any) -> Any:
    """JSON has no infinity or NaN; such a value becomes null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.load",
        description="Play many two-player games against a server and report "
        "what held. See bench/README.md.",
    )
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", help="a running server, http://HOST:PORT")
    where.add_argument(
        "--spawn",
        action="store_true",
        help="start a server pinned to core 0; pin ourselves to core 1",
    )
    p.add_argument("--rooms", type=int, default=50, help="games (%(default)s)")
    p.add_argument(
        "--duration", type=float, default=20.0, help="measured seconds (%(default)s)"
    )
    p.add_argument(
        "--warmup", type=float, default=WARMUP, help="seconds before (%(default)s)"
    )
    p.add_argument(
        "--server-pid",
        type=int,
        help="with --url: the server's pid, to read its CPU and RSS from /proc",
    )
    p.add_argument("--json", type=Path, help="also write the report here")
    p.add_argument(
        "--capacity",
        action="store_true",
        help="raise --rooms from --start by --step until the workload fails",
    )
    p.add_argument("--start", type=int, default=100)
    p.add_argument("--step", type=int, default=50)
    p.add_argument("--max", type=int, default=800)
    p.add_argument(
        "--retries",
        type=int,
        default=1,
        help="times a capacity step that failed on a noisy machine is rerun "
        "(%(default)s)",
    )
    p.add_argument(
        "--max-lateness-ms",
        type=float,
        default=HELD_MAX_P99_LATENESS * 1000,
        help="p99 tick lateness above which the workload did not hold "
        "(%(default)s ms); raise it only to compare runs on a noisy machine",
    )
    a = p.parse_args(argv)
    if a.capacity and not a.spawn:
        # Games outlive their sockets on the server, so steps against one
        # server would pile up; each step needs a fresh one.
        p.error("--capacity needs --spawn")
    if a.rooms < 1 or a.duration <= 0 or a.warmup < 0:
        p.error("--rooms is at least 1; --duration positive; --warmup not negative")
    return a


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    generator_pinned = pin_generator() if a.spawn else False
    settings = Settings(a.duration, a.warmup, a.max_lateness_ms / 1000)
    try:
        if a.capacity:
            result = capacity(a.start, a.step, a.max, settings, a.retries)
            best = result["best"]
            if best is not None:
                print(table(best))
            print(f"capacity: {result['capacity_rooms']} rooms ({result['stopped']})")
        else:
            url = None if a.spawn else a.url
            result = run_once(url, a.server_pid, a.rooms, settings)
            print(table(result))
    except (LoadError, OSError) as exc:
        print(f"load: {exc}", file=sys.stderr)
        return 1
    result["generator_pinned"] = generator_pinned
    if a.json is not None:
        a.json.write_text(json.dumps(_finite(result), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
