"""``subscriptions/listen`` streams (2026-07-28 basic/patterns/subscriptions), and the app's
announcements fanned out to them.

A listen request asks for some notifications (``toolsListChanged``, ``promptsListChanged``,
``resourcesListChanged``, ``resourceSubscriptions``); its response is an SSE stream that
opens with the acknowledgement (the filter honoured) and then carries each matching
notification, tagged with the subscription's id (the listen request's own id). The hub
holds every open stream: one in the local server's process, one per app in a Durable
Object on Workers. An idle listener is a small record and a bounded queue; an
announcement reaches only the listeners that asked for it (indexes by kind and by URI).
When the server stops, each stream gets the graceful end (the listen request's result).
"""

from __future__ import annotations

from typing import Any

from ..app.context import CapabilityError
from ..protocol import jsonrpc, spec, sse, tasks
from ..protocol.jsonrpc import Message, ProtocolError
from .connection import Connection, Reply

#: Filter fields and the notification each delivers.
KINDS = {
    "toolsListChanged": spec.TOOLS_LIST_CHANGED,
    "promptsListChanged": spec.PROMPTS_LIST_CHANGED,
    "resourcesListChanged": spec.RESOURCES_LIST_CHANGED,
}
_BY_METHOD = {method: field for field, method in KINDS.items()}


class Listener:
    __slots__ = ("sub_id", "tag", "fields", "uris", "task_ids", "conn", "owner")

    def __init__(self, sub_id: Any, fields: tuple[str, ...], uris: tuple[str, ...], conn: Connection,
                 task_ids: tuple[str, ...] = (), owner: str = ""):
        self.sub_id = sub_id
        #: The principal the stream belongs to: it hears only of that principal's tasks.
        self.owner = owner
        #: The ``_meta`` every notification of this stream carries.
        self.tag = {spec.META_SUBSCRIPTION_ID: sub_id}
        self.fields = fields
        self.uris = uris
        self.task_ids = task_ids
        self.conn = conn


async def _no_flush() -> None:
    return None


def _ids(value: Any, field: str, limit: int, max_chars: int) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(u, str) and len(u) <= max_chars for u in value):
        raise ProtocolError(spec.INVALID_PARAMS, f"Invalid params: notifications.{field} must be a list of strings "
                                                 f"of at most {max_chars} characters")
    if len(value) > limit:
        raise ProtocolError(spec.INVALID_PARAMS, f"Invalid params: at most {limit} {field} per listen request")
    return list(dict.fromkeys(value))


