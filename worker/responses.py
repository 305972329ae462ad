"""The front's Response as a Workers Response: whole, or streamed through a TransformStream.

Shared by the Worker's fetch handler (2026-07-28 requests it serves itself) and the
Durable Objects (sessions, the listen hub). A streamed reply is pumped by a task; the
request's abort signal (``enable_request_signal``) ends it when the client goes away, which
for a 2026-07-28 request also cancels its handler.
"""

from __future__ import annotations

import asyncio

import js
from pyodide.ffi import create_proxy, to_js
from workers import Response

from engine.actors.front import Front, Response as FrontResponse, str_headers

from streams import JsStreamWriter


def respond(front: Front, response: FrontResponse, request) -> Response:
    headers = str_headers(response.headers)
    conn = response.stream
    if conn is None:
        return Response(response.body or None, status=response.status, headers=headers)
    stream = js.TransformStream.new()
    writer = JsStreamWriter(stream.writable.getWriter(), to_js)
    task = asyncio.get_running_loop().create_task(front.pump(response, writer))

    def client_left(*_):
        # A write to a client that left never settles: end the pump from here.
        conn.close()
        task.cancel()

    signal = getattr(request.js_object, "signal", None)
    if signal is not None:
        signal.addEventListener("abort", create_proxy(client_left))
    return Response(stream.readable, status=response.status, headers=headers)
