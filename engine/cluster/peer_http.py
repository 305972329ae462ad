"""HTTP/1.1 between the processes of a cluster: a pooled client, and how calls are signed.

Only our own processes are ever spoken to, with one shape of request (a POST with a few
headers and a body) and one shape of reply (a status, headers, and a body that is whole or
chunked and streamed). So the client is small: httptools (the parser uvicorn uses, already
a dependency) reads replies, connections are kept alive and pooled per peer, and a streamed
reply pauses the socket while its reader lags, so a slow client costs at most
``max_buffer`` bytes here. A general client (aiohttp, httpx) would add a dependency and
several times the CPU per call to every forwarded request (see the cluster docs).

**Signing.** Every call carries the time and an HMAC-SHA256 over its path, its ``x-mcp-
actors-*`` headers, the time and a digest of its body, under a key derived from the shared
secret; the receiver refuses a call whose signature is wrong or whose time is more than
``MAX_SKEW`` seconds away from its own clock. Nothing from outside the cluster can forge
one, and a captured call cannot be used once it is stale.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections import deque
from typing import Any, Callable
from urllib.parse import urlsplit

#: Headers a call is signed over, and the signature's own.
PREFIX = "x-mcp-actors-"
TIME_HEADER = PREFIX + "time"
SIGNATURE_HEADER = PREFIX + "signature"
#: Seconds a signed call stays valid, either side of the receiver's clock.
MAX_SKEW = 30.0
#: Idle connections kept per peer.
POOL_PER_PEER = 64
#: Seconds to connect to a peer before it counts as unreachable.
CONNECT_TIMEOUT = 2.0


class PeerUnreachable(ConnectionError):
    """The peer could not be reached, or the connection broke before its reply began:
    whether it received the call is unknown only if ``sent`` is true."""

    def __init__(self, message: str, sent: bool):
        super().__init__(message)
        self.sent = sent


# -- signing ----------------------------------------------------------------------------------


def _signed_text(path: str, headers: dict[str, str], stamp: str, body: bytes) -> bytes:
    parts = [path, stamp, hashlib.sha256(body).hexdigest()]
    parts += [f"{name}:{value}" for name, value in sorted(headers.items())
              if name.startswith(PREFIX) and name not in (TIME_HEADER, SIGNATURE_HEADER)]
    return "\n".join(parts).encode("utf-8", "surrogateescape")


def sign(key: bytes, path: str, headers: dict[str, str], body: bytes, now: float | None = None) -> None:
    """Add the time and the signature to ``headers`` (in place)."""
    stamp = f"{time.time() if now is None else now:.3f}"
    headers[TIME_HEADER] = stamp
    headers[SIGNATURE_HEADER] = hmac.new(key, _signed_text(path, headers, stamp, body), hashlib.sha256).hexdigest()


def verify(key: bytes, path: str, headers: dict[str, str], body: bytes, now: float | None = None) -> str | None:
    """None if the call is genuine and fresh, else why not."""
    stamp, signature = headers.get(TIME_HEADER, ""), headers.get(SIGNATURE_HEADER, "")
    try:
        at = float(stamp)
    except ValueError:
        return "no time"
    if abs((time.time() if now is None else now) - at) > MAX_SKEW:
        return "stale"
    want = hmac.new(key, _signed_text(path, headers, stamp, body), hashlib.sha256).hexdigest()
    return None if hmac.compare_digest(want, signature) else "bad signature"


# -- the client --------------------------------------------------------------------------------


class Reply:
    """One call's reply: ``status`` and ``headers`` once the head came; then the body,
    whole (:meth:`read`) or piece by piece (:meth:`next`, None at its end)."""

    __slots__ = ("status", "headers", "chunks", "buffered", "complete", "error", "waiter", "conn", "head")

    def __init__(self, conn: "_Connection"):
        self.conn = conn
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.complete = False
        self.error: BaseException | None = None
        self.waiter: asyncio.Future | None = None
        self.head: asyncio.Future = asyncio.get_running_loop().create_future()

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def next(self, timeout: float | None = None) -> bytes | None:
        """The next piece of the body; None at its end. Raises ConnectionError if the
        connection broke first, asyncio.TimeoutError after ``timeout`` idle seconds."""
        while not self.chunks:
            if self.complete:
                return None
            if self.error is not None:
                raise self.error
            self.waiter = asyncio.get_running_loop().create_future()
            try:
                await asyncio.wait_for(self.waiter, timeout)
            finally:
                self.waiter = None
        data = b"".join(self.chunks)
        self.chunks.clear()
        self.buffered = 0
        self.conn.resume()
        return data

    async def read(self) -> bytes:
        parts = []
        while True:
            data = await self.next()
            if data is None:
                return b"".join(parts)
            parts.append(data)

    def close(self) -> None:
        """Done with the reply: its connection goes back to the pool if the reply was read
        to its end, else it is closed (the peer sees the client go)."""
        self.conn.finish(self)


class _Connection(asyncio.Protocol):
    def __init__(self, pool: "PeerClient", key: tuple[str, int], limit: int):
        import httptools

        self.pool = pool
        self.key = key
        self.limit = limit
        self.transport: Any = None
        self.parser = httptools.HttpResponseParser(self)
        self.reply: Reply | None = None
        self.closed = False
        self.paused = False
        self.reusable = False

    # asyncio.Protocol
    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except Exception as exc:  # httptools.HttpParserError: not our peer's HTTP
            self._fail(ConnectionError(f"bad reply from the peer: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.reply is not None and not self.reply.complete:
            self._fail(PeerUnreachable("the peer closed the connection", sent=True))

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        assert self.reply is not None
        self.reply.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        reply = self.reply
        assert reply is not None
        reply.status = self.parser.get_status_code()
        if not reply.head.done():
            reply.head.set_result(None)

    def on_body(self, body: bytes) -> None:
        reply = self.reply
        assert reply is not None
        reply.chunks.append(body)
        reply.buffered += len(body)
        if reply.buffered > self.limit and not self.paused:
            self.paused = True
            self.transport.pause_reading()
        reply._wake()

    def on_message_complete(self) -> None:
        reply = self.reply
        assert reply is not None
        self.reusable = self.parser.should_keep_alive()
        reply.complete = True
        reply._wake()

    def _fail(self, exc: BaseException) -> None:
        reply = self.reply
        if reply is not None and not reply.complete:
            reply.error = exc
            if not reply.head.done():
                reply.head.set_exception(exc)
                reply.head.exception()
            reply._wake()
        self.abort()

    def resume(self) -> None:
        if self.paused and not self.closed:
            self.paused = False
            self.transport.resume_reading()

    def abort(self) -> None:
        if not self.closed:
            self.closed = True
            self.transport.abort()

    def finish(self, reply: Reply) -> None:
        if self.reply is not reply:
            return
        self.reply = None
        if reply.complete and self.reusable and not self.closed and not self.paused:
            self.pool._idle(self)
        else:
            self.abort()


class PeerClient:
    """Keep-alive connections to the cluster's processes, by address."""

    def __init__(self, limit: int = 1 << 20):
        """``limit``: bytes of a streamed reply held here before its socket is paused."""
        self.limit = limit
        self.idle: dict[tuple[str, int], list[_Connection]] = {}

    @staticmethod
    def address(url: str) -> tuple[str, int]:
        parts = urlsplit(url)
        return parts.hostname or "127.0.0.1", parts.port or 80

    def _idle(self, conn: _Connection) -> None:
        idle = self.idle.setdefault(conn.key, [])
        if len(idle) < POOL_PER_PEER:
            idle.append(conn)
        else:
            conn.abort()

    async def _connection(self, key: tuple[str, int]) -> tuple[_Connection, bool]:
        idle = self.idle.get(key)
        while idle:
            conn = idle.pop()
            if not conn.closed:
                return conn, True
        loop = asyncio.get_running_loop()
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(lambda: _Connection(self, key, self.limit), key[0], key[1]), CONNECT_TIMEOUT)
        except (OSError, asyncio.TimeoutError) as exc:
            raise PeerUnreachable(f"cannot connect to {key[0]}:{key[1]}: {exc or 'timed out'}", sent=False) from None
        return conn, False  # type: ignore[return-value]

    async def post(self, url: str, path: str, headers: dict[str, str], body: bytes,
                   alive: Callable[[], bool] | None = None, every: float = 1.0) -> Reply:
        """Send a POST; returns once the reply's head is in (its body follows). While
        waiting, ``alive()`` is asked every ``every`` seconds: once it says no, the call is
        given up (PeerUnreachable, sent). A kept-alive connection the peer closed meanwhile
        is retried once on a new one (an idle connection's close means the call was not read)."""
        key = self.address(url)
        wrote = False
        for attempt in (0, 1):
            conn, reused = await self._connection(key)
            reply = conn.reply = Reply(conn)
            head = [f"POST {path} HTTP/1.1\r\nhost: {key[0]}:{key[1]}\r\ncontent-length: {len(body)}\r\n"]
            head += [f"{name}: {value}\r\n" for name, value in headers.items()]
            head.append("\r\n")
            conn.transport.write("".join(head).encode("latin-1") + body)
            try:
                await self._head(reply, alive, every)
            except PeerUnreachable as exc:
                if reused and attempt == 0 and not reply.headers and not reply.chunks:
                    wrote = True
                    continue  # a stale pooled connection
                exc.sent = exc.sent or wrote
                raise exc
            return reply
        raise PeerUnreachable("unreachable", sent=True)  # pragma: no cover

    @staticmethod
    async def _head(reply: Reply, alive: Callable[[], bool] | None, every: float) -> None:
        while True:
            try:
                await asyncio.wait_for(asyncio.shield(reply.head), None if alive is None else every)
                return
            except asyncio.TimeoutError:
                if alive is not None and not alive():
                    reply.conn.abort()
                    raise PeerUnreachable("the peer stopped beating while this call waited", sent=True) from None
            except asyncio.CancelledError:
                reply.conn.abort()
                raise

    def close(self) -> None:
        for conns in self.idle.values():
            for conn in conns:
                conn.abort()
        self.idle.clear()
