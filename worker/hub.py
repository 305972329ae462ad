"""The listen hub on Workers: one Durable Object holds every 2026-07-28 listen stream.

A ``subscriptions/listen`` request is forwarded to the Durable Object named
``HUB_OBJECT`` (in the ``SESSIONS`` namespace, under a name no session id can have), which
keeps its stream open in an ``engine.actors.listen_hub.ListenHub``. App announcements (a
list changed, a resource was updated) are made by handlers running anywhere: in the
Worker's stateless front, or in a session's object. Each isolate forwards its app's
announcements to the hub (:class:`Announcer`), which fans them out to the streams that
asked. SSE streams cannot hibernate, so the hub stays in memory while any is open; each
idle one costs a small record and a queue.
"""

from __future__ import annotations

import asyncio

import msgspec

HUB_OBJECT = "__listen-hub__"
ANNOUNCE_HEADER = "x-mcp-actors-announce"

_encode = msgspec.json.Encoder().encode
decode_announcement = msgspec.json.Decoder(tuple).decode


class Announcer:
    """Carries this isolate's announcements to the hub; :meth:`drain` waits until they
    have arrived (a request that announced awaits it before it answers)."""

    def __init__(self, env):
        self.env = env
        self.pending: list[asyncio.Task] = []

    def __call__(self, method: str, params: dict | None, uri: str | None) -> None:
        body = _encode((method, params, uri))
        stub = self.env.SESSIONS.getByName(HUB_OBJECT)
        self.pending.append(asyncio.get_running_loop().create_task(
            stub.fetch("https://hub.internal/", method="POST", headers={ANNOUNCE_HEADER: "1"}, body=body)))

    async def drain(self) -> None:
        pending, self.pending = self.pending, []
        for task in pending:
            try:
                await task
            except Exception:  # the hub's trouble is not this request's
                pass
