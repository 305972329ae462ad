"""How a 2025-11-25 task reaches its client on Workers: through its session's object.

The task runs in its own Durable Object; its client is on the session's streams, in the
session's object. :class:`SessionLink` is the task actor's ``ClientChannel`` there:
notifications (progress, log messages, status changes) go in order through an outbox;
a question (``elicitation/create``, ``sampling/createMessage``, ``roots/list``) waits for the
client's answer, which the session's object relays back. :func:`serve` is the session
object's side of the link.
"""

from __future__ import annotations

from typing import Any

import msgspec

from engine.app.context import ClientError
from engine.protocol import spec
from engine.protocol.jsonrpc import ProtocolError

import internal

#: The header of a call from a task to its session: NOTIFY, STATUS or REQUEST.
LINK_HEADER = "x-mcp-actors-task-link"
TASK_HEADER = "x-mcp-actors-task-id"
NOTIFY, STATUS, REQUEST = "notify", "status", "request"

GONE = "The task's session is gone; nobody can answer"

_encode = msgspec.json.Encoder().encode
_decode_question = msgspec.json.Decoder(tuple).decode
_decode_answer = msgspec.json.Decoder(dict).decode


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
        self.outbox.send(self.env.SESSIONS, self.session_id, self._headers(NOTIFY), payload)

    def status(self, task: dict) -> None:
        self.outbox.send(self.env.SESSIONS, self.session_id, self._headers(STATUS), _encode(task))

    async def request(self, method: str, params: dict | None, timeout: float) -> Any:
        await self.outbox.drain()  # what the task said before comes before its question
        response = await internal.call(self.env.SESSIONS, self.session_id, self._headers(REQUEST),
                                       _encode((method, params, timeout)))
        if response.status == 404:
            raise ProtocolError(spec.INTERNAL_ERROR, GONE)
        answer = _decode_answer(await response.bytes())
        error = answer.get("error")
        if isinstance(error, dict):
            raise ClientError(error.get("code", spec.INTERNAL_ERROR), str(error.get("message", "")), error.get("data"))
        return answer.get("result")


async def serve(actor: Any, kind: str, task_id: str, body: bytes) -> tuple[int, bytes]:
    """The session object's side: apply one call from a task to the session's ``actor``
    (None: the session is gone). Returns (status, body)."""
    if actor is None:
        return 404, b""
    if kind == NOTIFY:
        actor.task_notify(task_id, body)
    elif kind == STATUS:
        actor.task_status(msgspec.json.decode(body))
    elif kind == REQUEST:
        method, params, timeout = _decode_question(body)
        try:
            result = await actor.task_request(task_id, method, params, float(timeout))
        except (ClientError, ProtocolError) as exc:
            error = {"code": exc.code, "message": exc.message}
            data = getattr(exc, "data", None)
            if data is not None and data is not msgspec.UNSET:
                error["data"] = data
            return 200, _encode({"error": error})
        return 200, _encode({"result": result})
    else:
        return 400, b""
    await actor.flush()
    return 200, b""