def parse_filter(params: dict, max_uris: int) -> tuple[dict, tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """The filter a listen request asks for: (the honoured filter to acknowledge, the list
    kinds, the resource URIs, the task ids). Raises ProtocolError (-32602) for a malformed
    one, and CapabilityError (-32021) for task ids without the tasks extension."""
    wanted = params.get("notifications")
    if not isinstance(wanted, dict):
        raise ProtocolError(spec.INVALID_PARAMS, "Invalid params: subscriptions/listen needs 'notifications', "
                                                 "an object saying which notifications to send")
    honoured: dict[str, Any] = {}
    fields = []
    for field in KINDS:
        value = wanted.get(field)
        if value is None:
            continue
        if not isinstance(value, bool):
            raise ProtocolError(spec.INVALID_PARAMS, f"Invalid params: notifications.{field} must be a boolean")
        if value:
            honoured[field] = True
            fields.append(field)
    uris = wanted.get("resourceSubscriptions")
    if uris is not None:
        uris = honoured["resourceSubscriptions"] = _ids(uris, "resourceSubscriptions", max_uris, spec.MAX_URI_CHARS)
    task_ids = wanted.get("taskIds")
    if task_ids is not None:
        meta = params.get("_meta") if isinstance(params.get("_meta"), dict) else {}
        if not tasks.declares_extension(meta.get(spec.META_CLIENT_CAPABILITIES)):
            raise CapabilityError(spec.INVALID_REQUEST, "follow tasks (declare the tasks extension)",
                                  tasks.REQUIRED_CAPABILITY)
        task_ids = honoured["taskIds"] = _ids(task_ids, "taskIds", max_uris, spec.MAX_ID_CHARS)
    return honoured, tuple(fields), tuple(uris or ()), tuple(task_ids or ())


class ListenHub:
    """Every open listen stream of one server (or one hub Durable Object)."""

    __slots__ = ("max_buffer", "max_uris", "listeners", "by_field", "by_uri", "by_task")

    def __init__(self, max_buffer: int, max_uris: int):
        self.max_buffer = max_buffer
        self.max_uris = max_uris
        self.listeners: set[Listener] = set()
        self.by_field: dict[str, set[Listener]] = {field: set() for field in KINDS}
        self.by_uri: dict[str, set[Listener]] = {}
        self.by_task: dict[str, set[Listener]] = {}

    def listen(self, msg: Message, owner: str = "") -> Reply:
        """Open a stream for a checked ``subscriptions/listen`` request: its first event is
        the acknowledgement; the stream then waits for announcements. ``owner``: whose it is
        (``auth.owner_of`` of the request's principal)."""
        params = msg.params if isinstance(msg.params, dict) else {}
        honoured, fields, uris, task_ids = parse_filter(params, self.max_uris)
        listener = Listener(msg.id, fields, uris, None, task_ids, owner)  # type: ignore[arg-type]
        conn = listener.conn = Connection(0, _no_flush, lambda _: self._gone(listener), self.max_buffer)
        self.listeners.add(listener)
        for field in fields:
            self.by_field[field].add(listener)
        for uri in uris:
            self.by_uri.setdefault(uri, set()).add(listener)
        for task_id in task_ids:
            self.by_task.setdefault(task_id, set()).add(listener)
        ack = jsonrpc.notification(spec.ACKNOWLEDGED, {"_meta": listener.tag, "notifications": honoured})
        return Reply(200, spec.CONTENT_SSE, sse.data(ack), conn)

    def _gone(self, listener: Listener) -> None:
        """A listen stream ended (its client closed it, or it overflowed): forget it."""
        if listener not in self.listeners:
            return
        self.listeners.discard(listener)
        for field in listener.fields:
            self.by_field[field].discard(listener)
        for index, keys in ((self.by_uri, listener.uris), (self.by_task, listener.task_ids)):
            for key in keys:
                subscribers = index.get(key)
                if subscribers is not None:
                    subscribers.discard(listener)
                    if not subscribers:
                        del index[key]

    def announce(self, method: str, params: dict | None, uri: str | None) -> int:
        """Send an app announcement to the streams that asked for it; returns how many."""
        if uri is not None:
            targets = self.by_uri.get(uri, ())
        else:
            field = _BY_METHOD.get(method)
            targets = self.by_field.get(field, ()) if field else ()
        sent = 0
        for listener in list(targets):
            body = {**(params or {}), "_meta": listener.tag}
            listener.conn.push(sse.data(jsonrpc.notification(method, body)))
            sent += 1
        return sent

    def announce_task(self, task_id: str, detailed: dict, owner: str = "") -> int:
        """A task's new state (``notifications/tasks``: what tasks/get would answer) to the
        streams following it that belong to the task's owner."""
        sent = 0
        for listener in list(self.by_task.get(task_id, ())):
            if listener.owner != owner:
                continue
            body = {**detailed, "_meta": listener.tag}
            listener.conn.push(sse.data(jsonrpc.notification(tasks.STATUS_NOTIFICATION_2026, body)))
            sent += 1
        return sent

    def close_all(self) -> None:
        """The server is stopping: each stream ends gracefully with its request's result."""
        for listener in list(self.listeners):
            result = {"resultType": spec.RESULT_COMPLETE, "_meta": listener.tag}
            listener.conn.push(sse.data(jsonrpc.response(listener.sub_id, result)))
            listener.conn.close()
