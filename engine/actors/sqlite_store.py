"""The embedded durable backend: every actor's namespace in one SQLite file (WAL).

Durability rule: writes go into an open transaction at once (so reads see them) and are
committed together at the end of the current event-loop tick, one COMMIT for every actor
that wrote in that tick (group commit). ``flush()`` waits for that commit, and the actor
releases no bytes to a client before its flush returns.

Faults: a write or the COMMIT that fails (disk full, an I/O error) fails the whole group.
SQLite may already have rolled the transaction back by itself; the backend makes sure it
has, skips the group's remaining writes (they would otherwise run in autocommit mode, each
kept on its own), and every flush of that group raises
:class:`~engine.protocol.storage.StoreUnavailable`. The next write opens a new group, so
the store serves again as soon as the cause is gone. With ``synchronous=NORMAL`` (the
default) a commit survives the process being killed; ``synchronous=FULL`` also survives
power loss, at the cost of an fsync per group.

Checkpoints (copying the write-ahead log into the database file, with an fsync) do not run
inside commits, where SQLite would run one every thousand pages and stall the event loop
for it: a thread with a connection of its own runs a passive one every
``CHECKPOINT_EVERY`` seconds (it neither waits for nor blocks the writer), and ``close()``
a last, complete one. A passive checkpoint alone would let the log grow without end under
steady writes: SQLite starts the log over only when a write finds every frame already
copied, and a writer that never pauses always leaves its latest frames behind. So when the
thread sees more than ``WAL_RESTART_FRAMES`` frames in the log, the writer, right after its
next commit, copies the few frames the thread has not (a short passive checkpoint of its
own, with no other writer to race), and the next write starts the log over; the file is cut
back to ``WAL_SIZE_LIMIT`` bytes when that happens.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Callable, TypeVar

from ..protocol.storage import PROBE_NAMESPACE, StoreUnavailable, key_range

T = TypeVar("T")

SCHEMA_VERSION = "1"
#: Failed groups remembered for their late flushers.
_KEEP_FAILURES = 64
#: Seconds between the checkpointer's passive checkpoints.
CHECKPOINT_EVERY = 0.5
#: Frames (pages) in the write-ahead log past which the writer helps it start over.
WAL_RESTART_FRAMES = 4096
#: Bytes the write-ahead log file is cut back to when it starts over (journal_size_limit).
WAL_SIZE_LIMIT = 32 * 2**20

log = logging.getLogger("engine")


class _Checkpointer(threading.Thread):
    """Checkpoints the write-ahead log off the event loop (see the module doc)."""

    def __init__(self, path: Path):
        super().__init__(name="mcp-actors-checkpoint", daemon=True)
        self.path = path
        self.stopping = threading.Event()
        #: Set here when the log is long, cleared by the writer once it has helped (a plain
        #: attribute: one thread sets it, the other clears it, either order is harmless).
        self.restart_wanted = False
        self.failing = False  # said once a streak (a full disk would fail one every half second)

    def run(self) -> None:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            while not self.stopping.wait(CHECKPOINT_EVERY):
                self.step(db)
        finally:
            db.close()

    def step(self, db: sqlite3.Connection) -> None:
        """One round on the thread's connection: a passive checkpoint, and a word to the
        writer when the log is long. (Tests drive rounds one by one, without the thread.)"""
        try:
            busy, frames, _ = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error as exc:  # the next one tries again; commits are unaffected
            if not self.failing:
                log.warning("store: checkpoints are failing (%s); the log grows until they work", exc)
            self.failing = True
            return
        if self.failing:
            log.warning("store: checkpoints work again")
            self.failing = False
        if not busy and frames > WAL_RESTART_FRAMES:
            self.restart_wanted = True

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=10)


class StoreError(Exception):
    """The store cannot be opened; the message says what to do about it."""


class SqliteBackend:
    def __init__(self, path: str | os.PathLike, synchronous: str = "NORMAL"):
        self.path = Path(path)
        if synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise StoreError(f"unknown synchronous mode {synchronous!r}")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the folder for the store {self.path}: {exc.strerror or exc}") from None
        self._lock = self._take_lock()
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None)
        except sqlite3.Error as exc:
            self._release()
            raise StoreError(f"cannot open the store {self.path}: {exc}") from None
        try:
            self._prepare(synchronous.upper())
        except sqlite3.DatabaseError as exc:
            self.db.close()
            self._release()
            raise StoreError(
                f"{self.path} is not a usable mcp-actors store ({exc}); move it aside to start "
                "afresh, or pass --store sqlite:OTHER_PATH") from None
        self._in_tx = False
        self._savepoints = 0
        self._commit: asyncio.Future | None = None
        #: Why the open group failed; its remaining writes are skipped until it ends.
        self._failed: BaseException | None = None
        #: The open (or last) group's number, and why recent groups failed, by number:
        #: a namespace that wrote in a failed group learns it at its next flush, even
        #: if that comes after the group ended.
        self._group = 0
        self._writes = 0  # in the open group
        self._failures: dict[int, str] = {}
        self.commit_failure: str | None = None
        self.on_commit: Callable[[float, str | None], None] | None = None
        self._checkpointer = _Checkpointer(self.path)
        self._checkpointer.start()

    def _take_lock(self):
        """One server per store: two would each wake their own actor for the same session."""
        try:
            import fcntl
        except ImportError:  # not POSIX: no advisory locks to take
            return None
        lock = open(self.path.with_name(self.path.name + ".lock"), "a+")
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            raise StoreError(f"another mcp-actors server is using {self.path}; stop it, or pass "
                             "--store sqlite:OTHER_PATH") from None
        return lock

    def _prepare(self, synchronous: str) -> None:
        db = self.db
        check = db.execute("PRAGMA quick_check(1)").fetchone()
        if not check or check[0] != "ok":
            raise sqlite3.DatabaseError(f"integrity check failed: {check[0] if check else 'no answer'}")
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if tables and "mcp_actors" not in tables:
            raise sqlite3.DatabaseError("it holds tables of another application")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute(f"PRAGMA synchronous = {synchronous}")
        db.execute("PRAGMA wal_autocheckpoint = 0")  # the checkpointer's job, off the event loop
        db.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
        db.execute("CREATE TABLE IF NOT EXISTS mcp_actors (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        db.execute("CREATE TABLE IF NOT EXISTS kv (ns TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL, "
                   "PRIMARY KEY (ns, key)) WITHOUT ROWID")
        db.execute("CREATE TABLE IF NOT EXISTS alarms (ns TEXT PRIMARY KEY, at REAL NOT NULL) WITHOUT ROWID")
        db.execute("CREATE INDEX IF NOT EXISTS alarms_at ON alarms (at)")
        row = db.execute("SELECT value FROM mcp_actors WHERE key = 'schema'").fetchone()
        if row is None:
            db.execute("INSERT INTO mcp_actors VALUES ('schema', ?)", (SCHEMA_VERSION,))
        elif row[0] != SCHEMA_VERSION:
            raise sqlite3.DatabaseError(f"schema version {row[0]}, this engine reads {SCHEMA_VERSION}")

    # -- writes and group commit ----------------------------------------------------------

    def write(self, sql: str, args: tuple) -> int:
        """Run a write in the open group (opening one if need be); returns the group's number."""
        self._begin()
        self._writes += 1
        self._exec(sql, args)
        return self._group

    def _begin(self) -> None:
        if not self._in_tx:
            self._in_tx = True
            self._group += 1
            self._schedule_commit()
            self._exec("BEGIN")

    def _exec(self, sql: str, args: tuple = ()) -> None:
        """Run a statement of the open group; a failure fails the group (see the module doc)."""
        if self._failed is not None:
            return
        try:
            self.db.execute(sql, args)
        except sqlite3.Error as exc:
            self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        self._failed = exc
        if self.db.in_transaction:
            try:
                self.db.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # the connection rolls back by itself when it cannot

    def _schedule_commit(self) -> None:
        if self._commit is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop: the next flush() or close() commits
        self._commit = loop.create_future()
        loop.call_soon(self._do_commit)

    def _do_commit(self) -> None:
        waiter, self._commit = self._commit, None
        failed = self.commit()
        if waiter is None or waiter.done():
            return
        if failed is None:
            waiter.set_result(None)
        else:  # disk full, an I/O error: every flusher of the group hears of it
            waiter.set_exception(StoreUnavailable(
                f"the store could not commit ({failed}); nothing of this group was kept"))
            waiter.exception()  # mark retrieved; the flushers re-raise it

    def commit(self) -> BaseException | None:
        """End the open group: COMMIT, or (if it failed) make sure it is rolled back.
        Returns why it failed, or None."""
        if not self._in_tx or self._savepoints:
            return None
        started: float | None = None
        if self._failed is None:
            started = time.perf_counter()
            try:
                self.db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._fail(exc)
            else:
                if self._checkpointer.restart_wanted:
                    self._help_restart()
        failed, self._failed = self._failed, None
        if self.on_commit is not None:
            # A group that failed at one of its statements never sent its COMMIT: not timed.
            self.on_commit(None if started is None else time.perf_counter() - started,
                           None if failed is None else type(failed).__name__, self._writes)
        self._writes = 0
        self._in_tx = False
        self.commit_failure = None if failed is None else str(failed)
        if failed is not None:
            self._failures[self._group] = str(failed)
            while len(self._failures) > _KEEP_FAILURES:
                del self._failures[next(iter(self._failures))]
        return failed

    def _help_restart(self) -> None:
        """Copy the frames the checkpointer left behind, so the next write starts the log over."""
        try:
            busy, frames, copied = self.db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error as exc:  # committed data is safe; the log is just longer
            log.warning("store: a checkpoint failed: %s", exc)
            return
        if not busy and frames == copied:
            self._checkpointer.restart_wanted = False

    async def flush(self, group: int = 0) -> None:
        """Wait for the open group's commit. Raises StoreUnavailable if group ``group``
        (the caller's last write) failed, whether it is the open group or an earlier one."""
        if self._in_tx:
            if self._commit is None:
                self._schedule_commit()
            waiter = self._commit
            if waiter is not None:
                try:
                    await asyncio.shield(waiter)
                except StoreUnavailable:
                    pass  # reported below, to those who wrote in that group
        reason = self._failures.get(group)
        if reason is not None:
            raise StoreUnavailable(f"the store could not commit ({reason}); nothing of that group was kept")

    async def probe(self) -> None:
        """Put and delete a value of two pages in one group: it needs new pages, as the
        writes that failed did, so a store that is still full stays unready."""
        ns = self.namespace(PROBE_NAMESPACE)
        ns.put("probe", b"\0" * 8192)
        ns.delete("probe")
        try:
            await ns.flush()
        except StoreUnavailable:
            pass  # still failing: commit_failure says why

    def savepoint(self, fn: Callable[[], T]) -> T:
        self._begin()
        self._savepoints += 1
        name = f"sp{self._savepoints}"
        self._exec(f"SAVEPOINT {name}")
        try:
            result = fn()
        except BaseException:
            self._exec(f"ROLLBACK TO {name}")
            self._exec(f"RELEASE {name}")
            self._savepoints -= 1
            raise
        self._exec(f"RELEASE {name}")
        self._savepoints -= 1
        return result

    # -- the Backend contract -------------------------------------------------------------

    def namespace(self, name: str) -> "SqliteStorage":
        return SqliteStorage(self, name)

    def exists(self, name: str, key: str) -> bool:
        return self.db.execute("SELECT 1 FROM kv WHERE ns = ? AND key = ?", (name, key)).fetchone() is not None

    def count(self, key: str) -> int:
        return self.db.execute("SELECT COUNT(*) FROM kv WHERE key = ?", (key,)).fetchone()[0]

    def drop(self, name: str) -> None:
        self.write("DELETE FROM kv WHERE ns = ?", (name,))
        self.write("DELETE FROM alarms WHERE ns = ?", (name,))

    def due_alarms(self, now: float) -> list[tuple[str, float]]:
        return self.db.execute("SELECT ns, at FROM alarms WHERE at <= ? ORDER BY at", (now,)).fetchall()

    def next_alarm(self) -> float | None:
        return self.db.execute("SELECT MIN(at) FROM alarms").fetchone()[0]

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.close()  # closing the file drops the lock
            self._lock = None

    def close(self) -> None:
        self._savepoints = 0
        self.commit()
        self._checkpointer.stop()
        try:
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error:
            pass  # the log stays; the next open reads it back
        self.db.close()
        self._release()


