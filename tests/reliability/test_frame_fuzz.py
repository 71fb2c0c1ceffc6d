"""Hypothesis throws frames at authenticated sockets of a live server.

Three kinds of frame: arbitrary bytes; msgpack of arbitrary nested values;
and near-valid messages (the right shape with one field wrong: a wrong type,
NaN or infinity, an integer out of range, a string over the limit, nesting
past any sane depth), each with the error code protocol.md gives for it.

Every frame goes to the lone host of an open lobby and is followed by a PING
with a marker, so everything that arrives before the marker's PONG is the
server's answer to that frame. Each answer must be one of the documented
ones: ERROR with a code a refusal can carry here, the PONG or LOBBY that a
valid PING or READY earns, silence for a READY that changes nothing, or a
documented close (1009 for a frame over 4 KiB, 4003 on exactly the 11th
violation, 4005 for LEAVE). ``internal_error`` or 1011 would be our bug and
fails the test. A closed socket is replaced by a fresh lobby's, and the
examples go on.

Meanwhile a game between two other sockets runs on the same server, and must
keep its snapshot rate; the server must answer /api/health/ throughout.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from bench.bot import Api
from server import protocol
from tests.conftest import ServerProcess
from tests.helpers import TIMEOUT, assert_healthy, close_all, post, seated_bots

MAX_FRAME = 4096  # protocol.md, "Limits": a bigger message closes with 1009
# The refusals the lone host of an open lobby can be sent (protocol.md,
# "Error codes"): bad_frame and unknown_type for malformed frames,
# not_in_game (or forbidden) for a well-formed INPUT with no game running,
# too_few_players for START.
REFUSALS = {"bad_frame", "unknown_type", "not_in_game", "forbidden", "too_few_players"}
VIOLATIONS = {"bad_frame", "unknown_type", "not_authenticated"}
CLOSES = {protocol.CLOSE_TOO_BIG, protocol.CLOSE_PROTOCOL, protocol.CLOSE_LEFT}
# Each example sends two messages; spacing them keeps a socket well inside
# its allowance of 150 messages a second, so 4010 never muddies an answer.
MIN_EXCHANGE = 0.016
HEALTH_EVERY = 25  # exchanges between two looks at /api/health/
EXAMPLES = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@dataclass
class Answer:
    messages: list[list[Any]]
    close_code: int | None

    def codes(self) -> list[str]:
        return [m[1]["code"] for m in self.messages if m[0] == protocol.ERROR]


@dataclass
class FuzzSocket:
    """One authenticated socket at a time, replaced whenever the server closes it."""

    base_url: str
    ws: ClientConnection | None = None
    _held: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    violations: int = 0  # refusals on this socket that count toward 4003
    sockets: int = 0
    exchanges: int = 0
    _marker: float = 0.5
    _last: float = 0.0
    closes: dict[int, int] = field(default_factory=dict)

    def open(self) -> None:
        status, created = post(
            self.base_url, "/api/create_lobby/", {"host": "fuzz", "max_players": 2}
        )
        assert status == 201, created
        ws = self._held.enter_context(
            connect(
                created["ws_url"],
                compression=None,
                max_size=2**20,
                open_timeout=TIMEOUT,
            )
        )
        ws.send(msgpack.packb([protocol.HELLO, created["token"]]))
        kinds = [msgpack.unpackb(ws.recv(TIMEOUT))[0] for _ in range(2)]
        assert kinds == [protocol.WELCOME, protocol.LOBBY]
        self.ws, self.violations = ws, 0
        self.sockets += 1

    def close(self) -> None:
        self._held.close()
        self.ws = None

    def exchange(self, frame: bytes) -> Answer:
        """Send ``frame``; what the server answered before our marker's PONG."""
        if self.ws is None:
            self.open()
        assert self.ws is not None
        wait = self._last + MIN_EXCHANGE - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        self._last = time.monotonic()
        self.exchanges += 1
        if self.exchanges % HEALTH_EVERY == 0:
            assert_healthy(self.base_url)

        # Markers are halves, which no PING a test frame carries is likely
        # to repeat by chance.
        self._marker += 1.0
        marker = self._marker
        messages: list[list[Any]] = []
        # If the server closes at once, a send fails, but what it sent
        # before its close frame is still there to read.
        with contextlib.suppress(ConnectionClosed):
            self.ws.send(frame)
            self.ws.send(msgpack.packb([protocol.PING, marker]))
        try:
            while True:
                message = msgpack.unpackb(self.ws.recv(TIMEOUT))
                if message[0] == protocol.PONG and message[1] == marker:
                    break
                messages.append(message)
        except ConnectionClosed:
            code = self.ws.close_code
            self.close()
            assert code is not None
            self.closes[code] = self.closes.get(code, 0) + 1
            return Answer(messages, code)
        return Answer(messages, None)

    def late_error(self) -> list[Any]:
        """The next message: START's refusal, which is checked asynchronously."""
        assert self.ws is not None
        return msgpack.unpackb(self.ws.recv(TIMEOUT))


