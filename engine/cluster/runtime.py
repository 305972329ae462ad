"""The cluster's runtime: the local runtime, with its actors' homes in a shared database.

Any number of engine processes share one PostgreSQL database. Each actor (a session, a
task) is active in exactly one of them at a time, and any of them can be asked for it:

- **Placement.** An actor is held by the process that created it or last woke it
  (``owners``, with an epoch that fences every commit, :mod:`engine.cluster.store`). An
  actor that leaves memory is released with its last commit, so the next process that
  needs it takes it over; one whose holder stopped beating is taken over after the lease
  (:mod:`engine.cluster.membership`).
- **Routing.** A request for a session held elsewhere is admitted here (HTTP rules, token)
  and relayed to its holder's internal endpoint (:mod:`engine.cluster.internal`); the
  reply, streams included, flows back. Calls to tasks and from tasks to their sessions go
  the same way. A holder that stops answering is waited for until its lease runs out, then
  its actor is taken over here; a request it may have applied answers 503 (-32803).
- **Notifications.** The app's announcements and tasks' states reach every process
  (:mod:`engine.cluster.bus`).
- **Leaving.** :meth:`ClusterRuntime.drain` hands actors over before the process exits:
  idle ones at once, busy ones as their work ends (within a bound); then every claim is
  released, so nobody waits for a lease.

The 2026-07-28 era needs none of this: any process answers it (``requestState`` is sealed
with the cluster's one secret).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import msgspec

from ..actors import announcements, links, tracing
from ..actors.front import ActorElsewhere, Front, Response
from ..actors.session_actor import Lifetimes
from ..app.application import App
from ..local.runtime import TASK_PREFIX, LocalRuntime
from ..protocol import http, request_state
from ..protocol.http import HttpConfig
from ..protocol.router import Route
from ..protocol.storage import Storage, StoreUnavailable
from ..protocol.tasks import TaskRecord
from . import bus, internal, peer_http
from .membership import Membership
from .store import Holder, PgStorage, PostgresBackend

log = logging.getLogger("engine")

#: Actors whose holder this process remembers (so a request for one is sent on at once).
HINTS = 100_000
#: Response headers of a peer's reply that belong to its hop, not to the client's.
_HOP = frozenset({b"transfer-encoding", b"connection", b"keep-alive", b"date", b"server"})

_encode = msgspec.json.Encoder().encode


class HeldElsewhere(ActorElsewhere):
    """A live process holds the actor (``holder``)."""

    def __init__(self, relay: Any, holder: Holder):
        super().__init__(relay)
        self.holder = holder


class RemoteStream:
    """A peer's streamed reply, as the front's pump reads a Connection: its chunks, until
    it ends, the connection breaks, or the peer stops beating."""

    __slots__ = ("reply", "alive", "check")

    def __init__(self, reply: peer_http.Reply, alive: Any, check: float):
        self.reply = reply
        self.alive = alive
        self.check = check

    async def next(self, keepalive: float | None = None) -> bytes | None:
        while True:
            try:
                return await self.reply.next(self.check)
            except asyncio.TimeoutError:
                if not self.alive():
                    self.reply.conn.abort()
                    return None  # its client resumes with Last-Event-ID, from whoever takes over
            except ConnectionError:
                return None

    def close(self, poll: bool = False) -> None:
        self.reply.conn.abort()  # the client went away: so does the relayed request

    def detach(self) -> None:
        self.reply.close()


class ClusterRuntime(LocalRuntime):
    def __init__(self, app: App, config: HttpConfig | None, backend: PostgresBackend, lifetimes: Lifetimes | None,
                 *, url: str, lease: float, drain_timeout: float = 10.0, port: Any = lambda: 0):
        """``url``: where the other processes reach this one (its internal endpoint, whose
        port ``port()`` gives); ``lease``: seconds without a heartbeat after which a
        process's actors may be taken over; ``drain_timeout``: how long :meth:`drain` waits
        for running work."""
        self.pg = backend
        super().__init__(app, config, backend, lifetimes)  # type: ignore[arg-type]
        self.url = url
        self.lease = lease
        self.drain_timeout = drain_timeout
        self.port = port
        backend.on_lost = self._lost
        self.membership = Membership(backend, url, lease, self._counted)
        self.bus = bus.Bus(backend, self.announcements.keep, self._heard, self.hub.announce_task,
                           lambda: list(self.hub.by_task), lambda: self.announcements.last)
        self.client = peer_http.PeerClient(self.lifetimes.max_buffer)
        self.key = b""  # signs calls between processes (from the cluster's secret, at start)
        self.hints: dict[str, Holder] = {}
        self.configured_secret = ""
        self.draining = False
        self.drain_deadline = 0.0
        self.relayed = 0  # counters, for tests and operators
        self.claims = 0

    # -- placement --------------------------------------------------------------------------

    def _count_sessions(self) -> int:
        return 0  # counted at start, and now and then by the membership's janitor

    def _counted(self, sessions: int) -> None:
        self.sessions = sessions

    def _announcement_log(self) -> announcements.Announcements:
        return announcements.Announcements(None)  # the log is the database's; this is its copy

    def _fresh(self, name: str) -> Storage:
        return self.pg.fresh(name)

    async def _open(self, name: str, require: str) -> Storage | None:
        hint = self.hints.get(name)
        if hint is not None and self.membership.alive(hint.node):
            raise self._elsewhere(name, hint)
        found = await self.pg.claim(name, require)
        if isinstance(found, Holder):
            self._hint(name, found)
            raise self._elsewhere(name, found)
        self.hints.pop(name, None)
        if found is not None:
            self.claims += 1
        return found

    def _left(self, storage: Storage) -> None:
        storage.release()  # type: ignore[attr-defined]

    def _dropped(self, name: str, storage: Storage) -> None:
        storage.drop()  # type: ignore[attr-defined]

    async def _due_alarms(self, now: float) -> list[tuple[str, float]]:
        return await self.pg.due_alarms(now)

    def _next_alarm(self) -> float | None:
        return None  # the database is asked every tick

    def _skip_alarm(self, exc: Exception) -> bool:
        return isinstance(exc, (ActorElsewhere, StoreUnavailable))

    def _retry_alarm(self, name: str, storage: Storage | None, at: float) -> None:
        if storage is not None:
            storage.set_alarm(at)
        else:
            asyncio.get_running_loop().create_task(self._set_alarm_now(name, at))

    async def _set_alarm_now(self, name: str, at: float) -> None:
        try:
            await self.pg.set_alarm_now(name, at)
        except StoreUnavailable:
            pass  # it stays due, and is tried again

    def _publish(self, method: str, params: dict | None, uri: str | None) -> None:
        self.bus.publish(method, params, uri)

    def _heard(self, seq: int, method: str, params: dict | None, uri: str | None) -> None:
        self.announcements.add(seq, method, params, uri)
        self.hear(seq, method, params, uri)

    def task_status(self, record: TaskRecord, storage: Storage) -> None:
        storage.notify(bus.TASKS, bus.Bus.task_payload(record))  # type: ignore[attr-defined]

    def secret(self, configured: str = "") -> str | None:
        self.configured_secret = configured
        return configured or None

    async def started_secret(self, configured: str = "") -> str:
        return configured or await self.pg.secret()

    def internal_endpoint(self, front: Front) -> Any:
        self.front = front
        return internal.Internal(self, front, self.port)

    # -- addressing -------------------------------------------------------------------------

    async def _lease(self) -> None:
        if not self.membership.ok():
            await self.membership.renew()

    async def get(self, session_id: str) -> Any:
        await self._lease()
        return await super().get(session_id)

    async def _task(self, task_id: str, record: TaskRecord | None = None) -> Any:
        await self._lease()
        return await super()._task(task_id, record)

    async def get_here(self, session_id: str) -> Any:
        """The session's actor for a call from another process (ActorElsewhere if it moved
        on). A draining process takes no actor over for it: the caller may."""
        if self.draining:
            await self._until_let_go(session_id)
        return await self.get(session_id)

    async def _until_let_go(self, session_id: str) -> None:
        """While draining, a new request for a session held here waits for its running work to
        end and the session to be let go, then is refused with "moved" (421): the caller takes
        the session over and serves the request itself. So the drain ends, instead of new work
        arriving as fast as the old finishes. An answer the session waits for (a client's reply
        to its request) is served here at once: the running work needs it to end."""
        actor = held = self.actors.get(session_id)
        while actor is not None and not actor.waiters and time.monotonic() < self.drain_deadline:
            await asyncio.sleep(0.02)
            actor = self.actors.get(session_id)
        if actor is None:
            if held is not None:
                with contextlib.suppress(StoreUnavailable):
                    await self.pg.settle()  # its release is committed before the caller claims it
            raise HeldElsewhere(None, Holder("", ""))

    def _hint(self, name: str, holder: Holder) -> None:
        if name not in self.hints and len(self.hints) >= HINTS:
            del self.hints[next(iter(self.hints))]
        self.hints[name] = holder

    def _elsewhere(self, name: str, holder: Holder) -> HeldElsewhere:
        async def relay(r: Route, body: bytes) -> Response | None:
            return await self._relay(name, holder, r, body)

        return HeldElsewhere(relay, holder)

    async def _unreachable(self, name: str, holder: Holder) -> None:
        """A holder that does not answer: forget the hint, and wait (within its lease) until
        the database may let this process take the actor over."""
        self.hints.pop(name, None)
        wait = self.membership.expires_in(holder.node)
        if wait > 0:
            await asyncio.sleep(min(wait + 0.05, self.lease))

    def _alive(self, holder: Holder) -> Any:
        return lambda: self.membership.alive(holder.node)

    async def _call(self, name: str, holder: Holder, path: str, headers: dict[str, str], body: bytes
                    ) -> peer_http.Reply | None:
        """A signed call to the holder of ``name``; None when it no longer holds it (ask
        again). Raises PeerUnreachable(sent=True) when it may have received the call."""
        try:
            with tracing.span(tracing.FORWARD, {"server.address": holder.url, "mcp_actors.call": path}, "client"):
                tracing.inject(headers)  # the holder's span of this call joins the request's trace
                peer_http.sign(self.key, path, headers, body)
                reply = await self.client.post(holder.url, path, headers, body, self._alive(holder), self.lease / 5)
        except peer_http.PeerUnreachable as exc:
            if exc.sent:
                self.hints.pop(name, None)
                raise
            await self._unreachable(name, holder)
            return None
        if reply.status == 421 and reply.header(internal.MOVED_HEADER.encode()):
            await reply.read()
            reply.close()
            self.hints.pop(name, None)
            await asyncio.sleep(0.02)  # it is letting go (draining): its release is about to commit
            return None
        return reply

    async def _relay(self, name: str, holder: Holder, r: Route, body: bytes) -> Response | None:
        """Send a session's request to its holder; its reply, as this front would answer."""
        headers = {internal.ROUTE_HEADER: _encode(r).decode("latin-1")}
        try:
            reply = await self._call(name, holder, internal.FORWARD, headers, body)
        except peer_http.PeerUnreachable:
            return Front.error(http.holder_lost(None), r, None)
        if reply is None:
            return None
        self.relayed += 1
        out = [(k, v) for k, v in reply.headers if k not in _HOP]
        if reply.header(b"content-length") is not None:
            try:
                data = await reply.read()
            except ConnectionError:
                return Front.error(http.holder_lost(None), r, None)
            reply.close()
            return Response(reply.status, out, data)
        return Response(reply.status, out, b"", RemoteStream(reply, self._alive(holder), self.lease / 5))  # type: ignore[arg-type]

    async def _remote(self, name: str, path: str, headers: dict[str, str], body: bytes, here: Any
                      ) -> tuple[int, bytes]:
        """A task or link call: served here if this process holds (or can take) the actor,
        else at its holder's; ``here()`` serves it here."""
        for _ in range(3):
            try:
                return await here()
            except HeldElsewhere as elsewhere:
                try:
                    reply = await self._call(name, elsewhere.holder, path, dict(headers), body)
                except peer_http.PeerUnreachable:
                    return 503, b""
                if reply is None:
                    continue
                try:
                    data = await reply.read()
                except ConnectionError:
                    return 503, b""
                finally:
                    reply.close()
                return reply.status, data
        return 503, b""

    # -- tasks, and tasks' calls to their sessions ------------------------------------------------

    async def task_call(self, op: str, task_id: str, owner: str, body: bytes = b"") -> tuple[int, bytes]:
        if op == links.CREATE:  # a new task runs here, where it was asked for
            return await self.task_call_here(op, task_id, owner, body)
        headers = {internal.OP_HEADER: op, internal.ID_HEADER: task_id, internal.OWNER_HEADER: owner}
        return await self._remote(TASK_PREFIX + task_id, internal.TASK, headers, body,
                                  lambda: self.task_call_here(op, task_id, owner, body))

    async def task_call_here(self, op: str, task_id: str, owner: str, body: bytes) -> tuple[int, bytes]:
        return await LocalRuntime.task_call(self, op, task_id, owner, body)

    async def link(self, session_id: str, kind: str, task_id: str, body: bytes) -> tuple[int, bytes]:
        headers = {internal.OP_HEADER: kind, internal.ID_HEADER: session_id, internal.TASK_HEADER: task_id}
        return await self._remote(session_id, internal.LINK, headers, body,
                                  lambda: self.link_here(session_id, kind, task_id, body))

    async def link_here(self, session_id: str, kind: str, task_id: str, body: bytes) -> tuple[int, bytes]:
        return await LocalRuntime.link(self, session_id, kind, task_id, body)

    # -- losing actors --------------------------------------------------------------------------

    def _lost(self, storages: list[PgStorage]) -> None:
        """Actors another process took over while this one's lease had lapsed: they close
        here (their handlers stop, their connections end; nothing they do is stored)."""
        lost = {id(s) for s in storages}
        for sid, actor in list(self.actors.items()):
            if id(actor.storage) in lost:
                actor.close()
                del self.actors[sid]
        for task_id, task in list(self.task_actors.items()):
            if id(task.storage) in lost:
                task.close()
                del self.task_actors[task_id]

    # -- lifetime ---------------------------------------------------------------------------

    def unready(self) -> str | None:
        if self.draining:
            return "draining: handing its sessions over before it stops"
        if not self.membership.ok():
            return "the database has not taken this process's heartbeat within the lease"
        return super().unready()

    async def start(self) -> None:
        await self.pg.start()
        await self.membership.join()
        self.sessions = await self.pg.count("meta")
        for seq, method, params, uri in await self.pg.announcements(0, self.announcements.keep):
            self.announcements.add(seq, method, msgspec.json.decode(params) if params is not None else None, uri)
        self.key = request_state.derive(await self.started_secret(self.configured_secret), "cluster-calls")
        await self.bus.start()
        await super().start()

    async def drain(self) -> None:
        """Hand this process's actors over before it stops (SIGTERM): it takes no new ones,
        lets the idle ones go at once (ending their streams with a hint to reconnect, which
        lands on another process), and lets each busy one go once its running work is done,
        for at most ``drain_timeout`` seconds. New requests for actors it still holds are
        still served (peers forward them here)."""
        self.draining = True
        self.drain_deadline = time.monotonic() + self.drain_timeout
        try:
            await self.membership.draining()
        except StoreUnavailable:
            pass
        self.hub.close_all()
        while True:
            gone = self._let_go_of_idle()
            if gone:
                # Released first, then their streams end: a client that reconnects at once
                # reaches a process that can take its session over.
                try:
                    await self.pg.settle()
                except StoreUnavailable:
                    pass
                for actor in gone:
                    actor.close_connections()
                    actor.close()
            busy = [a for a in self.actors.values() if a.tasks or a.waiters]
            running = [t for t in self.task_actors.values() if t.running is not None]
            if (not busy and not running) or time.monotonic() >= self.drain_deadline:
                break
            await asyncio.sleep(0.05)
        try:
            await self.pg.settle()
        except StoreUnavailable:
            pass

    def _let_go_of_idle(self) -> list:
        """Release every actor with no running work; returns them (their streams are still open)."""
        gone = []
        for sid, actor in list(self.actors.items()):
            if not actor.tasks and not actor.waiters:
                del self.actors[sid]
                actor.hibernate()
                self._left(actor.storage)
                gone.append(actor)
        for task_id, task in list(self.task_actors.items()):
            if task.running is None and not task.answers:
                del self.task_actors[task_id]
                self._left(task.storage)
        return gone

    async def _close_backend(self) -> None:
        try:
            await self.pg.settle()
        except StoreUnavailable:
            pass
        await self.bus.stop()
        await self.membership.leave()
        self.client.close()
        await self.pg.close()
