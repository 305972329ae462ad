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
import secrets
import time
from typing import Any, Callable, Iterable

from ..actors.memory_store import MemoryStorage
from ..protocol.storage import StoreUnavailable
from . import schema

log = logging.getLogger("engine")

#: Seconds a claim, a commit or any other call may take before it counts as failed.
QUERY_TIMEOUT = 10.0
#: Connections in the pool (claims, alarms, heartbeats; commits have their own).
POOL_SIZE = 8


class StoreError(Exception):
    """The database cannot be used; the message says what to do about it."""


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


def _connection_error(exc: BaseException) -> bool:
    """Whether ``exc`` means the database could not be reached or answered badly (so the
    operation did not happen, or its outcome is unknown), rather than a bug of ours."""
    import asyncpg

    # InternalClientError: a connection left mid-operation by a timeout or a server that went
    # away ("another operation is in progress"); the connection is dropped, not the process.
    return isinstance(exc, (OSError, asyncio.TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError,
                            asyncpg.exceptions.ConnectionDoesNotExistError, asyncpg.InternalClientError))


class PostgresBackend:
    """Every actor's storage in PostgreSQL, and the records that make many processes one
    cluster (who is alive, who holds what). One per process."""

    def __init__(self, url: str, node: str | None = None, lease: float = 5.0):
        self.url = url
        #: This process's name in ``nodes`` and ``owners``: new at every start.
        self.node = node or secrets.token_urlsafe(9)
        self.lease = lease
        self.pool: Any = None
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
        #: Why the last commit failed; cleared by the next commit or heartbeat that succeeds
        #: (a heartbeat is a committed write too, so it probes for us).
        self.commit_failure: str | None = None
        self.on_commit: Callable[[float | None, str | None, int], None] | None = None
        self.groups = 0  # counters, for tests and the bench
        self.fenced = 0

    # -- lifetime ---------------------------------------------------------------------------------

    async def start(self) -> None:
        try:
            import asyncpg
        except ImportError:
            raise StoreError("the PostgreSQL store needs asyncpg: pip install 'mcp-actors[postgres]'") from None
        try:
            # min_size=0: an idle pool holds no connection to lose while the database is away
            # (asyncpg's floor-restoring reconnects log tracebacks); so the first connection,
            # which is where an unreachable database shows, is made here, under this guard.
            self.pool = await asyncpg.create_pool(self.url, min_size=0, max_size=POOL_SIZE,
                                                  command_timeout=QUERY_TIMEOUT)
            con = await self.pool.acquire(timeout=QUERY_TIMEOUT)
        except (OSError, asyncio.TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise StoreError(f"cannot connect to the database {_shown(self.url)}: {exc}") from None
        except ValueError as exc:  # a malformed URL
            raise StoreError(f"{_shown(self.url)} is not a PostgreSQL URL ({exc})") from None
        try:
            await self._setup(con)
        finally:
            await self.pool.release(con)

    async def _setup(self, con) -> None:
        """The schema, made once per database (under an advisory lock: processes start together)."""
        import asyncpg

        async with con.transaction():
            await con.execute("SELECT pg_advisory_xact_lock(hashtext('mcp_actors.setup'))")
            try:
                await con.execute(schema.SETUP)
            except asyncpg.PostgresError as exc:
                raise StoreError(f"cannot create the mcp_actors schema in {_shown(self.url)}: {exc}") from None
            version = await con.fetchval("SELECT value FROM mcp_actors.meta WHERE key = 'schema'")
            if version is None:
                await con.execute("INSERT INTO mcp_actors.meta VALUES ('schema', $1)", schema.SCHEMA_VERSION)
            elif version != schema.SCHEMA_VERSION:
                raise StoreError(f"the database holds mcp_actors schema version {version}; this engine reads "
                                 f"{schema.SCHEMA_VERSION}")

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
        if self.pool is not None:
            await self.pool.close()
            self.pool = None

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

    # -- the cluster's records ------------------------------------------------------------------------

    async def register(self, url: str, host: str, pid: int) -> None:
        await self._execute("INSERT INTO mcp_actors.nodes (node, url, host, pid) VALUES ($1, $2, $3, $4) "
                            "ON CONFLICT (node) DO UPDATE SET url = excluded.url, beat = now(), draining = false",
                            self.node, url, host, pid)

    async def beat(self) -> list[tuple[str, str, float, bool]]:
        rows = await self._fetch("SELECT * FROM mcp_actors.beat($1)", self.node)
        self.commit_failure = None  # the database took a write: ready again
        return [(r[0], r[1], r[2], r[3]) for r in rows]

    async def probe(self) -> None:
        return None  # the heartbeat probes: Membership beats every lease / 5

    async def set_draining(self) -> None:
        await self._execute("UPDATE mcp_actors.nodes SET draining = true WHERE node = $1", self.node)

    async def unregister(self) -> None:
        """Leaving: every claim of this process goes, and its node row, so nobody waits for
        its lease to run out."""
        await self._execute("WITH gone AS (DELETE FROM mcp_actors.owners WHERE node = $1) "
                            "DELETE FROM mcp_actors.nodes WHERE node = $1", self.node)

    async def forget_dead(self, older_than: float) -> int:
        """Remove the rows of processes whose last beat is older than ``older_than`` seconds
        (their claims go with them; any process may take those actors over)."""
        rows = await self._fetch(
            "WITH dead AS (DELETE FROM mcp_actors.nodes WHERE beat < now() - make_interval(secs => $1) "
            "RETURNING node), gone AS (DELETE FROM mcp_actors.owners o USING dead WHERE o.node = dead.node) "
            "SELECT node FROM dead", older_than)
        return len(rows)

    async def due_alarms(self, now: float, limit: int = 256) -> list[tuple[str, float]]:
        """Due alarms this process may run: of namespaces it holds, nobody holds, or a
        process whose lease ran out holds."""
        rows = await self._fetch(
            "SELECT a.ns, a.at FROM mcp_actors.alarms a LEFT JOIN mcp_actors.owners o ON o.ns = a.ns "
            "LEFT JOIN mcp_actors.nodes n ON n.node = o.node WHERE a.at <= $1 AND (o.node IS NULL OR o.node = $2 "
            "OR n.node IS NULL OR n.beat < now() - make_interval(secs => $3)) ORDER BY a.at LIMIT $4",
            now, self.node, self.lease, limit)
        return [(r[0], r[1]) for r in rows]

    async def count(self, key: str) -> int:
        if key == "meta":
            return await self._fetchval("SELECT count(*) FROM mcp_actors.kv WHERE key = 'meta'")
        return await self._fetchval("SELECT count(*) FROM mcp_actors.kv WHERE key = $1", key)

    async def read(self, name: str, key: str) -> bytes | None:
        """One committed value, read without claiming (a finished task's record, say)."""
        return await self._fetchval("SELECT value FROM mcp_actors.kv WHERE ns = $1 AND key = $2", name, key)

    async def secret(self) -> str:
        """The cluster's generated secret: made by the first process that asks, the same
        for every process after it."""
        made = secrets.token_urlsafe(32)
        return await self._fetchval(
            "WITH made AS (INSERT INTO mcp_actors.meta VALUES ('secret', $1) ON CONFLICT (key) DO NOTHING "
            "RETURNING value) SELECT value FROM made UNION ALL SELECT value FROM mcp_actors.meta "
            "WHERE key = 'secret' LIMIT 1", made)

    async def announce(self, method: str, params: bytes | None, uri: str | None, keep: int) -> int:
        return await self._fetchval("SELECT mcp_actors.announce($1, $2, $3, $4)", method, params, uri, keep)

    async def announcements(self, after: int, limit: int) -> list[tuple[int, str, bytes | None, str | None]]:
        """The kept announcements numbered above ``after``, oldest first (at most ``limit``:
        the newest ones)."""
        rows = await self._fetch("SELECT seq, method, params, uri FROM (SELECT * FROM mcp_actors.announcements "
                                 "WHERE seq > $1 ORDER BY seq DESC LIMIT $2) newest ORDER BY seq", after, limit)
        return [(r[0], r[1], r[2], r[3]) for r in rows]

    async def listener(self) -> Any:
        """A connection of its own for LISTEN (its notifications arrive whenever they come)."""
        import asyncpg

        try:
            return await asyncpg.connect(self.url, timeout=QUERY_TIMEOUT)
        except Exception as exc:
            if _connection_error(exc):
                raise StoreUnavailable(f"the database did not answer ({_reason(exc)})") from None
            raise

    async def set_alarm_now(self, name: str, at: float) -> None:
        """Set a namespace's alarm directly (its actor could not be woken to do it)."""
        await self._execute("INSERT INTO mcp_actors.alarms VALUES ($1, $2) ON CONFLICT (ns) DO UPDATE SET at = $2",
                            name, at)

    # -- queries -----------------------------------------------------------------------------------

    async def _fetch(self, sql: str, *args: Any) -> list:
        try:
            return await self.pool.fetch(sql, *args, timeout=QUERY_TIMEOUT)
        except Exception as exc:
            if _connection_error(exc) or self.pool is None:
                raise StoreUnavailable(f"the database did not answer ({_reason(exc)})") from None
            raise

    async def _fetchval(self, sql: str, *args: Any) -> Any:
        rows = await self._fetch(sql, *args)
        return rows[0][0] if rows else None

    async def _execute(self, sql: str, *args: Any) -> None:
        try:
            await self.pool.execute(sql, *args, timeout=QUERY_TIMEOUT)
        except Exception as exc:
            if _connection_error(exc):
                raise StoreUnavailable(f"the database did not answer ({_reason(exc)})") from None
            raise


def _writes(args: tuple | None) -> int:
    """The writes in a group's commit arguments: keys put and deleted, alarms set, namespaces dropped."""
    if not args:
        return 0
    return len(args[5]) + len(args[7]) + len(args[9]) + len(args[11])


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}"[:200] if text else type(exc).__name__


def _shown(url: str) -> str:
    """A database URL fit for a message: without its password."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    userinfo, _, host = rest.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}@{host}"
