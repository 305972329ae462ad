"""How a 2025-11-25 task reaches its client on Workers: through its session's object.

The task runs in its own Durable Object; its client is on the session's streams, in the
session's object. :class:`SessionLink` is the task actor's ``ClientChannel`` there:
notifications (progress, log messages, status changes) go in order through an outbox;
a question (``elicitation/create``, ``sampling/createMessage``, ``roots/list``) waits for the
client's answer, which the session's object relays back (``engine.actors.links.serve_link``
is the session object's side; the wire is the engine's, shared with the cluster).
"""

from __future__ import annotations

from typing import Any

import msgspec

from engine.actors import links
from engine.actors.links import NOTIFY, REQUEST, STATUS

import internal

#: The header of a call from a task to its session: NOTIFY, STATUS or REQUEST.
LINK_HEADER = "x-mcp-actors-task-link"
TASK_HEADER = "x-mcp-actors-task-id"

_encode = msgspec.json.Encoder().encode


class SessionLink:
    """A task's way to its session, whichever isolate the session's object is in."""

    __slots__ = ("env", "session_id", "task_id", "outbox")

    def __init__(self, env: Any, session_id: str, task_id: str):
        self.env = env
        self.session_id = session_id
        self.task_id = task_id
        self.outbox = internal.Outbox()

    def _headers(self, kind: str) -> dict:
        return {LINK_HEADER: kind, TASK_HEADER: self.task_id}

    def notify(self, payload: bytes) -> None:
        self.outbox.post(self.env.SESSIONS, self.session_id, self._headers(NOTIFY), payload)

    def status(self, task: dict) -> None:
        self.outbox.post(self.env.SESSIONS, self.session_id, self._headers(STATUS), _encode(task))

    async def request(self, method: str, params: dict | None, timeout: float) -> Any:
        await self.outbox.drain()  # what the task said before comes before its question
        response = await internal.call(self.env.SESSIONS, self.session_id, self._headers(REQUEST),
                                       links.question(method, params, timeout))
        return links.link_answer(response.status, await response.bytes())
