"""Calls between the Worker and its Durable Objects, and between objects.

Every internal call is a POST to an object by name, the operation in a header and any
payload as the body; the URL is never looked at. :class:`Outbox` carries the calls nobody
waits for (announcements, a task's notifications to its session) in order, one at a time,
with a bound (the engine's :class:`~engine.actors.outbox.Outbox`).
"""

from __future__ import annotations

from typing import Any

from engine.actors.outbox import Outbox as _Outbox


_URL = "https://object.internal/"


def unwrapped(binding: Any) -> Any:
    """The runtime's own object behind the Workers SDK's Python wrapper of a binding (a
    Durable Object stub, ``ctx.storage``), or the object itself if it is not wrapped.

    The SDK's wrappers convert every argument and result as for RPC: for ``ctx.storage``
    that walked a BLOB's bytes one by one, a third of a session call's Python time, and its
    fetch goes through pyodide's ``pyfetch`` (bench (k) ``--profile``). The calls the Worker
    makes on them need neither, so they go to the JavaScript object."""
    return getattr(binding, "_binding", binding)


async def call(namespace: Any, name: str, headers: dict, body: bytes | None = None, signal: Any = None) -> Any:
    """POST to the object ``name`` of ``namespace`` (a Durable Object binding).

    The stub's own ``fetch`` (:func:`unwrapped`) is called with a JavaScript init object;
    the answer is the SDK's Response."""
    import js
    from pyodide.ffi import to_js
    from workers import Response

    stub = namespace.getByName(name)
    init: dict = {"method": "POST", "headers": headers}
    if body:
        init["body"] = to_js(body)
    if signal is not None:
        init["signal"] = signal
    return Response(await unwrapped(stub).fetch(_URL, to_js(init, dict_converter=js.Object.fromEntries)))


def header(request: Any, name: str) -> str | None:
    """One header of a request, read from the runtime's own Headers. The Workers SDK's
    ``request.headers`` builds an ``email.message.Message`` of all of them on each access
    (an object reads several per call: bench (k) ``--profile`` showed it at a tenth of the
    Python time)."""
    value = request.js_object.headers.get(name)
    return value if isinstance(value, str) else None  # null: absent


def headers_of(request: Any) -> dict[str, str]:
    """All of a request's headers, names in lower case (as the runtime's Headers give them), at once."""
    import js

    return js.Object.fromEntries(request.js_object.headers.entries()).to_py()


class Outbox(_Outbox):
    """Calls to Durable Objects nobody waits for, in order (``engine.actors.outbox``)."""

    __slots__ = ()

    def post(self, namespace: Any, name: str, headers: dict, body: bytes | None = None) -> None:
        self.send(lambda: call(namespace, name, headers, body), name)
