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

from ..actors import announcements
from ..actors.front import SessionUnreadable
from ..actors.listen_hub import ListenHub
from ..actors.memory_store import MemoryBackend
from ..actors.sqlite_store import SqliteBackend, StoreError
from ..actors.session_actor import Lifetimes, SessionActor
from ..app.application import App
from ..protocol import http, spec
from ..protocol.http import HttpConfig
from ..protocol.session import new_session_id
from ..protocol.storage import Backend

log = logging.getLogger("engine")

#: Alarm retries, as Durable Objects do: up to this many, backing off 1, 2, 4 ... s.
ALARM_RETRIES = 6
#: The namespace of the server's generated secret (no session has a name like it).
KEYS_NAMESPACE = "__keys__"


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
                            self.lifetimes, fresh)

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

    def listen(self, msg):
        """A 2026-07-28 listen stream (the front's ActorHost port)."""
        return self.hub.listen(msg)

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
        return len(gone)

    async def run_alarms(self, now: float) -> None:
        """Run every due alarm once. One session's failing alarm (or unreadable state) is
        retried with backoff, then once per session TTL; it never holds up the others."""
        for session_id, _at in self.backend.due_alarms(now):
            storage = self.backend.namespace(session_id)
            storage.delete_alarm()  # cleared before the call; alarm() sets the next one
            try:
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
        for actor in list(self.actors.values()):
            actor.close()  # running requests stay unfinished in storage: a restart ends them
            actor.hibernate()
        await asyncio.gather(*handlers, return_exceptions=True)
        self.actors.clear()
        self.backend.close()
