"""python -m bench.pg_drivers [--seconds S]: asyncpg vs psycopg 3 (async) on the engine's queries.

A private PostgreSQL 15 (bench/postgres.py) with its default, durable settings (fsync on,
synchronous_commit on), the mcp_actors schema made with ``engine.cluster.schema.SETUP``,
and the three query shapes the cluster store (engine/cluster/store.py) sends most:

- **commit**: one group commit, ``SELECT * FROM mcp_actors.commit(...)`` with its fifteen
  array arguments: the fenced epoch check of every namespace of the group, then per
  namespace one event put (121 bytes, as a session's SSE event) and the delete of its
  oldest event, in one round trip and one transaction (a WAL flush). Groups of 1 and of 8
  namespaces; one connection, one commit at a time, as the store runs them.
- **claim**: ``SELECT * FROM mcp_actors.claim(ns, node, lease, 'meta')`` of a session's
  namespace (meta + 64 events + a streams record: 66 rows back), claimed again by its
  holder (a new epoch: an owners update, so a transaction that commits).
- **heartbeat**: ``SELECT * FROM mcp_actors.beat(node)`` among 8 nodes (8 rows back); on
  8 connections each beats for a node of its own (as 8 processes do; one node's beats
  would queue on its row lock).

Each shape runs for S seconds on 1 connection (sequential: latency) and, for claim and
heartbeat, on 8 connections at once (the store's pool size), with both drivers on the same
database and event loop (uvloop when installed: uvicorn serves the engine on it). Reported:
operations/s, the client's CPU per operation (this process's CPU time: the driver's
encoding, decoding and protocol work, plus the loop), and psycopg / asyncpg. asyncpg gets
the engine's SQL as is (it prepares statements and learns argument types from the server);
psycopg gets the same SQL with ``%s`` placeholders cast to the function's types (it sends
parameters with their Python types), autocommit on (as asyncpg runs outside a transaction),
and its default automatic prepare (after 5 executions).
"""

from __future__ import annotations

import argparse
import asyncio
import time

from engine.cluster import schema

from .postgres import PostgresServer

NODE, EVENTS, VALUE = "bench-node", 64, b"x" * 121
#: The cluster's processes: NODE, and the others whose heartbeats run beside its own.
NODES = [NODE] + [f"node-{i}" for i in range(1, 8)]

COMMIT_ASYNCPG = "SELECT * FROM mcp_actors.commit($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
COMMIT_PSYCOPG = ("SELECT * FROM mcp_actors.commit(%s, %s::text[], %s::bigint[], %s::boolean[], %s::text[], "
                  "%s::text[], %s::bytea[], %s::text[], %s::text[], %s::text[], %s::float8[], %s::text[], "
                  "%s::text[], %s::text[], %s::text[])")
CLAIM_ASYNCPG = "SELECT * FROM mcp_actors.claim($1, $2, $3, $4)"
CLAIM_PSYCOPG = "SELECT * FROM mcp_actors.claim(%s, %s, %s::float8, %s)"
BEAT_ASYNCPG = "SELECT * FROM mcp_actors.beat($1)"
BEAT_PSYCOPG = "SELECT * FROM mcp_actors.beat(%s)"


def _key(n: int) -> str:
    return f"e/0000000001/{n:010d}"


class Asyncpg:
    name = "asyncpg"

    def __init__(self, url: str):
        self.url = url

    async def connect(self):
        import asyncpg

        return await asyncpg.connect(self.url)

    async def close(self, con) -> None:
        await con.close()

    async def commit(self, con, args: tuple) -> list:
        return await con.fetch(COMMIT_ASYNCPG, *args)

    async def claim(self, con, ns: str) -> list:
        return await con.fetch(CLAIM_ASYNCPG, ns, NODE, 5.0, "meta")

    async def beat(self, con, node: str = NODE) -> list:
        return await con.fetch(BEAT_ASYNCPG, node)


