"""Calls between the Worker and its Durable Objects, and between objects.

Every internal call is a POST to an object by name, the operation in a header and any
payload as the body; the URL is never looked at. :class:`Outbox` carries the calls nobody
waits for (announcements, a task's notifications to its session) in order, one at a time,
with a bound (the engine's :class:`~engine.actors.outbox.Outbox`).
"""

from __future__ import annotations

from typing import Any

from engine.actors.outbox import Outbox as _Outbox


async def call(namespace: Any, name: str, headers: dict, body: bytes | None = None, signal: Any = None) -> Any:
    """POST to the object ``name`` of ``namespace`` (a Durable Object binding)."""
    stub = namespace.getByName(name)
    if signal is None:
        return await stub.fetch("https://object.internal/", method="POST", headers=headers, body=body or None)
    return await stub.fetch("https://object.internal/", method="POST", headers=headers, body=body or None,
                            signal=signal)


class Outbox(_Outbox):
    """Calls to Durable Objects nobody waits for, in order (``engine.actors.outbox``)."""

    __slots__ = ()

    def post(self, namespace: Any, name: str, headers: dict, body: bytes | None = None) -> None:
        self.send(lambda: call(namespace, name, headers, body), name)