class SqliteStorage:
    __slots__ = ("backend", "ns", "group")

    def __init__(self, backend: SqliteBackend, ns: str):
        self.backend = backend
        self.ns = ns
        self.group = 0  # the group of this namespace's last write

    def get(self, key: str) -> bytes | None:
        row = self.backend.db.execute("SELECT value FROM kv WHERE ns = ? AND key = ?", (self.ns, key)).fetchone()
        return row[0] if row else None

    def put(self, key: str, value: bytes) -> None:
        self.group = self.backend.write("INSERT OR REPLACE INTO kv VALUES (?, ?, ?)", (self.ns, key, value))

    def delete(self, key: str) -> None:
        self.group = self.backend.write("DELETE FROM kv WHERE ns = ? AND key = ?", (self.ns, key))

    def _range(self, prefix: str, after: str | None) -> tuple[str, tuple]:
        where, args = key_range(prefix, after)
        return f"ns = ? AND {where}", (self.ns, *args)

    def list(self, prefix: str, after: str | None = None) -> list[tuple[str, bytes]]:
        where, args = self._range(prefix, after)
        return self.backend.db.execute(f"SELECT key, value FROM kv WHERE {where} ORDER BY key", args).fetchall()

    def delete_prefix(self, prefix: str) -> None:
        where, args = self._range(prefix, None)
        self.group = self.backend.write(f"DELETE FROM kv WHERE {where}", args)

    def transaction(self, fn: Callable[[], T]) -> T:
        return self.backend.savepoint(fn)

    async def flush(self) -> None:
        await self.backend.flush(self.group)

    def set_alarm(self, at: float) -> None:
        self.group = self.backend.write("INSERT OR REPLACE INTO alarms VALUES (?, ?)", (self.ns, at))

    def get_alarm(self) -> float | None:
        row = self.backend.db.execute("SELECT at FROM alarms WHERE ns = ?", (self.ns,)).fetchone()
        return row[0] if row else None

    def delete_alarm(self) -> None:
        self.group = self.backend.write("DELETE FROM alarms WHERE ns = ?", (self.ns,))
