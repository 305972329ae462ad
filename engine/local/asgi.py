"""The local server's HTTP adapter: raw ASGI translated into :mod:`engine.actors.front`.

Nothing here decides anything about HTTP or MCP: it turns the ASGI scope into the
front's arguments, reads the body, sends the front's response, and notices when a
streaming client goes away. Raw ASGI because this is the hot path: no framework objects,
no per-request task groups; the only task it creates is one per open SSE response, to
watch for the client's disconnect.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable

from ..actors.auth import gate_from
from ..actors.connection import Connection
from ..actors.front import Front, Response
from ..actors.settings import Settings
from ..protocol import http, operator, request_state
from .fetch import fetch_json
from .runtime import LocalRuntime


def _headers(scope: dict) -> dict[str, str]:
    """Header names (lower case, as ASGI servers give them) to values; repeats are joined
    with ", " (RFC 9110 5.3), collected in a list first so the cost stays linear."""
    raw = scope["headers"]
    out = {name.decode("latin-1"): value.decode("latin-1") for name, value in raw}
    if len(out) == len(raw):
        return out  # no repeats: the common case, in one comprehension
    out = {}
    repeated: dict[str, list[str]] | None = None
    for name, value in raw:
        key = name.decode("latin-1")
        if key in out:
            if repeated is None:
                repeated = {}
            repeated.setdefault(key, [out[key]]).append(value.decode("latin-1"))
        else:
            out[key] = value.decode("latin-1")
    if repeated:
        for key, values in repeated.items():
            out[key] = ", ".join(values)
    return out


class _BodyReader:
    """Reads a request body for the front, at most ``limit`` bytes. (How long it may take
    is the protocol's business: :mod:`engine.local.protocols` times out slow bodies.)"""

    __slots__ = ("receive",)

    def __init__(self, receive: Callable):
        self.receive = receive

    async def __call__(self, limit: int) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise ConnectionResetError("client disconnected while sending the body")
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > limit:
                    raise http.body_too_large(limit)
                chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class _AsgiWriter:
    """The front's Writer on an ASGI ``send``."""

    __slots__ = ("send",)

    def __init__(self, send: Callable):
        self.send = send

    async def write(self, data: bytes) -> None:
        await self.send({"type": "http.response.body", "body": data, "more_body": True})

    async def close(self) -> None:
        await self.send({"type": "http.response.body", "body": b"", "more_body": False})


class McpAsgi:
    """ASGI application serving the MCP endpoint (and the HTTP+SSE transport's paths)."""

    def __init__(self, runtime: LocalRuntime, settings: Settings, verifier: Any = None):
        """``verifier``: a TokenVerifier of your own (else ``settings.auth`` says)."""
        self.runtime = runtime
        self.settings = settings
        secret = runtime.secret(settings.secret)  # None: the runtime learns it when it starts
        key = request_state.derive(secret, "request-state") if secret else b""
        gate = gate_from(settings, fetch_json, runtime.app.name, verifier)
        self.front = Front(settings, runtime.app, key, gate)
        #: The cluster's endpoint for calls between processes, on a port of its own (None:
        #: not a cluster); an ASGI callable with a ``port``.
        self.internal: Any = runtime.internal_endpoint(self.front)
        #: engine.observe.telemetry.Telemetry when telemetry is on (else None: the request
        #: path pays one test), and the port its /metrics is served on (0: none).
        self.telemetry: Any = None
        self.metrics_port = 0

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Callable, send: Callable) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.runtime.start()
                except Exception as exc:  # (the store cannot be reached, say): a message, not a traceback
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                if not self.front.state_key:
                    self.front.state_key = request_state.derive(await self.runtime.started_secret(
                        self.settings.secret), "request-state")
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.runtime.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: dict, receive: Callable, send: Callable) -> None:
        internal, telemetry = self.internal, self.telemetry
        if internal is not None and scope.get("server", (None, None))[1] == internal.port:
            await internal(scope, receive, send)
            return
        if telemetry is not None:
            if scope.get("server", (None, None))[1] == self.metrics_port:
                await self._metrics_port(scope, receive, send)
                return
            started = time.perf_counter()
        if scope["path"] in operator.HEALTH_PATHS:
            response = self.front.health(scope["method"], scope["path"], self.runtime.unready())
            await send_response(self.front, response, receive, send)
            return
        try:
            headers = _headers(scope)
            base_url = f"{scope.get('scheme', 'http')}://{headers.get('host', 'localhost')}" \
                if self.front.gate is not None else ""
            response = await self.front.handle(
                scope["method"], scope["path"], scope.get("query_string", b"").decode("latin-1"),
                headers, _BodyReader(receive), self.runtime, scope.get("root_path", ""), base_url)
        except ConnectionResetError:
            return
        await send_response(self.front, response, receive, send)
        if telemetry is not None:
            telemetry.record(time.perf_counter() - started, response, headers, scope.get("http_version", "1.1"))

    async def _metrics_port(self, scope: dict, receive: Callable, send: Callable) -> None:
        """The metrics port: ``/metrics``, ``/healthz`` and ``/readyz``; nothing of MCP."""
        response = self.front.plain(*operator.metrics_port(
            scope["method"], scope["path"], self.runtime.unready(), self.telemetry.exposition))
        await send_response(self.front, response, receive, send)


async def send_response(front: Front, response: Response, receive: Callable, send: Callable) -> None:
    """Send the front's response on ASGI: the head, then the body, or the open stream's
    events until it ends or the client goes away."""
    await send({"type": "http.response.start", "status": response.status, "headers": response.headers})
    conn = response.stream
    if conn is None:
        await send({"type": "http.response.body", "body": response.body})
        return
    watcher = asyncio.get_running_loop().create_task(_watch_disconnect(receive, conn))
    try:
        await front.pump(response, _AsgiWriter(send))
    finally:
        watcher.cancel()


async def _watch_disconnect(receive: Callable, conn: Connection) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            conn.close()
            return
