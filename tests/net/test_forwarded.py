"""Which address a request counts as: X-Forwarded-For from trusted proxies only.

The rule is tested with plain values; tests/net/test_per_address.py then
sends the header to a real server.
"""

from __future__ import annotations

import pytest

from server.__main__ import parse_args
from server.net.forwarded import client_address, limit_key, parse_networks

PROXIES = parse_networks(["127.0.0.1", "10.0.0.0/8,fd00::/8"])


@pytest.mark.parametrize(
    ("peer", "header", "expected"),
    [
        # Not from a trusted proxy: the header is anyone's to write.
        ("203.0.113.5", "198.51.100.7", "203.0.113.5"),
        # From a trusted proxy without the header: the proxy itself.
        ("127.0.0.1", None, "127.0.0.1"),
        ("127.0.0.1", "198.51.100.7", "198.51.100.7"),
        ("127.0.0.1", " 198.51.100.7 ", "198.51.100.7"),
        # What a client wrote in front of the proxy's entry is never read.
        ("127.0.0.1", "1.2.3.4, 198.51.100.7", "198.51.100.7"),
        # A chain of trusted proxies is walked through to the first other hop.
        ("127.0.0.1", "1.2.3.4, 198.51.100.7, 10.1.2.3", "198.51.100.7"),
        # A malformed entry stops the walk at the trusted hop that wrote it.
        ("127.0.0.1", "1.2.3.4, unknown", "127.0.0.1"),
        ("127.0.0.1", "1.2.3.4, 198.51.100.7:5000", "127.0.0.1"),
        ("127.0.0.1", "198.51.100.7, bogus, 10.1.2.3", "10.1.2.3"),
        ("127.0.0.1", "", "127.0.0.1"),
        # Every entry trusted: the leftmost.
        ("127.0.0.1", "10.0.0.9, 10.0.0.8", "10.0.0.9"),
        # One key per client: canonical text, IPv4-mapped as IPv4.
        ("127.0.0.1", "2001:DB8:0:0::1", "2001:db8::1"),
        ("127.0.0.1", "::ffff:198.51.100.7", "198.51.100.7"),
        ("::ffff:127.0.0.1", "198.51.100.7", "198.51.100.7"),
        ("fd00::1", "2001:db8::2", "2001:db8::2"),
        ("?", "198.51.100.7", "?"),
    ],
)
def test_client_address(peer: str, header: str | None, expected: str) -> None:
    assert client_address(PROXIES, peer, header) == expected


def test_no_trusted_proxy_ignores_the_header() -> None:
    assert client_address((), "127.0.0.1", "198.51.100.7") == "127.0.0.1"


def test_the_option_takes_repeats_and_commas() -> None:
    config = parse_args(
        ["--trusted-proxy", "127.0.0.1, ::1", "--trusted-proxy", "10.0.0.0/8"]
    )
    assert [str(n) for n in config.trusted_proxies] == [
        "127.0.0.1/32",
        "::1/128",
        "10.0.0.0/8",
    ]
    assert parse_args([]).trusted_proxies == ()


def test_the_option_refuses_a_bad_address(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(["--trusted-proxy", "proxy.example.com"])
    assert "--trusted-proxy" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("198.51.100.7", "198.51.100.7"),
        # One subscriber's /64 is one key, whichever address it picks.
        ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"),
        ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
        ("::ffff:198.51.100.7", "198.51.100.7"),
        ("?", "?"),
    ],
)
def test_limits_count_ipv6_by_its_64(address: str, key: str) -> None:
    assert limit_key(address) == key
