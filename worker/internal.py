"""Calls between the Worker and its Durable Objects, and between objects.

Every internal call is a POST to an object by name, the operation in a header and any
payload as the body; the URL is never looked at. :class:`Outbox` carries the calls nobody
waits for (announcements, a task's notifications to its session) in order, one at a time,
with a bound: a peer object that stops answering costs at most ``OUTBOX_LIMIT`` queued
messages, the oldest dropped first.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any

log = logging.getLogger("engine")

#: Messages an outbox holds before it drops the oldest.
OUTBOX_LIMIT = 1000


async def call(namespace: Any, name: str, headers: dict, body: bytes | None = None, signal: Any = None) -> Any:
    """POST to the object ``name`` of ``namespace`` (a Durable Object binding)."""
    stub = namespace.getByName(name)
    if signal is None:
        return await stub.fetch("https://object.internal/", method="POST", headers=headers, body=body or None)
    return await stub.fetch("https://object.internal/", method="POST", headers=headers, body=body or None,
                            signal=signal)


class Outbox:
    """Calls delivered in the order sent, by one task; :meth:`drain` waits until all sent
    so far have been answered (a request that announced awaits it before it answers)."""

    __slots__ = ("queue", "pump", "dropped")

    def __init__(self):
        self.queue: deque = deque()
        self.pump: asyncio.Task | None = None
        self.dropped = 0

    def send(self, namespace: Any, name: str, headers: dict, body: bytes | None = None) -> None:
        if len(self.queue) >= OUTBOX_LIMIT:
            self.queue.popleft()
            self.dropped += 1
            if self.dropped in (1, 10, 100) or self.dropped % 1000 == 0:
                log.warning("outbox to %s is full: %d messages dropped so far", name, self.dropped)
        self.queue.append((namespace, name, headers, body))
        if self.pump is None:
            self.pump = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        try:
            while self.queue:
                namespace, name, headers, body = self.queue.popleft()
                try:
                    await call(namespace, name, headers, body)
                except Exception as exc:  # the peer's trouble is not the sender's
                    log.warning("internal call to %s failed: %s", name, exc)
        finally:
            self.pump = None

    async def drain(self) -> None:
        while self.pump is not None:
            await asyncio.shield(self.pump)
