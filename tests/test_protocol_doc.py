"""protocol.md stays in step with the code it documents.

Every error code, message type, close code and rule default must appear in
its table with the value the code uses, and the hex of the worked examples
must be what the codec produces today.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest

from server import protocol
from server.config import Config
from server.errors import CODES
from server.net.api import Router
from server.sim.rules import Rules

DOC = Path(__file__).resolve().parent.parent / "protocol.md"

# The snapshot of the worked example, as the document shows the call.
SNAPSHOT_ARGS = (
    1234,
    0,
    (412.5, 300.25, 6.0, -1.5),
    (250.0, 318.0),
    (2, 1),
    (1187, 1190),
    0,
)
SNAPSHOT_CALL = (
    "protocol.pack_snapshot(1234, 0, (412.5, 300.25, 6.0, -1.5), (250.0, 318.0),"
    " (2, 1), (1187, 1190), 0)"
)

# A marked block is an HTML comment naming it, then a fenced block of hex.
_BLOCK = re.compile(r"<!-- bytes: ([a-z0-9-]+) -->\s*```[^\n]*\n(.*?)```", re.S)


@pytest.fixture(scope="module")
def doc() -> str:
    return DOC.read_text(encoding="utf-8")


def _ints(keep: str, drop: tuple[str, ...] = ()) -> dict[str, int]:
    found = {
        name: value
        for name, value in vars(protocol).items()
        if name.isupper()
        and type(value) is int
        and re.fullmatch(keep, name)
        and not name.startswith(drop)
    }
    assert found, f"no constants match {keep!r}"
    return found


MESSAGE_TYPES = _ints(r"[A-Z_]+", drop=("CLOSE_", "MAX_"))
CLOSE_CODES = _ints(r"CLOSE_[A-Z_]+")


def _row(*cells: str) -> re.Pattern[str]:
    """A table row whose first cells are exactly ``cells``."""
    inner = r"\s*\|\s*".join(re.escape(c) for c in cells)
    return re.compile(rf"^\|\s*{inner}\s*\|", re.M)


def test_message_types_are_the_expected_ones() -> None:
    assert MESSAGE_TYPES["HELLO"] == 1
    assert MESSAGE_TYPES["PONG"] == 73
    assert not set(MESSAGE_TYPES) & set(CLOSE_CODES)


@pytest.mark.parametrize(("name", "value"), sorted(MESSAGE_TYPES.items()))
def test_message_type_is_documented(doc: str, name: str, value: int) -> None:
    assert _row(str(value), f"`{name}`").search(doc), f"no table row for {name}"
    assert f"### {name} ({value})" in doc, f"no section for {name}"


@pytest.mark.parametrize(("name", "value"), sorted(CLOSE_CODES.items()))
def test_close_code_is_documented(doc: str, name: str, value: int) -> None:
    assert _row(str(value), f"`{name}`").search(doc), f"no row for {name}"


@pytest.mark.parametrize("code", sorted(CODES))
def test_error_code_is_documented(doc: str, code: str) -> None:
    status = CODES[code].status
    assert _row(f"`{code}`", str(status)).search(doc), f"no row for {code}"


@pytest.mark.parametrize("name", sorted(Rules.__dataclass_fields__))
def test_rule_default_is_documented(doc: str, name: str) -> None:
    default = getattr(Rules(), name)
    assert _row(f"`{name}`", repr(default)).search(doc), f"no row for {name}"


@pytest.mark.parametrize(
    "cell",
    [
        f"| {protocol.MAX_STR} bytes |",
        f"| {protocol.MAX_ARRAY} elements |",
        f"| {protocol.MAX_MAP} entries",
        f"| {protocol.MAX_BAD_FRAMES} |",
        f"| {Config().max_frame} bytes |",
        f"| {Config().hello_timeout:g} seconds |",
        f"| {Config().max_lobbies} (`--max-lobbies`) |",
        f"| {Config().max_lobbies_per_address} (`--max-lobbies-per-address`) |",
    ],
)
def test_limit_is_documented(doc: str, cell: str) -> None:
    assert cell in doc


def _expected_bytes() -> dict[str, bytes]:
    return {
        "input-float64": protocol.pack([protocol.INPUT, 7, -1.0]),
        "input-int": protocol.pack([protocol.INPUT, 7, -1]),
        # The server packs no float32 client message; build it by hand.
        "input-float32": bytes([0x93, protocol.INPUT, 7, 0xCA])
        + struct.pack(">f", -1.0),
        "snapshot": protocol.pack_snapshot(*SNAPSHOT_ARGS),
    }


def _blocks(doc: str) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for name, text in _BLOCK.findall(doc):
        assert name not in found, f"two blocks named {name}"
        found[name] = bytes.fromhex("".join(text.split()))
    return found


def test_every_worked_example_is_checked(doc: str) -> None:
    assert set(_blocks(doc)) == set(_expected_bytes())


@pytest.mark.parametrize("name", sorted(_expected_bytes()))
def test_worked_example_bytes(doc: str, name: str) -> None:
    assert _blocks(doc)[name].hex(" ") == _expected_bytes()[name].hex(" ")


@pytest.mark.parametrize("name", ["input-float64", "input-float32", "input-int"])
def test_worked_inputs_decode_alike(doc: str, name: str) -> None:
    assert protocol.decode(_blocks(doc)[name]) == protocol.Input(7, -1.0, None)


def test_snapshot_call_is_the_one_shown(doc: str) -> None:
    assert SNAPSHOT_CALL in doc


def test_snapshot_table_has_every_field(doc: str) -> None:
    data = protocol.pack_snapshot(*SNAPSHOT_ARGS)
    assert data[0] & 0xF0 == 0x90, "a snapshot is a fixarray"
    fields = data[0] & 0x0F
    section = doc.split("### SNAPSHOT (68)", 1)[1].split("\n### ", 1)[0]
    rows = re.findall(r"^\| (\d+) \| \w+ \| (?:int|float32) \|", section, re.M)
    assert [int(r) for r in rows] == list(range(1, fields))


def _routes() -> list[tuple[str, str]]:
    router = Router(None)  # type: ignore[arg-type]  # routes need no context
    found = [(m, p + "/") for p, ms in router.exact.items() for m in ms]
    found += [(m, p + "/<") for p, ms in router.with_id.items() for m in ms]
    found += [
        (m, f"{p}/<.*>/{last}/")
        for (p, last), ms in router.with_id_then.items()
        for m in ms
    ]
    return sorted(found)


@pytest.mark.parametrize(("method", "path"), _routes())
def test_endpoint_is_documented(doc: str, method: str, path: str) -> None:
    path = path.replace("/metrics/", "/metrics")
    path = "/" if path == "//" else path  # the root, "/" with no prefix
    pattern = re.escape(path).replace(re.escape("<.*>"), "<[a-z_]+>")
    row = rf"^\| [A-Z, ]*\b{method}\b[A-Z, ]* \| `{pattern}"
    assert re.search(row, doc, re.M), f"no endpoint row for {method} {path}"