# What a frame is, by our own reading of protocol.md ---------------------------


def as_array(frame: bytes) -> list[Any] | None:
    """The frame as one msgpack array, or None if it is not exactly that."""
    try:
        value = msgpack.unpackb(frame, raw=False, strict_map_key=False)
    except Exception:  # msgpack raises several unrelated types
        return None
    return value if isinstance(value, list) else None


def is_int(value: object, expected: int) -> bool:
    return type(value) is int and value == expected


def is_ping(message: list[Any] | None) -> bool:
    if message is None or len(message) != 2 or not is_int(message[0], 6):
        return False
    t = message[1]
    return type(t) in (int, float) and math.isfinite(t)


def is_ready(message: list[Any] | None) -> bool:
    return (
        message is not None
        and len(message) == 2
        and is_int(message[0], 2)
        and type(message[1]) is bool
    )


def check(sock: FuzzSocket, frame: bytes, answer: Answer) -> None:
    """The answer is a documented one, and the one this frame calls for."""
    message = as_array(frame)
    kinds = {m[0] for m in answer.messages}
    codes = answer.codes()
    assert kinds <= {protocol.ERROR, protocol.PONG, protocol.LOBBY}, answer
    assert set(codes) <= REFUSALS, answer
    assert answer.close_code in (None, *CLOSES), answer
    sock.violations += sum(code in VIOLATIONS for code in codes)

    if protocol.PONG in kinds:
        assert is_ping(message), "a PONG for a frame that is not a valid PING"
        assert message is not None
        assert [m[1] for m in answer.messages] == [float(message[1])]
    if protocol.LOBBY in kinds:
        assert is_ready(message), "a LOBBY for a frame that is not a valid READY"
    if not answer.messages and answer.close_code is None:
        start = message is not None and len(message) == 1 and is_int(message[0], 3)
        assert start or is_ready(message), "a frame went unanswered"
        if start:
            late = sock.late_error()
            assert late[0] == protocol.ERROR
            assert late[1]["code"] == "too_few_players"

    if answer.close_code == protocol.CLOSE_TOO_BIG:
        assert len(frame) > MAX_FRAME
    elif answer.close_code == protocol.CLOSE_LEFT:
        assert message is not None and len(message) == 1 and is_int(message[0], 5)
    elif answer.close_code == protocol.CLOSE_PROTOCOL:
        assert sock.violations == protocol.MAX_BAD_FRAMES + 1
    else:
        assert len(frame) <= MAX_FRAME
        assert sock.violations <= protocol.MAX_BAD_FRAMES


# Strategies ------------------------------------------------------------------

INT64 = st.integers(min_value=-(2**63), max_value=2**64 - 1)
leaves = (
    st.none()
    | st.booleans()
    | INT64
    | st.floats()
    | st.floats(width=32)
    | st.text(max_size=20)
    | st.binary(max_size=10)
)
values = st.recursive(
    leaves,
    lambda inner: (
        st.lists(inner, max_size=10)
        | st.dictionaries(st.text(max_size=5) | st.integers(0, 9), inner, max_size=10)
    ),
    max_leaves=30,
)
raw_bytes = st.binary(max_size=64) | st.binary(min_size=4090, max_size=4200)


def pack_any(value: Any, single: bool) -> bytes:
    """``value`` packed with its floats as float32 where they fit, else float64."""
    try:
        return msgpack.packb(value, use_single_float=single)
    except OverflowError:
        return msgpack.packb(value)


packed = st.builds(
    pack_any,
    values | st.builds(lambda k, rest: [k, *rest], INT64, st.lists(values, max_size=4)),
    st.booleans(),
)


def message(*fields: Any) -> bytes:
    return msgpack.packb(list(fields))