class Psycopg:
    name = "psycopg 3"

    def __init__(self, url: str):
        self.url = url

    async def connect(self):
        import psycopg

        return await psycopg.AsyncConnection.connect(self.url, autocommit=True)

    async def close(self, con) -> None:
        await con.close()

    async def _fetch(self, con, sql: str, args) -> list:
        cur = await con.execute(sql, args)
        return await cur.fetchall()

    async def commit(self, con, args: tuple) -> list:
        return await self._fetch(con, COMMIT_PSYCOPG, args)

    async def claim(self, con, ns: str) -> list:
        return await self._fetch(con, CLAIM_PSYCOPG, (ns, NODE, 5.0, "meta"))

    async def pipelined_commits(self, con, commits: "Commits", depth: int, seconds: float) -> tuple[int, float, float]:
        """Group commits on one connection with up to ``depth`` of them sent before the first
        one's result is read (psycopg's pipeline mode; asyncpg has none): what a store could
        do to send a session's next group while its previous one commits. Each commit is its
        own transaction (autocommit), in the order sent. (operations, wall s, CPU s)"""
        from collections import deque

        done, stop = 0, time.perf_counter() + seconds
        cpu, wall = time.process_time(), time.perf_counter()
        async with con.pipeline() as pipeline:
            sent: deque = deque()
            while True:
                running = time.perf_counter() < stop
                while running and len(sent) < depth:
                    sent.append(await con.execute(COMMIT_PSYCOPG, commits.next()))
                if not sent:
                    break
                if len(sent) == depth or not running:
                    await pipeline.sync()
                rows = await sent.popleft().fetchall()
                assert not rows, f"pipelined commit refused {rows}"
                done += 1
        return done, time.perf_counter() - wall, time.process_time() - cpu

    async def beat(self, con, node: str = NODE) -> list:
        return await self._fetch(con, BEAT_PSYCOPG, (node,))


async def setup(url: str, groups: int) -> None:
    """The schema, three nodes, the namespaces the commits write (held by NODE), and 8
    sessions' namespaces to claim (66 keys each)."""
    import asyncpg

    con = await asyncpg.connect(url)
    try:
        await con.execute(schema.SETUP)
        await con.executemany("INSERT INTO mcp_actors.nodes (node, url) VALUES ($1, $2)",
                              [(node, f"http://127.0.0.1:{9000 + i}") for i, node in enumerate(NODES)])
        names = [f"c{i:04d}" for i in range(groups)] + [f"s{i:04d}" for i in range(8)]
        await con.executemany("INSERT INTO mcp_actors.owners (ns, node, epoch) VALUES ($1, $2, 1)",
                              [(n, NODE) for n in names])
        rows = [(n, _key(k), VALUE) for n in names for k in range(EVENTS)]
        rows += [(n, "meta", b"m" * 260) for n in names] + [(n, "r/streams", b"s" * 5) for n in names]
        await con.copy_records_to_table("kv", schema_name="mcp_actors", records=rows, columns=["ns", "key", "value"])
        await con.execute("VACUUM ANALYZE mcp_actors.kv")
    finally:
        await con.close()


class Commits:
    """The arguments of successive group commits over ``size`` namespaces held at epoch 1:
    each puts its next event and deletes its oldest."""

    def __init__(self, first: int, size: int):
        self.names = [f"c{i:04d}" for i in range(first, first + size)]
        self.n = EVENTS

    def next(self) -> tuple:
        names, n = self.names, self.n
        self.n += 1
        k = len(names)
        return (NODE, names, [1] * k, [False] * k, names, [_key(n)] * k, [VALUE] * k, names, [_key(n - EVENTS)] * k,
                [], [], [], [], [], [])


async def _timed(seconds: float, tasks: int, op) -> tuple[int, float, float]:
    """Run ``op(i)`` in ``tasks`` loops for ``seconds``; (operations, wall s, CPU s)."""
    done = 0
    stop = time.perf_counter() + seconds

    async def loop(i: int) -> None:
        nonlocal done
        while time.perf_counter() < stop:
            await op(i)
            done += 1

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(loop(i) for i in range(tasks)))
    return done, time.perf_counter() - wall, time.process_time() - cpu


