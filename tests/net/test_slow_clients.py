"""Slow and greedy HTTP clients: deadlines and the per-address cap."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from urllib.parse import urlsplit

from tests.conftest import ServerProcess
from tests.helpers import assert_healthy, get, parse_response


@contextmanager
def raw_socket(base_url: str) -> Iterator[socket.socket]:
    url = urlsplit(base_url)
    assert url.hostname is not None and url.port is not None
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        yield sock


def read_all(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_trickled_headers_are_cut_off_with_408(
    server_factory: Callable[..., ServerProcess],
) -> None:
    server = server_factory(tls=False, extra=("--request-timeout", "1"))
    began = time.monotonic()
    with raw_socket(server.base_url) as sock:
        # One header byte every 0.3 s: each arrives well within any idle
        # timeout, but the request as a whole never completes.
        sock.sendall(b"GET /api/health/ HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        answer = b""
        for _ in range(20):
            try:
                sock.sendall(b"a")
            except OSError:
                break
            time.sleep(0.3)
            sock.settimeout(0.01)
            with suppress(TimeoutError, BlockingIOError):
                answer += sock.recv(65536)
            if answer:
                break
        sock.settimeout(5)
        answer += read_all(sock)
    status, _, body = parse_response(answer)
    assert status == 408 and body["error"]["code"] == "request_timeout"
    assert time.monotonic() - began < 4
    assert_healthy(server.base_url)


def test_a_trickled_body_is_cut_off_too(
    server_factory: Callable[..., ServerProcess],
) -> None:
    server = server_factory(tls=False, extra=("--request-timeout", "1"))
    with raw_socket(server.base_url) as sock:
        sock.sendall(
            b"POST /api/create_lobby/ HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
        )
        status, _, body = parse_response(read_all(sock))
    assert status == 408 and body["error"]["code"] == "request_timeout"
    # Nothing half-done: the request never reached the lobby service.
    assert get(server.base_url, "/api/health/")[1]["open_lobbies"] == 0


def test_a_partial_request_behind_a_whole_one_keeps_its_deadline(
    server_factory: Callable[..., ServerProcess],
) -> None:
    server = server_factory(tls=False, extra=("--request-timeout", "1"))
    began = time.monotonic()
    with raw_socket(server.base_url) as sock:
        # One write: a whole request, then the start of the next. Answering
        # the first must not trade the second's deadline for the 30 s idle one.
        sock.sendall(b"GET /api/health/ HTTP/1.1\r\nHost: x\r\n\r\nGET /api/he")
        answer = read_all(sock)
    first, _, rest = answer.partition(b"\r\n\r\n")
    assert first.startswith(b"HTTP/1.1 200")
    assert b"HTTP/1.1 408" in rest
    assert time.monotonic() - began < 4


def test_normal_requests_stay_fast_beside_many_slow_connections(
    server_factory: Callable[..., ServerProcess],
) -> None:
    server = server_factory(tls=False)
    with ExitStack() as stack:
        for _ in range(200):
            sock = stack.enter_context(raw_socket(server.base_url))
            sock.sendall(b"GET /api/health/ HTTP/1.1\r\nHost: x\r\n")  # unfinished
        began = time.monotonic()
        for _ in range(20):
            assert get(server.base_url, "/api/health/")[0] == 200
        assert time.monotonic() - began < 2.0


def test_connections_over_the_per_address_cap_get_429(
    server_factory: Callable[..., ServerProcess],
) -> None:
    server = server_factory(tls=False, extra=("--max-connections-per-address", "3"))
    with ExitStack() as stack:
        for _ in range(3):
            stack.enter_context(raw_socket(server.base_url))
        time.sleep(0.2)  # let the server accept all three
        with raw_socket(server.base_url) as extra:
            status, _, body = parse_response(read_all(extra))
        assert status == 429 and body["error"]["code"] == "too_many_connections"
    # Once those close, the address has room again.
    time.sleep(0.2)
    assert_healthy(server.base_url)