# Field values that are wrong for any numeric field, and numbers out of range.
not_a_number = (
    st.none()
    | st.booleans()
    | st.text(max_size=4)
    | st.binary(max_size=4)
    | st.lists(st.integers(0, 3), max_size=2)
    | st.dictionaries(st.text(max_size=2), st.integers(0, 3), max_size=2)
)
not_finite = st.sampled_from([math.nan, math.inf, -math.inf])
move = st.floats(-1.0, 1.0) | st.sampled_from([-1, 0, 1])
seq = st.integers(0, 2**32 - 1)
over_seq = st.integers(2**32, 2**64 - 1) | st.integers(-(2**63), -1)
off_move = (
    not_finite
    | st.floats(min_value=1.0, exclude_min=True, allow_infinity=False)
    | st.floats(max_value=-1.0, exclude_max=True, allow_infinity=False)
    | st.integers(2, 2**64 - 1)
    | st.integers(-(2**63), -2)
)
# Over 256 bytes (protocol.md, "Limits"), in bytes rather than characters.
long_text = st.text(alphabet="ab", min_size=257, max_size=400) | st.text(
    alphabet="é€", min_size=129, max_size=200
).filter(lambda s: len(s.encode()) > 256)
unknown_kind = INT64.filter(lambda k: not 1 <= k <= 6)


def nested(depth: int, inner: bytes) -> bytes:
    """``inner`` wrapped in ``depth`` one-element arrays, written byte by byte
    since msgpack's own packer stops at a nesting limit of its own."""
    return b"\x91" * depth + inner


near_valid: st.SearchStrategy[tuple[bytes, str]] = st.one_of(
    # INPUT with one field wrong, and a well-formed INPUT with no game.
    st.builds(
        lambda s, m: (message(4, s, m), "bad_frame"), over_seq | not_a_number, move
    ),
    st.builds(lambda s, m: (message(4, s, m), "bad_frame"), st.floats(), move),
    st.builds(
        lambda s, m: (message(4, s, m), "bad_frame"), seq, off_move | not_a_number
    ),
    st.builds(
        lambda s, m, seat: (message(4, s, m, seat), "bad_frame"),
        seq,
        move,
        st.integers(64, 2**64 - 1) | st.integers(-(2**63), -1) | not_a_number,
    ),
    st.builds(lambda s, m: (message(4, s, m), "not_in_game"), seq, move),
    st.builds(
        lambda s, m, seat: (message(4, s, m, seat), "not_in_game"),
        seq,
        move,
        st.integers(0, 63),
    ),
    # PING, READY and HELLO with the wrong thing in their one field.
    st.builds(lambda t: (message(6, t), "bad_frame"), not_finite | not_a_number),
    st.builds(
        lambda r: (message(2, r), "bad_frame"),
        not_a_number.filter(lambda v: type(v) is not bool) | INT64,
    ),
    st.builds(lambda t: (message(1, t), "bad_frame"), long_text | not_a_number),
    st.builds(lambda t: (message(1, t), "bad_frame"), st.text(min_size=1, max_size=43)),
    # Wrong arity for every type: one field too many, or none at all.
    st.builds(
        lambda k, extra: (message(k, *extra), "bad_frame"),
        st.sampled_from([3, 5]),
        st.lists(st.integers(0, 9), min_size=1, max_size=3),
    ),
    st.builds(lambda k: (message(k), "bad_frame"), st.sampled_from([1, 2, 4, 6])),
    # A string over the limit anywhere, even beside an unknown type.
    st.builds(lambda k, t: (message(k, t), "bad_frame"), INT64, long_text),
    # Containers over their limits, and map keys that are not strings.
    st.builds(lambda n: (message(6, *range(n)), "bad_frame"), st.integers(8, 20)),
    st.builds(
        lambda d: (message(6, d), "bad_frame"),
        st.dictionaries(st.text(max_size=3), INT64, min_size=9, max_size=12),
    ),
    st.builds(lambda k: (message(6, {k: 1}), "bad_frame"), st.integers(0, 9)),
    # Nesting, to depths past msgpack's own stack limit.
    st.builds(
        lambda d: (nested(d, message(6, 1.0)), "bad_frame"), st.integers(1, 3000)
    ),
    st.builds(
        lambda d: (b"\x92\x06" + nested(d, b"\xc0"), "bad_frame"),
        st.integers(1, 3000),
    ),
    # Headers that declare far more than the frame holds.
    st.builds(
        lambda head, n: (head + n.to_bytes(4, "big"), "bad_frame"),
        st.sampled_from([b"\xdd", b"\xdf", b"\xdb", b"\xc6"]),
        st.integers(2**16, 2**32 - 1),
    ),
    # Trailing bytes after a valid message; a map or a scalar as the message.
    st.builds(
        lambda tail: (message(6, 1.0) + tail, "bad_frame"),
        st.binary(min_size=1, max_size=8),
    ),
    st.builds(lambda v: (msgpack.packb({"type": v}), "bad_frame"), st.integers(1, 6)),
    st.builds(lambda v: (msgpack.packb(v), "bad_frame"), leaves),
    # Binary and extension values where a number or string belongs.
    st.builds(lambda b: (message(6, b), "bad_frame"), st.binary(max_size=8)),
    st.builds(
        lambda code, data: (
            msgpack.packb([6, msgpack.ExtType(code, data)]),
            "bad_frame",
        ),
        st.integers(0, 127),
        st.binary(max_size=8),
    ),
    # The type is not an integer; or an integer no message has.
    st.builds(lambda k: (message(k), "bad_frame"), st.floats() | st.text(max_size=3)),
    st.builds(
        lambda k, rest: (message(k, *rest), "unknown_type"),
        unknown_kind,
        st.lists(st.integers(0, 9), max_size=3),
    ),
)