async def measure(driver, seconds: float, slot: int) -> dict[str, tuple[float, float]]:
    """{shape: (ops/s, client CPU us/op)}; ``slot`` picks this driver's own commit namespaces."""
    out: dict[str, tuple[float, float]] = {}
    cons = [await driver.connect() for _ in range(8)]
    try:
        for size in (1, 8):
            commits = Commits(slot * 9 + (8 if size == 1 else 0), size)
            rows = await driver.commit(cons[0], commits.next())
            assert not rows, f"{driver.name}: commit refused {rows}"
            for _ in range(20):  # warm: prepared statements, caches
                await driver.commit(cons[0], commits.next())
            ops, wall, cpu = await _timed(seconds, 1, lambda i: driver.commit(cons[0], commits.next()))
            out[f"commit, group of {size}, 1 connection"] = (ops / wall, 1e6 * cpu / max(1, ops))
        for tasks in (1, 8):
            rows = await driver.claim(cons[0], "s0000")
            assert rows and rows[0][0] and len(rows) == EVENTS + 3, f"{driver.name}: claim gave {len(rows)} rows"
            for i in range(tasks):
                for _ in range(10):
                    await driver.claim(cons[i], f"s{i:04d}")
            ops, wall, cpu = await _timed(seconds, tasks, lambda i: driver.claim(cons[i], f"s{i:04d}"))
            out[f"claim (66 rows), {tasks} connection{'s' if tasks > 1 else ''}"] = (ops / wall, 1e6 * cpu / ops)
        for tasks in (1, 8):
            rows = await driver.beat(cons[0])
            assert len(rows) == len(NODES), f"{driver.name}: beat gave {rows}"
            for i in range(tasks):
                for _ in range(10):
                    await driver.beat(cons[i], NODES[i])
            ops, wall, cpu = await _timed(seconds, tasks, lambda i: driver.beat(cons[i], NODES[i]))
            out[f"heartbeat, {tasks} connection{'s' if tasks > 1 else ''}"] = (ops / wall, 1e6 * cpu / ops)
    finally:
        for con in cons:
            await driver.close(con)
    return out


async def pipelined(url: str, seconds: float) -> dict[str, tuple[float, float]]:
    """psycopg alone: group commits of one namespace on one connection, 1, 2 and 4 deep."""
    driver = Psycopg(url)
    con = await driver.connect()
    out = {}
    try:
        for depth in (1, 2, 4):
            commits = Commits(18 + depth, 1)
            await driver.pipelined_commits(con, commits, depth, 0.3)  # warm
            ops, wall, cpu = await driver.pipelined_commits(con, commits, depth, seconds)
            out[f"commit, group of 1, 1 connection, pipelined {depth} deep (psycopg)"] = (ops / wall, 1e6 * cpu / ops)
    finally:
        await driver.close(con)
    return out


async def run(url: str, seconds: float) -> tuple[list[tuple[str, tuple, tuple]], dict]:
    await setup(url, 23)
    first = await measure(Asyncpg(url), seconds, 0)
    second = await measure(Psycopg(url), seconds, 1)
    return [(shape, first[shape], second[shape]) for shape in first], await pipelined(url, seconds)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pg_drivers", description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="seconds per shape and driver (default 2)")
    args = parser.parse_args()
    try:
        import uvloop

        loop_name, runner = "uvloop", uvloop.run
    except ImportError:
        loop_name, runner = "asyncio", asyncio.run
    import asyncpg
    import psycopg

    with PostgresServer() as pg:
        fsync = pg.psql("SHOW fsync").strip()
        results, deep = runner(run(pg.url, args.seconds))
    print(f"asyncpg {asyncpg.__version__} vs psycopg {psycopg.__version__} (async), {loop_name}, "
          f"PostgreSQL 15 with fsync={fsync}, {args.seconds:g} s per shape\n")
    print("| shape | asyncpg ops/s | psycopg ops/s | psycopg / asyncpg | asyncpg CPU us/op | psycopg CPU us/op |")
    print("|---|---|---|---|---|---|")
    for shape, (a_ops, a_cpu), (p_ops, p_cpu) in results:
        print(f"| {shape} | {a_ops:,.0f} | {p_ops:,.0f} | {p_ops / a_ops:.2f} | {a_cpu:.0f} | {p_cpu:.0f} |")
    print("\n| shape | psycopg ops/s | CPU us/op |\n|---|---|---|")
    for shape, (ops, cpu) in deep.items():
        print(f"| {shape} | {ops:,.0f} | {cpu:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
