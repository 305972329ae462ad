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
from typing import Any, Callable

import msgspec

from ..actors import announcements, links
from ..actors.front import SessionUnreadable
from ..actors.listen_hub import ListenHub
from ..actors.outbox import Outbox
from ..actors.task_actor import TaskActor
from ..actors.memory_store import MemoryBackend
from ..actors.sqlite_store import SqliteBackend, StoreError
from ..actors.session_actor import Lifetimes, SessionActor
from ..app.application import App
from ..protocol import http, spec
from ..protocol import tasks as task_protocol
from ..protocol.tasks import TaskRecord
from ..protocol.http import HttpConfig
from ..protocol.session import SessionState, new_session_id
from ..protocol.storage import Backend, Storage, StoreUnavailable

log = logging.getLogger("engine")

#: Alarm retries, as Durable Objects do: up to this many, backing off 1, 2, 4 ... s.
ALARM_RETRIES = 6
#: The namespace of the server's generated secret (no session has a name like it).
KEYS_NAMESPACE = "__keys__"
#: What ``sqlite:PATH?synchronous=`` may be: when a commit is durable (SQLite's own modes).
SQLITE_SYNCHRONOUS = ("normal", "full")
#: A task's namespace is this and its id.
TASK_PREFIX = "task:"


def open_backend(spec: str) -> Backend:
    """``memory`` or ``sqlite:PATH[?synchronous=full]`` -> a storage backend (StoreError
    saying what is wrong); a ``postgresql://`` store is the cluster's (``engine.cluster``).

    ``synchronous=full`` makes every group commit wait for an fsync, so a commit also survives
    the machine losing power; the default (``normal``) survives the process being killed,
    which is what the server promises (docs/architecture.md)."""
    if spec == "memory":
        return MemoryBackend()
    kind, sep, path = spec.partition(":")
    if kind != "sqlite" or not sep or not path:
        raise StoreError(f"{spec!r} names no store: use sqlite:PATH, memory or postgresql://USER@HOST/DB")
    synchronous = "normal"
    if "?" in path:
        path, _, query = path.rpartition("?")
        name, _, value = query.partition("=")
        if name != "synchronous" or value.lower() not in SQLITE_SYNCHRONOUS:
            raise StoreError(f"{spec!r}: a sqlite store takes one parameter, ?synchronous= "
                             f"{' or '.join(SQLITE_SYNCHRONOUS)}")
        synchronous = value.lower()
    return SqliteBackend(path, synchronous)


class TaskLink:
    """A 2025-11-25 task's way to its session (the task actor's ClientChannel) in this
    runtime: straight to the session's actor when it is in memory here and nothing said
    before is still on its way, else in order through an outbox, by the runtime's
    :meth:`LocalRuntime.link` (which wakes the session, or, in a cluster, calls the
    process that holds it)."""

    __slots__ = ("runtime", "session_id", "task_id", "outbox")

    def __init__(self, runtime: "LocalRuntime", session_id: str, task_id: str):
        self.runtime = runtime
        self.session_id = session_id
        self.task_id = task_id
        self.outbox = Outbox(f"session {session_id}")

    def _send(self, kind: str, body: bytes) -> None:
        actor = self.runtime.actors.get(self.session_id)
        if actor is not None and not actor.closed and not len(self.outbox):
            if kind == links.NOTIFY:
                actor.task_notify(self.task_id, body)
            else:
                actor.task_status(task_protocol_decode_dict(body))
            return
        self.outbox.send(lambda: self.runtime.link(self.session_id, kind, self.task_id, body))

    def notify(self, payload: bytes) -> None:
        self._send(links.NOTIFY, payload)

    def status(self, task: dict) -> None:
        self._send(links.STATUS, _encode(task))

    async def request(self, method: str, params: dict | None, timeout: float) -> Any:
        await self.outbox.drain()  # what the task said before comes before its question
        status, body = await self.runtime.link(self.session_id, links.REQUEST, self.task_id,
                                               links.question(method, params, timeout))
        return links.link_answer(status, body)


