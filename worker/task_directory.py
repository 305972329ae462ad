"""The engine's TaskDirectory on Workers: each task is a Durable Object (``task_object.py``).

Fronts and sessions reach a task's object by its id through the ``TASKS`` binding. Task
ids are signed like session ids (``session_ids.py``), so an id this Worker never issued is
unknown at once, without addressing (and so creating) an object for it. The object checks
the owner: the session that made a 2025-11-25 task, "" for a 2026-07-28 one.
"""

from __future__ import annotations

from typing import Any

import msgspec

from engine.protocol import spec, tasks
from engine.protocol.jsonrpc import ProtocolError
from engine.protocol.storage import StoreUnavailable
from engine.protocol.tasks import TaskRecord

import internal
import session_ids

#: The operation header of a call to a task's object, and the caller's identity.
OP_HEADER = "x-mcp-actors-task"
OWNER_HEADER = "x-mcp-actors-owner"
CREATE, GET, UPDATE, CANCEL, OUTCOME = "create", "get", "update", "cancel", "outcome"

_encode = msgspec.json.Encoder().encode
_decode_error = msgspec.json.Decoder(dict).decode


class WorkerTasks:
    """A TaskDirectory whose task actors are Durable Objects."""

    __slots__ = ("env", "secret")

    def __init__(self, env: Any, secret: str):
        self.env = env
        self.secret = secret

    def new_task_id(self) -> str:
        return session_ids.mint(self.secret, tasks.new_task_id())

    async def _call(self, op: str, task_id: str, owner: str, body: bytes | None = None) -> TaskRecord | None:
        if not session_ids.genuine(self.secret, task_id):
            return None
        response = await internal.call(self.env.TASKS, task_id, {OP_HEADER: op, OWNER_HEADER: owner}, body)
        if response.status == 404:
            return None
        raw = await response.bytes()
        if response.status == 503:
            raise StoreUnavailable("the task's Durable Object could not commit")
        if response.status != 200:  # the object's answer is a JSON-RPC error object
            raise _error(raw, response.status)
        return tasks.decode(raw)

    async def create_task(self, record: TaskRecord) -> TaskRecord:
        created = await self._call(CREATE, record.task_id, record.owner, tasks.encode(record))
        if created is None:
            raise ProtocolError(spec.INTERNAL_ERROR, "the task could not be created")
        return created

    async def find_task(self, task_id: str, owner: str) -> TaskRecord | None:
        return await self._call(GET, task_id, owner)

    async def update_task(self, task_id: str, owner: str, responses: Any) -> TaskRecord | None:
        return await self._call(UPDATE, task_id, owner, _encode(responses))

    async def cancel_task(self, task_id: str, owner: str) -> TaskRecord | None:
        return await self._call(CANCEL, task_id, owner)

    async def task_outcome(self, task_id: str, owner: str) -> TaskRecord | None:
        return await self._call(OUTCOME, task_id, owner)


def _error(raw: bytes, status: int) -> ProtocolError:
    try:
        error = _decode_error(raw)
        return ProtocolError(int(error["code"]), str(error["message"]))
    except (msgspec.DecodeError, KeyError, TypeError, ValueError):
        return ProtocolError(spec.INTERNAL_ERROR, f"the task's object failed (HTTP {status})")
