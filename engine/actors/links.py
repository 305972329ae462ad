"""Calls between actors that live apart: what travels, and how each end serves it.

Where an actor is another isolate's (a Durable Object) or another process's (the cluster),
two kinds of call cross between them, the same whichever carries them:

- **a task to its session** (2025-11-25 tasks): ``notify`` (a notification for the client:
  progress, a log message), ``status`` (the task's new state, for the GET stream) and
  ``request`` (a question to the client, whose answer comes back). :func:`serve_link` is the
  session's end; :func:`link_answer` reads the reply on the task's end.
- **anyone to a task** (the TaskDirectory's operations): ``create``, ``get``, ``update``,
  ``cancel``, ``outcome``, with the caller's identity as the task's owner must match.
  :func:`serve_task` is the task's end; :func:`task_reply` reads the reply.

Replies are (status, body) pairs: 200 with the payload; 404 for an actor that does not
exist (or belongs to someone else); 422 with a JSON-RPC error object; 503 when the actor's
store could not commit. A runtime moves these over its own transport (a Durable Object
fetch, an HTTP request between processes) and nothing else.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

import msgspec

from ..app.context import ClientError
from ..protocol import spec, tasks
from ..protocol.jsonrpc import ProtocolError
from ..protocol.storage import StoreUnavailable
from ..protocol.tasks import TaskRecord

NOTIFY, STATUS, REQUEST = "notify", "status", "request"
CREATE, GET, UPDATE, CANCEL, OUTCOME = "create", "get", "update", "cancel", "outcome"

GONE = "The task's session is gone; nobody can answer"

_encode = msgspec.json.Encoder().encode
_decode_question = msgspec.json.Decoder(tuple).decode
_decode_dict = msgspec.json.Decoder(dict).decode


def question(method: str, params: dict | None, timeout: float) -> bytes:
    return _encode((method, params, timeout))


def _error_object(exc: ProtocolError | ClientError) -> dict:
    error: dict[str, Any] = {"code": exc.code, "message": exc.message}
    data = getattr(exc, "data", None)
    if data is not None and data is not msgspec.UNSET:
        error["data"] = data
    return error


async def serve_link(actor: Any, kind: str, task_id: str, body: bytes) -> tuple[int, bytes]:
    """The session's end: apply one call from its task to ``actor`` (None: the session is
    gone). Returns once what it wrote is committed."""
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
            return 200, _encode({"error": _error_object(exc)})
        return 200, _encode({"result": result})
    else:
        return 400, b""
    await actor.flush()
    return 200, b""


def link_answer(status: int, body: bytes) -> Any:
    """The task's end of a ``request``: the client's result, or its error raised."""
    if status == 404:
        raise ProtocolError(spec.INTERNAL_ERROR, GONE)
    if status != 200:
        raise ProtocolError(spec.INTERNAL_ERROR, f"The task's session could not be reached (HTTP {status})")
    answer = _decode_dict(body)
    error = answer.get("error")
    if isinstance(error, dict):
        raise ClientError(error.get("code", spec.INTERNAL_ERROR), str(error.get("message", "")), error.get("data"))
    return answer.get("result")


async def serve_task(find: Callable[[TaskRecord | None], Awaitable[Any]], op: str, owner: str, body: bytes,
                     flush: Callable[[], Awaitable[None]], lost: Callable[[], None] = lambda: None
                     ) -> tuple[int, bytes]:
    """The task's end: one operation on the task actor that ``find(record)`` gives (woken
    from storage; for a create, made from ``record`` unless it exists; None: no such task). ``flush`` is
    its storage's barrier: the reply leaves once what the operation wrote is committed;
    ``lost`` is told when it could not commit (the actor is then ahead of its storage)."""
    try:
        if op == CREATE:
            record = tasks.decode(body)
            actor = await find(record)
            if actor.record is record:  # new (a retried create may find the task it made)
                await actor.create()
        else:
            actor = await find(None)
            if actor is None or actor.record.owner != owner:
                return 404, b""
            if op == UPDATE:
                actor.update(msgspec.json.decode(body))
            elif op == CANCEL:
                actor.cancel()
            elif op == OUTCOME:
                await actor.outcome()
            elif op != GET:
                return 400, b""
        await flush()
    except ProtocolError as exc:
        return 422, _encode({"code": exc.code, "message": exc.message})
    except StoreUnavailable:
        lost()
        return 503, _encode({"code": spec.INTERNAL_ERROR, "message": "The task's storage failed; try again"})
    return 200, tasks.encode(actor.record)


def task_reply(status: int, body: bytes) -> TaskRecord | None:
    """A task operation's reply: the record, None for an unknown task, or the error raised."""
    if status == 404:
        return None
    if status == 503:
        raise StoreUnavailable("the task's actor could not commit")
    if status != 200:
        try:
            error = _decode_dict(body)
            raise ProtocolError(int(error["code"]), str(error["message"]))
        except (msgspec.DecodeError, KeyError, TypeError, ValueError):
            raise ProtocolError(spec.INTERNAL_ERROR, f"the task's actor failed (HTTP {status})") from None
    return tasks.decode(body)


class TaskCalls:
    """The TaskDirectory's operations as calls (``call(op, task_id, owner, body)`` returns
    the record, or None for an unknown task): how a runtime whose task actors live apart
    reaches them. Subclasses say how a call travels, and how ids are made."""

    async def call(self, op: str, task_id: str, owner: str, body: bytes | None = None) -> TaskRecord | None:
        raise NotImplementedError

    async def create_task(self, record: TaskRecord) -> TaskRecord:
        created = await self.call(CREATE, record.task_id, record.owner, tasks.encode(record))
        if created is None:
            raise ProtocolError(spec.INTERNAL_ERROR, "the task could not be created")
        return created

    async def find_task(self, task_id: str, owner: str) -> TaskRecord | None:
        return await self.call(GET, task_id, owner)

    async def update_task(self, task_id: str, owner: str, responses: Any) -> TaskRecord | None:
        return await self.call(UPDATE, task_id, owner, _encode(responses))

    async def cancel_task(self, task_id: str, owner: str) -> TaskRecord | None:
        return await self.call(CANCEL, task_id, owner)

    async def task_outcome(self, task_id: str, owner: str) -> TaskRecord | None:
        return await self.call(OUTCOME, task_id, owner)
