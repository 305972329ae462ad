"""The PostgreSQL backend: every actor's namespace in one database shared by many processes.

It keeps the storage contract (:mod:`engine.protocol.storage`) with two differences of
shape that the cluster needs, and one rule that makes them safe.

**An actor's namespace is loaded when the actor is claimed** (:meth:`PostgresBackend.claim`),
and then served from memory: reads never wait on the database. This is sound because an
actor is the only writer of its namespace while it holds it, as a Durable Object is; what
it reads is what it wrote, or what the database held when it was claimed.

**Writes go into memory at once and to the database in groups.** Every namespace written
in an event-loop tick joins the open group; at the end of the tick the group is committed
by one call of ``mcp_actors.commit`` (one round trip, one transaction, whatever the number
of actors in it), while the next group gathers. ``flush()`` returns once the group holding
the namespace's last write is committed; it is the output gate, as with SQLite.

**Fencing.** Each claim gives the namespace a new epoch from one sequence, recorded in
``owners``; every commit names the epoch each of its namespaces holds, and the database
keeps only the writes of namespaces whose epoch is still current, in the same transaction
(their owner rows locked until it ends, so a takeover either waits for the commit and then
loads it, or comes first and fences it). A namespace whose writes were refused is
*fenced*: its flush raises :class:`Fenced`, its actor closes, and nothing it computed after
losing the namespace reaches a client. The same happens when the process's own lease ran
out (it was paused, or could not reach the database): before its next flush passes, the
process asks the database which of its namespaces it still holds
(:meth:`PostgresBackend.revalidate`).

Faults: a commit that fails (the database is down, the connection broke) fails its whole
group: every namespace in it raises :class:`~engine.protocol.storage.StoreUnavailable` on
flush from then on, and its actor is replaced by one claimed afresh once the database is
back. The backend itself carries on: the next group commits as soon as the database answers.
Everything in memory is bounded by what the actors keep (their own limits); what waits to
be committed by what one tick writes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable, Iterable

from ..actors.memory_store import MemoryStorage
from ..protocol.storage import StoreUnavailable
from .database import QUERY_TIMEOUT, Database, _connection_error, _reason

log = logging.getLogger("engine")


class Fenced(StoreUnavailable):
    """This process no longer holds the namespace (another took it over after this one's
    lease ran out): its writes were refused, and its actor must go."""


class Holder:
    """The live process that holds a namespace: where to forward to."""

    __slots__ = ("node", "url")

    def __init__(self, node: str, url: str):
        self.node = node
        self.url = url

    def __repr__(self) -> str:
        return f"Holder({self.node!r}, {self.url!r})"


class PgStorage(MemoryStorage):
    """One claimed namespace: its keys in memory, its changes waiting for the next group."""

    __slots__ = ("epoch", "fresh", "dirty", "alarm", "alarm_dirty", "dropped", "releasing", "failed", "waiter",
                 "notices")

    def __init__(self, backend: "PostgresBackend", name: str, epoch: int, fresh: bool,
                 data: dict[str, bytes] | None = None, alarm: float | None = None):
        super().__init__(backend, name)  # type: ignore[arg-type]
        if data:
            self.data = data
        self.epoch = epoch
        #: Made here and never committed: its owner row is written with its first group.
        self.fresh = fresh
        self.dirty: set[str] = set()
        self.alarm = alarm
        self.alarm_dirty = False
        self.dropped = False
        self.releasing = False
        #: Why it may not write any more (a failed group, fencing); None while it may.
        self.failed: StoreUnavailable | None = None
        #: The future of the group its last write is in.
        self.waiter: asyncio.Future | None = None
        #: Notifications to send when this namespace's writes commit (``pg_notify``).
        self.notices: list[tuple[str, str]] = []

    # -- writes: into memory, and marked for the next group ---------------------------------

    def put(self, key: str, value: bytes) -> None:
        MemoryStorage.put(self, key, value)
        self.dirty.add(key)
        self.backend._join(self)  # type: ignore[attr-defined]

    def delete(self, key: str) -> None:
        if key in self.data:
            MemoryStorage.delete(self, key)
            self.dirty.add(key)
            self.backend._join(self)  # type: ignore[attr-defined]

    def set_alarm(self, at: float) -> None:
        self.alarm = at
        self.alarm_dirty = True
        self.backend._join(self)  # type: ignore[attr-defined]

    def get_alarm(self) -> float | None:
        return self.alarm

    def delete_alarm(self) -> None:
        if self.alarm is not None or self.alarm_dirty:
            self.alarm = None
            self.alarm_dirty = True
            self.backend._join(self)  # type: ignore[attr-defined]

    def notify(self, channel: str, payload: str) -> None:
        """Send a notification (``pg_notify``) when this namespace's writes commit: listeners
        hear of a change only once it is durable."""
        self.notices.append((channel, payload))
        self.backend._join(self)  # type: ignore[attr-defined]

    def drop(self) -> None:
        """Delete the whole namespace (and its claim) with the next group."""
        self.data.clear()
        self.dirty.clear()
        self.alarm = None
        self.alarm_dirty = False
        self.dropped = True
        self.backend._join(self)  # type: ignore[attr-defined]

    def release(self) -> None:
        """Let go of the namespace with the next group (its actor left memory): another
        process may claim it without waiting for this one's lease to run out."""
        self.releasing = True
        self.backend._join(self)  # type: ignore[attr-defined]

    # -- the output gate ------------------------------------------------------------------------

    async def flush(self) -> None:
        backend: PostgresBackend = self.backend  # type: ignore[assignment]
        if not backend.lease_ok():
            await backend.revalidate()
        waiter = self.waiter
        if waiter is not None:
            if not waiter.done():
                await asyncio.shield(waiter)
            elif self.failed is None:
                self.waiter = None
        if self.failed is not None:
            raise self.failed


