"""The local server's connection limits, on uvicorn's own HTTP protocol.

uvicorn parses requests with httptools and bounds none of what a hostile client controls
below the application: a head of any size or header count is parsed in full, a head that
never completes is never timed out, connections are accepted until file descriptors run
out, and a client that stops reading keeps its response's ``send()`` waiting forever.
``uvicorn.Config(http=...)`` accepts a protocol class, so these limits are a small
subclass of uvicorn's httptools protocol, enforced where the bytes arrive (before any
parse work is spent on them):

- **connections**: past ``max_connections`` open ones, a new connection gets 503 and is
  closed at once, before anything is parsed;
- **request heads**: past ``max_headers`` headers or ``max_head_bytes`` bytes of request
  line and headers, 431 and close; a head (or the next head on a kept-alive connection)
  not complete within ``head_timeout`` seconds gets 408 (or is closed silently if nothing
  of it came) -- this also bounds how long an idle keep-alive connection lives; a body not
  complete ``body_timeout`` seconds after its head gets 408;
- **slow readers**: a response whose client has not read for ``write_timeout`` seconds
  while the transport's buffer is full is aborted; the events it missed stay in the log
  for ``Last-Event-ID``.

Refusals are answered with a JSON-RPC error body (the rules in
:mod:`engine.protocol.http`), never uvicorn's text/plain. The subclass relies on uvicorn
internals (``on_header``, ``on_headers_complete``, ``on_response_complete``,
``timeout_keep_alive_task``, ``server_state``): pyproject pins the uvicorn series it was
checked against, and ``tests/test_hostile.py`` drives every limit over a socket.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..actors.settings import ServerLimits
from ..protocol import http


class _HeadTooLarge(Exception):
    """Raised from a parser callback: httptools stops parsing and reports an error."""


def protocol_class(limits: ServerLimits) -> type:
    """uvicorn's httptools protocol with ``limits`` (for ``uvicorn.Config(http=...)``)."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    refuse_head = http.raw_response(http.head_too_large(limits.max_headers, limits.max_head_bytes))
    refuse_busy = http.raw_response(http.too_many_connections(limits.max_connections))
    refuse_slow = http.raw_response(http.head_timeout(limits.head_timeout))
    refuse_slow_body = http.raw_response(http.body_timeout(limits.body_timeout))
    refuse_bad = http.raw_response(http.malformed_http())

    class LimitedHttpTools(HttpToolsProtocol):
        _refused = False
        _too_large = False
        _head_timer: asyncio.TimerHandle | None = None
        _body_timer: asyncio.TimerHandle | None = None
        _write_timer: asyncio.TimerHandle | None = None
        _head_bytes = 0  # request line and header bytes of the head being parsed
        _headers_seen = 0
        _pending_bytes = 0  # raw bytes received while a head is awaited

        # -- connections ------------------------------------------------------------------

        def connection_made(self, transport: Any) -> None:  # type: ignore[override]
            if len(self.server_state.connections) >= limits.max_connections:
                self._refused = True
                transport.write(refuse_busy)
                transport.close()
                return
            super().connection_made(transport)
            self._arm_head_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._refused:
                return
            self._cancel_head_timer()
            self._cancel_body_timer()
            if self._write_timer is not None:
                self._write_timer.cancel()
                self._write_timer = None
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self._refused:
                return
            if self._head_timer is not None:
                self._pending_bytes += len(data)
            super().data_received(data)
            # One huge header or URL arrives in pieces, and httptools calls back only once a
            # piece is whole: count what is waiting too.
            if self._head_timer is not None and self._pending_bytes > limits.max_head_bytes \
                    and not self.transport.is_closing():
                self._refuse(refuse_head)

        # -- request heads ----------------------------------------------------------------

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._head_bytes = 0
            self._headers_seen = 0

        def on_url(self, url: bytes) -> None:
            self._head_bytes += len(url)
            if self._head_bytes > limits.max_head_bytes:
                self._too_large = True
                raise _HeadTooLarge
            super().on_url(url)

        def on_header(self, name: bytes, value: bytes) -> None:
            self._headers_seen += 1
            self._head_bytes += len(name) + len(value) + 4
            if self._headers_seen > limits.max_headers or self._head_bytes > limits.max_head_bytes:
                self._too_large = True
                raise _HeadTooLarge
            super().on_header(name, value)

        def on_headers_complete(self) -> None:
            self._cancel_head_timer()
            super().on_headers_complete()
            if self.parser.get_method() != b"GET" and not self.transport.is_closing():
                # Until on_message_complete: a body that trickles in is cut off.
                self._body_timer = self.loop.call_later(limits.body_timeout, self._body_timed_out)

        def on_message_complete(self) -> None:
            self._cancel_body_timer()
            super().on_message_complete()

        def _cancel_body_timer(self) -> None:
            if self._body_timer is not None:
                self._body_timer.cancel()
                self._body_timer = None

        def send_400_response(self, msg: str) -> None:
            self._refuse(refuse_head if self._too_large else refuse_bad)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            # uvicorn arms its keep-alive timer exactly when it waits for another request.
            if self.timeout_keep_alive_task is not None and not self.transport.is_closing():
                self._arm_head_timer()

        def _arm_head_timer(self) -> None:
            self._cancel_head_timer()
            self._pending_bytes = 0
            self._head_timer = self.loop.call_later(limits.head_timeout, self._head_timed_out)

        def _cancel_head_timer(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_timed_out(self) -> None:
            self._head_timer = None
            if self.transport.is_closing():
                return
            if self._pending_bytes:
                self.transport.write(refuse_slow)
            self.transport.close()

        def _body_timed_out(self) -> None:
            self._body_timer = None
            if not self.transport.is_closing():
                self.transport.write(refuse_slow_body)
                self.transport.close()

        def _refuse(self, response: bytes) -> None:
            self._cancel_head_timer()
            self.transport.write(response)
            self.transport.close()

        # -- slow readers ------------------------------------------------------------------

        def pause_writing(self) -> None:
            super().pause_writing()
            if self._write_timer is None:
                self._write_timer = self.loop.call_later(limits.write_timeout, self._write_stalled)

        def resume_writing(self) -> None:
            if self._write_timer is not None:
                self._write_timer.cancel()
                self._write_timer = None
            super().resume_writing()

        def _write_stalled(self) -> None:
            self._write_timer = None
            self.logger.info("a client has not read for %g s; closing its connection", limits.write_timeout)
            # abort(), not close(): close() waits for the unsent bytes, that is forever. The
            # connection_lost that follows wakes the app's send() and its receive().
            self.transport.abort()

    return LimitedHttpTools