class LocalRuntime(links.TaskCalls):
    """The actors of this process (see the module doc). The hooks marked *placement* say
    where a namespace comes from and what happens when an actor leaves; the cluster's
    runtime (:mod:`engine.cluster.runtime`) overrides them, and nothing else of this."""

    def __init__(self, app: App, config: HttpConfig | None = None, backend: Backend | None = None,
                 lifetimes: Lifetimes | None = None):
        self.app = app
        self.config = config or HttpConfig()
        self.backend: Any = backend or MemoryBackend()
        self.lifetimes = lifetimes or Lifetimes()
        self.actors: dict[str, SessionActor] = {}
        self._background: list[asyncio.Task] = []
        self._alarm_failures: dict[str, int] = {}
        self._unreadable: dict[str, None] = {}  # logged already (bounded)
        #: Activations in progress, by namespace: a second request for the same actor waits
        #: for the first instead of loading (or, in a cluster, claiming) it twice.
        self._waking: dict[str, asyncio.Future] = {}
        self.hibernated = 0  # counters, for tests and operators
        self.expired = 0
        self.alarms_fired = 0  # alarms run (sessions' and tasks'), and failed ones set again
        self.alarms_retried = 0
        #: Told the state of each session that ends here (DELETE or expiry); the metrics set it.
        self.session_ended: Callable[[SessionState], None] | None = None
        self.stopping = False
        #: Sessions that exist (in memory or only in storage), held under max_sessions.
        self.sessions = self._count_sessions()
        self.announcements = self._announcement_log()
        #: The 2026-07-28 listen streams of this process.
        self.hub = ListenHub(self.lifetimes.max_buffer, self.lifetimes.max_subscriptions)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = 0
        #: Task actors in memory, by task id (each in its own namespace, ``task:<id>``).
        self.task_actors: dict[str, TaskActor] = {}

    # -- placement (the cluster overrides these) ---------------------------------------------

    def _count_sessions(self) -> int:
        return self.backend.count("meta")

    def _announcement_log(self) -> announcements.Announcements:
        return announcements.Announcements(self.backend.namespace(announcements.NAMESPACE))

    def _fresh(self, name: str) -> Storage:
        """The namespace of a new actor."""
        return self.backend.namespace(name)

    async def _open(self, name: str, require: str) -> Storage | None:
        """The namespace of an existing actor, ready to be read; None if it does not hold
        ``require`` (there is no such actor). The cluster's may raise ActorElsewhere."""
        return self.backend.namespace(name) if self.backend.exists(name, require) else None

    def _left(self, storage: Storage) -> None:
        """An actor left memory (it hibernated); its namespace stays in storage."""

    def _dropped(self, name: str, storage: Storage) -> None:
        """An actor's namespace is over (its session ended, its task expired): delete it."""
        self.backend.drop(name)

    async def _due_alarms(self, now: float) -> list[tuple[str, float]]:
        return self.backend.due_alarms(now)

    def _next_alarm(self) -> float | None:
        return self.backend.next_alarm()

    async def link(self, session_id: str, kind: str, task_id: str, body: bytes) -> tuple[int, bytes]:
        """A call from a task to its session (``links``): to its actor, woken if need be."""
        return await links.serve_link(await self._session_for_task(session_id), kind, task_id, body)

    # -- addressing -------------------------------------------------------------------------

    async def activate(self, session_id: str | None, create: bool) -> SessionActor | None:
        if create:
            return self.create(session_id=session_id, arm=False)
        return await self.get(session_id or "")

    def create(self, transport: str = spec.TRANSPORT_STREAMABLE, session_id: str | None = None,
               arm: bool = True) -> SessionActor:
        if self.sessions >= self.lifetimes.max_sessions:
            raise http.too_many_sessions(self.lifetimes.max_sessions)
        session_id = session_id or new_session_id()
        actor = self._actor(session_id, self._fresh(session_id), fresh=True)
        actor.session.state.announced = self.announcements.last  # nothing earlier concerns it
        self.actors[session_id] = actor
        self.sessions += 1
        if arm:
            actor.arm(transport)
        return actor

    def _actor(self, session_id: str, storage: Storage, fresh: bool = False) -> SessionActor:
        return SessionActor(session_id, self.app, storage, self.config, self.lifetimes, fresh, directory=self)

    async def _wake(self, name: str, wake: Any) -> Any:
        """Run ``wake()`` (an activation) once per namespace at a time: a second caller
        waits for the first's result."""
        pending = self._waking.get(name)
        if pending is not None:
            return await asyncio.shield(pending)
        future = self._waking[name] = asyncio.get_running_loop().create_future()
        try:
            result = await wake()
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: the waiters re-raise it
            raise
        else:
            future.set_result(result)
            return result
        finally:
            del self._waking[name]

    async def get(self, session_id: str) -> SessionActor | None:
        """The session's actor, woken from storage if needed; None if no such session.

        A closed actor (its store failed to commit) is replaced by a fresh one. A session
        whose stored state cannot be loaded raises SessionUnreadable, logged once."""
        actor = self.actors.get(session_id)
        if actor is not None and actor.closed:
            del self.actors[session_id]
            actor = None
        if actor is None:
            actor = await self._wake(session_id, lambda: self._wake_session(session_id))
        return actor

    async def _wake_session(self, session_id: str) -> SessionActor | None:
        storage = await self._open(session_id, "meta")
        if storage is None:
            return None
        try:
            actor = self._actor(session_id, storage)
        except Exception as exc:
            if session_id not in self._unreadable:
                log.error("session %s: its stored state cannot be loaded (%s: %s); it is answered "
                          "404 and left in the store", session_id, type(exc).__name__, exc)
                self._unreadable[session_id] = None
                if len(self._unreadable) > 1024:
                    del self._unreadable[next(iter(self._unreadable))]
            self._left(storage)
            raise SessionUnreadable(session_id) from None
        self.actors[session_id] = actor
        actor.catch_up(*self.announcements.since(actor.session.state.announced))
        return actor

    async def delete(self, session_id: str) -> bool:
        actor = await self.get(session_id)
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
            self._dropped(actor.session.id, actor.storage)
            self.sessions = max(0, self.sessions - 1)
            if self.session_ended is not None:
                self.session_ended(actor.session.state)

    def announce(self, method: str, params: dict | None, uri: str | None) -> None:
        """The app announced something: every session in memory hears it now, the others
        when they wake. Called from a worker thread (a ``thread=True`` tool), it hops to
        the event loop first: the actors and the store belong to that thread."""
        if self._loop is not None and threading.get_ident() != self._thread:
            self._loop.call_soon_threadsafe(self.announce, method, params, uri)
            return
        self._publish(method, params, uri)

    def _publish(self, method: str, params: dict | None, uri: str | None) -> None:
        """*placement*: an announcement of this process's app, into the log and to its hearers."""
        self.hear(self.announcements.append(method, params, uri), method, params, uri)

    def hear(self, seq: int, method: str, params: dict | None, uri: str | None) -> None:
        """Announcement number ``seq``: to every session in memory, and every listen stream."""
        for actor in list(self.actors.values()):
            actor.announce(method, params, uri, seq)
        self.hub.announce(method, params, uri)

    def listen(self, msg, owner: str = ""):
        """A 2026-07-28 listen stream (the front's ActorHost port)."""
        return self.hub.listen(msg, owner)

    def secret(self, configured: str = "") -> str | None:
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

    def internal_endpoint(self, front: Any) -> Any:
        """*placement*: what serves the calls of other processes (None: there are none)."""
        return None

    async def started_secret(self, configured: str = "") -> str:
        """The secret once the runtime has started (the cluster's comes from its database)."""
        return self.secret(configured) or ""

    # -- upkeep -----------------------------------------------------------------------------

    def evict_idle(self, now: float) -> int:
        """Send idle actors out of memory; their state is in storage already."""
        gone = [sid for sid, actor in self.actors.items() if actor.idle(now)]
        for sid in gone:
            actor = self.actors.pop(sid)
            actor.hibernate()
            self._left(actor.storage)
        self.hibernated += len(gone)
        for task_id in [t for t, a in self.task_actors.items() if a.idle(now, self.lifetimes.idle_evict)]:
            self._left(self.task_actors.pop(task_id).storage)
        return len(gone)

    # -- tasks: the TaskDirectory of sessions and of the stateless front ------------------------

    async def _task(self, task_id: str, record: TaskRecord | None = None) -> TaskActor | None:
        """A task's actor, woken from storage if need be (None: no such task); with
        ``record``, a new task's."""
        actor = self.task_actors.get(task_id)
        if actor is not None and not actor.closed:
            return actor
        if record is not None:
            return self._task_actor(self._fresh(TASK_PREFIX + task_id), record, woken=False)
        return await self._wake(TASK_PREFIX + task_id, lambda: self._wake_task(task_id))

    async def _wake_task(self, task_id: str) -> TaskActor | None:
        storage = await self._open(TASK_PREFIX + task_id, "task")
        if storage is None:
            return None
        return self._task_actor(storage, task_protocol.decode(storage.get("task")), woken=True)  # type: ignore[arg-type]

    def _task_actor(self, storage: Storage, record: TaskRecord, woken: bool) -> TaskActor:
        link = TaskLink(self, record.owner, record.task_id) if record.wire == task_protocol.WIRE_2025 else None

        def status(record: TaskRecord) -> None:
            if link is not None:  # 2025-11-25: notifications/tasks/status on its session's GET stream
                link.status(task_protocol.task_2025(record))
            else:  # 2026-07-28: the listen streams that follow it (notifications/tasks)
                self.task_status(record, storage)

        actor = self.task_actors[record.task_id] = TaskActor(self.app, storage, record, link, status)
        if woken:
            actor.recover()
        return actor

    def task_status(self, record: TaskRecord, storage: Storage) -> None:
        """A 2026-07-28 task changed status: the listen streams following it hear of it."""
        self.hub.announce_task(record.task_id, task_protocol.task_2026(record, detailed=True), record.owner)

    async def _session_for_task(self, session_id: str) -> SessionActor | None:
        try:
            return await self.get(session_id)
        except SessionUnreadable:
            return None

    @property
    def tasks(self) -> "LocalRuntime":
        """The front's TaskDirectory: this runtime (task actors live beside the sessions)."""
        return self

    def new_task_id(self) -> str:
        return task_protocol.new_task_id()

    async def task_call(self, op: str, task_id: str, owner: str, body: bytes = b"") -> tuple[int, bytes]:
        """One TaskDirectory operation on a task of this runtime (``links``' wire)."""
        storage: list[Storage] = []

        async def find(record: TaskRecord | None) -> TaskActor | None:
            actor = await self._task(task_id, record)
            if actor is not None:
                storage.append(actor.storage)
            return actor

        async def flush() -> None:
            if storage:
                await storage[-1].flush()

        def lost() -> None:
            actor = self.task_actors.get(task_id)
            if actor is not None and actor.storage is (storage[-1] if storage else None) and actor.running is None:
                self.task_actors.pop(task_id, None)  # ahead of storage: woken afresh next time

        return await links.serve_task(find, op, owner, body, flush, lost)

    async def call(self, op: str, task_id: str, owner: str, body: bytes | None = None) -> TaskRecord | None:
        """The TaskDirectory's operations (links.TaskCalls) go through :meth:`task_call`,
        the same way a call from another process does."""
        status, reply = await self.task_call(op, task_id, owner, body or b"")
        return links.task_reply(status, reply)

    async def _task_alarm(self, task_id: str, now: float) -> None:
        actor = await self._task(task_id)
        if actor is None:
            return
        if await actor.alarm(now):
            actor.end()
            self.task_actors.pop(task_id, None)
            self._dropped(TASK_PREFIX + task_id, actor.storage)

    async def _alarm_storage(self, name: str) -> Storage | None:
        """The namespace whose alarm is due, as its actor holds it (None: nobody here can)."""
        if name.startswith(TASK_PREFIX):
            actor: Any = await self._task(name[len(TASK_PREFIX):])
        else:
            actor = await self.get(name)
        return actor.storage if actor is not None else None

    async def run_alarms(self, now: float) -> None:
        """Run every due alarm once. One session's failing alarm (or unreadable state) is
        retried with backoff, then once per session TTL; it never holds up the others."""
        for name, _at in await self._due_alarms(now):
            storage: Storage | None = None
            try:
                storage = await self._alarm_storage(name)
                if storage is None:
                    continue
                storage.delete_alarm()  # cleared before the call; alarm() sets the next one
                self.alarms_fired += 1
                if name.startswith(TASK_PREFIX):
                    await self._task_alarm(name[len(TASK_PREFIX):], now)
                    continue
                actor = await self.get(name)
                if actor is None:
                    continue
                expired = await actor.alarm(now)
            except Exception as exc:
                if self._skip_alarm(exc):
                    continue
                failures = self._alarm_failures.get(name, 0) + 1
                self.alarms_retried += 1
                if not isinstance(exc, SessionUnreadable):
                    log.error("alarm of session %s failed (attempt %d): %r", name, failures, exc)
                if failures <= ALARM_RETRIES:
                    self._alarm_failures[name] = failures
                    self._retry_alarm(name, storage, now + 2 ** (failures - 1))
                else:  # still failing: try again much later, never in a hot loop
                    self._alarm_failures.pop(name, None)
                    self._retry_alarm(name, storage, now + self.lifetimes.session_ttl)
                continue
            self._alarm_failures.pop(name, None)
            if expired:
                await self.delete(name)
                self.expired += 1

    def _retry_alarm(self, name: str, storage: Storage | None, at: float) -> None:
        """Set a failed alarm again for ``at`` (``storage`` None: its actor could not be
        woken, its state being unreadable)."""
        (storage or self.backend.namespace(name)).set_alarm(at)

    def _skip_alarm(self, exc: Exception) -> bool:
        """Whether an alarm's failure is not the alarm's (another process holds the actor,
        the store is away): it is not retried here."""
        return False

    async def _upkeep(self) -> None:
        tick = max(0.05, min(1.0, self.lifetimes.idle_evict / 2))
        while True:
            now = time.time()
            try:
                if self.backend.commit_failure is not None:
                    await self.backend.probe()
                await self.run_alarms(now)
                self.evict_idle(now)
            except asyncio.CancelledError:
                raise
            except StoreUnavailable as exc:  # the store is away: said by whoever watches it; try again next tick
                log.debug("runtime upkeep waits for the store: %s", exc)
            except Exception:
                log.exception("runtime upkeep failed")
            next_alarm = self._next_alarm()
            wait = tick if next_alarm is None else min(tick, max(0.0, next_alarm - time.time()))
            await asyncio.sleep(wait)

    # -- lifetime ---------------------------------------------------------------------------

    def close_connections(self) -> None:
        """Shutdown begins: end open SSE responses so the HTTP server can drain."""
        self.stopping = True
        for actor in list(self.actors.values()):
            actor.close_connections()
        self.hub.close_all()

    def unready(self) -> str | None:
        """Why this process should get no new traffic (``/readyz`` answers 503), or None."""
        if self.stopping:
            return "shutting down"
        failure = self.backend.commit_failure
        return f"the store cannot commit ({failure})" if failure is not None else None

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
        await self._close_backend()

    async def _close_backend(self) -> None:
        self.backend.close()


_encode = msgspec.json.Encoder().encode
task_protocol_decode_dict = msgspec.json.Decoder(dict).decode
