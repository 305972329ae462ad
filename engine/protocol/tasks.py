"""Tasks: long-running work as a durable state machine, and its two wires.

Sans-IO: the task's record (:class:`TaskRecord`), the status transitions, and how a
record reads on each wire:

- **2025-11-25** (experimental, SEP-1686; session era): the client opts in per request
  with ``params.task``; the result of creating is ``{"task": Task}``; ``tasks/get`` and
  ``tasks/cancel`` answer the flat task; the payload comes from the blocking
  ``tasks/result``; ``tasks/list`` lists the session's tasks; fields ``ttl`` and
  ``pollInterval``; a tool result with ``isError`` ends ``failed``.
- **2026-07-28** (the ``io.modelcontextprotocol/tasks`` extension, SEP-2663): the client
  declares the extension in each request's ``_meta`` and the server decides; creating
  answers a flat task with ``resultType: "task"``; ``tasks/get`` inlines ``result``,
  ``error`` or ``inputRequests``; ``tasks/update`` answers input requests; ``tasks/cancel``
  is a cooperative, idempotent acknowledgement; fields ``ttlMs`` and ``pollIntervalMs``;
  ``failed`` only for a JSON-RPC error (a tool's ``isError`` result is ``completed``).

Statuses: ``working`` -> ``input_required`` | ``completed`` | ``failed`` | ``cancelled``;
``input_required`` -> ``working`` | the three terminal ones; terminal statuses never change.
"""

from __future__ import annotations

import secrets
import time
from typing import Any, Union

import msgspec

from . import spec
from .auth import Principal
from .jsonrpc import ProtocolError

#: The extension's identifier (2026-07-28 extensions/tasks).
EXTENSION = "io.modelcontextprotocol/tasks"
#: ``_meta`` key tying a message to its task on the 2025-11-25 wire.
RELATED_TASK = "io.modelcontextprotocol/related-task"

WIRE_2025 = "2025-11-25"
WIRE_2026 = "2026-07-28"

WORKING, INPUT_REQUIRED, COMPLETED, FAILED, CANCELLED = "working", "input_required", "completed", "failed", "cancelled"
TERMINAL = frozenset({COMPLETED, FAILED, CANCELLED})
_NEXT = {WORKING: {INPUT_REQUIRED} | TERMINAL, INPUT_REQUIRED: {WORKING} | TERMINAL}

#: Tool task support, as a tool declares it (2025-11-25 ``execution.taskSupport``).
FORBIDDEN, OPTIONAL, REQUIRED = "forbidden", "optional", "required"

#: Defaults: how long a finished task keeps its result, how often clients should poll.
DEFAULT_TTL_MS = 60 * 60 * 1000
MAX_TTL_MS = 24 * 60 * 60 * 1000
POLL_INTERVAL_MS = 500

STATUS_NOTIFICATION_2025 = "notifications/tasks/status"
STATUS_NOTIFICATION_2026 = "notifications/tasks"


class TaskRecord(msgspec.Struct, kw_only=True):
    """What is durable about a task (stored under ``task`` in its actor's namespace)."""

    task_id: str
    wire: str
    #: Who may see it: the session that made it (2025-11-25), else the caller's principal
    #: (``auth.owner_of``), or "" without authorization.
    owner: str = ""
    status: str = WORKING
    status_message: str | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    ttl_ms: int | None = DEFAULT_TTL_MS
    #: What to run: the tool and its arguments, the answers it already had (2026-07-28 input
    #: given before the task began), the progress token and the client's capabilities.
    tool: str = ""
    arguments: dict = {}
    answers: dict = {}
    progress_token: Union[int, str, None] = None
    capabilities: dict = {}
    #: The outcome: the tool's result (a CallToolResult), or a JSON-RPC error object.
    result: dict | None = None
    error: dict | None = None
    #: 2026-07-28: input requests not yet answered, by key (each key used once ever).
    input_requests: dict = {}
    #: Keys ever asked (so an answer to a superseded key is ignored).
    asked: list[str] = []
    progress: float | None = None
    total: float | None = None
    #: The tool may be run again from the start if the process died while it ran.
    rerun: bool = False
    attempts: int = 0
    #: Who created it (with authorization on): the handler's ``ctx.principal``.
    principal: Principal | None = None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def expires_at(self) -> float | None:
        return None if self.ttl_ms is None else self.created_at + self.ttl_ms / 1000.0


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(TaskRecord).decode


