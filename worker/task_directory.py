"""The engine's TaskDirectory on Workers: each task is a Durable Object (``task_object.py``).

Fronts and sessions reach a task's object by its id through the ``TASKS`` binding. Task
ids are signed like session ids (``session_ids.py``), so an id this Worker never issued is
unknown at once, without addressing (and so creating) an object for it. The object checks
the owner: the session that made a 2025-11-25 task, "" for a 2026-07-28 one.
"""

from __future__ import annotations

from typing import Any

from engine.actors import links
from engine.protocol import tasks
from engine.protocol.tasks import TaskRecord

import internal
import session_ids

#: The operation header of a call to a task's object, and the caller's identity.
OP_HEADER = "x-mcp-actors-task"
OWNER_HEADER = "x-mcp-actors-owner"


class WorkerTasks(links.TaskCalls):
    """A TaskDirectory whose task actors are Durable Objects."""

    __slots__ = ("env", "secret")

    def __init__(self, env: Any, secret: str):
        self.env = env
        self.secret = secret

    def new_task_id(self) -> str:
        return session_ids.mint(self.secret, tasks.new_task_id())

    async def call(self, op: str, task_id: str, owner: str, body: bytes | None = None) -> TaskRecord | None:
        if not session_ids.genuine(self.secret, task_id):
            return None
        response = await internal.call(self.env.TASKS, task_id, {OP_HEADER: op, OWNER_HEADER: owner}, body)
        return links.task_reply(response.status, await response.bytes())
