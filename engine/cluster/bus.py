"""Notifications between the processes of a cluster, over PostgreSQL's LISTEN/NOTIFY.

Two things must reach every process:

- **The app's announcements** (a list changed, a resource was updated). The process whose
  app announced keeps it in ``announcements`` under the next number (``mcp_actors.announce``,
  which also rings a doorbell, ``NOTIFY mcp_actors_announce``); on each ring, every process
  reads the announcements after the last one it has, in order, and hands them to its
  sessions and listen streams (:meth:`engine.local.runtime.LocalRuntime.hear`), and to its
  copy of the log, from which a session woken later catches up. The table is the truth,
  the doorbell only says when to look: a ring that was missed (the listening connection
  broke) costs nothing, since the next read starts from the last number seen.
- **A 2026-07-28 task's new state**, for the listen streams that follow it, wherever they
  are. The task's process sends it with the task's own commit (``NOTIFY`` inside the
  transaction, so nobody hears of a state that was not stored); a state too large for a
  notification's 8000 bytes goes by reference, and the listener's process reads the
  stored record. After a reconnect, every followed task's state is read again.

The process that announces hears its own announcement through the database too, so every
process delivers the same announcements in the same order.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

import msgspec

from ..actors.outbox import Outbox
from ..protocol import tasks
from ..protocol.storage import StoreUnavailable
from .store import PostgresBackend

log = logging.getLogger("engine")

ANNOUNCE = "mcp_actors_announce"
TASKS = "mcp_actors_tasks"
#: Bytes of a notification's payload, below PostgreSQL's limit of 8000.
MAX_PAYLOAD = 7000
#: Announcements read at a time.
BATCH = 1000
#: Seconds between reconnection attempts of the listening connection.
RECONNECT_EVERY = 1.0

_encode = msgspec.json.Encoder().encode
_decode_list = msgspec.json.Decoder(list).decode
_decode_params = msgspec.json.Decoder(dict).decode


class Bus:
    def __init__(self, backend: PostgresBackend, keep: int,
                 hear: Callable[[int, str, dict | None, str | None], None],
                 task: Callable[[str, dict, str], None], followed: Callable[[], list[str]],
                 last: Callable[[], int]):
        """``hear(seq, method, params, uri)``: an announcement, in order; ``task(task_id,
        detailed, owner)``: a task's new state; ``followed()``: the task ids listen streams
        here follow; ``last()``: the number of the last announcement this process has."""
        self.backend = backend
        self.keep = keep
        self.hear = hear
        self.task = task
        self.followed = followed
        self.last = last
        self.outbox = Outbox("the announcements table")
        self._con: Any = None
        self._runner: asyncio.Task | None = None
        self._reading: asyncio.Task | None = None
        self._again = False
        self._lost = asyncio.Event()

    # -- sending ----------------------------------------------------------------------------

    def publish(self, method: str, params: dict | None, uri: str | None) -> None:
        """An announcement of this process's app, for every process (in order)."""
        encoded = _encode(params) if params is not None else None
        self.outbox.send(lambda: self.backend.announce(method, encoded, uri, self.keep))

    @staticmethod
    def task_payload(record: tasks.TaskRecord) -> str:
        """A task's new state as a notification: inline when it fits, else by reference."""
        detailed = tasks.task_2026(record, detailed=True)
        payload = _encode([record.task_id, record.owner, detailed]).decode()
        if len(payload.encode()) > MAX_PAYLOAD:
            payload = _encode([record.task_id, record.owner, None]).decode()
        return payload

    # -- listening ----------------------------------------------------------------------------

    async def start(self) -> None:
        await self._connect()
        self._read()
        self._runner = asyncio.get_running_loop().create_task(self._keep_listening())

    async def _connect(self) -> None:
        con = await self.backend.listener()
        self._lost.clear()
        con.add_termination_listener(lambda _c: self._lost.set())
        await con.add_listener(ANNOUNCE, self._rang)
        await con.add_listener(TASKS, self._task_notice)
        self._con = con

    async def _keep_listening(self) -> None:
        while True:
            await self._lost.wait()
            log.warning("cluster: the notification connection was lost; reconnecting")
            while True:
                await asyncio.sleep(RECONNECT_EVERY)
                try:
                    await self._connect()
                    break
                except (StoreUnavailable, OSError):
                    continue
                except Exception:
                    log.exception("cluster: reconnecting the notification connection failed")
            log.warning("cluster: notifications flow again")
            self._read()  # what was announced meanwhile
            for task_id in self.followed():
                self._fetch_task(task_id, None)

    def _rang(self, *_args: Any) -> None:
        self._read()

    def _read(self) -> None:
        if self._reading is not None:
            self._again = True
            return
        self._reading = asyncio.get_running_loop().create_task(self._read_all())

    async def _read_all(self) -> None:
        try:
            while True:
                self._again = False
                rows = await self.backend.announcements(self.last(), BATCH)
                for seq, method, params, uri in rows:
                    if seq > self.last():
                        self.hear(seq, method, _decode_params(params) if params is not None else None, uri)
                if not self._again and len(rows) < BATCH:
                    return
        except StoreUnavailable as exc:
            log.warning("cluster: announcements could not be read (%s); they are read at the next one", exc)
        except Exception:
            log.exception("cluster: reading announcements failed")
        finally:
            self._reading = None

    def _task_notice(self, _con: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            task_id, owner, detailed = _decode_list(payload)
        except (msgspec.DecodeError, ValueError):
            log.warning("cluster: a task notification that is not ours was ignored")
            return
        if detailed is not None:
            self.task(task_id, detailed, owner)
        elif task_id in self.followed():
            self._fetch_task(task_id, owner)

    def _fetch_task(self, task_id: str, owner: str | None) -> None:
        async def fetch() -> None:
            raw = await self.backend.read(f"task:{task_id}", "task")
            if raw is not None:
                record = tasks.decode(raw)
                self.task(task_id, tasks.task_2026(record, detailed=True), record.owner)

        self.outbox.send(fetch)

    async def stop(self) -> None:
        await self.outbox.drain()
        for task in (self._runner, self._reading):
            if task is not None:
                task.cancel()
        con, self._con = self._con, None
        if con is not None and not con.is_closed():
            try:
                await con.close(timeout=2)
            except Exception:
                con.terminate()
