"""How a process talks to the cluster's database, and the records that make many processes
one cluster: who is alive and where it is reached (``nodes``), which alarms are due, the
announcements, the cluster's secret.

:class:`Database` holds the connection pool and the schema, and answers the membership, the
bus and the runtime; :class:`~engine.cluster.store.PostgresBackend` builds the actors'
storage on it (namespaces, group commits, fencing). Every query here is one round trip on
the pool, bounded by ``QUERY_TIMEOUT``; a database that does not answer is
:class:`~engine.protocol.storage.StoreUnavailable`, never a traceback.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

from ..protocol.storage import StoreUnavailable
from . import schema

#: Seconds a claim, a commit or any other call may take before it counts as failed.
QUERY_TIMEOUT = 10.0
#: Connections in the pool (claims, alarms, heartbeats; commits have their own).
POOL_SIZE = 8


class StoreError(Exception):
    """The database cannot be used; the message says what to do about it."""


class Database:
    """The pool, the schema and the cluster's records. One per process."""

    def __init__(self, url: str, node: str | None = None, lease: float = 5.0):
        self.url = url
        #: This process's name in ``nodes`` and ``owners``: new at every start.
        self.node = node or secrets.token_urlsafe(9)
        self.lease = lease
        self.pool: Any = None
        #: Why the last commit failed; cleared by the next commit or heartbeat that succeeds
        #: (a heartbeat is a committed write too, so it probes for us).
        self.commit_failure: str | None = None

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

    async def close_pool(self) -> None:
        if self.pool is not None:
            await self.pool.close()
            self.pool = None

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


def _connection_error(exc: BaseException) -> bool:
    """Whether ``exc`` means the database could not be reached or answered badly (so the
    operation did not happen, or its outcome is unknown), rather than a bug of ours."""
    import asyncpg

    # InternalClientError: a connection left mid-operation by a timeout or a server that went
    # away ("another operation is in progress"); the connection is dropped, not the process.
    return isinstance(exc, (OSError, asyncio.TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError,
                            asyncpg.exceptions.ConnectionDoesNotExistError, asyncpg.InternalClientError))


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
