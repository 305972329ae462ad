"""Calls nobody waits for, delivered in the order they were sent, one at a time, bounded.

A task's notifications to its session, an isolate's announcements to the listen hub, a
process's messages to an actor another process holds: each is a call to somewhere else
whose answer nobody awaits, but whose order matters (progress 3 before progress 4, the
status change before the result). An :class:`Outbox` runs them by one task in order; a peer
that stops answering costs at most ``limit`` queued calls, the oldest dropped first (and
said, now and then, in the log). :meth:`Outbox.drain` waits until every call sent so far
has run (a question waits for what was said before it).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any, Awaitable, Callable

log = logging.getLogger("engine")

#: Calls an outbox holds before it drops the oldest.
OUTBOX_LIMIT = 1000


class Outbox:
    __slots__ = ("queue", "pump", "dropped", "limit", "name")

    def __init__(self, name: str = "", limit: int = OUTBOX_LIMIT):
        self.queue: deque[Callable[[], Awaitable[Any]]] = deque()
        self.pump: asyncio.Task | None = None
        self.dropped = 0
        self.limit = limit
        self.name = name

    def send(self, call: Callable[[], Awaitable[Any]], name: str = "") -> None:
        if len(self.queue) >= self.limit:
            self.queue.popleft()
            self.dropped += 1
            if self.dropped in (1, 10, 100) or self.dropped % 1000 == 0:
                log.warning("outbox to %s is full: %d messages dropped so far", name or self.name, self.dropped)
        self.queue.append(call)
        if self.pump is None:
            self.pump = asyncio.get_running_loop().create_task(self._run(name or self.name))

    def __len__(self) -> int:
        return len(self.queue) + (self.pump is not None)

    async def _run(self, name: str) -> None:
        try:
            while self.queue:
                call = self.queue.popleft()
                try:
                    await call()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # the peer's trouble is not the sender's
                    log.warning("call to %s failed: %s", name, exc)
        finally:
            self.pump = None

    async def drain(self) -> None:
        while self.pump is not None:
            await asyncio.shield(self.pump)
