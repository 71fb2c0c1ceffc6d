"""Snapshots are framed once per room; the frames must be what RFC 6455 says."""

from __future__ import annotations

import pytest
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import State

from server.net.ws import _frame_once


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 4000, 65535, 65536, 70000])
def test_a_client_parses_the_frame_back(size: int) -> None:
    payload = bytes(i % 251 for i in range(size))
    client = ClientProtocol("ws://localhost/ws/", state=State.OPEN)
    client.receive_data(_frame_once(payload))
    [frame] = client.events_received()
    assert isinstance(frame, Frame)
    assert frame.opcode is Opcode.BINARY and frame.fin
    assert frame.data == payload


def test_the_same_payload_object_is_framed_once() -> None:
    payload = b"\x93\x04\x07\xff" * 3
    first = _frame_once(payload)
    assert _frame_once(payload) is first
    # An equal but distinct object is framed anew, not confused with it.
    other = bytes(bytearray(payload))
    assert _frame_once(other) is not first and _frame_once(other) == first