class _Group:
    __slots__ = ("spaces", "future")

    def __init__(self, spaces: list[PgStorage], future: asyncio.Future):
        self.spaces = spaces
        self.future = future


class PostgresBackend(Database):
    """Every actor's storage in PostgreSQL: namespaces claimed and loaded, written in group
    commits, fenced when lost; on the process's records (:class:`Database`). One per process."""

    def __init__(self, url: str, node: str | None = None, lease: float = 5.0):
        super().__init__(url, node, lease)
        self._commit_con: Any = None
        #: Namespaces claimed here and not let go, by name (one object each: its memory is
        #: the truth for its actor).
        self.spaces: dict[str, PgStorage] = {}
        #: Namespaces written since the open group began, in order.
        self._writing: dict[PgStorage, None] = {}
        self._next: asyncio.Future | None = None
        self._in_flight: _Group | None = None
        self._cut_scheduled = False
        self._epochs: list[int] = []
        self._refill: asyncio.Task | None = None
        #: How the process knows its lease holds (set by the membership), and how it
        #: re-establishes it: both return at once while the lease is fresh.
        self.lease_ok: Callable[[], bool] = lambda: True
        self._revalidate: Callable[[], Any] | None = None
        #: Told of namespaces this process lost to another (fenced): their actors must close now.
        self.on_lost: Callable[[list[PgStorage]], None] = lambda spaces: None
        self.on_commit: Callable[[float | None, str | None, int], None] | None = None
        self.groups = 0  # counters, for tests and the bench
        self.fenced = 0

    # -- lifetime ---------------------------------------------------------------------------------

    async def close(self) -> None:
        if self._writing or self._in_flight is not None:
            try:
                await self.settle()
            except StoreUnavailable:
                pass
        con, self._commit_con = self._commit_con, None
        if con is not None and not con.is_closed():
            try:
                await con.close(timeout=QUERY_TIMEOUT)
            except Exception:  # the database is away: the connection goes anyway
                con.terminate()
        await self.close_pool()

    async def settle(self) -> None:
        """Wait until everything written so far is committed (or has failed)."""
        while self._writing or self._in_flight is not None:
            if self._writing and self._in_flight is None:
                self._cut()
            group = self._in_flight
            if group is not None:
                await asyncio.shield(group.future)

    # -- claiming and letting go --------------------------------------------------------------------

    def fresh(self, name: str) -> PgStorage:
        """A namespace for a new actor (a new session, a new task), claimed by its first
        commit: nothing to load, no round trip now. Names are random, so no other
        process makes the same one."""
        if len(self._epochs) < 256 and self._refill is None:
            self._refill = asyncio.get_running_loop().create_task(self._reserve_soon())
        if not self._epochs:
            raise StoreUnavailable("no epochs at hand (the database has not answered yet)")
        storage = PgStorage(self, name, self._epochs.pop(), fresh=True)
        self._adopt(storage)
        return storage

    async def _reserve_soon(self) -> None:
        try:
            await self.reserve_epochs()
        except StoreUnavailable:
            pass  # the next fresh() tries again
        finally:
            self._refill = None

    async def reserve_epochs(self) -> None:
        """Take a block of epochs for the actors this process creates (the sequence counts
        in steps of 1024: each value is the start of a block only this process uses)."""
        if len(self._epochs) >= 256:
            return
        start = await self._fetchval("SELECT nextval('mcp_actors.epochs')")
        self._epochs = list(range(start + 1023, start, -1)) + self._epochs

    async def claim(self, name: str, require: str | None = None) -> PgStorage | Holder | None:
        """Take the namespace over and load it; or the live process that holds it; or None
        when it does not hold ``require`` (it does not exist as an actor)."""
        rows = await self._fetch("SELECT * FROM mcp_actors.claim($1, $2, $3, $4)", name, self.node, self.lease,
                                 require)
        if not rows:
            return None
        first = rows[0]
        if first[0] == 0:
            return Holder(first[1], first[2])
        data = {row[3]: row[4] for row in rows[1:]}
        old = self.spaces.get(name)
        if old is not None and old.failed is None:  # a second claim supersedes the first
            old.failed = Fenced(f"namespace {name} was claimed again")
        storage = PgStorage(self, name, first[0], fresh=False, data=data, alarm=first[5])
        if require is not None and require not in data:  # dropped between the check and the claim
            storage.release()
            self._adopt(storage)
            return None
        self._adopt(storage)
        return storage

    def _adopt(self, storage: PgStorage) -> None:
        self.spaces[storage.name] = storage

    def held(self, name: str) -> PgStorage | None:
        storage = self.spaces.get(name)
        return storage if storage is not None and storage.failed is None else None

    def forget(self, storage: PgStorage) -> None:
        """Stop tracking a namespace (released, dropped or fenced)."""
        if self.spaces.get(storage.name) is storage:
            del self.spaces[storage.name]

    # -- group commit ------------------------------------------------------------------------------

    def _join(self, storage: PgStorage) -> None:
        if storage.failed is not None:
            return  # its writes go nowhere: its actor is closing
        if storage not in self._writing:
            self._writing[storage] = None
            if self._next is None:
                self._next = asyncio.get_running_loop().create_future()
            storage.waiter = self._next
            if not self._cut_scheduled and self._in_flight is None:
                self._cut_scheduled = True
                asyncio.get_running_loop().call_soon(self._cut)

    def _cut(self) -> None:
        """End the open group and commit it (unless one is committing: it cuts the next)."""
        self._cut_scheduled = False
        if self._in_flight is not None or not self._writing:
            return
        spaces = [s for s in self._writing if s.failed is None]
        self._writing = {}
        future, self._next = self._next, None
        assert future is not None
        group = self._in_flight = _Group(spaces, future)
        asyncio.get_running_loop().create_task(self._commit(group))

    def _arguments(self, spaces: list[PgStorage]) -> tuple:
        names, epochs, fresh = [], [], []
        put_ns, put_key, put_value, del_ns, del_key = [], [], [], [], []
        alarm_ns, alarm_at, drop, release, channels, payloads = [], [], [], [], [], []
        for s in spaces:
            name = s.name
            names.append(name)
            epochs.append(s.epoch)
            fresh.append(s.fresh)
            s.fresh = False
            if s.dropped:
                drop.append(name)
                release.append(name)
            else:
                data = s.data
                for key in s.dirty:
                    value = data.get(key)
                    if value is None:
                        del_ns.append(name)
                        del_key.append(key)
                    else:
                        put_ns.append(name)
                        put_key.append(key)
                        put_value.append(value)
                if s.alarm_dirty:
                    alarm_ns.append(name)
                    alarm_at.append(s.alarm)
                if s.releasing:
                    release.append(name)
            s.dirty = set()
            s.alarm_dirty = False
            if s.notices:
                for channel, payload in s.notices:
                    channels.append(channel)
                    payloads.append(payload)
                s.notices = []
        return (self.node, names, epochs, fresh, put_ns, put_key, put_value, del_ns, del_key, alarm_ns, alarm_at,
                drop, release, channels, payloads)

    async def _commit(self, group: _Group) -> None:
        future = group.future
        started = time.perf_counter()
        args: tuple | None = None
        try:
            args = self._arguments(group.spaces)
            con = await self._commit_connection()
            rows = await con.fetch("SELECT * FROM mcp_actors.commit($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, "
                                   "$12, $13, $14, $15)", *args, timeout=QUERY_TIMEOUT)
        except BaseException as exc:
            if not isinstance(exc, Exception) or not _connection_error(exc):
                if isinstance(exc, Exception):
                    log.exception("store: a commit failed")
            await self._drop_commit_connection()
            failure = StoreUnavailable(f"the database could not commit ({_reason(exc)}); nothing of this group "
                                       "was kept")
            self.commit_failure = _reason(exc)
            if self.on_commit is not None:
                self.on_commit(time.perf_counter() - started, type(exc).__name__, _writes(args))
            for s in group.spaces:
                if s.failed is None:
                    s.failed = failure
                self.forget(s)
            if not future.done():
                future.set_exception(failure)
                future.exception()  # retrieved: the flushers re-raise what their namespace holds
            if not isinstance(exc, Exception):
                raise
        else:
            self.groups += 1
            self.commit_failure = None
            if self.on_commit is not None:
                self.on_commit(time.perf_counter() - started, None, _writes(args))
            if rows:
                refused = {row[0] for row in rows}
                log.warning("store: the writes of %s were refused: another process holds it now",
                            ", ".join(sorted(refused)[:5]))
                self._fence([s for s in group.spaces if s.name in refused])
            for s in group.spaces:
                if s.failed is not None or s.dropped or (s.releasing and s not in self._writing):
                    self.forget(s)
            if not future.done():
                future.set_result(None)
        finally:
            self._in_flight = None
            if self._writing:
                self._cut()

    async def _commit_connection(self) -> Any:
        """Commits go one at a time over a connection of their own, outside the pool (the
        next group gathers meanwhile), so a busy pool never holds them up and a pool that
        recycles a broken connection never takes this one from under a commit."""
        con = self._commit_con
        if con is None or con.is_closed():
            import asyncpg

            self._commit_con = None
            con = self._commit_con = await asyncpg.connect(self.url, timeout=QUERY_TIMEOUT,
                                                           command_timeout=QUERY_TIMEOUT)
        return con

    async def _drop_commit_connection(self) -> None:
        """After a failed commit its connection is in an unknown state: closed, not reused."""
        con, self._commit_con = self._commit_con, None
        if con is not None:
            con.terminate()

    # -- lease ------------------------------------------------------------------------------------

    def use_lease(self, ok: Callable[[], bool], revalidate: Callable[[], Any]) -> None:
        self.lease_ok = ok
        self._revalidate = revalidate

    async def revalidate(self) -> None:
        """The lease ran out: renew it (the membership's heartbeat) and learn which
        namespaces this process still holds; those it lost are fenced. Raises
        StoreUnavailable when the database cannot say."""
        if self._revalidate is not None:
            await self._revalidate()

    async def still_held(self) -> set[str]:
        """Which of the namespaces claimed here still carry their epoch in ``owners``."""
        spaces = [s for s in self.spaces.values() if s.failed is None and not s.fresh]
        if not spaces:
            return set()
        rows = await self._fetch("SELECT o.ns FROM mcp_actors.owners o JOIN unnest($1::text[], $2::bigint[]) "
                                 "AS g(ns, epoch) ON o.ns = g.ns AND o.epoch = g.epoch WHERE o.node = $3",
                                 [s.name for s in spaces], [s.epoch for s in spaces], self.node)
        return {row[0] for row in rows} | {s.name for s in self.spaces.values() if s.fresh}

    def fence(self, names: Iterable[str]) -> list[PgStorage]:
        """Mark the namespaces of these names claimed here as lost to another process."""
        return self._fence([s for s in (self.spaces.get(name) for name in list(names)) if s is not None])

    def _fence(self, spaces: list[PgStorage]) -> list[PgStorage]:
        lost = []
        for s in spaces:
            if s.failed is None:
                s.failed = Fenced(f"namespace {s.name} is held by another process now")
                self.fenced += 1
                lost.append(s)
            self.forget(s)
        if lost:
            self.on_lost(lost)
        return lost

def _writes(args: tuple | None) -> int:
    """The writes in a group's commit arguments: keys put and deleted, alarms set, namespaces dropped."""
    if not args:
        return 0
    return len(args[5]) + len(args[7]) + len(args[9]) + len(args[11])
