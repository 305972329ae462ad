"""What a runtime adapter turns into an HTTP response: a :class:`Reply`, and for a
streaming reply the :class:`Connection` it reads events from.

A connection is the live end of one SSE stream. The actor pushes frames into it without
ever waiting on the client; the adapter pulls them with :meth:`Connection.next`, which
passes the storage barrier first, so nothing reaches a client before it is committed.
"""

from __future__ import annotations

import asyncio
from typing import Awaitable, Callable

from ..protocol import sse


class Connection:
    """A live HTTP response carrying one stream's events to the client.

    ``push`` never blocks (the actor must not wait on a slow client); ``next`` hands the
    adapter everything queued since its last call, after the storage barrier. What is
    queued is bounded: a client that does not read while more than ``limit`` bytes pile up
    loses this connection (the events are in the log already, so it resumes with
    ``Last-Event-ID`` and misses nothing).
    """

    __slots__ = ("stream_id", "flush", "on_detach", "limit", "queued", "chunks", "waiter", "closed", "poll",
                 "overflowed")

    def __init__(self, stream_id: int, flush: Callable[[], Awaitable[None]],
                 on_detach: Callable[["Connection"], None], limit: int = 1 << 20):
        """``flush``: the owner's storage barrier; ``on_detach``: told once when the
        response ends, so the owner stops routing to it (handed in, so a connection
        never needs to know its owner's type); ``limit``: bytes it may queue."""
        self.stream_id = stream_id
        self.flush = flush
        self.on_detach: Callable[[Connection], None] | None = on_detach
        self.limit = limit
        self.queued = 0
        self.overflowed = False
        self.chunks: list[bytes] = []
        self.waiter: asyncio.Future | None = None
        self.closed = False
        #: Closed by the server before the stream ended: the client should poll.
        self.poll = False

    def push(self, frame: bytes) -> None:
        if self.closed:
            return
        self.queued += len(frame)
        if self.queued > self.limit:
            # The client is not reading: let go of this connection and what it holds.
            self.overflowed = True
            self.chunks.clear()
            self.queued = 0
            self.close()
            self.detach()
            return
        self.chunks.append(frame)
        self._wake()

    def close(self, poll: bool = False) -> None:
        self.closed = True
        self.poll = poll
        self._wake()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def next(self, keepalive: float | None = None) -> bytes | None:
        """Queued bytes; ``sse.KEEPALIVE`` after ``keepalive`` idle seconds; None when closed."""
        if not self.chunks and not self.closed:
            loop = asyncio.get_running_loop()
            self.waiter = loop.create_future()
            timer = loop.call_later(keepalive, self._wake) if keepalive else None
            try:
                await self.waiter
            finally:
                self.waiter = None
                if timer is not None:
                    timer.cancel()
        if self.chunks:
            data = b"".join(self.chunks)
            self.chunks.clear()
            self.queued = 0
            await self.flush()
            return data
        if self.closed:
            return None
        return sse.KEEPALIVE

    def detach(self) -> None:
        """The adapter's response ended (the client went away, or we closed it)."""
        self.closed = True
        callback, self.on_detach = self.on_detach, None
        if callback is not None:
            callback(self)


class Reply:
    """What the adapter should answer: 202, a JSON body, or an SSE stream.

    For SSE, ``body`` is sent at once; if ``connection`` is set the response stays open and
    streams what it yields.
    """

    __slots__ = ("status", "content_type", "body", "connection", "headers")

    def __init__(self, status: int, content_type: str | None, body: bytes = b"",
                 connection: Connection | None = None, headers: tuple[tuple[str, str], ...] = ()):
        self.status = status
        self.content_type = content_type
        self.body = body
        self.connection = connection
        self.headers = headers


ACCEPTED = Reply(202, None)
