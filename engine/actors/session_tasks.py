"""Tasks on the session era's wire (2025-11-25, experimental): a session's ``tasks/*``
methods, and ``tools/call`` with ``params.task``.

The tasks themselves are task actors (:mod:`engine.actors.task_actor`), found through the
runtime's :class:`TaskDirectory`; the session keeps an index of the tasks it made
(``k/<task id>``), so ``tasks/list`` shows its own and no other session can see them
(another session's id answers as unknown). A task that asks its client something does so
through its session (:class:`SessionChannel`): on the stream of a ``tasks/result`` that
is waiting for that task, else on the session's GET stream.
"""

from __future__ import annotations

from typing import Any, Protocol

from msgspec import UNSET

from ..app.context import Context
from ..protocol import spec, tasks
from ..protocol.jsonrpc import ProtocolError
from ..protocol.storage import StoreUnavailable
from ..protocol.tasks import TaskRecord

#: Tasks one session may keep at once (an index entry each, and a task actor each).
MAX_TASKS_PER_SESSION = 100


class TaskDirectory(Protocol):
    """How a front or a session reaches task actors (the runtime: in process locally, a
    Durable Object per task on Workers). ``owner`` must match the task's, else the task is
    as good as unknown (None)."""

    def new_task_id(self) -> str:
        """An id for a new task (the Worker signs them, to refuse forged ids unaided)."""
        ...

    async def create_task(self, record: TaskRecord) -> TaskRecord:
        """Store and start a new task; returns once it is durable."""
        ...

    async def find_task(self, task_id: str, owner: str) -> TaskRecord | None: ...

    async def update_task(self, task_id: str, owner: str, responses: Any) -> TaskRecord | None: ...

    async def cancel_task(self, task_id: str, owner: str) -> TaskRecord | None: ...

    async def task_outcome(self, task_id: str, owner: str) -> TaskRecord | None:
        """The task once it is over (waits while it runs)."""
        ...


def _directory(ctx: Context) -> TaskDirectory:
    directory = getattr(ctx.host, "directory", None)
    if directory is None:
        raise ProtocolError(spec.METHOD_NOT_FOUND, "Tasks are not served here")
    return directory


def _owner(ctx: Context) -> str:
    return ctx.host.session_id or ""


def call_tool(ctx: Context) -> Any:
    """``tools/call``, with the task negotiation of 2025-11-25 (tools: execution.taskSupport).
    Without tasks involved it is the app's own ``tools/call`` (answered inline when it can)."""
    params = ctx.params
    if "task" not in params and not ctx.app.task_tools:
        return ctx.app.methods["tools/call"](ctx)
    name = params.get("name")
    tool = ctx.app.tools.get(name) if isinstance(name, str) else None
    wants_task = isinstance(params.get("task"), dict)
    if tool is None or tool.task == tasks.FORBIDDEN:
        if wants_task and tool is not None:
            raise ProtocolError(spec.METHOD_NOT_FOUND, f"Tool {name!r} does not run as a task (taskSupport: forbidden)")
        return ctx.app.methods["tools/call"](ctx)
    if not wants_task:
        if tool.task == tasks.REQUIRED:
            raise ProtocolError(spec.METHOD_NOT_FOUND,
                                f"Tool {name!r} must run as a task (taskSupport: required); send params.task")
        return ctx.app.methods["tools/call"](ctx)
    return _create(ctx, tool)


async def _create(ctx: Context, tool: Any) -> dict:
    params = ctx.params
    name = tool.name
    actor = ctx.host
    index = actor.storage.list("k/")  # type: ignore[attr-defined]
    if len(index) >= MAX_TASKS_PER_SESSION:
        raise ProtocolError(spec.INVALID_REQUEST, f"Too many tasks: a session may keep {MAX_TASKS_PER_SESSION}; "
                                                  "let some finish and expire, or cancel them")
    meta = params.get("_meta") if isinstance(params.get("_meta"), dict) else {}
    arguments = params.get("arguments")
    directory = _directory(ctx)
    record = TaskRecord(task_id=directory.new_task_id(), wire=tasks.WIRE_2025, owner=_owner(ctx), tool=name,
                        arguments=arguments if isinstance(arguments, dict) else {},
                        progress_token=meta.get("progressToken"), capabilities=ctx.client_capabilities,
                        ttl_ms=tasks.ttl_for(params["task"].get("ttl")), rerun=tool.rerun, principal=ctx.principal)
    actor.storage.put(f"k/{record.task_id}", b"")  # type: ignore[attr-defined]
    try:
        record = await directory.create_task(record)
    except StoreUnavailable:  # the task was not stored: neither is its index entry
        actor.storage.delete(f"k/{record.task_id}")  # type: ignore[attr-defined]
        await actor.flush()  # type: ignore[attr-defined]  # (closes the session if its writes failed too)
        raise
    return tasks.created(record)


