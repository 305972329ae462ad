"""The task actor: one per task id, the same code in every runtime.

It owns a task's durable record (:class:`~engine.protocol.tasks.TaskRecord`, stored under
``task`` in its own storage namespace) and, while the task runs, the handler: the app's
``tools/call`` run with a :class:`TaskHost` as its Context's host. What is true of it:

1. **Durable before announced.** :meth:`TaskActor.create` returns only after the record is
   committed, so a ``tasks/get`` right after the announcing reply finds it (on any front).
2. **Every change is written before it is visible**: status, status message, progress,
   open input requests, the answers, the result or error, the timestamps. A reader always
   sees the stored record.
3. **A restart is noticed.** A running task's actor stays in memory, so one woken from
   storage while not over has lost its handler with the process that died: it is marked
   ``failed`` ("the server restarted ..."), or run again from the start if its tool said
   that is safe (``rerun=True``), at once (:meth:`TaskActor.recover`). While the handler
   runs, the alarm is a heartbeat a few seconds ahead, so after a restart the alarm finds
   the tasks nobody asks about. Once the task is over, the alarm is its expiry: at
   ``createdAt + ttl`` the task and its result are deleted.
4. **Questions** (``ctx.elicit``, ``ctx.sample``, ``ctx.list_roots``): on the 2026-07-28
   wire the task becomes ``input_required`` with the question in ``inputRequests`` and
   waits for ``tasks/update``; on the 2025-11-25 wire the question goes to the client as a
   request through the task's :class:`ClientChannel` (its session), and the task is
   ``input_required`` until the answer comes back.
5. **Cancellation** reaches the running handler as asyncio cancellation.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable, Protocol

from msgspec import UNSET

from ..app.context import Context
from ..protocol import jsonrpc, modern, spec, tasks
from ..protocol.jsonrpc import ProtocolError
from ..protocol.storage import Storage
from ..protocol.tasks import TaskRecord
from . import tracing

log = logging.getLogger("engine")

#: Seconds between heartbeats of a running task (how soon a restart notices it died).
HEARTBEAT = 3.0
#: Progress is written at most this often (status changes are written at once).
PROGRESS_EVERY = 0.25
#: Idle seconds before a finished task's actor leaves memory (sooner than a session's
#: ``--idle-evict``): its record is final and in storage, so a later ``tasks/get`` reads it
#: back for the price of one lookup, while thousands of finished actors kept in memory would
#: make every full garbage collection walk them (a 140 ms pause at 45,000 of them).
FINISHED_IDLE = 2.0
#: Runs of a ``rerun`` task, restarts included, before it is failed instead.
MAX_ATTEMPTS = 3

RESTARTED = "The server restarted while this task was running, so its work was lost; call the tool again"


class ClientChannel(Protocol):
    """How a 2025-11-25 task reaches its client: through the session that made it."""

    def notify(self, payload: bytes) -> None: ...

    async def request(self, method: str, params: dict | None, timeout: float) -> Any: ...


class TaskHost:
    """The HandlerHost of a handler running as a task (see the module doc)."""

    __slots__ = ("actor", "counter", "last_progress")

    def __init__(self, actor: "TaskActor"):
        self.actor = actor
        self.counter = 0
        self.last_progress = 0.0

    @property
    def app(self) -> Any:
        return self.actor.app

    @property
    def modern(self) -> bool:
        return self.actor.record.wire == tasks.WIRE_2026

    @property
    def session_id(self) -> str | None:
        record = self.actor.record
        return record.owner if record.wire == tasks.WIRE_2025 else None

    @property
    def protocol_version(self) -> str:
        return self.actor.record.wire

    @property
    def client_info(self) -> dict:
        return {}

    @property
    def client_capabilities(self) -> dict:
        return self.actor.record.capabilities

    @property
    def task_id(self) -> str:
        return self.actor.record.task_id

    def logs(self, level: str) -> bool:
        # 2026-07-28: notifications/message is never sent for a task; 2025-11-25: to the session.
        return not self.modern and self.actor.channel is not None

    def emit(self, stream: Any, payload: bytes) -> None:
        if not self.modern and self.actor.channel is not None:
            self.actor.channel.notify(payload)

    def progress(self, stream: Any, params: dict) -> None:
        actor = self.actor
        record = actor.record
        record.progress, record.total = params.get("progress"), params.get("total")
        if params.get("message"):
            record.status_message = params["message"]
        now = time.time()
        if now - self.last_progress >= PROGRESS_EVERY:
            self.last_progress = now
            record.updated_at = now
            actor.save()
        if not self.modern and actor.channel is not None:  # the token stays valid for the task's life
            params = {**params, "_meta": tasks.related(record.task_id)}
            actor.channel.notify(jsonrpc.notification(spec.PROGRESS, params))

    def close_stream(self, stream: Any) -> None:
        return None

    async def request_client(self, stream: Any, method: str, params: dict | None, timeout: float,
                             key: str | None = None) -> Any:
        self.counter += 1
        key = key or f"{method.split('/')[0]}-{self.counter}"
        return await self.actor.ask(key, method, params, timeout)

    def start_task(self) -> None:
        """``ctx.run_as_task()`` inside a task: it is one already."""
        return None


class TaskActor:
    """One task (see the module doc)."""

    __slots__ = ("app", "storage", "record", "running", "answers", "channel", "notify_status", "closed",
                 "finished", "last_active")

    def __init__(self, app: Any, storage: Storage, record: TaskRecord | None = None,
                 channel: ClientChannel | None = None,
                 notify_status: Callable[[TaskRecord], None] | None = None):
        """``record``: a task being created (else it is read from storage)."""
        self.app = app
        self.storage = storage
        if record is None:
            raw = storage.get("task")
            if raw is None:
                raise LookupError("no such task")
            record = tasks.decode(raw)
        self.record = record
        self.running: asyncio.Task | None = None
        self.answers: dict[str, asyncio.Future] = {}
        self.channel = channel
        self.notify_status = notify_status
        self.closed = False
        #: Resolved when the task reaches a terminal status (2025-11-25 tasks/result waits on it).
        self.finished: asyncio.Future | None = None
        self.last_active = time.time()

    # -- durability ---------------------------------------------------------------------------

    def save(self) -> None:
        self.storage.put("task", tasks.encode(self.record))

    def _changed(self) -> None:
        """A status change: written, and told to whoever listens."""
        self.save()
        if self.record.terminal:
            if self.finished is not None and not self.finished.done():
                self.finished.set_result(None)
            self.storage.set_alarm(self.record.expires_at or time.time() + tasks.MAX_TTL_MS / 1000.0)
        if self.notify_status is not None:
            try:
                self.notify_status(self.record)
            except Exception:
                log.exception("status notification of task %s failed", self.record.task_id)

    async def create(self) -> None:
        """Store the new task and start it; returns once the record is committed."""
        now = time.time()
        record = self.record
        record.created_at = record.updated_at = now
        self.save()
        self.storage.set_alarm(now + HEARTBEAT)
        await self.storage.flush()
        self.start()

    # -- running -------------------------------------------------------------------------------

    def start(self) -> None:
        record = self.record
        record.attempts += 1
        host = TaskHost(self)
        params = {"name": record.tool, "arguments": record.arguments}
        if record.progress_token is not None:
            params["_meta"] = {"progressToken": record.progress_token}
        ctx = Context(host, record.task_id, params, None, record.principal)
        span = tracing.start(f"task {record.tool}", {
            "mcp.method.name": "tools/call", "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": record.tool,
            "mcp_actors.task.id": record.task_id, "mcp_actors.task.attempt": record.attempts}, task=True)
        self.running = asyncio.get_running_loop().create_task(self._run(ctx, span))  # inside its span
        tracing.leave(span)

    async def _run(self, ctx: Context, span: Any = None) -> None:
        record = self.record
        try:
            try:
                result = self.app.methods["tools/call"](ctx)
                if hasattr(result, "__await__"):
                    result = await result
            except ProtocolError as exc:
                error = {"code": exc.code, "message": exc.message}
                if exc.data is not UNSET:
                    error["data"] = exc.data
                if getattr(exc, "capabilities", None) and record.wire == tasks.WIRE_2026:
                    error = {"code": spec.MISSING_CLIENT_CAPABILITY, "message": exc.message,
                             "data": {"requiredCapabilities": exc.capabilities}}  # type: ignore[attr-defined]
                record.error = error
                tasks.move(record, tasks.FAILED, exc.message)
                self._changed()
                return
            record.result = result
            failed = bool(result.get("isError")) if isinstance(result, dict) else False
            if failed and record.wire == tasks.WIRE_2025:  # 2025-11-25: a tool error ends 'failed'
                tasks.move(record, tasks.FAILED, _text_of(result) or "the tool reported an error")
            else:  # 2026-07-28: 'failed' is for JSON-RPC errors only
                tasks.move(record, tasks.COMPLETED)
            record.input_requests = {}
            self._changed()
        except asyncio.CancelledError:
            if not self.closed and not record.terminal:
                tasks.move(record, tasks.CANCELLED, "Cancelled by the client")
                record.input_requests = {}
                self._changed()
            raise
        except Exception as exc:  # a fault of ours, not the tool's (tools' own errors are results)
            log.exception("task %s failed", record.task_id)
            record.error = {"code": spec.INTERNAL_ERROR, "message": f"Internal error: {exc}"}
            tasks.move(record, tasks.FAILED, "The server failed while running this task")
            self._changed()
        finally:
            self.running = None
            self.last_active = time.time()
            if span is not None:
                tracing.end(span, _error_type(record), {"mcp_actors.task.status": record.status})

    # -- input ------------------------------------------------------------------------------------

    async def ask(self, key: str, method: str, params: dict | None, timeout: float) -> Any:
        record = self.record
        answer = record.answers.get(key)
        if answer is not None:
            return answer
        question: dict[str, Any] = {"method": method}
        if params is not None:
            question["params"] = params
        if record.wire == tasks.WIRE_2025:
            if self.channel is None:
                raise ProtocolError(spec.INTERNAL_ERROR, "The task's session is gone; nobody can answer")
            tasks.move(record, tasks.INPUT_REQUIRED, f"Waiting for the client to answer {method}")
            self._changed()
            try:
                params = {**(params or {}), "_meta": tasks.related(record.task_id)}
                answer = await self.channel.request(method, params, timeout)
            finally:
                if tasks.move(record, tasks.WORKING):
                    self._changed()
            record.answers[key] = answer
            self.save()
            return answer
        record.input_requests[key] = question
        if key not in record.asked:
            record.asked.append(key)
        future = self.answers[key] = asyncio.get_running_loop().create_future()
        if not tasks.move(record, tasks.INPUT_REQUIRED, "Waiting for input (tasks/update)"):
            record.updated_at = time.time()
        self._changed()
        try:
            return await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            raise ProtocolError(spec.REQUEST_TIMEOUT, f"No answer to {method} within {timeout:g} s") from None
        finally:
            self.answers.pop(key, None)

    def update(self, responses: Any) -> None:
        """2026-07-28 ``tasks/update``: take the answers to open questions (others are
        ignored), written before the acknowledgement."""
        record = self.record
        if not isinstance(responses, dict):
            raise ProtocolError(spec.INVALID_PARAMS, "Invalid params: inputResponses must be an object")
        took = False
        for key, answer in responses.items():
            question = record.input_requests.get(key)
            if question is None or not modern.answer_fits(question.get("method", ""), answer):
                continue  # not open (unknown, answered, superseded) or not an answer: ignored
            del record.input_requests[key]
            record.answers[key] = answer
            took = True
            future = self.answers.get(key)
            if future is not None and not future.done():
                future.set_result(answer)
        if took:
            if not record.input_requests:
                tasks.move(record, tasks.WORKING)
            record.updated_at = time.time()
            self._changed()

    # -- ending ---------------------------------------------------------------------------------

    def cancel(self) -> None:
        """Cancel the task: it is ``cancelled`` at once, and its handler is stopped."""
        record = self.record
        if record.terminal:
            return
        tasks.move(record, tasks.CANCELLED, "Cancelled by the client")
        record.input_requests = {}
        self._changed()
        if self.running is not None:
            self.running.cancel()

    async def outcome(self) -> TaskRecord:
        """Wait until the task is over (2025-11-25 ``tasks/result`` blocks on this)."""
        if not self.record.terminal:
            if self.finished is None:
                self.finished = asyncio.get_running_loop().create_future()
            await asyncio.shield(self.finished)
        return self.record

    async def alarm(self, now: float | None = None) -> bool:
        """Heartbeat, restart detection, or expiry (module doc, rule 3). True: expired."""
        now = time.time() if now is None else now
        record = self.record
        if record.terminal:
            expires = record.expires_at
            if expires is not None and now >= expires:
                return True
            self.storage.set_alarm(expires if expires is not None else now + tasks.MAX_TTL_MS / 1000.0)
        elif self.running is not None:
            self.storage.set_alarm(now + HEARTBEAT)
        else:
            self.recover()
        await self.storage.flush()
        return False

    def recover(self) -> None:
        """The task is not over, yet no handler runs it here: the process that ran it died
        (a running task's actor never leaves memory, so a host calls this on waking one from
        storage, and the alarm catches any nobody asks about). Run it again from the start
        if its tool allows that (``rerun``), at most ``MAX_ATTEMPTS`` times; else fail it."""
        record = self.record
        if record.terminal or self.running is not None:
            return
        record.input_requests = {}
        if record.rerun and record.attempts < MAX_ATTEMPTS:
            log.warning("task %s: the process died while it ran; running it again", record.task_id)
            tasks.move(record, tasks.WORKING, "Running again after a restart")
            self.save()
            self.storage.set_alarm(time.time() + HEARTBEAT)
            self.start()
        else:
            record.error = {"code": spec.INTERNAL_ERROR, "message": RESTARTED}
            tasks.move(record, tasks.FAILED, RESTARTED)
            self._changed()

    def close(self) -> None:
        """The process is stopping: stop the handler without marking the task (after the
        restart, the alarm finds it was running and deals with it)."""
        self.closed = True
        if self.running is not None:
            self.running.cancel()

    def idle(self, now: float, after: float) -> bool:
        if self.record.terminal:
            after = min(after, FINISHED_IDLE)
        return self.running is None and not self.answers and now - self.last_active >= after

    def end(self) -> None:
        """Expired: delete the task and its result."""
        self.closed = True
        if self.running is not None:
            self.running.cancel()
        self.storage.delete_prefix("")
        self.storage.delete_alarm()


def _error_type(record: TaskRecord) -> str | None:
    """The conventions' ``error.type`` of a task's run: its JSON-RPC error code, or
    ``tool_error`` for a tool's error result (whichever status the wire gives it)."""
    if record.error:
        return str(record.error.get("code"))
    if isinstance(record.result, dict) and record.result.get("isError"):
        return "tool_error"
    return None


def _text_of(result: dict) -> str:
    for block in result.get("content") or ():
        if isinstance(block, dict) and block.get("type") == "text":
            return str(block.get("text", ""))[:500]
    return ""

