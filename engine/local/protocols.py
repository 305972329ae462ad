"""The local server's connection limits, on uvicorn's own HTTP protocol.

uvicorn parses requests with httptools and bounds none of what a hostile client controls
below the application: a head of any size or header count is parsed in full, a head that
never completes is never timed out, connections are accepted until file descriptors run
out, and a client that stops reading keeps its response's ``send()`` waiting forever.
``uvicorn.Config(http=...)`` accepts a protocol class, so these limits are a small
subclass of uvicorn's httptools protocol, enforced where the bytes arrive (before any
parse work is spent on them):

- **connections**: at ``max_connections`` open ones, a new connection is admitted by
  shedding one that holds a place without using it: the oldest that has not completed a
  request head (a slowloris holds its sockets so), else the oldest idle kept-alive one. A
  connection with a request in flight or a live stream is never shed. Only when every
  connection is busy does the new one get 503, closed at once, before anything is parsed;
- **request heads**: past ``max_headers`` headers or ``max_head_bytes`` bytes of request
  line and headers, 431 and close; a head (or the next head on a kept-alive connection)
  not complete within ``head_timeout`` seconds of its first byte gets 408; a connection
  that sends nothing (after connecting, or for ``idle_timeout`` seconds after a response)
  is closed silently; a body not complete ``body_timeout`` seconds after its head gets 408;
- **slow readers**: a response whose client has not read for ``write_timeout`` seconds
  while the transport's buffer is full is aborted; the events it missed stay in the log
  for ``Last-Event-ID``.

Deadlines are not timers: a request sets or clears a number on its connection, and one
sweep a second (per server) closes the connections past theirs. Arming and cancelling
timers on every request would cost more than the rest of this module together.

Refusals are answered with a JSON-RPC error body (the rules in
:mod:`engine.protocol.http`), never uvicorn's text/plain. The subclass relies on uvicorn
internals (``on_header``, ``on_headers_complete``, ``on_message_complete``,
``on_response_complete``, ``timeout_keep_alive_task``, ``server_state``): pyproject pins
the uvicorn series it was checked against, and ``tests/test_limits.py`` drives every
limit over a socket.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from ..actors.settings import ServerLimits
from ..protocol import http

#: Seconds between sweeps of the connections' deadlines.
SWEEP_EVERY = 0.5


class _HeadTooLarge(Exception):
    """Raised from a parser callback: httptools stops parsing and reports an error."""


class _Coalescing:
    """The transport a response writes through: its first write (uvicorn writes the status
    line and headers on their own) waits for the next one in the same event-loop tick, so
    a whole response leaves in one system call instead of two; if no second write comes,
    the first goes out at the end of the tick. Everything else is the real transport's."""

    __slots__ = ("transport", "loop", "held", "fresh")

    def __init__(self, transport: Any, loop: asyncio.AbstractEventLoop):
        self.transport = transport
        self.loop = loop
        self.held: bytes | None = None
        self.fresh = False  # set for each response: its first write is held

    def write(self, data: bytes) -> None:
        if self.fresh:
            self.fresh = False
            self.held = data
            self.loop.call_soon(self._release)
        elif self.held is not None:
            held, self.held = self.held, None
            self.transport.write(held + data)
        else:
            self.transport.write(data)

    def _release(self) -> None:
        held, self.held = self.held, None
        if held is not None and not self.transport.is_closing():
            self.transport.write(held)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