async def get(ctx: Context) -> dict:
    record = await _directory(ctx).find_task(tasks.task_id_param(ctx.params), _owner(ctx))
    if record is None:
        raise tasks.not_found(ctx.params.get("taskId"))
    return tasks.task_2025(record)


async def cancel(ctx: Context) -> dict:
    task_id = tasks.task_id_param(ctx.params)
    directory = _directory(ctx)
    record = await directory.find_task(task_id, _owner(ctx))
    if record is None:
        raise tasks.not_found(task_id)
    if record.terminal:
        raise tasks.already_terminal(record)
    record = await directory.cancel_task(task_id, _owner(ctx))
    if record is None:
        raise tasks.not_found(task_id)
    return tasks.task_2025(record)


async def result(ctx: Context) -> dict:
    """``tasks/result``: wait until the task is over, then answer what its request would
    have; while waiting, questions the task asks its client go on this request's stream."""
    task_id = tasks.task_id_param(ctx.params)
    actor = ctx.host
    if actor.task_streams is None:  # type: ignore[attr-defined]
        actor.task_streams = {}  # type: ignore[attr-defined]
    actor.task_streams[task_id] = ctx.stream  # type: ignore[attr-defined]
    try:
        record = await _directory(ctx).task_outcome(task_id, _owner(ctx))
    finally:
        actor.task_streams.pop(task_id, None)  # type: ignore[attr-defined]
    if record is None:
        raise tasks.not_found(task_id)
    if record.error is not None and record.result is None:
        raise ProtocolError(record.error.get("code", spec.INTERNAL_ERROR), record.error.get("message", "failed"),
                            record.error.get("data", UNSET))
    if record.result is None:  # cancelled before it produced anything
        raise ProtocolError(spec.INVALID_PARAMS, f"Task {task_id!r} was {record.status} without a result")
    meta = record.result.get("_meta") if isinstance(record.result.get("_meta"), dict) else {}
    return {**record.result, "_meta": {**meta, **tasks.related(task_id)}}


async def list_tasks(ctx: Context) -> dict:
    actor = ctx.host
    directory = _directory(ctx)
    found = []
    for key, _ in actor.storage.list("k/"):  # type: ignore[attr-defined]
        record = await directory.find_task(key[2:], _owner(ctx))
        if record is None:  # expired: its index entry goes too
            actor.storage.delete(key)  # type: ignore[attr-defined]
            continue
        found.append(tasks.task_2025(record))
    cursor = ctx.params.get("cursor")
    if cursor is not None:
        raise ProtocolError(spec.INVALID_PARAMS, "Invalid params: this server gives no cursor for tasks/list "
                                                 f"(a session has at most {MAX_TASKS_PER_SESSION} tasks)")
    return {"tasks": found}


TASK_METHODS = {"tools/call": call_tool, "tasks/get": get, "tasks/cancel": cancel, "tasks/result": result,
                "tasks/list": list_tasks}


class SessionChannel:
    """A 2025-11-25 task's way to its client: the session that made it, found by id each
    time (it may have hibernated in between). ``resolve(session_id)`` gives its actor."""

    __slots__ = ("resolve", "session_id", "task_id")

    def __init__(self, resolve: Any, session_id: str, task_id: str):
        self.resolve = resolve
        self.session_id = session_id
        self.task_id = task_id

    def notify(self, payload: bytes) -> None:
        actor = self.resolve(self.session_id)
        if actor is not None:
            actor.task_notify(self.task_id, payload)

    async def request(self, method: str, params: dict | None, timeout: float) -> Any:
        actor = self.resolve(self.session_id)
        if actor is None:
            raise ProtocolError(spec.INTERNAL_ERROR, "The task's session is gone; nobody can answer")
        return await actor.task_request(self.task_id, method, params, timeout)