def encode(record: TaskRecord) -> bytes:
    return _encode(record)


def decode(raw: bytes) -> TaskRecord:
    return _decode(raw)


def new_task_id() -> str:
    """Unguessable: 192 random bits (the spec asks for at least 128 without an auth context)."""
    return secrets.token_urlsafe(24)


def ttl_for(requested: Any) -> int:
    """The TTL a task gets: the client's (2025-11-25 ``task.ttl``) within our bounds."""
    if isinstance(requested, int) and not isinstance(requested, bool) and requested > 0:
        return min(requested, MAX_TTL_MS)
    return DEFAULT_TTL_MS


def move(record: TaskRecord, status: str, message: str | None = None, now: float | None = None) -> bool:
    """Apply a transition if it is allowed (terminal statuses never change); True if applied."""
    if record.status == status:
        if message is not None:
            record.status_message = message
        return False
    if status not in _NEXT.get(record.status, ()):
        return False
    record.status = status
    record.status_message = message
    record.updated_at = time.time() if now is None else now
    return True


def iso(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at)) + f".{int(at * 1000) % 1000:03d}Z"


# -- the two wires -----------------------------------------------------------------------------


def task_2025(record: TaskRecord) -> dict:
    """The Task object of 2025-11-25 (tasks/get, tasks/cancel, tasks/list, the create result)."""
    out: dict[str, Any] = {"taskId": record.task_id, "status": record.status, "createdAt": iso(record.created_at),
                           "lastUpdatedAt": iso(record.updated_at), "ttl": record.ttl_ms,
                           "pollInterval": POLL_INTERVAL_MS}
    if record.status_message:
        out["statusMessage"] = record.status_message
    return out


def task_2026(record: TaskRecord, detailed: bool) -> dict:
    """The Task of the 2026-07-28 extension; ``detailed`` (tasks/get, notifications/tasks)
    inlines what its status carries: the result, the error, or the open input requests."""
    out: dict[str, Any] = {"taskId": record.task_id, "status": record.status, "createdAt": iso(record.created_at),
                           "lastUpdatedAt": iso(record.updated_at), "ttlMs": record.ttl_ms,
                           "pollIntervalMs": POLL_INTERVAL_MS}
    if record.status_message:
        out["statusMessage"] = record.status_message
    if detailed:
        if record.status == COMPLETED and record.result is not None:
            out["result"] = record.result
        elif record.status == FAILED:
            out["error"] = record.error or {"code": spec.INTERNAL_ERROR, "message": record.status_message or "failed"}
        elif record.status == INPUT_REQUIRED:
            out["inputRequests"] = record.input_requests
    return out


def created(record: TaskRecord) -> dict:
    """The result that announces a task, on its wire."""
    if record.wire == WIRE_2026:
        return {**task_2026(record, detailed=False), "resultType": "task"}
    return {"task": task_2025(record)}


def related(task_id: str) -> dict:
    return {RELATED_TASK: {"taskId": task_id}}


# -- errors ---------------------------------------------------------------------------------------


def not_found(task_id: Any) -> ProtocolError:
    return ProtocolError(spec.INVALID_PARAMS, f"Task not found: {str(task_id)[:80]!r} (unknown, expired, or "
                                              "not yours)")


def already_terminal(record: TaskRecord) -> ProtocolError:
    return ProtocolError(spec.INVALID_PARAMS,
                         f"Cannot cancel task: already in terminal status {record.status!r}")


def task_id_param(params: dict) -> str:
    task_id = params.get("taskId")
    if not isinstance(task_id, str) or not task_id or len(task_id) > spec.MAX_ID_CHARS:
        raise ProtocolError(spec.INVALID_PARAMS, "Invalid params: 'taskId' must be a task id string")
    return task_id


def declares_extension(capabilities: Any) -> bool:
    """Whether a 2026-07-28 request's client capabilities declare the tasks extension."""
    if not isinstance(capabilities, dict):
        return False
    extensions = capabilities.get("extensions")
    return isinstance(extensions, dict) and isinstance(extensions.get(EXTENSION), dict)


REQUIRED_CAPABILITY = {"extensions": {EXTENSION: {}}}
