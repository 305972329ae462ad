"""The listen hub on Workers: one Durable Object holds every 2026-07-28 listen stream.

A ``subscriptions/listen`` request is forwarded to the Durable Object named
``HUB_OBJECT`` (in the ``SESSIONS`` namespace, under a name no session id can have), which
keeps its stream open in an ``engine.actors.listen_hub.ListenHub``. App announcements (a
list changed, a resource was updated) are made by handlers running anywhere: in the
Worker's stateless front, in a session's object, in a task's object; so are tasks' status
changes (``notifications/tasks``). Each isolate forwards its announcements to the hub
(:class:`Announcer`), which fans them out to the streams that asked. SSE streams cannot
hibernate, so the hub stays in memory while any is open; each idle one costs a small
record and a queue.

Whose I/O carries an announcement matters: one isolate may serve the Worker's stateless
requests and Durable Objects at once, and workerd refuses a request's I/O (or a wait on
it) from another request's context. So each request of the Worker, and each object, has
its own outbox (:func:`use_outbox`, a context variable that the tasks a handler starts
inherit), and :meth:`Announcer.drain` waits only for the current one.
"""

from __future__ import annotations

from contextvars import ContextVar

import msgspec

from internal import Outbox

HUB_OBJECT = "__listen-hub__"
#: The header of an announcement to the hub: APP (a list or resource change) or TASK.
ANNOUNCE_HEADER = "x-mcp-actors-announce"
APP, TASK = "app", "task"

_encode = msgspec.json.Encoder().encode
decode_announcement = msgspec.json.Decoder(tuple).decode

_outbox: ContextVar[Outbox | None] = ContextVar("mcp_actors_outbox", default=None)


def use_outbox(outbox: Outbox) -> None:
    """Announcements made from here on in this context (and tasks it starts) go by ``outbox``."""
    _outbox.set(outbox)


def _current() -> Outbox:
    outbox = _outbox.get()
    if outbox is None:
        outbox = Outbox()
        _outbox.set(outbox)
    return outbox


class Announcer:
    """Carries this isolate's announcements to the hub, in order; ``drain()`` waits until
    they have arrived."""

    def __init__(self, env):
        self.env = env

    def __call__(self, method: str, params: dict | None, uri: str | None) -> None:
        _current().post(self.env.SESSIONS, HUB_OBJECT, {ANNOUNCE_HEADER: APP}, _encode((method, params, uri)))

    def task(self, task_id: str, detailed: dict, owner: str = "") -> None:
        """A task's new state, for its owner's streams that follow it (``notifications/tasks``)."""
        _current().post(self.env.SESSIONS, HUB_OBJECT, {ANNOUNCE_HEADER: TASK}, _encode((task_id, detailed, owner)))

    async def drain(self) -> None:
        """Wait until this context's announcements have reached the hub."""
        outbox = _outbox.get()
        if outbox is not None:
            await outbox.drain()
