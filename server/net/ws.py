"""One WebSocket: the websockets Sans-I/O protocol on our asyncio transport.

Theory of operation. ``server.net.http`` hands over the raw bytes of the
upgrade request; ``start`` feeds them to ``websockets.server.ServerProtocol``,
which validates the handshake and answers it. After that every received
chunk goes in through ``receive_data``; complete frames come out of
``events_received``; bytes to send come out of ``data_to_send`` and are
written to the transport at once. Pings are answered and close frames echoed
by the protocol object itself.

The first message must be HELLO with the token from create/join/start, within
``Config.hello_timeout`` seconds. The token decides what the socket may do:
it is bound to one seat or one local game (``server.lobby.service``), never to
a name or an ID the client sends. HELLO is answered at once, except for a
token the lobby service does not hold: the store is asked whether it belongs
to an ended game, in a task; meanwhile the socket is still unauthenticated,
and a second HELLO is refused as ``bad_frame``.

A refused message gets an ERROR with a code from ``server.errors`` and is
otherwise ignored. Frames that break the protocol itself (not msgpack, an
unknown type, a wrong field, anything before HELLO) also count against the
socket: after ``MAX_BAD_FRAMES`` of them it is closed with 4003. Refusals of
well-formed messages (an INPUT from a spectator, say) do not count. Text
frames close with 1003 and fragmented messages with 4003: the protocol has
neither. Messages over ``Config.max_frame`` bytes close with 1009 (done by
the protocol object).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol

try:  # websockets' C unmasking, as its own parser uses, where it was built
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover
    from websockets.utils import apply_mask

from .. import protocol
from ..errors import ClientError
from ..lobby.service import Session, StoredToken

if TYPE_CHECKING:
    from .context import Context

logger = logging.getLogger(__name__)
# websockets logs every opened and closed connection at INFO; ours says more.
_protocol_logger = logging.getLogger(__name__ + ".frames")
_protocol_logger.setLevel(logging.WARNING)

_PROTOCOL_VIOLATIONS = frozenset({"bad_frame", "unknown_type", "not_authenticated"})
LIVENESS_CHECK = 5.0  # seconds between checks of a socket's silence
CLOSE_TIMEOUT = 3.0  # seconds we wait for the peer's close frame before dropping
_ids = itertools.count(1)


class WebSocketSession:
    """Implements ``server.lobby.endpoint.Endpoint`` over one connection."""

    def __init__(self, transport: asyncio.Transport, context: Context, peer: str):
        self.transport = transport
        self.context = context
        self.peer = peer
        self.socket_id = f"s{next(_ids)}"
        self.proto = ServerProtocol(
            max_size=context.config.max_frame, logger=_protocol_logger
        )
        self.session: Session | None = None
        self.bad_frames = 0
        self._timer: asyncio.TimerHandle | None = None
        self._liveness: asyncio.TimerHandle | None = None
        self._loop = asyncio.get_running_loop()
        self._heard_at = self._loop.time()  # when the peer last sent anything
        self._pinged = False
        self._behind_since: float | None = None  # over the send buffer bound
        # Message rate limit, a token bucket: a steady 2.5 messages per tick
        # (at least 150/s) with bursts of twice that. One input per tick, and
        # the occasional other message, stays well inside it.
        self._rate = max(150.0, 2.5 * context.config.tick_rate)
        self._allowance = 2 * self._rate
        self._refilled_at = self._heard_at
        self._lost = False
        self._opened = False
        self._hello_pending = False  # a HELLO's token is being looked up
        # proto.state is OPEN, read without a property call on the hot path.
        # The state changes only inside calls into proto; each such call
        # here is followed by _sync_open.
        self._open = False
        self._max_send_buffer = context.config.max_send_buffer
        self._metrics = context.metrics
        self._tasks: set[asyncio.Task[None]] = set()
        # Bytes the protocol object holds of a frame not yet complete; the
        # fast path in data_received is only taken while it is empty.
        self._reader_buffer = self.proto.reader.buffer
        # The descriptor the tick reads this socket by, -1 while the event
        # loop reads it (server.net.reader).
        self.read_fd = -1

    # Opening -----------------------------------------------------------------

    def start(self, raw: bytes) -> ClientError | None:
        """Run the handshake; the error to answer with if it is refused.

        A refused handshake is answered by the caller, as JSON like every
        other HTTP error, not with the library's text: that names internals.
        """
        self.proto.receive_data(raw)
        events = self.proto.events_received()
        request = events[0] if events else None
        if not isinstance(request, Request):
            return ClientError("bad_handshake")
        response = self.proto.accept(request)
        if response.status_code != 101:
            if response.status_code == 426:
                return ClientError("upgrade_required")
            if response.status_code == 403:
                return ClientError("forbidden", "origin not allowed")
            return ClientError("bad_handshake")
        self.proto.send_response(response)
        self._sync_open()
        self._flush()
        self._opened = True
        self.context.metrics.sockets += 1
        logger.debug("%s %s: socket open", self.socket_id, self.peer)
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(
            self.context.config.hello_timeout, self._hello_timeout
        )
        self._liveness = loop.call_later(self._check_every, self._check_liveness)
        # The client may have sent frames right behind its handshake.
        self._handle_events()
        self.context.sessions.add(self)
        return None

    @property
    def _check_every(self) -> float:
        config = self.context.config
        return min(LIVENESS_CHECK, config.ping_after / 2, config.ping_timeout / 2)

    def _check_liveness(self) -> None:
        """Ping a silent peer; close one that stays silent after the ping."""
        config = self.context.config
        silent = self._loop.time() - self._heard_at
        if silent >= config.ping_after + config.ping_timeout:
            logger.info("%s %s: no sign of life; closing", self.socket_id, self.peer)
            self.close(protocol.CLOSE_PING_TIMEOUT, "keepalive timeout")
            return
        if silent >= config.ping_after and not self._pinged:
            self._pinged = True
            self.proto.send_ping(b"")
            self._flush()
        self._liveness = self._loop.call_later(self._check_every, self._check_liveness)

    def _hello_timeout(self) -> None:
        self._timer = None
        if self.session is None:
            self.close(protocol.CLOSE_AUTH_TIMEOUT, "no hello in time")

    # Receiving ---------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        self._heard_at = self._loop.time()
        self._pinged = False
        if self._open and self.session is not None and not self._reader_buffer:
            data = self._take_small_frames(data)
            if not data:
                return
        self.proto.receive_data(data)
        self._sync_open()
        self._handle_events()

    def _take_small_frames(self, data: bytes) -> bytes:
        """Handle whole small binary frames here; return what is left.

        Nearly every frame a player sends is a final, masked, binary frame of
        under 126 bytes: an INPUT. Parsing those here costs a fraction of
        the general parser, which measurably limits how many players a core
        can serve. Anything else (control frames, text, longer or partial
        frames) and everything after it goes to the websockets protocol
        object, whose buffer must then be empty again before this path is
        taken (``_reader_buffer``), so frames are always handled in order.
        """
        end = len(data)
        i = 0
        while i + 6 <= end and data[i] == 0x82:
            length = data[i + 1] ^ 0x80  # the mask bit must be set
            if length >= 126:
                break
            start = i + 6
            stop = start + length
            if stop > end:
                break
            metrics = self._metrics
            metrics.frames_in += 1
            metrics.bytes_in += length
            self._on_message(apply_mask(data[start:stop], data[i + 2 : start]))
            i = stop
            if self._lost:
                return b""
            if not self._open:
                # We have sent our close: the rest goes to the protocol
                # object, which takes the peer's close frame from it; no
                # other frame is acted on (_handle_events).
                break
        return data[i:] if i else data

    def _handle_events(self) -> None:
        for event in self.proto.events_received():
            if not self._open:
                # We have sent our close (too many bad frames, a flood, a
                # refused HELLO): what the peer sent after that is not acted
                # on, not even a HELLO parsed from the same read.
                break
            if isinstance(event, Frame):
                self._on_frame(event)
        self._flush()

    def _on_frame(self, frame: Frame) -> None:
        opcode = frame.opcode
        if opcode is Opcode.PING or opcode is Opcode.PONG:
            # websockets has answered a ping already; a flood of them costs
            # us as much as a flood of messages, so it counts the same.
            self._within_rate()
        elif opcode is Opcode.BINARY and frame.fin:
            metrics = self.context.metrics
            metrics.frames_in += 1
            metrics.bytes_in += len(frame.data)
            self._on_message(bytes(frame.data))
        elif opcode is Opcode.TEXT:
            self.close(protocol.CLOSE_UNSUPPORTED, "binary frames only")
        elif opcode in (Opcode.BINARY, Opcode.CONT):
            self.close(protocol.CLOSE_PROTOCOL, "fragmented messages unsupported")

    def _within_rate(self) -> bool:
        """Take one frame from the allowance; False, and close, on a flood."""
        now = self._heard_at
        allowance = self._allowance + (now - self._refilled_at) * self._rate
        self._refilled_at = now
        if allowance < 1.0:
            if self.proto.state is State.OPEN:
                logger.warning(
                    "%s %s: message flood; closing", self.socket_id, self.peer
                )
                # websockets answered every ping of this read while parsing
                # it; what it holds unsent is only those pongs (our own
                # messages are flushed as they are sent). A flooder gets
                # none of them, only the close.
                self.proto.data_to_send()
                self.close(protocol.CLOSE_FLOOD, "too many messages")
                # Read no more: what a flooder sends after this is not worth
                # parsing; the close timer drops the connection.
                self.context.reader.remove(self, resume=False)
                self.transport.pause_reading()
            return False
        self._allowance = min(allowance, 2 * self._rate) - 1.0
        return True

    def _on_message(self, data: bytes) -> None:
        if not self._within_rate():
            return
        service = self.context.service
        session = self.session
        if session is not None:
            plain = protocol.decode_plain_input(data)
            if plain is not None and service.plain_input(session, plain[0], plain[1]):
                return
        try:
            message = protocol.decode(data)
            session = self.session
            if session is None:
                if not isinstance(message, protocol.Hello):
                    raise ClientError("not_authenticated")
                self._hello(message.token)
            elif isinstance(message, protocol.Input):
                service.input(session, message)
            elif isinstance(message, protocol.Ping):
                tick = service.scheduler.tick
                self.send(protocol.pack([protocol.PONG, message.client_time, tick]))
            elif isinstance(message, protocol.Ready):
                service.ready(session, message.ready)
            elif isinstance(message, protocol.Start):
                self._spawn(service.start_game(session))
            elif isinstance(message, protocol.Leave):
                self._spawn(service.leave(session))
            elif isinstance(message, protocol.Hello):
                raise ClientError("bad_frame", "already authenticated")
        except ClientError as exc:
            self._refuse(exc)
        except Exception:
            logger.exception("%s: message handling failed", self.socket_id)
            self.send(protocol.error("internal_error", "Internal server error."))
            self.close(protocol.CLOSE_INTERNAL, "internal error")

    def _hello(self, token: str) -> None:
        if self._hello_pending:
            raise ClientError("bad_frame", "hello already sent")
        service = self.context.service
        try:
            outcome = service.hello(self, token)
        except ClientError as exc:
            self._hello_refused(exc)
            return
        if isinstance(outcome, StoredToken):
            # Unknown here: maybe a game that ended before this process
            # started. Not a lever against the store: the look-up is a
            # primary-key read, and a socket gets one, since any answer
            # closes it (4006, 4002) and a HELLO meanwhile is refused. The
            # hello timer still runs and bounds the wait.
            self._hello_pending = True
            self._spawn(service.hello_stored(self, outcome), self._hello_refused)
            return
        self.session = outcome
        if self.session is not None:
            # The hello timer's work is done. Not so after a GAME_END: the
            # close has replaced it with the timer that drops a peer who
            # never answers the close frame.
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            # From now on the tick takes in what this socket sends.
            self.context.reader.add(self)

    def _hello_refused(self, exc: ClientError) -> None:
        self.send(protocol.error(exc.code, exc.message))
        if exc.code == "seat_forfeited":
            self.close(protocol.CLOSE_FORFEITED, "seat forfeited")
        else:
            self.close(protocol.CLOSE_INVALID_TOKEN, "invalid token")

    def _spawn(
        self,
        action: Coroutine[Any, Any, None],
        refused: Callable[[ClientError], None] | None = None,
    ) -> None:
        """Run a message's action that awaits the store, answering its errors.

        ``refused`` answers a ClientError; by default as any refused message.
        """
        refuse = refused or self._refuse

        async def run() -> None:
            try:
                await action
            except ClientError as exc:
                refuse(exc)
            except Exception:
                logger.exception("%s: message handling failed", self.socket_id)
                self.send(protocol.error("internal_error", "Internal server error."))
                if self.session is None:
                    # A HELLO that failed: nothing else can come of the socket.
                    self.close(protocol.CLOSE_INTERNAL, "internal error")

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _refuse(self, exc: ClientError) -> None:
        metrics = self.context.metrics
        metrics.errors[exc.code] = metrics.errors.get(exc.code, 0) + 1
        self.send(protocol.error(exc.code, exc.message))
        if exc.code not in _PROTOCOL_VIOLATIONS:
            return
        self.bad_frames += 1
        if self.bad_frames > protocol.MAX_BAD_FRAMES:
            logger.warning("%s %s: too many bad frames", self.socket_id, self.peer)
            self.close(protocol.CLOSE_PROTOCOL, "too many refused messages")

    # Sending (the Endpoint interface) ----------------------------------------

    def send(self, data: bytes) -> None:
        if not self._open:
            return
        self.proto.send_binary(data)
        metrics = self._metrics
        metrics.frames_out += 1
        metrics.bytes_out += len(data)
        self._flush()
        # Lobby and game events are never dropped, but they count toward the
        # bound: a socket that stays over it, or goes far over, is closed.
        self._behind(self.transport.get_write_buffer_size())

    def _behind(self, size: int) -> bool:
        """True while ``size``, the send buffer, is over its bound.

        Over the bound for ``slow_reader_timeout`` seconds, or over four
        times the bound at any moment, the socket is closed with 4009.
        """
        config = self.context.config
        if size <= self._max_send_buffer:
            self._behind_since = None
            return False
        now = self._loop.time()
        if self._behind_since is None:
            self._behind_since = now
        too_long = now - self._behind_since > config.slow_reader_timeout
        if too_long or size > 4 * config.max_send_buffer:
            logger.warning(
                "%s %s: reads too slowly; closing", self.socket_id, self.peer
            )
            self.close(protocol.CLOSE_TOO_SLOW, "reading too slowly")
        return True

    def send_snapshot(self, data: bytes) -> bool:
        """Write a snapshot, framed once for every socket that gets it.

        A room hands the same ``data`` object to each socket of its audience
        in turn, so the frame built for the first is reused for the rest.
        The bytes go straight to the transport: no extension is negotiated
        and we never fragment, so the protocol object has nothing to add.
        """
        if not self._open:
            return False
        metrics = self._metrics
        transport = self.transport
        size = transport.get_write_buffer_size()
        # Most calls: an empty buffer, and not behind before either.
        if (size or self._behind_since is not None) and self._behind(size):
            metrics.dropped_snapshots += 1
            return False
        transport.write(_frame_once(data))
        metrics.frames_out += 1
        metrics.bytes_out += len(data)
        return True

    def close(self, code: int, reason: str) -> None:
        if self.proto.state is State.OPEN:
            self.proto.send_close(code, reason)
            self._sync_open()
            self._flush()
            loop = asyncio.get_running_loop()
            if self._timer is not None:
                self._timer.cancel()
            self._timer = loop.call_later(CLOSE_TIMEOUT, self._drop)

    def _sync_open(self) -> None:
        self._open = self.proto.state is State.OPEN

    def _drop(self) -> None:
        # The peer did not answer our close frame in time. abort, not close:
        # close would wait to flush a buffer that a stalled peer never reads.
        self._timer = None
        self.transport.abort()

    def _flush(self) -> None:
        for chunk in self.proto.data_to_send():
            if self._lost:
                return
            if chunk:
                self.transport.write(chunk)
            else:
                # The protocol signals the end of our side; a server closes TCP.
                self.context.reader.remove(self, resume=False)
                self.transport.close()

    # Closing -----------------------------------------------------------------

    def connection_lost(self) -> None:
        if self._lost:
            return
        self._lost = True
        self._open = False
        self.context.reader.remove(self, resume=False)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._liveness is not None:
            self._liveness.cancel()
            self._liveness = None
        if self._opened:
            self.context.metrics.sockets -= 1
            self.context.sessions.discard(self)
        if self.session is not None:
            self.context.service.disconnect(self.session)
            self.session = None
        logger.debug("%s: socket closed", self.socket_id)


# Starts as a fresh object that no payload can be (b"" is a shared singleton).
_last_payload: object = object()
_last_frame = b""


def _frame_once(payload: bytes) -> bytes:
    """A final, unmasked binary frame holding ``payload`` (RFC 6455, 5.2).

    Remembers the last payload by identity: holding a reference keeps the
    object alive, so a later, different payload can never share its id.
    """
    global _last_payload, _last_frame
    if payload is _last_payload:
        return _last_frame
    n = len(payload)
    if n < 126:
        header = bytes((0x82, n))
    elif n < 65536:
        header = bytes((0x82, 126)) + n.to_bytes(2, "big")
    else:
        header = bytes((0x82, 127)) + n.to_bytes(8, "big")
    _last_payload = payload
    _last_frame = header + payload
    return _last_frame
