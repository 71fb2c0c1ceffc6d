"""The codec: bytes in, messages or coded refusals out."""

from __future__ import annotations

import math

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server import protocol
from server.errors import ClientError


def refused(data: bytes) -> str:
    with pytest.raises(ClientError) as info:
        protocol.decode(data)
    return info.value.code


def test_each_client_message_parses() -> None:
    p = msgpack.packb
    assert protocol.decode(p([1, "tok"])) == protocol.Hello("tok")
    assert protocol.decode(p([2, False])) == protocol.Ready(False)
    assert protocol.decode(p([3])) == protocol.Start()
    assert protocol.decode(p([4, 7, -1.0])) == protocol.Input(7, -1.0, None)
    assert protocol.decode(p([4, 8, 1])) == protocol.Input(8, 1.0, None)
    assert protocol.decode(p([4, 9, 0.5, 1])) == protocol.Input(9, 0.5, 1)
    assert protocol.decode(p([5])) == protocol.Leave()
    assert protocol.decode(p([6, 12.5])) == protocol.Ping(12.5)


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ([], "bad_frame"),
        ({"type": 4}, "bad_frame"),
        (["4", 1, 0.0], "bad_frame"),
        ([99], "unknown_type"),
        ([-1], "unknown_type"),
        ([4, 1], "bad_frame"),
        ([4, -1, 0.0], "bad_frame"),
        ([4, 2**32, 0.0], "bad_frame"),
        ([4, 1, 1.5], "bad_frame"),
        ([4, 1, float("nan")], "bad_frame"),
        ([4, 1, float("inf")], "bad_frame"),
        ([4, 1, "up"], "bad_frame"),
        ([4, 1, True], "bad_frame"),
        ([4, 1, 0.0, 99], "bad_frame"),
        ([2, 1], "bad_frame"),
        ([1, ""], "bad_frame"),
        ([1, 5], "bad_frame"),
        ([3, "extra"], "bad_frame"),
        ([6, math.inf], "bad_frame"),
    ],
)
def test_malformed_messages_are_refused_with_a_code(message: object, code: str) -> None:
    assert refused(msgpack.packb(message)) == code


def test_non_msgpack_is_refused() -> None:
    assert refused(b"\xc1") == "bad_frame"  # 0xc1 is never used by msgpack
    assert refused(b"") == "bad_frame"
    assert refused(msgpack.packb([4, 1, 0.0]) + b"\x00") == "bad_frame"


def test_declared_huge_containers_are_refused_without_allocating() -> None:
    # Five bytes each, declaring four billion elements or bytes.
    assert refused(b"\xdd\xff\xff\xff\xff") == "bad_frame"  # array 32
    assert refused(b"\xdf\xff\xff\xff\xff") == "bad_frame"  # map 32
    assert refused(b"\xdb\xff\xff\xff\xff") == "bad_frame"  # str 32
    assert refused(b"\xc6\xff\xff\xff\xff") == "bad_frame"  # bin 32
    assert refused(msgpack.packb([1, "x" * 300])) == "bad_frame"
    assert refused(msgpack.packb(list(range(9)))) == "bad_frame"


def test_snapshot_layout() -> None:
    data = protocol.pack_snapshot(
        120, 1, (400.0, 300.5, -6.0, 2.25), (250.0, 310.0), (3, 4), (77, 78), 0
    )
    assert msgpack.unpackb(data) == [
        protocol.SNAPSHOT, 120, 1, 400.0, 300.5, -6.0, 2.25, 250.0, 310.0,
        3, 4, 77, 78, 0,
    ]  # fmt: skip
    # Floats go out as 32-bit: five bytes each, not nine.
    assert data.count(b"\xca") == 6


@settings(max_examples=300)
@given(st.binary(max_size=64))
def test_arbitrary_bytes_parse_or_are_refused_cleanly(data: bytes) -> None:
    try:
        protocol.decode(data)
    except ClientError as exc:
        assert exc.code in ("bad_frame", "unknown_type")


@settings(max_examples=300)
@given(
    st.integers(0, 2**32 - 1),
    st.one_of(
        st.floats(-1.0, 1.0),
        st.sampled_from([-1, 0, 1]),
        st.floats(-1.0, 1.0, width=32),
    ),
    st.booleans(),
)
def test_the_plain_input_path_reads_what_decode_reads(
    seq: int, move: float, single: bool
) -> None:
    data = msgpack.packb([protocol.INPUT, seq, move], use_single_float=single)
    full = protocol.decode(data)
    assert isinstance(full, protocol.Input) and full.seat is None
    assert protocol.decode_plain_input(data) == (full.seq, full.move)
    if not single:
        assert full.move == float(move)


@settings(max_examples=500)
@given(st.binary(max_size=24))
def test_the_plain_input_path_accepts_nothing_decode_refuses(data: bytes) -> None:
    plain = protocol.decode_plain_input(data)
    if plain is not None:
        assert protocol.decode(data) == protocol.Input(*plain, None)


@pytest.mark.parametrize(
    "message",
    [
        [4, 1, float("nan")],
        [4, 1, 1.5],
        [4, 1, 0.5, 1],  # a seat: the general path decides
        [4, -1, 0.5],
        [4, 1, 2],
        [4, 1, True],
    ],
)
def test_the_plain_input_path_leaves_the_rest_to_decode(message: object) -> None:
    assert protocol.decode_plain_input(msgpack.packb(message)) is None
