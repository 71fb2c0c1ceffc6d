"""The WebSocket message codec: every message type, its checks and its bytes.

This module implements ``protocol.md`` ("Messages"). Every message is one
binary WebSocket frame holding one msgpack array whose first element is the
integer message type; the remaining elements are positional. Client messages
use types below 64, server messages 64 and up.

Decoding is strict: msgpack runs with explicit length limits, so a few bytes
that declare a huge string, array or map are refused before anything is
allocated, and every field is checked for type and range here, so nothing
malformed ever reaches the lobby or the simulation. A refused frame raises
``ClientError`` with a code from ``server.errors``.

Encoding of the two high-rate messages (``INPUT`` in, ``SNAPSHOT`` out) keeps
to flat arrays of numbers, with floats as 32-bit, to keep frames small.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgpack

from .errors import ClientError

# Client -> server (protocol.md, "Client messages").
HELLO = 1
READY = 2
START = 3
INPUT = 4
LEAVE = 5
PING = 6

# Server -> client (protocol.md, "Server messages").
WELCOME = 64
LOBBY = 65
GAME_START = 66
ROUND_START = 67
SNAPSHOT = 68
POINT = 69
ROUND_END = 70
GAME_END = 71
ERROR = 72
PONG = 73
AWAY = 74
BACK = 75

# WebSocket close codes (protocol.md, "Close codes"). 1xxx are RFC 6455's.
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001  # the server is shutting down
CLOSE_UNSUPPORTED = 1003  # a text frame
CLOSE_TOO_BIG = 1009  # a message over MAX_FRAME
CLOSE_INTERNAL = 1011
CLOSE_AUTH_TIMEOUT = 4001  # no valid hello within the hello timeout
CLOSE_INVALID_TOKEN = 4002  # hello carried a token we do not know
CLOSE_PROTOCOL = 4003  # too many refused frames
CLOSE_REPLACED = 4004  # another socket took this seat
CLOSE_LEFT = 4005  # the player left the lobby; the token is void
CLOSE_GAME_OVER = 4006  # the game this socket was for has ended
CLOSE_FORFEITED = 4007  # the seat was forfeited after the reconnect grace period
CLOSE_PING_TIMEOUT = 4008  # nothing heard from the peer, even after a ping
CLOSE_TOO_SLOW = 4009  # the peer read too slowly for too long
CLOSE_FLOOD = 4010  # the peer sent messages faster than allowed for too long
CLOSE_LOBBY_CLOSED = 4011  # the host closed the lobby; every token is void

MAX_STR = 256  # bytes in any string field; a token is 43
MAX_ARRAY = 8  # elements in any client array
MAX_MAP = 8  # entries in any client map
MAX_SEQ = 2**32 - 1  # input sequence numbers are uint32 and never wrap
MAX_BAD_FRAMES = 10  # refused frames a socket may send before it is closed

# One packer each, reused: building a Packer per message costs more than packing.
_pack_float32 = msgpack.Packer(use_single_float=True, autoreset=True).pack
_pack_exact = msgpack.Packer(autoreset=True).pack


def pack(message: list[Any]) -> bytes:
    """Serialize a low-rate server message (floats as 64-bit)."""
    return bytes(_pack_exact(message))


def pack_snapshot(
    tick: int,
    round_index: int,
    ball: tuple[float, float, float, float],
    paddles: tuple[float, float],
    score: tuple[int, int],
    acks: tuple[int, int],
    serve_wait: int,
) -> bytes:
    """Serialize one SNAPSHOT; protocol.md, "SNAPSHOT (68)".

    Fields: tick, round, ball x, y, vx, vy, left paddle y, right paddle y,
    left score, right score, left acked input, right acked input, ticks
    until the ball is served (0 while it is in play).
    """
    return bytes(
        _pack_float32(
            [SNAPSHOT, tick, round_index, *ball, *paddles, *score, *acks, serve_wait]
        )
    )


def error(code: str, message: str) -> bytes:
    return pack([ERROR, {"code": code, "message": message}])


# Decoding ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hello:
    token: str


@dataclass(frozen=True, slots=True)
class Ready:
    ready: bool


@dataclass(frozen=True, slots=True)
class Start:
    pass


@dataclass(frozen=True, slots=True)
class Input:
    seq: int
    move: float
    seat: int | None  # only in local games, where one socket drives every seat


@dataclass(frozen=True, slots=True)
class Leave:
    pass


@dataclass(frozen=True, slots=True)
class Ping:
    client_time: float


Message = Hello | Ready | Start | Input | Leave | Ping


_F64 = struct.Struct(">d").unpack_from
_F32 = struct.Struct(">f").unpack_from


def decode_plain_input(data: bytes) -> tuple[int, float] | None:
    """``(seq, move)`` of a remote INPUT ``[4, seq, move]``, or None.

    The hot path: a player sends one of these per tick, and reading it here
    costs a fraction of ``decode``. It accepts exactly the encodings a
    client's msgpack library produces for a valid INPUT (seq as a fixint or
    uint8/16/32; move as float64, float32 or the integers -1, 0 and 1) and
    answers None for anything else, valid or not, which the caller then
    hands to ``decode`` for the full checks and their error codes.
    """
    n = len(data)
    if n < 4 or data[0] != 0x93 or data[1] != INPUT:
        return None
    b = data[2]
    if b < 0x80:
        seq, i = b, 3
    elif b == 0xCC:
        seq, i = data[3], 4
    elif b == 0xCD and n > 5:
        seq, i = data[3] << 8 | data[4], 5
    elif b == 0xCE and n > 7:
        seq, i = data[3] << 24 | data[4] << 16 | data[5] << 8 | data[6], 7
    else:
        return None
    if i >= n:
        return None
    b = data[i]
    if b == 0xCB and n == i + 9:
        move: float = _F64(data, i + 1)[0]
    elif b == 0xCA and n == i + 5:
        move = _F32(data, i + 1)[0]
    elif n == i + 1 and b in (0x00, 0x01):
        move = float(b)
    elif n == i + 1 and b == 0xFF:
        move = -1.0
    else:
        return None
    # NaN fails both comparisons, so it too goes to decode and is refused.
    if not -1.0 <= move <= 1.0:
        return None
    return seq, move


def decode(data: bytes) -> Message:
    """Parse one client frame, or raise ``ClientError`` (bad_frame, unknown_type)."""
    try:
        obj = msgpack.unpackb(
            data,
            raw=False,
            strict_map_key=True,
            max_str_len=MAX_STR,
            max_bin_len=0,
            max_array_len=MAX_ARRAY,
            max_map_len=MAX_MAP,
            max_ext_len=0,
        )
    except Exception as exc:  # msgpack raises several unrelated types
        raise ClientError("bad_frame", "not msgpack within limits") from exc
    if not isinstance(obj, list) or not obj:
        raise ClientError("bad_frame", "a message is a non-empty array")
    kind = obj[0]
    if type(kind) is not int:
        raise ClientError("bad_frame", "the message type is an integer")
    parse = _PARSERS.get(kind)
    if parse is None:
        raise ClientError("unknown_type", f"type {kind}" if 0 <= kind < 256 else None)
    return parse(obj)


def _arity(obj: list[Any], low: int, high: int, name: str) -> None:
    if not low <= len(obj) <= high:
        raise ClientError("bad_frame", f"{name} has the wrong number of fields")


def _parse_hello(obj: list[Any]) -> Hello:
    _arity(obj, 2, 2, "hello")
    token = obj[1]
    if not isinstance(token, str) or not token:
        raise ClientError("bad_frame", "hello token is a string")
    return Hello(token)


def _parse_ready(obj: list[Any]) -> Ready:
    _arity(obj, 2, 2, "ready")
    if type(obj[1]) is not bool:
        raise ClientError("bad_frame", "ready is a boolean")
    return Ready(obj[1])


def _parse_start(obj: list[Any]) -> Start:
    _arity(obj, 1, 1, "start")
    return Start()


def _parse_input(obj: list[Any]) -> Input:
    _arity(obj, 3, 4, "input")
    seq, move = obj[1], obj[2]
    if type(seq) is not int or not 0 <= seq <= MAX_SEQ:
        raise ClientError("bad_frame", "input seq is a uint32")
    if type(move) is int:
        move = float(move)
    elif type(move) is not float or not math.isfinite(move):
        raise ClientError("bad_frame", "input move is a finite number")
    if not -1.0 <= move <= 1.0:
        raise ClientError("bad_frame", "input move is within [-1, 1]")
    seat = None
    if len(obj) == 4:
        seat = obj[3]
        if type(seat) is not int or not 0 <= seat < 64:
            raise ClientError("bad_frame", "input seat is a small integer")
    return Input(seq, move, seat)


def _parse_leave(obj: list[Any]) -> Leave:
    _arity(obj, 1, 1, "leave")
    return Leave()


def _parse_ping(obj: list[Any]) -> Ping:
    _arity(obj, 2, 2, "ping")
    t = obj[1]
    if type(t) not in (int, float) or not math.isfinite(t):
        raise ClientError("bad_frame", "ping time is a finite number")
    return Ping(float(t))


_PARSERS: dict[int, Callable[[list[Any]], Message]] = {
    HELLO: _parse_hello,
    READY: _parse_ready,
    START: _parse_start,
    INPUT: _parse_input,
    LEAVE: _parse_leave,
    PING: _parse_ping,
}
