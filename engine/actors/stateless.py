"""One request of the stateless era (2026-07-28): the app's handler run with no session.

:class:`StatelessRequest` is the :class:`~engine.app.context.HandlerHost` of a single
request. It keeps nothing after the request, so it needs no actor and no storage: the
local server and the Worker's stateless front both run it in place.

- **The reply** is JSON unless the handler has something to say before it finishes: its
  first progress or log notification turns the reply into an SSE stream (no event ids:
  this era does not resume streams), which then carries its notifications and ends with
  the response. Closing that stream cancels the handler (2026-07-28 cancellation).
- **Questions to the client** (``ctx.elicit``, ``ctx.sample``, ``ctx.list_roots``) become
  an ``input_required`` result (basic/patterns/mrtr). The handler is run again when the
  client retries with ``inputResponses``; each question finds its answer by key, and the
  answers of earlier rounds come back sealed in ``requestState``
  (:mod:`engine.protocol.request_state`). Questions asked together (``asyncio.gather``)
  are sent together.
- **Logs** go out only at or above the level the request names in ``_meta`` (none
  without one); **progress** only with a ``progressToken``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable

from msgspec import UNSET

from ..app.context import CapabilityError, Context
from ..protocol import jsonrpc, modern, request_state, spec, sse, tasks
from ..protocol.jsonrpc import Message, ProtocolError
from ..protocol.auth import Principal, owner_of
from ..protocol.modern import Meta
from ..protocol.tasks import TaskRecord
from . import tracing
from .connection import Connection, Reply

log = logging.getLogger("engine")

#: Event-loop turns allowed after a first unanswered question, for questions asked at the
#: same time (``asyncio.gather``) to be asked too before the round ends.
_QUIESCE_TURNS = 4


class _Question:
    __slots__ = ("method", "params")

    def __init__(self, method: str, params: dict | None):
        self.method = method
        self.params = params

    def wire(self) -> dict:
        out: dict[str, Any] = {"method": self.method}
        if self.params is not None:
            out["params"] = self.params
        return out


def _discover(ctx: Context) -> dict:
    app = ctx.app
    result: dict[str, Any] = {"supportedVersions": list(spec.SUPPORTED_VERSIONS),
                              "capabilities": app.capabilities(modern=True)}
    if app.instructions:
        result["instructions"] = app.instructions
    return result


#: The tasks extension's methods (tasks/result and tasks/list are gone in 2026-07-28).
TASK_METHODS = frozenset({"tasks/get", "tasks/update", "tasks/cancel"})


def _task_method(ctx: Context) -> Any:  # pragma: no cover - StatelessRequest._tasks answers these
    raise ProtocolError(spec.METHOD_NOT_FOUND, "tasks are not served here")


#: The stateless era's own methods; the rest are the app's (less those the era removed).
MODERN_METHODS: dict[str, Callable[[Context], Any]] = {spec.DISCOVER: _discover,
                                                       **{m: _task_method for m in TASK_METHODS}}


class _StartTask(BaseException):
    """``ctx.run_as_task()`` reached: the synchronous part of a task tool is over. A
    BaseException, so a tool's own ``except Exception`` (and the tool-error wrapper) lets
    it through."""


class StatelessRequest:
    """The host of one 2026-07-28 request's handler (see the module doc)."""

    __slots__ = ("app", "msg", "meta", "key", "max_buffer", "conn", "answers", "asked", "asked_at", "counter",
                 "signal", "server_info", "directory", "pre_task", "principal", "owner")

    modern = True
    session_id = None
    task_id = None

    def __init__(self, app: Any, msg: Message, meta: Meta, key: bytes, max_buffer: int, directory: Any = None,
                 principal: Principal | None = None):
        self.directory = directory
        #: Who sent it (with authorization on): its requestState, tasks and results are bound to it.
        self.principal = principal
        self.owner = owner_of(principal)
        #: A task tool running its synchronous part (``input_first``): run_as_task ends it.
        self.pre_task: Any = None
        self.app = app
        self.msg = msg
        self.meta = meta
        self.key = key
        self.max_buffer = max_buffer
        self.conn: Connection | None = None  # the SSE stream, once there is one
        self.answers: dict = {}
        self.asked: dict[str, _Question] = {}
        self.asked_at: dict[str, _Question] = {}  # every question of this run, answered or not
        self.counter = 0
        self.signal: asyncio.Future | None = None

    # -- the HandlerHost port ------------------------------------------------------------------

    @property
    def protocol_version(self) -> str:
        return self.meta.version

    @property
    def client_info(self) -> dict:
        return self.meta.client_info or {}

    @property
    def client_capabilities(self) -> dict:
        return self.meta.capabilities

    def logs(self, level: str) -> bool:
        floor = self.meta.log_level
        return floor is not None and spec.LOG_SEVERITY.get(level, 0) >= spec.LOG_SEVERITY[floor]

    def emit(self, stream: Any, payload: bytes) -> None:
        if self.conn is None:
            self.conn = Connection(0, _no_flush, lambda conn: None, self.max_buffer)
            self._wake()
        self.conn.push(sse.data(payload))

    def progress(self, stream: Any, params: dict) -> None:
        self.emit(stream, jsonrpc.notification(spec.PROGRESS, params))

    def close_stream(self, stream: Any) -> None:
        return None  # nothing to resume in this era

    def start_task(self) -> None:
        if self.pre_task is not None:
            raise _StartTask()

    async def request_client(self, stream: Any, method: str, params: dict | None, timeout: float,
                             key: str | None = None) -> Any:
        self.counter += 1
        key = key or f"{method.split('/')[0]}-{self.counter}"
        question = _Question(method, params)
        self.asked_at[key] = question
        answer = self.answers.get(key)
        if answer is not None and modern.answer_fits(method, answer):
            return answer
        self.asked[key] = question  # unanswered (or answered wrongly): asked in this round's result
        self._wake()
        await asyncio.get_running_loop().create_future()  # the round ends here; never resolved

    def _wake(self) -> None:
        if self.signal is not None and not self.signal.done():
            self.signal.set_result(None)

    # -- running it ------------------------------------------------------------------------------

    def _binding(self) -> str:
        params = self.msg.params if self.msg.params is not UNSET else {}
        target = params.get("uri") if self.msg.method == "resources/read" else params.get("name")
        return request_state.binding(self.msg.method, target, params.get("arguments"), self.owner)

    def _load_answers(self, params: dict) -> None:
        """Earlier rounds' answers (sealed) and this round's (``inputResponses``)."""
        state = params.get("requestState")
        responses = params.get("inputResponses", UNSET)
        if state is not None:
            try:
                self.answers = request_state.open_state(self.key, state, self._binding(), time.time())
            except request_state.StateError as exc:
                raise ProtocolError(spec.INVALID_PARAMS, f"Invalid params: {exc}") from None
        if responses is UNSET:
            return
        if not isinstance(responses, dict):
            raise ProtocolError(spec.INVALID_PARAMS, "Invalid params: inputResponses must be an object of answers "
                                                     "keyed as inputRequests asked")
        self.answers = {**self.answers, **responses}

    def _input_required(self) -> bytes:
        """This round's end: the questions left, and the answers so far, sealed."""
        kept = {k: self.answers[k] for k, q in self.asked_at.items()
                if k in self.answers and k not in self.asked and modern.answer_fits(q.method, self.answers[k])}
        result = {"resultType": spec.RESULT_INPUT_REQUIRED,
                  "inputRequests": {k: q.wire() for k, q in self.asked.items()},
                  "requestState": request_state.seal(self.key, kept, self._binding(), time.time())}
        return self._payload(result)

    def _payload(self, result: Any) -> bytes:
        method = self.msg.method
        ttl = self.app.cache_ttl_ms
        # With authorization, what a result says may depend on who asked: only theirs to cache.
        scope = "private" if self.principal is not None else "public"
        return jsonrpc.response(self.msg.id, modern.finish(result, method, self.server_info, ttl, scope))  # type: ignore[arg-type]

    def _error(self, exc: Exception) -> tuple[int, bytes]:
        """A handler's exception as (status for a JSON reply, the error response)."""
        rid = self.msg.id
        if isinstance(exc, CapabilityError):
            err = modern.missing_capability(exc.capabilities, exc.message, self.msg)
            return err.status, err.body()
        if isinstance(exc, ProtocolError):
            code, data = exc.code, exc.data
            if code == spec.RESOURCE_NOT_FOUND:  # 2026-07-28 server/resources: -32602, not -32002
                code = spec.INVALID_PARAMS
            return spec.MODERN_ERROR_STATUS.get(code, 200), jsonrpc.error(rid, code, exc.message, data)  # type: ignore[arg-type]
        log.exception("handler for %s failed", self.msg.method, exc_info=exc)
        return 200, jsonrpc.error(rid, spec.INTERNAL_ERROR, f"Internal error: {exc}")  # type: ignore[arg-type]

    async def run(self) -> Reply:
        """Run the handler: a JSON reply if it finishes (or asks) before saying anything,
        else an SSE stream of what it says, ending with its response."""
        msg = self.msg
        method: str = msg.method  # type: ignore[assignment]
        handler = MODERN_METHODS.get(method) or (None if method in modern.REMOVED else self.app.methods.get(method))
        if handler is None:
            raise modern.method_not_found(method, msg)
        self.server_info = self.app.server_info()
        params = msg.params if msg.params is not UNSET else {}
        ctx = Context(self, msg.id, params, None, self.principal)  # type: ignore[arg-type]
        span = None
        try:
            if method in spec.MRTR_METHODS:
                self._load_answers(params)
            if method in TASK_METHODS or (method == "tools/call" and self.app.task_tools):
                task_reply = await self._tasks(method, params)
                if task_reply is not None:
                    return task_reply
            span = tracing.start(tracing.HANDLER)
            result = handler(ctx)
        except _StartTask:
            tracing.end(span)
            return await self._create_task(self.pre_task, params)
        except Exception as exc:
            tracing.end(span, type(exc).__name__)
            status, body = self._error(exc)
            return Reply(status, spec.CONTENT_JSON, body)
        if not hasattr(result, "__await__"):
            tracing.end(span)
            return Reply(200, spec.CONTENT_JSON, self._payload(result))
        loop = asyncio.get_running_loop()
        task = loop.create_task(self._finish(result))  # inside the span
        tracing.outlive(span, task)
        self.signal = loop.create_future()
        await asyncio.wait((task, self.signal), return_when=asyncio.FIRST_COMPLETED)
        if self.conn is None and self.asked:
            await self._quiesce(task)
        if self.conn is None:  # finished, or asked, before saying anything: one JSON reply
            if task.done():
                status, body = task.result()
                return Reply(status, spec.CONTENT_JSON, body)
            task.cancel()
            return Reply(200, spec.CONTENT_JSON, self._input_required())
        conn = self.conn
        conn.on_detach = lambda c: task.cancel()  # the client closed the stream: cancellation
        task.add_done_callback(lambda t: self._stream_end(t, conn))
        self.signal = loop.create_future()
        self.signal.add_done_callback(lambda f: self._asked_while_streaming(task))
        return Reply(200, spec.CONTENT_SSE, b"", conn)

    async def _finish(self, awaitable: Any) -> tuple[int, bytes]:
        try:
            return 200, self._payload(await awaitable)
        except _StartTask:
            reply = await self._create_task(self.pre_task, self.msg.params)  # type: ignore[arg-type]
            return reply.status, reply.body
        except Exception as exc:
            return self._error(exc)

    # -- tasks (the io.modelcontextprotocol/tasks extension) --------------------------------------

    async def _tasks(self, method: str, params: dict) -> Reply | None:
        """Tasks' part of a request: a reply, or None to go on as a plain request."""
        declared = tasks.declares_extension(self.meta.capabilities)
        if method == "tools/call":
            tool = self.app.tools.get(params.get("name"))
            if tool is None or tool.task == tasks.FORBIDDEN:
                return None  # a legacy params.task, if any, is ignored
            if not declared:
                if tool.task == tasks.REQUIRED:
                    raise CapabilityError(spec.INVALID_REQUEST, f"run {tool.name} (it runs only as a task)",
                                          tasks.REQUIRED_CAPABILITY)
                return None
            if tool.input_first:
                self.pre_task = tool  # run its synchronous part; run_as_task() starts the task
                return None
            return await self._create_task(tool, params)
        if not declared:
            raise CapabilityError(spec.INVALID_REQUEST, f"use {method} (declare the tasks extension)",
                                  tasks.REQUIRED_CAPABILITY)
        if self.directory is None:
            raise ProtocolError(spec.METHOD_NOT_FOUND, f"Method not found: {method!r} (no tasks here)")
        task_id = tasks.task_id_param(params)
        if method == "tasks/get":
            record = await self.directory.find_task(task_id, self.owner)
        elif method == "tasks/update":
            record = await self.directory.update_task(task_id, self.owner, params.get("inputResponses"))
        else:
            record = await self.directory.cancel_task(task_id, self.owner)
        if record is None:
            raise tasks.not_found(task_id)
        if method == "tasks/get":
            return Reply(200, spec.CONTENT_JSON, self._payload(tasks.task_2026(record, detailed=True)))
        return Reply(200, spec.CONTENT_JSON, self._payload({}))  # update and cancel: an empty acknowledgement

    async def _create_task(self, tool: Any, params: dict) -> Reply:
        """Start ``tool`` as a durable task (with the answers its synchronous part got) and
        announce it: after the task is stored, so a tasks/get right after finds it."""
        if self.directory is None:
            raise ProtocolError(spec.INTERNAL_ERROR, "Tasks are not available on this server")
        used = {k: self.answers[k] for k, q in self.asked_at.items()
                if k in self.answers and modern.answer_fits(q.method, self.answers[k])}
        arguments = params.get("arguments")
        record = TaskRecord(task_id=self.directory.new_task_id(), wire=tasks.WIRE_2026, tool=tool.name,
                            arguments=arguments if isinstance(arguments, dict) else {}, answers=used,
                            capabilities=self.meta.capabilities, rerun=tool.rerun, owner=self.owner,
                            principal=self.principal)
        record = await self.directory.create_task(record)
        return Reply(200, spec.CONTENT_JSON, jsonrpc.response(self.msg.id, tasks.created(record)))  # type: ignore[arg-type]

    async def _quiesce(self, task: asyncio.Task) -> None:
        """Let questions asked at the same time join the first one."""
        for _ in range(_QUIESCE_TURNS):
            if task.done():
                return
            await asyncio.sleep(0)

    def _asked_while_streaming(self, task: asyncio.Task) -> None:
        if self.asked and not task.done():
            asyncio.get_running_loop().create_task(self._end_round(task))

    async def _end_round(self, task: asyncio.Task) -> None:
        await self._quiesce(task)
        if not task.done():
            task.cancel()  # _stream_end sends the input_required result

    def _stream_end(self, task: asyncio.Task, conn: Connection) -> None:
        if task.cancelled():
            if self.asked and not conn.closed:
                conn.push(sse.data(self._input_required()))
        else:
            conn.push(sse.data(task.result()[1]))
        conn.close()


async def _no_flush() -> None:
    return None


async def serve(app: Any, msg: Message, meta: Meta, key: bytes, max_buffer: int, directory: Any = None,
                principal: Principal | None = None) -> Reply:
    """Serve one admitted 2026-07-28 request (see :func:`engine.protocol.modern.check`);
    ``directory`` is where its tasks live (a TaskDirectory); ``principal``: who sent it."""
    return await StatelessRequest(app, msg, meta, key, max_buffer, directory, principal).run()