# The tests ----------------------------------------------------------------


async def beside_a_game(
    server: ServerProcess, run_examples: Callable[[FuzzSocket], None]
) -> FuzzSocket:
    """Run the examples in a thread while a game plays on the same server."""
    api = Api(server.base_url)
    _, bots = await seated_bots(api, 2, 99)
    sock = FuzzSocket(server.base_url)
    try:
        await bots[0].start()
        watcher = bots[1]
        await watcher.wait_until(lambda: watcher.snapshot is not None, TIMEOUT)
        seen = lambda: sum(watcher.snapshots_by_round.values())  # noqa: E731
        before, began = seen(), time.monotonic()

        await asyncio.to_thread(run_examples, sock)

        rate = (seen() - before) / (time.monotonic() - began)
        assert not watcher.closed and watcher.errors == []
        assert rate > 50, f"the game beside the fuzzing ran at {rate:.1f} Hz"
    finally:
        await asyncio.to_thread(sock.close)
        await close_all(bots)
    assert_healthy(server.base_url)
    assert sock.exchanges >= 100  # the examples really ran
    return sock


async def test_arbitrary_frames_get_documented_answers(
    plain_server: ServerProcess,
) -> None:
    @EXAMPLES
    @given(frame=raw_bytes | packed)
    def examples(sock: FuzzSocket, frame: bytes) -> None:
        check(sock, frame, sock.exchange(frame))

    sock = await beside_a_game(plain_server, examples)
    # Enough violations were sent that sockets were closed and replaced.
    assert sock.closes.get(protocol.CLOSE_PROTOCOL, 0) >= 1
    assert sock.sockets >= 2


async def test_near_valid_messages_get_their_error_code(
    plain_server: ServerProcess,
) -> None:
    @EXAMPLES
    @given(case=near_valid)
    def examples(sock: FuzzSocket, case: tuple[bytes, str]) -> None:
        frame, code = case
        answer = sock.exchange(frame)
        check(sock, frame, answer)
        assert answer.codes() == [code], (frame, answer)

    sock = await beside_a_game(plain_server, examples)
    assert sock.closes.get(protocol.CLOSE_PROTOCOL, 0) >= 1


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (message(4, 1, math.nan), "bad_frame"),
        (message(6, math.inf), "bad_frame"),
        (message(4, 2**32, 0.0), "bad_frame"),
        (message(2**64 - 1), "unknown_type"),
        (nested(3000, b"\xc0"), "bad_frame"),
        (message(1, "x" * 257), "bad_frame"),
    ],
    ids=["nan-move", "inf-ping", "seq-over-uint32", "type-uint64", "deep", "long"],
)
async def test_named_edge_cases(
    plain_server: ServerProcess, frame: bytes, code: str
) -> None:
    # The cases above that most deserve a name, run every time whatever
    # Hypothesis happens to draw.
    sock = FuzzSocket(plain_server.base_url)
    try:
        answer = await asyncio.to_thread(sock.exchange, frame)
    finally:
        await asyncio.to_thread(sock.close)
    check(sock, frame, answer)
    assert answer.codes() == [code]
