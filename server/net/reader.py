"""Reading authenticated sockets once per tick instead of once per message.

Theory of operation. A WebSocket is read by the event loop, one callback per
chunk, until its HELLO is accepted. From then on its messages only matter at
tick boundaries: an INPUT is applied at the next tick, whenever in the period
it arrives. So the socket is handed to the ``TickReader``: uvloop stops
reading it (``pause_reading``) and the tick scheduler, at every wake-up and
before the due ticks run, asks the reader to take in whatever every such
socket has sent. One ``epoll_wait`` says which have bytes; each of those gets
one ``read`` of at most ``READ_LIMIT`` bytes, which go through the session's
ordinary ``data_received``. Frames are handled exactly as before, in order;
only the moment they are handled moves, to just before the tick that applies
them.

Why. With one callback per INPUT, a player's message could land at any
moment of the period, and a burst of them right before a deadline made that
tick's wake-up late: at 450 rooms, hundreds of callbacks ran between the
timer coming due and the loop getting to it. Read here, the inputs are taken
in as part of the tick, and between ticks the loop is idle. It also spares
each message the event loop's own dispatch and the extra wake-ups of the
process.

What it costs. A message from a seated socket waits for the next wake-up,
at most one tick period (16.7 ms at 60 Hz): a lobby READY, or a PING, whose
PONG therefore measures the time until the server acts on a message rather
than the network alone (protocol.md, "Timing").

Bounds. One read per socket per wake-up, of at most ``READ_LIMIT`` bytes:
what a socket sends beyond that stays in the kernel's buffer for the next
wake-up, and TCP's flow control holds the sender back. The flood allowance
in ``server.net.ws`` closes a socket long before that matters.

Hand-back. A socket leaves the reader when it is closed by either side, when
its close handshake ends, or at shutdown. On end of stream or a read error,
the reader does not deal with it itself: it gives the socket back to uvloop
(``resume_reading``), whose own read then sees the same end or error and
closes the connection as for any other socket. TLS sockets are never taken:
their bytes must go through the TLS layer, so they stay on the event loop's
callbacks.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .ws import WebSocketSession

logger = logging.getLogger(__name__)

READ_LIMIT = 65536  # bytes taken from one socket per wake-up


class TickReader:
    def __init__(self) -> None:
        self._epoll = select.epoll()
        self._by_fd: dict[int, WebSocketSession] = {}

    def __len__(self) -> int:
        return len(self._by_fd)

    def add(self, session: WebSocketSession) -> bool:
        """Read ``session`` on the tick from now on; False if it cannot be.

        Only plain TCP sockets with a file descriptor can be: the caller
        leaves any other on the event loop's callbacks, as it does every
        socket once the reader is closed.
        """
        transport = session.transport
        if self._epoll.closed or transport.is_closing():
            return False
        if transport.get_extra_info("ssl_object"):
            return False
        sock = transport.get_extra_info("socket")
        if sock is None:
            return False
        fd = sock.fileno()
        if fd < 0 or fd in self._by_fd:
            return False
        self._epoll.register(fd, select.EPOLLIN)
        self._by_fd[fd] = session
        session.read_fd = fd
        transport.pause_reading()
        return True

    def remove(self, session: WebSocketSession, resume: bool) -> None:
        """Stop reading ``session``; ``resume`` gives it back to the event loop."""
        fd = session.read_fd
        if fd < 0:
            return
        session.read_fd = -1
        if self._by_fd.get(fd) is session:
            del self._by_fd[fd]
            # The descriptor may be closed already, which removed it from the
            # epoll set by itself.
            with contextlib.suppress(OSError):
                self._epoll.unregister(fd)
        transport = session.transport
        if resume and not transport.is_closing():
            transport.resume_reading()

    def read(self) -> None:
        """Take in what every socket has sent since the last call."""
        by_fd = self._by_fd
        if not by_fd:
            return
        for fd, _ in self._epoll.poll(0, len(by_fd)):
            session = by_fd.get(fd)
            if session is None:
                continue
            try:
                data = os.read(fd, READ_LIMIT)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                # End of stream or an error: uvloop's read sees it too.
                self.remove(session, resume=True)
                continue
            try:
                session.data_received(data)
            except Exception:
                # Our bug, in one socket's handling: that socket goes, as
                # the event loop would drop it; the tick goes on for the rest.
                logger.exception("%s: reading failed", session.socket_id)
                self.remove(session, resume=False)
                session.transport.abort()

    def close(self) -> None:
        """Give every socket back to the event loop; the reader is done."""
        for session in list(self._by_fd.values()):
            self.remove(session, resume=True)
        self._epoll.close()
