"""The local runtime: session actors in this process, addressed by session id.

It plays the part Cloudflare plays in production, and is the front's
:class:`~engine.actors.front.ActorHost` here. It creates an actor on ``initialize``;
finds it by name for later requests, waking it from storage if it hibernated (or if the
process restarted); sends idle actors out of memory; and runs storage alarms, calling
each actor's ``alarm()`` at least once and retrying with backoff when it raises. It also
carries the app's announcements to the sessions in memory and keeps them for the ones
asleep (:mod:`engine.actors.announcements`), and holds the number of sessions to its cap.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
import time
from typing import Any

from ..actors import announcements
from ..actors.front import SessionUnreadable
from ..actors.listen_hub import ListenHub
from ..actors.session_tasks import SessionChannel
from ..actors.task_actor import TaskActor
from ..actors.memory_store import MemoryBackend
from ..actors.sqlite_store import SqliteBackend, StoreError
from ..actors.session_actor import Lifetimes, SessionActor
from ..app.application import App
from ..protocol import http, spec
from ..protocol import tasks as task_protocol
from ..protocol.tasks import TaskRecord
from ..protocol.http import HttpConfig
from ..protocol.session import new_session_id
from ..protocol.storage import Backend

log = logging.getLogger("engine")

#: Alarm retries, as Durable Objects do: up to this many, backing off 1, 2, 4 ... s.
ALARM_RETRIES = 6
#: The namespace of the server's generated secret (no session has a name like it).
KEYS_NAMESPACE = "__keys__"
#: A task's namespace is this and its id.
TASK_PREFIX = "task:"


def open_backend(spec: str) -> Backend:
    """``memory`` or ``sqlite:PATH`` -> a storage backend (StoreError saying what is wrong)."""
    if spec == "memory":
        return MemoryBackend()
    kind, sep, path = spec.partition(":")
    if kind != "sqlite" or not sep or not path:
        raise StoreError(f"{spec!r} names no store: use sqlite:PATH or memory")
    return SqliteBackend(path)


class LocalRuntime:
    def __init__(self, app: App, config: HttpConfig | None = None, backend: Backend | None = None,
                 lifetimes: Lifetimes | None = None):
        self.app = app
        self.config = config or HttpConfig()
        self.backend: Backend = backend or MemoryBackend()
        self.lifetimes = lifetimes or Lifetimes()
        self.actors: dict[str, SessionActor] = {}
        self._background: list[asyncio.Task] = []
        self._alarm_failures: dict[str, int] = {}
        self._unreadable: dict[str, None] = {}  # logged already (bounded)
        self.hibernated = 0  # counters, for tests and operators
        self.expired = 0
        #: Sessions that exist (in memory or only in storage), held under max_sessions.
        self.sessions = self.backend.count("meta")
        self.announcements = announcements.Announcements(self.backend.namespace(announcements.NAMESPACE))
        #: The 2026-07-28 listen streams of this process.
        self.hub = ListenHub(self.lifetimes.max_buffer, self.lifetimes.max_subscriptions)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = 0
        #: Task actors in memory, by task id (each in its own namespace, ``task:<id>``).
        self.task_actors: dict[str, TaskActor] = {}

    # -- addressing -------------------------------------------------------------------------

    async def activate(self, session_id: str | None, create: bool) -> SessionActor | None:
        if create:
            return self.create(session_id=session_id, arm=False)
        return self.get(session_id or "")

    def create(self, transport: str = spec.TRANSPORT_STREAMABLE, session_id: str | None = None,
               arm: bool = True) -> SessionActor:
        if self.sessions >= self.lifetimes.max_sessions:
            raise http.too_many_sessions(self.lifetimes.max_sessions)
        session_id = session_id or new_session_id()
        actor = self._activate(session_id, fresh=True)
        actor.session.state.announced = self.announcements.last  # nothing earlier concerns it
        self.actors[session_id] = actor
        self.sessions += 1
        if arm:
            actor.arm(transport)
        return actor

    def _activate(self, session_id: str, fresh: bool = False) -> SessionActor:
        return SessionActor(session_id, self.app, self.backend.namespace(session_id), self.config,
                            self.lifetimes, fresh, directory=self)

    def get(self, session_id: str) -> SessionActor | None:
        """The session's actor, woken from storage if needed; None if no such session.

        A closed actor (its store failed to commit) is replaced by a fresh one. A session
        whose stored state cannot be loaded raises SessionUnreadable, logged once."""
        actor = self.actors.get(session_id)
        if actor is not None and actor.closed:
            del self.actors[session_id]
            actor = None
        if actor is None and self.backend.exists(session_id, "meta"):
            try:
                actor = self._activate(session_id)
            except Exception as exc:
                if session_id not in self._unreadable:
                    log.error("session %s: its stored state cannot be loaded (%s: %s); it is answered "
                              "404 and left in the store", session_id, type(exc).__name__, exc)
                    self._unreadable[session_id] = None
                    if len(self._unreadable) > 1024:
                        del self._unreadable[next(iter(self._unreadable))]
                raise SessionUnreadable(session_id) from None
            self.actors[session_id] = actor
            actor.catch_up(*self.announcements.since(actor.session.state.announced))
        return actor

    def delete(self, session_id: str) -> bool:
        actor = self.get(session_id)
        if actor is None:
            return False
        actor.end()
        self.forget(actor)
        return True

    def forget(self, actor: SessionActor) -> None:
        """An actor closed (its session ended, or its store failed): drop our reference;
        an ended session's namespace goes too, and it no longer counts."""
        if self.actors.get(actor.session.id) is actor:
            del self.actors[actor.session.id]
        if actor.ended:
            self.backend.drop(actor.session.id)
            self.sessions = max(0, self.sessions - 1)

    def announce(self, method: str, params: dict | None, uri: str | None) -> None:
        """The app announced something: every session in memory hears it now, the others
        when they wake. Called from a worker thread (a ``thread=True`` tool), it hops to
        the event loop first: the actors and the store belong to that thread."""
        if self._loop is not None and threading.get_ident() != self._thread:
            self._loop.call_soon_threadsafe(self.announce, method, params, uri)
            return
        seq = self.announcements.append(method, params, uri)
        for actor in list(self.actors.values()):
            actor.announce(method, params, uri, seq)
        self.hub.announce(method, params, uri)

    def listen(self, msg, owner: str = ""):
        """A 2026-07-28 listen stream (the front's ActorHost port)."""
        return self.hub.listen(msg, owner)

    def secret(self, configured: str = "") -> str:
        """The server's secret: ``configured`` if given, else one made on first use and kept
        in the store, so a restart (or another process on the same store) keeps it."""
        if configured:
            return configured
        keys = self.backend.namespace(KEYS_NAMESPACE)
        raw = keys.get("secret")
        if raw is None:
            raw = secrets.token_urlsafe(32).encode()
            keys.put("secret", raw)
        return raw.decode()

    # -- upkeep -----------------------------------------------------------------------------

    def evict_idle(self, now: float) -> int:
        """Send idle actors out of memory; their state is in storage already."""
        gone = [sid for sid, actor in self.actors.items() if actor.idle(now)]
        for sid in gone:
            self.actors.pop(sid).hibernate()
        self.hibernated += len(gone)
        for task_id in [t for t, a in self.task_actors.items() if a.idle(now, self.lifetimes.idle_evict)]:
            del self.task_actors[task_id]
        return len(gone)

    # -- tasks: the TaskDirectory of sessions and of the stateless front ------------------------

    def _task(self, task_id: str, record: TaskRecord | None = None) -> TaskActor | None:
        """A task's actor, woken from storage if need be (None: no such task)."""
        actor = self.task_actors.get(task_id)
        if actor is not None:
            return actor
        storage = self.backend.namespace(TASK_PREFIX + task_id)
        woken = record is None
        if woken:
            raw = storage.get("task")
            if raw is None:
                return None
            record = task_protocol.decode(raw)
        channel = SessionChannel(self._session_for_task, record.owner, task_id) \
            if record.wire == task_protocol.WIRE_2025 else None
        actor = self.task_actors[task_id] = TaskActor(self.app, storage, record, channel, self._task_status)
        if woken:
            actor.recover()
        return actor

    def _session_for_task(self, session_id: str) -> SessionActor | None:
        try:
            return self.get(session_id)
        except SessionUnreadable:
            return None

    def _task_status(self, record: TaskRecord) -> None:
        """A task's status changed: 2025-11-25 tells its session (notifications/tasks/status),
        2026-07-28 the listen streams that follow it (notifications/tasks)."""
        if record.wire == task_protocol.WIRE_2025:
            actor = self._session_for_task(record.owner)
            if actor is not None:
                actor.task_status(task_protocol.task_2025(record))
        else:
            self.hub.announce_task(record.task_id, task_protocol.task_2026(record, detailed=True), record.owner)

    def _owned(self, task_id: str, owner: str) -> TaskActor | None:
        actor = self._task(task_id)
        return actor if actor is not None and actor.record.owner == owner else None

    @property
    def tasks(self) -> "LocalRuntime":
        """The front's TaskDirectory: this runtime (task actors live beside the sessions)."""
        return self

    def new_task_id(self) -> str:
        return task_protocol.new_task_id()

    async def create_task(self, record: TaskRecord) -> TaskRecord:
        actor = self._task(record.task_id, record)
        try:
            await actor.create()  # type: ignore[union-attr]
        except BaseException:
            self.task_actors.pop(record.task_id, None)  # not stored: it never existed
            raise
        return record

    async def find_task(self, task_id: str, owner: str) -> TaskRecord | None:
        actor = self._owned(task_id, owner)
        return actor.record if actor is not None else None

    async def update_task(self, task_id: str, owner: str, responses: Any) -> TaskRecord | None:
        actor = self._owned(task_id, owner)
        if actor is None:
            return None
        actor.update(responses)
        await actor.storage.flush()
        return actor.record

    async def cancel_task(self, task_id: str, owner: str) -> TaskRecord | None:
        actor = self._owned(task_id, owner)
        if actor is None:
            return None
        actor.cancel()
        await actor.storage.flush()
        return actor.record

    async def task_outcome(self, task_id: str, owner: str) -> TaskRecord | None:
        actor = self._owned(task_id, owner)
        return await actor.outcome() if actor is not None else None

    async def _task_alarm(self, task_id: str, now: float) -> None:
        actor = self._task(task_id)
        if actor is None:
            return
        if await actor.alarm(now):
            actor.end()
            self.task_actors.pop(task_id, None)
            self.backend.drop(TASK_PREFIX + task_id)

    async def run_alarms(self, now: float) -> None:
        """Run every due alarm once. One session's failing alarm (or unreadable state) is
        retried with backoff, then once per session TTL; it never holds up the others."""
        for session_id, _at in self.backend.due_alarms(now):
            storage = self.backend.namespace(session_id)
            storage.delete_alarm()  # cleared before the call; alarm() sets the next one
            try:
                if session_id.startswith(TASK_PREFIX):
                    await self._task_alarm(session_id[len(TASK_PREFIX):], now)
                    continue
                actor = self.get(session_id)
                if actor is None:
                    continue
                expired = await actor.alarm(now)
            except Exception as exc:
                failures = self._alarm_failures.get(session_id, 0) + 1
                if not isinstance(exc, SessionUnreadable):
                    log.error("alarm of session %s failed (attempt %d): %r", session_id, failures, exc)
                if failures <= ALARM_RETRIES:
                    self._alarm_failures[session_id] = failures
                    storage.set_alarm(now + 2 ** (failures - 1))
                else:  # still failing: try again much later, never in a hot loop
                    self._alarm_failures.pop(session_id, None)
                    storage.set_alarm(now + self.lifetimes.session_ttl)
                continue
            self._alarm_failures.pop(session_id, None)
            if expired:
                self.delete(session_id)
                self.expired += 1

    async def _upkeep(self) -> None:
        tick = max(0.05, min(1.0, self.lifetimes.idle_evict / 2))
        while True:
            now = time.time()
            try:
                await self.run_alarms(now)
                self.evict_idle(now)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("runtime upkeep failed")
            next_alarm = self.backend.next_alarm()
            wait = tick if next_alarm is None else min(tick, max(0.0, next_alarm - time.time()))
            await asyncio.sleep(wait)

    # -- lifetime ---------------------------------------------------------------------------

    def close_connections(self) -> None:
        """Shutdown begins: end open SSE responses so the HTTP server can drain."""
        for actor in list(self.actors.values()):
            actor.close_connections()
        self.hub.close_all()

    async def start(self) -> None:
        self._loop = loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self.app.listen(self.announce)
        self._background.append(loop.create_task(self._upkeep()))
        for fn in self.app.startup:
            self._background.append(loop.create_task(self._run_startup(fn)))

    async def _run_startup(self, fn) -> None:
        try:
            await fn(self.app)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("startup task %s failed", getattr(fn, "__name__", fn))

    async def stop(self) -> None:
        self.app.unlisten(self.announce)
        for task in self._background:
            task.cancel()
        for task in self._background:
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        self._background.clear()
        handlers = [task for actor in self.actors.values() for task, _ in actor.tasks.values()]
        handlers += [a.running for a in self.task_actors.values() if a.running is not None]
        for actor in list(self.actors.values()):
            actor.close()  # running requests stay unfinished in storage: a restart ends them
            actor.hibernate()
        for task_actor in self.task_actors.values():
            task_actor.close()  # a running task stays 'working' in storage: its alarm deals with it
        await asyncio.gather(*handlers, return_exceptions=True)
        self.task_actors.clear()
        self.actors.clear()
        self.backend.close()
