"""The one listening port: HTTP/1.1 requests, and the upgrade to WebSocket.

Theory of operation. Every accepted connection gets an ``HttpConnection``.
It feeds received bytes to httptools' parser, which calls back as it finds
the request line, headers and body. Limits apply while parsing, before the
request is whole: the request line and headers together may not exceed
``Config.max_header`` bytes (431) and the body ``Config.max_body`` (413, also
refused early from Content-Length). Complete requests queue in arrival order
and one task per connection answers them in turn, so pipelined requests get
their responses in order.

A ``GET`` under ``/ws/`` that asks for a WebSocket upgrade stops the parser.
The raw bytes of that request, and anything the client sent after it, go to
``server.net.ws.WebSocketSession``, which runs the handshake with the
websockets Sans-I/O protocol; from then on this object only forwards bytes
and the loss of the connection to the session.

Who the client is. ``address`` is the TCP peer's, and the per-address
connection cap counts by it: the cap is checked when the connection is
accepted, before a byte of any header has been read. Every request, the
WebSocket upgrade included, then names its client by ``client_address``
(``server.net.forwarded``): the peer's address, or, from a trusted proxy,
the one its X-Forwarded-For gives. The limits counted per request (failed
logins, registrations, lobbies) and the log lines about a request use that.

Shutdown. Once the server has begun to stop (``Context.stopping``), a
request or upgrade that still arrives on a connection opened before is
answered 503 ``shutting_down`` and the connection is closed.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import httptools
import orjson

from ..errors import ClientError
from .auth import origin_allowed
from .forwarded import client_address, limit_key
from .ws import WebSocketSession

if TYPE_CHECKING:
    from .context import Context

logger = logging.getLogger(__name__)

MAX_HEADERS = 100  # header lines per request; more is answered 431
MAX_PIPELINE = 16  # requests queued on one connection; more closes it
KEEPALIVE_TIMEOUT = 30.0  # seconds an idle keep-alive connection stays open
AVATAR_PATH = b"/api/me/avatar"  # the one path whose body may be larger
FORWARDED_FOR = "x-forwarded-for"

REASONS = {
    200: "OK",
    201: "Created",
    304: "Not Modified",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    409: "Conflict",
    410: "Gone",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    426: "Upgrade Required",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


@dataclass(slots=True)
class Request:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    keep_alive: bool
    peer: str  # the connection, for logs: "ip:port", or "client via ip:port"
    address: str  # the client's limit key: server.net.forwarded.limit_key


@dataclass(slots=True)
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)
    head_only: bool = False  # a HEAD request: the headers of GET, no body
    cache_control: str = "no-store"  # API answers are never cached


def json_response(status: int, payload: object) -> Response:
    return Response(status, orjson.dumps(payload))


def error_response(error: ClientError) -> Response:
    response = json_response(error.status, {"error": error.to_dict()})
    if error.code == "method_not_allowed" and error.detail:
        response.headers.append(("Allow", error.detail.removeprefix("allowed: ")))
    if error.retry_after is not None:
        response.headers.append(("Retry-After", str(error.retry_after)))
    return response


class HttpConnection(asyncio.Protocol):
    def __init__(self, context: Context) -> None:
        self.context = context
        self.transport: asyncio.Transport | None = None
        self.peer = "?"
        self.parser = httptools.HttpRequestParser(self)
        self.ws: WebSocketSession | None = None
        self._queue: collections.deque[Request | ClientError] = collections.deque()
        self._worker: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._closing = False
        self._counted = False  # holds a place in context.per_address
        self._in_request = False  # a request begun and not yet whole
        self.address = "?"  # the TCP peer's; see the module's docstring
        self._limit_key = "?"  # what the connection cap counts it under
        self._reset()

    def _reset(self) -> None:
        self._raw = bytearray()  # the current request's bytes, for an upgrade
        self._line_seen = False  # its request line is whole and was checked
        self._url = bytearray()
        self._headers: dict[str, str] = {}
        self._header_count = 0
        self._header_bytes = 0
        self._body = bytearray()
        self._body_limit = self.context.config.max_body

    # asyncio.Protocol ---------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TLS transport is not an asyncio.Transport subclass but has
        # the same methods; the cast states what we rely on.
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        self.address = str(peer[0]) if peer else "?"
        self._limit_key = limit_key(self.address)
        self.context.metrics.connections += 1

        # Each address may hold a bounded number of connections; one more is
        # answered 429 and closed, before any of its bytes are read.
        per_address = self.context.per_address
        held = per_address.get(self._limit_key, 0)
        if held >= self.context.config.max_connections_per_address:
            logger.warning("%s: over the per-address connection cap", self.peer)
            self._closing = True
            self._write(error_response(ClientError("too_many_connections")), False)
            return
        per_address[self._limit_key] = held + 1
        self._counted = True
        self._arm_idle_timer()

    def data_received(self, data: bytes) -> None:
        if self.ws is not None:
            self.ws.data_received(data)
            return
        if self._closing:
            return
        self._raw += data
        if not self._line_seen and not self._request_line_has_version():
            self._fail(ClientError("bad_request", "HTTP/1.0 or HTTP/1.1 only"))
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            self._upgrade(data, upgrade.args[0])
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            if isinstance(cause, ClientError):
                self._fail(cause)
            else:
                logger.error("%s: request handling failed", self.peer, exc_info=cause)
                self._fail(ClientError("internal_error"))
        except httptools.HttpParserError:
            self._fail(ClientError("bad_request"))

    def _request_line_has_version(self) -> bool:
        """False for a whole request line without " HTTP/": HTTP/0.9.

        llhttp would wait for headers that an HTTP/0.9 client never sends,
        until the request timeout; such a line is refused as soon as it is
        whole. The other checks of the line are the parser's.
        """
        raw = self._raw.lstrip(b"\r\n")  # blank lines before a request
        end = raw.find(b"\n", 0, self.context.config.max_header)
        if end < 0:
            return True
        self._line_seen = True
        return b" HTTP/" in raw[:end]

    def connection_lost(self, exc: Exception | None) -> None:
        self.context.metrics.connections -= 1
        if self._counted:
            per_address = self.context.per_address
            left = per_address[self._limit_key] - 1
            if left:
                per_address[self._limit_key] = left
            else:
                del per_address[self._limit_key]
        if self._timer is not None:
            self._timer.cancel()
        if self.ws is not None:
            self.ws.connection_lost()
        if self._worker is not None:
            self._worker.cancel()
        self.transport = None

    # httptools callbacks ----------------------------------------------------

    def on_message_begin(self) -> None:
        # A client that trickles its headers or body is cut off at the
        # deadline, whatever its pace: each slow connection holds a buffer.
        self._in_request = True
        if self._timer is not None:
            self._timer.cancel()
        loop = asyncio.get_running_loop()
        deadline = self.context.config.request_timeout
        self._timer = loop.call_later(deadline, self._request_timeout)

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._count_header_bytes(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_header_bytes(len(name) + len(value) + 4)
        self._header_count += 1
        if self._header_count > MAX_HEADERS:
            raise ClientError("headers_too_large")
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        if key == FORWARDED_FOR and key in self._headers:
            # Repeated lines are one comma-separated list (RFC 9110, 5.3).
            text = f"{self._headers[key]}, {text}"
        self._headers[key] = text

    def _count_header_bytes(self, n: int) -> None:
        self._header_bytes += n
        if self._header_bytes > self.context.config.max_header:
            raise ClientError("headers_too_large")

    def on_headers_complete(self) -> None:
        encoding = self._headers.get("content-encoding", "identity").lower()
        if encoding != "identity":
            raise ClientError("unsupported_media_type", "no content encodings")
        config = self.context.config
        # Avatar uploads are images, bounded on their own.
        avatar = bytes(self._url).split(b"?", 1)[0].rstrip(b"/") == AVATAR_PATH
        self._body_limit = config.max_avatar_body if avatar else config.max_body
        length = self._headers.get("content-length")
        too_long = length is not None and length.isdigit()
        if too_long and int(length or 0) > self._body_limit:
            raise ClientError("body_too_large")
        if self._headers.get("expect", "").lower() == "100-continue":
            # curl waits a second for this before sending a larger body;
            # a body we would refuse is refused above, before it is sent.
            assert self.transport is not None
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self._body += body
        if len(self._body) > self._body_limit:
            raise ClientError("body_too_large")

    def on_message_complete(self) -> None:
        self._in_request = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.parser.should_upgrade():
            return  # feed_data raises HttpParserUpgrade next; see _upgrade
        if self.parser.get_http_version() not in ("1.0", "1.1"):
            # llhttp reads a request line without a version as HTTP/0.9.
            raise ClientError("bad_request", "HTTP/1.0 or HTTP/1.1 only")
        url = self._parse_url()
        address, peer = self._client()
        request = Request(
            method=self.parser.get_method().decode("ascii", "replace"),
            path=(url.path or b"/").decode("utf-8", "replace"),
            query=(url.query or b"").decode("utf-8", "replace"),
            headers=self._headers,
            body=bytes(self._body),
            keep_alive=self.parser.should_keep_alive(),
            peer=peer,
            address=limit_key(address),
        )
        self._reset()
        self._enqueue(request)

    def _client(self) -> tuple[str, str]:
        """The current request's client address, and its name for logs."""
        forwarded = self._headers.get(FORWARDED_FOR)
        proxies = self.context.config.trusted_proxies
        address = client_address(proxies, self.address, forwarded)
        if address == self.address:
            return address, self.peer
        return address, f"{address} via {self.peer}"

    def _parse_url(self) -> Any:  # httptools' URL: .path and .query, as bytes
        try:
            return httptools.parse_url(bytes(self._url))
        except httptools.HttpParserInvalidURLError as exc:
            # CONNECT's "host:port" and other forms we do not serve.
            raise ClientError("bad_request", "unsupported request target") from exc

    # Requests and responses --------------------------------------------------

    def _enqueue(self, item: Request | ClientError) -> None:
        if len(self._queue) >= MAX_PIPELINE:
            self._closing = True
            if self.transport is not None:
                self.transport.close()
            return
        self._queue.append(item)
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(self._answer())

    async def _answer(self) -> None:
        while self._queue and self.transport is not None:
            item = self._queue.popleft()
            if isinstance(item, ClientError):
                self._write(error_response(item), keep_alive=False)
                return
            if self.context.stopping:
                error = ClientError("shutting_down")
                self._write(error_response(error), keep_alive=False)
                return
            response = await self.context.router.handle(item)
            if item.method == "HEAD":
                response.head_only = True
            self._write(response, item.keep_alive)
            if not item.keep_alive:
                return
        self._arm_idle_timer()

    def _write(self, response: Response, keep_alive: bool) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        reason = REASONS.get(response.status, "")
        lines = [
            f"HTTP/1.1 {response.status} {reason}",
            f"Content-Type: {response.content_type}",
            f"Content-Length: {len(response.body)}",
            f"Cache-Control: {response.cache_control}",
            "X-Content-Type-Options: nosniff",
            "Connection: " + ("keep-alive" if keep_alive else "close"),
        ]
        lines += [f"{k}: {v}" for k, v in response.headers]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        transport.write(head if response.head_only else head + response.body)
        metrics = self.context.metrics
        metrics.http_responses[response.status] = (
            metrics.http_responses.get(response.status, 0) + 1
        )
        if not keep_alive:
            self._closing = True
            transport.close()

    def _fail(self, error: ClientError) -> None:
        """A request we cannot parse ends the connection after its answer."""
        self._closing = True
        self._enqueue(error)

    def _arm_idle_timer(self) -> None:
        if self._in_request:
            return  # the next request, begun already, keeps its deadline
        if self._timer is not None:
            self._timer.cancel()
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(KEEPALIVE_TIMEOUT, self._idle_timeout)

    def _request_timeout(self) -> None:
        self._timer = None
        if self.ws is None and not self._closing:
            self._fail(ClientError("request_timeout"))

    def _idle_timeout(self) -> None:
        if self.ws is None and self.transport is not None and not self._queue:
            self.transport.close()

    # The upgrade -------------------------------------------------------------

    def _upgrade(self, chunk: bytes, offset: int) -> None:
        """Hand the connection to a WebSocket session, raw request included."""
        assert self.transport is not None
        try:
            path = self._parse_url().path or b"/"
        except ClientError as exc:
            self._fail(exc)
            return
        if not (path == b"/ws" or path.startswith(b"/ws/")):
            self._fail(ClientError("not_found"))
            return
        if self.parser.get_method() != b"GET":
            self._fail(ClientError("method_not_allowed", "allowed: GET"))
            return
        if self.context.stopping:
            self._fail(ClientError("shutting_down"))
            return
        _, peer = self._client()
        if not origin_allowed(self.context.config, self._headers):
            logger.warning("%s: WebSocket from a refused origin", peer)
            self._fail(ClientError("origin_not_allowed"))
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        raw = bytes(self._raw).lstrip(b"\r\n")  # blank lines before it
        self._raw = bytearray()
        if not raw.startswith(b"GET "):
            # The upgrade came in the same read as an earlier request, whose
            # completion reset the buffer: the handshake bytes are gone.
            self._fail(ClientError("bad_request", "upgrade pipelined"))
            return
        session = WebSocketSession(self.transport, self.context, peer)
        refused = session.start(raw)
        if refused is not None:
            self._fail(refused)
            return
        self.ws = session
