"""The local runtime: session actors in this process, addressed by session id.

It plays the part Cloudflare plays in production: it creates an actor on demand (on
``initialize``), finds it by name for later requests, and forgets it on DELETE. It also
carries the app's announcements (list changes, resource updates) to every live session.
"""

from __future__ import annotations

import asyncio
import logging

from .actor import SessionActor
from .app import App
from .http import HttpConfig
from .session import new_session_id
from .storage import Backend, MemoryBackend

log = logging.getLogger("engine")


class LocalRuntime:
    def __init__(self, app: App, config: HttpConfig | None = None, backend: Backend | None = None):
        self.app = app
        self.config = config or HttpConfig()
        self.backend: Backend = backend or MemoryBackend()
        self.actors: dict[str, SessionActor] = {}
        self._background: list[asyncio.Task] = []

    def create(self) -> SessionActor:
        session_id = new_session_id()
        actor = SessionActor(session_id, self.app, self.backend.namespace(session_id), self.config)
        self.actors[session_id] = actor
        return actor

    def get(self, session_id: str) -> SessionActor | None:
        return self.actors.get(session_id)

    def delete(self, session_id: str) -> bool:
        actor = self.actors.pop(session_id, None)
        if actor is None:
            return False
        actor.close()
        self.backend.drop(session_id)
        return True

    def announce(self, method: str, params: dict | None, uri: str | None) -> None:
        for actor in list(self.actors.values()):
            actor.announce(method, params, uri)

    def close_connections(self) -> None:
        """Shutdown begins: end open SSE responses so the HTTP server can drain."""
        for actor in list(self.actors.values()):
            actor.close_connections()

    async def start(self) -> None:
        self.app.listen(self.announce)
        for fn in self.app.startup:
            self._background.append(asyncio.get_running_loop().create_task(self._run_startup(fn)))

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
        for actor in list(self.actors.values()):
            actor.close()
        self.actors.clear()
