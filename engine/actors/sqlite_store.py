"""The embedded durable backend: every actor's namespace in one SQLite file (WAL).

Durability rule: writes go into an open transaction at once (so reads see them) and are
committed together at the end of the current event-loop tick, one COMMIT for every actor
that wrote in that tick (group commit). ``flush()`` waits for that commit, and the actor
releases no bytes to a client before its flush returns. With ``synchronous=NORMAL`` (the
default) a commit survives the process being killed; ``synchronous=FULL`` also survives
power loss, at the cost of an fsync per group.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path
from typing import Callable, TypeVar

from ..protocol.storage import key_range

T = TypeVar("T")

SCHEMA_VERSION = "1"


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

    def write(self, sql: str, args: tuple) -> None:
        if not self._in_tx:
            self.db.execute("BEGIN")
            self._in_tx = True
            self._schedule_commit()
        self.db.execute(sql, args)

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
        try:
            self.commit()
        except Exception as exc:  # disk full, I/O error: every waiter hears of it
            if waiter is not None and not waiter.done():
                waiter.set_exception(exc)
                waiter.exception()  # mark retrieved; the flushers re-raise it
            return
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def commit(self) -> None:
        if self._in_tx and not self._savepoints:
            self.db.execute("COMMIT")
            self._in_tx = False

    async def flush(self) -> None:
        if not self._in_tx:
            return
        if self._commit is None:
            self._schedule_commit()
        waiter = self._commit
        if waiter is not None:
            await asyncio.shield(waiter)

    def savepoint(self, fn: Callable[[], T]) -> T:
        if not self._in_tx:
            self.db.execute("BEGIN")
            self._in_tx = True
            self._schedule_commit()
        self._savepoints += 1
        name = f"sp{self._savepoints}"
        self.db.execute(f"SAVEPOINT {name}")
        try:
            result = fn()
        except BaseException:
            self.db.execute(f"ROLLBACK TO {name}")
            self.db.execute(f"RELEASE {name}")
            self._savepoints -= 1
            raise
        self.db.execute(f"RELEASE {name}")
        self._savepoints -= 1
        return result

    # -- the Backend contract -------------------------------------------------------------

    def namespace(self, name: str) -> "SqliteStorage":
        return SqliteStorage(self, name)

    def exists(self, name: str, key: str) -> bool:
        return self.db.execute("SELECT 1 FROM kv WHERE ns = ? AND key = ?", (name, key)).fetchone() is not None

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
        if self._in_tx:
            self.db.execute("COMMIT")
            self._in_tx = False
        self.db.close()
        self._release()


class SqliteStorage:
    __slots__ = ("backend", "ns")

    def __init__(self, backend: SqliteBackend, ns: str):
        self.backend = backend
        self.ns = ns

    def get(self, key: str) -> bytes | None:
        row = self.backend.db.execute("SELECT value FROM kv WHERE ns = ? AND key = ?", (self.ns, key)).fetchone()
        return row[0] if row else None

    def put(self, key: str, value: bytes) -> None:
        self.backend.write("INSERT OR REPLACE INTO kv VALUES (?, ?, ?)", (self.ns, key, value))

    def delete(self, key: str) -> None:
        self.backend.write("DELETE FROM kv WHERE ns = ? AND key = ?", (self.ns, key))

    def _range(self, prefix: str, after: str | None) -> tuple[str, tuple]:
        where, args = key_range(prefix, after)
        return f"ns = ? AND {where}", (self.ns, *args)

    def list(self, prefix: str, after: str | None = None) -> list[tuple[str, bytes]]:
        where, args = self._range(prefix, after)
        return self.backend.db.execute(f"SELECT key, value FROM kv WHERE {where} ORDER BY key", args).fetchall()

    def delete_prefix(self, prefix: str) -> None:
        where, args = self._range(prefix, None)
        self.backend.write(f"DELETE FROM kv WHERE {where}", args)

    def transaction(self, fn: Callable[[], T]) -> T:
        return self.backend.savepoint(fn)

    async def flush(self) -> None:
        await self.backend.flush()

    def set_alarm(self, at: float) -> None:
        self.backend.write("INSERT OR REPLACE INTO alarms VALUES (?, ?)", (self.ns, at))

    def get_alarm(self) -> float | None:
        row = self.backend.db.execute("SELECT at FROM alarms WHERE ns = ?", (self.ns,)).fetchone()
        return row[0] if row else None

    def delete_alarm(self) -> None:
        self.backend.write("DELETE FROM alarms WHERE ns = ?", (self.ns,))
