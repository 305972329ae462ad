"""The Durable Object that hosts one task's actor (``engine.actors.task_actor``).

One object per task, named by the task's signed id (``task_directory.py`` calls it). The
actor's record lives in the object's storage and its heartbeat is the object's alarm, so
what the engine promises of a task holds here as it does locally: the record is durable
before the task is announced; a task whose isolate died is found by the next alarm and
marked failed (or run again, if its tool allows); a finished task is deleted at its
expiry. While the handler runs, the heartbeat alarm keeps the object awake.

Status changes are told where they are listened for: a 2026-07-28 task's to the listen hub
(``notifications/tasks``), a 2025-11-25 task's to its session (``task_link.py``).
"""

from __future__ import annotations

import logging

from pyodide.ffi import create_proxy, to_js
from workers import DurableObject, Response

from engine.actors import links
from engine.actors.task_actor import TaskActor
from engine.protocol import tasks
from engine.protocol.tasks import TaskRecord

import config
import hub
import log_lines
from do_storage import DurableObjectStorage
from internal import Outbox, header
from task_directory import OP_HEADER, OWNER_HEADER
from task_link import SessionLink

log = logging.getLogger("engine")


class TaskObject(DurableObject):
    def __init__(self, ctx, env):
        super().__init__(ctx, env)
        log_lines.install(env)
        self.storage = DurableObjectStorage(ctx.storage, to_js, create_proxy)
        self.actor: TaskActor | None = None
        self.link: SessionLink | None = None
        self._alarm_loaded = False
        self.outbox = Outbox()  # this object's announcements (see hub.py)

    async def _actor(self, record: TaskRecord | None = None) -> TaskActor | None:
        """This object's task actor, woken from storage if need be (None: no task here)."""
        if self.actor is not None:
            return self.actor
        if not self._alarm_loaded:
            await self.storage.load_alarm()
            self._alarm_loaded = True
        woken = record is None
        if woken:
            raw = self.storage.get("task")
            if raw is None:
                return None
            record = tasks.decode(raw)
        if record.wire == tasks.WIRE_2025:
            self.link = SessionLink(self.env, record.owner, record.task_id)
        self.actor = TaskActor(config.app(self.env), self.storage, record, self.link, self._status)
        if woken:
            self.actor.recover()  # (a task left running here died with the isolate that ran it)
        return self.actor

    def _status(self, record: TaskRecord) -> None:
        if self.link is not None:
            self.link.status(tasks.task_2025(record))
        else:
            config.announcer(self.env).task(record.task_id, tasks.task_2026(record, detailed=True), record.owner)

    async def fetch(self, request):
        hub.use_outbox(self.outbox)
        status, body = await links.serve_task(self._find, header(request, OP_HEADER) or "",
                                              header(request, OWNER_HEADER) or "", await request.bytes(),
                                              self.storage.flush, self._lost)
        return Response(body or None, status=status)

    async def _find(self, record: TaskRecord | None) -> TaskActor | None:
        """The task's actor; for a create, the one a retried create made, or a new one."""
        return await self._actor() or (await self._actor(record) if record is not None else None)

    def _lost(self) -> None:
        self.actor = None  # what it holds is ahead of storage: wake it again next time
        log.error("task object: the task's storage could not commit")

    async def alarm(self, *_args):
        hub.use_outbox(self.outbox)
        actor = await self._actor()
        if actor is None:
            return
        if await actor.alarm():
            actor.end()
            self.actor = None
            await self.storage.flush()