def protocol_class(limits: ServerLimits) -> type:
    """uvicorn's httptools protocol with ``limits`` (for ``uvicorn.Config(http=...)``)."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    refuse_head = http.raw_response(http.head_too_large(limits.max_headers, limits.max_head_bytes))
    refuse_busy = http.raw_response(http.too_many_connections(limits.max_connections))
    refuse_slow_head = http.raw_response(http.head_timeout(limits.head_timeout))
    refuse_slow_body = http.raw_response(http.body_timeout(limits.body_timeout))
    refuse_bad = http.raw_response(http.malformed_http())
    max_headers, max_bytes = limits.max_headers, limits.max_head_bytes
    clock = time.monotonic
    reasons = {refuse_head: "head_too_large", refuse_slow_head: "head_timeout", refuse_slow_body: "body_timeout",
               refuse_bad: "malformed"}

    class LimitedHttpTools(HttpToolsProtocol):
        # What the connection waits for, and until when (0: nothing): see _sweep.
        _deadline = 0.0
        _waiting = ""  # "head", "body" or "reader"
        _refused = False
        _too_large = False
        _head_bytes = 0
        _pending_bytes = 0  # raw bytes received while a head is awaited
        _sweeper: asyncio.TimerHandle | None = None  # one per class (per server)
        _writer: _Coalescing
        # Connections that may be shed at the cap, oldest first (insertion-ordered dicts, one
        # per class, that is per server): awaiting a head not complete yet, and idle ones.
        _headless: dict = {}
        _idle: dict = {}
        #: Connections refused below the application, by the limit (busy: at the cap with
        #: none to shed), and those shed at the cap to admit a new one: counters for operators.
        refused: dict[str, int] = dict.fromkeys(("busy", *reasons.values()), 0)
        shed = [0]

        # -- connections ------------------------------------------------------------------

        def connection_made(self, transport: Any) -> None:  # type: ignore[override]
            if len(self.server_state.connections) >= limits.max_connections and not self._shed_one():
                self.refused["busy"] += 1
                self._refused = True
                transport.write(refuse_busy)
                transport.close()
                return
            super().connection_made(transport)
            self._headless[self] = None
            self._writer = _Coalescing(transport, self.loop)
            self._await_head()
            cls = type(self)
            if cls._sweeper is None:
                cls._sweeper = self.loop.call_later(SWEEP_EVERY, cls._sweep, self.server_state, self.loop)

        def connection_lost(self, exc: Exception | None) -> None:
            if self._refused:
                return
            self._deadline = 0.0
            self._headless.pop(self, None)
            self._idle.pop(self, None)
            super().connection_lost(exc)

        def _shed_one(self) -> bool:
            """Close the oldest connection that holds a place without using it; False if
            every connection is busy (a request in flight, a stream open)."""
            for waiting in (self._headless, self._idle):
                while waiting:
                    victim = next(iter(waiting))
                    del waiting[victim]
                    transport = victim.transport
                    if transport is None or transport.is_closing():
                        continue
                    victim._deadline = 0.0
                    if waiting is self._headless and victim._pending_bytes:
                        transport.write(refuse_busy)  # it was sending something: say why it ends
                    transport.close()
                    # Counted free now: its connection_lost comes only after the loop runs.
                    victim.server_state.connections.discard(victim)
                    self.shed[0] += 1
                    return True
            return False

        def data_received(self, data: bytes) -> None:
            if self._refused:
                return
            if self._waiting == "head":
                if not self._pending_bytes:  # a head begins: it has head_timeout to be whole
                    self._deadline = clock() + limits.head_timeout
                    if self._idle.pop(self, 0) is None:  # a kept-alive one no longer idle
                        self._headless[self] = None
                self._pending_bytes += len(data)
            super().data_received(data)
            # One huge header or URL arrives in pieces, and httptools calls back only once a
            # piece is whole: count what is waiting too.
            if self._waiting == "head" and self._pending_bytes > max_bytes and not self.transport.is_closing():
                self._refuse(refuse_head)

        # -- request heads (uvicorn's on_url/on_header, with the counting inlined) --------

        def on_url(self, url: bytes) -> None:
            self._head_bytes += len(url)
            if self._head_bytes > max_bytes:
                self._too_large = True
                raise _HeadTooLarge
            self.url += url

        def on_header(self, name: bytes, value: bytes) -> None:
            self._head_bytes += len(name) + len(value) + 4
            headers = self.headers
            if len(headers) >= max_headers or self._head_bytes > max_bytes:
                self._too_large = True
                raise _HeadTooLarge
            name = name.lower()
            if name == b"expect" and value.lower() == b"100-continue":
                self.expect_100_continue = True
            headers.append((name, value))

        def on_headers_complete(self) -> None:
            self._headless.pop(self, None)
            transport, self.transport = self.transport, self._writer  # the response writes through it
            self._writer.fresh = True
            try:
                super().on_headers_complete()
            finally:
                self.transport = transport
            self._head_bytes = 0  # for the next request on this connection
            if self.scope["method"] == "GET":
                self._deadline = 0.0
                self._waiting = ""
            else:  # until on_message_complete: a body that trickles in is cut off
                self._deadline = clock() + limits.body_timeout
                self._waiting = "body"

        def on_message_complete(self) -> None:
            self._deadline = 0.0
            self._waiting = ""
            super().on_message_complete()

        def on_response_complete(self) -> None:
            # uvicorn's, but without its keep-alive timer (armed and cancelled on every
            # request): the sweep closes a connection idle past idle_timeout instead.
            self.server_state.total_requests += 1
            if self.transport.is_closing():
                return
            self.flow.resume_reading()
            if self.pipeline:
                cycle, app = self.pipeline.pop()
                self._start_asgi_task(cycle, app)
            else:
                self._pending_bytes = 0
                self._deadline = clock() + limits.idle_timeout
                self._waiting = "head"
                self._idle[self] = None

        def send_400_response(self, msg: str) -> None:
            self._refuse(refuse_head if self._too_large else refuse_bad)

        def _await_head(self) -> None:
            self._pending_bytes = 0
            self._deadline = clock() + limits.head_timeout
            self._waiting = "head"

        def _refuse(self, response: bytes) -> None:
            self.refused[reasons[response]] += 1
            self._deadline = 0.0
            self.transport.write(response)
            self.transport.close()

        # -- slow readers ------------------------------------------------------------------

        def pause_writing(self) -> None:
            super().pause_writing()
            self._deadline = clock() + limits.write_timeout
            self._waiting = "reader"

        def resume_writing(self) -> None:
            if self._waiting == "reader":
                self._deadline = 0.0
                self._waiting = ""
            super().resume_writing()

        # -- the sweep ---------------------------------------------------------------------

        @classmethod
        def _sweep(cls, state: Any, loop: asyncio.AbstractEventLoop) -> None:
            now = clock()
            for conn in list(state.connections):
                if isinstance(conn, cls) and conn._deadline and now >= conn._deadline:
                    conn._expire()
            cls._sweeper = loop.call_later(SWEEP_EVERY, cls._sweep, state, loop)

        def _expire(self) -> None:
            waiting, self._deadline, self._waiting = self._waiting, 0.0, ""
            transport = self.transport
            if transport.is_closing():
                return
            if waiting == "reader":
                self.logger.info("a client has not read for %g s; closing its connection", limits.write_timeout)
                # abort(), not close(): close() waits for the unsent bytes, that is forever. The
                # connection_lost that follows wakes the app's send() and its receive().
                transport.abort()
            elif waiting == "body":
                self._refuse(refuse_slow_body)
            elif self._pending_bytes:
                self._refuse(refuse_slow_head)
            else:
                transport.close()  # nothing of a request came: close quietly

    return LimitedHttpTools
