"""(l) The cluster: mcp-actors over PostgreSQL, each figure a ratio measured in the same run.

Every figure runs against a private PostgreSQL 15 (bench/postgres.py) with its default,
durable settings: ``fsync = on``, ``synchronous_commit = on``, ``full_page_writes = on``,
its data dir on the machine's disk (not tmpfs), so every group commit waits for a WAL
flush, as in production. Each figure gets a database of its own (``new_database()``).

Where the CPU goes: as in the other scenarios, the server side runs on core 0 and wrk on
core 1. "Server side" here is the engine processes *and* PostgreSQL (the postmaster and its
backends are pinned to core 0 with the engine), so the PostgreSQL store pays for its
database on the same core the SQLite store pays for its file writes. The server CPU per
request in the notes is the engine's process group plus PostgreSQL's.

The figures, and how each is measured:

1. Session-era tools/call (the load of scenario a: SSE replies, 16 connections, one session)
   against one process on the PostgreSQL store and one on the default SQLite store;
   the ratio of their requests/s; then the same at 64 connections (larger groups per commit).
   At 16 connections also at matched durability: both fsyncing each commit (SQLite's
   ``?synchronous=full``), and neither waiting for a flush (PostgreSQL's
   ``?synchronous_commit=off``), since the two defaults promise different things.
2. Forwarded vs owned: two processes over one database; the session is made on A (A holds
   it, checked in ``mcp_actors.owners``); the same load sent to A (owned) and then to B
   (B relays every request to A over A's internal port). The ratio forwarded / owned.
   Both processes share core 0, so the relay's CPU in B and in A is paid out of one core.
3. Handshakes/s (initialize + notifications/initialized, 8 connections, as scenario c) on
   PostgreSQL and on SQLite, and the ratio.
4. Takeover after kill -9: two processes over one database (``--lease`` LEASE s); a
   session is made on A and committed; A's process group gets SIGKILL; the clock starts once
   A is gone and stops when a tools/call for that session sent to B (retried every 20 ms)
   succeeds. A is started again on the same port and the next round begins: p50 and p99
   over KILLS rounds (20; 5 under --quick). Target: p99 <= 2 x the lease.
5. ``--workers 2`` vs ``--workers 1``, 2026-07-28 (stateless) tools/call, on PostgreSQL.
   Here the engine is *not* pinned (two workers need two cores) while wrk stays on core 1,
   so the workers share core 1 with the load generator and the raw ratio understates
   them. So three figures: the raw requests/s ratio; the server CPU per request (engine
   process group incl. the forked workers, plus PostgreSQL) of each, and wrk's own CPU
   per request (its rusage as our child); and the projected ratio on two cores free of the
   load generator, ``2 x cpu1 / cpu2``: one worker can use at most one core (one Python
   event loop), two can use two, each at its measured CPU per request.
6. Bytes per hibernated session in PostgreSQL: one process with ``--idle-evict 0.5``; N
   sessions (1,000; 2,000 without --quick) each made and called once; then wait until
   every actor left memory (its ``owners`` row is released) and the sessions are counted
   in ``kv``; the growth of pg_total_relation_size (table + indexes + TOAST) of
   mcp_actors.kv, alarms and owners, divided by N. Pages are 8 KiB, so this is what disk
   the sessions take, dead row versions of their updates included (no VACUUM is forced).
"""

from __future__ import annotations

import asyncio
import math
import os
import re
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import httpx

from . import clients, load, servers
from .postgres import PostgresMissing, PostgresServer, _bin
from .scenarios import Plan, _throughput, say

LEASE = 2.0
PEERS = re.compile(r"reached by its peers at (\S+)")


def _group_cpu(pgid: int) -> float:
    """CPU seconds (user + system) of every live process in process group ``pgid``."""
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _pin_group(pgid: int, cpu: str | None) -> None:
    """Pin every process of a group (PostgreSQL: the postmaster; backends forked later inherit it)."""
    if cpu is None:
        return
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[2]) == pgid:
                        os.sched_setaffinity(int(pid), {int(cpu)})
            except (OSError, ValueError):
                pass


def sql(url: str, query: str) -> list[list[str]]:
    ran = subprocess.run([_bin("psql"), "-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-d", url,
                          "-c", query], capture_output=True, text=True, timeout=60)
    if ran.returncode != 0:
        raise RuntimeError(f"psql: {ran.stderr.strip()}")
    return [line.split("\t") for line in ran.stdout.splitlines() if line]


class Node(servers.Server):
    """An engine process (or a --workers supervisor and its workers) over a PostgreSQL store;
    ready once every worker printed where its peers reach it. Its CPU is its process
    group's, plus PostgreSQL's when ``pg`` is given."""

    def __init__(self, store: str, *extra: str, port: int | None = None, pin: bool = True, workers: int = 1,
                 pg: PostgresServer | None = None):
        self.name = "mcp-actors (postgresql)"
        self.port = port or servers.free_port()
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        self.store_path = None
        self.pg = pg
        self.log = tempfile.TemporaryFile()
        cmd = [sys.executable, "-m", "engine", "serve", "bench.apps:app", "--port", str(self.port), "--store", store,
               "--lease", str(LEASE), "--log-level", "error", *extra]
        if workers > 1:
            cmd += ["--workers", str(workers)]
        self.proc = subprocess.Popen(servers.pinned(cmd, servers.cores()[0] if pin else None), cwd=servers.ROOT,
                                     start_new_session=True, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"engine exited: {self.output()[-2000:]}")
            if len(PEERS.findall(self.output())) >= workers:
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"engine did not start: {self.output()[-2000:]}")

    def internal_url(self) -> str:
        return PEERS.findall(self.output())[0]

    def cpu_seconds(self) -> float:
        return _group_cpu(self.proc.pid) + (_group_cpu(self.pg.proc.pid) if self.pg is not None else 0.0)

    def kill(self) -> None:
        """kill -9 of its process group: no drain, no goodbye."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)


class Both:
    """Two processes measured as one (the forwarded call's CPU is spent in both); each
    reading's parts are kept, so the load's CPU can be split between them afterwards."""

    def __init__(self, a: Node, b: Node):
        self.a, self.b, self.proc = a, b, b.proc
        self.readings: list[tuple[float, float]] = []

    def cpu_seconds(self) -> float:
        parts = (self.a.cpu_seconds(), _group_cpu(self.b.proc.pid))
        self.readings.append(parts)
        return sum(parts)

    def split(self, requests: int) -> str:
        """The last measured load's CPU per request in A (PostgreSQL's included) and in B."""
        (a0, b0), (a1, b1) = self.readings[-2:]
        n = max(1, requests)
        return f"A {1e6 * (a1 - a0) / n:.1f} + B {1e6 * (b1 - b0) / n:.1f} us/request"


def holder(database: str, sid: str) -> str | None:
    rows = sql(database, "SELECT n.url FROM mcp_actors.owners o JOIN mcp_actors.nodes n ON n.node = o.node "
                         f"WHERE o.ns = '{sid}'")
    return rows[0][0] if rows else None


def _wait_holder(database: str, sid: str, url: str, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if holder(database, sid) == url:
            return True
        time.sleep(0.05)
    return False


def _ratio(plan: Plan, server: str, metric: str, top: float | None, bottom: float | None, note: str) -> None:
    plan.add("l", server, metric, top / bottom if top and bottom else None, "x", note)


# -- 1. tools/call: PostgreSQL vs SQLite --------------------------------------------------------------


def _with_setting(url: str, setting: str) -> str:
    return url + ("&" if "?" in url else "?") + setting


def tools_call(plan: Plan, pg: PostgresServer) -> None:
    """At the bench's 16 connections and at 64: with one session's writes committed in order,
    one group at a time, the PostgreSQL store is bound by the commit's round trip at low
    concurrency (its core is not saturated) and catches up as groups grow; both are shown.

    The two defaults differ in what a commit survives: SQLite's (``synchronous=NORMAL``)
    survives the process being killed but not the machine losing power, as it waits for no
    fsync; PostgreSQL's (``synchronous_commit = on``) waits for its WAL flush. So at 16
    connections each is also measured against the other's durability: SQLite with an fsync
    per group (``?synchronous=full``) against PostgreSQL's default, and PostgreSQL with
    ``synchronous_commit = off`` (no wait for the flush; the last few commits are lost if
    the database crashes) against SQLite's default."""
    base = plan.connections
    lite, pg_on = "mcp-actors (sqlite)", "mcp-actors (postgresql)"
    lite_full, pg_off = "mcp-actors (sqlite, synchronous=full)", "mcp-actors (postgresql, synchronous_commit=off)"
    for connections in (base, 4 * base):
        suffix = "" if connections == base else f", {connections} connections"
        say(f"(l.1) session-era tools/call echo (SSE), {connections} connections: PostgreSQL store vs SQLite store")
        plan.connections = connections
        try:
            _throughput(plan, "l", lite + suffix, lambda: servers.engine(store="sqlite"), sse=True)
            database = pg.new_database()
            _throughput(plan, "l", pg_on + suffix, lambda: Node(database, pg=pg), sse=True)
            if connections == base:
                _throughput(plan, "l", lite_full, lambda: servers.engine(
                    store=f"sqlite:{tempfile.mkdtemp(prefix='mcp-actors-bench-')}/state.db?synchronous=full"), sse=True)
                unflushed = _with_setting(pg.new_database(), "synchronous_commit=off")
                _throughput(plan, "l", pg_off, lambda: Node(unflushed, pg=pg), sse=True)
        finally:
            plan.connections = base
        _ratio(plan, f"postgresql / sqlite{suffix}", "tools/call ratio",
               plan.value("l", pg_on + suffix, "requests/s"), plan.value("l", lite + suffix, "requests/s"),
               "both stores' defaults, same load, same run; PostgreSQL flushes its WAL at each commit, SQLite "
               "does not fsync")
    _ratio(plan, "postgresql / sqlite, both fsync each commit", "tools/call ratio",
           plan.value("l", pg_on, "requests/s"), plan.value("l", lite_full, "requests/s"),
           "a commit survives power loss in both: PostgreSQL's default against sqlite:PATH?synchronous=full")
    _ratio(plan, "postgresql / sqlite, neither waits for a flush", "tools/call ratio",
           plan.value("l", pg_off, "requests/s"), plan.value("l", lite, "requests/s"),
           "?synchronous_commit=off against SQLite's default: a commit survives the engine's kill -9 in both")


# -- 2. forwarded vs owned ------------------------------------------------------------------------------


def _load(plan: Plan, label: str, url: str, measured, sid: str) -> dict | None:
    env = {"MCP_SID": sid}
    load.run(url, load.CALL, plan.warmup, plan.connections, env=env)
    result = plan.measure("l", label, measured, lambda: load.run(url, load.CALL, plan.seconds, plan.connections,
                                                                 env=env))
    note = f"p50 {result['p50_ms']:.2f} ms, p99 {result['p99_ms']:.2f} ms"
    if result["errors"]:
        note += f", {result['errors']} errors"
    plan.add("l", label, "requests/s", result["rps"], "req/s", plan.note(note, label, result))
    return result


def forwarded(plan: Plan, pg: PostgresServer) -> None:
    say("(l.2) a forwarded call vs an owned call: two processes over one PostgreSQL, session held by A")
    database = pg.new_database()
    with Node(database, pg=pg) as a, Node(database) as b:
        try:
            sid = clients.open_session(a.url)
            clients.check_echo(a.url, sid, expect_sse=True)
            if not _wait_holder(database, sid, a.internal_url()):
                raise clients.CheckFailed(f"A does not hold its session (holder {holder(database, sid)})")
            clients.check_echo(b.url, sid, expect_sse=True)
        except clients.CheckFailed as exc:
            plan.add("l", "mcp-actors forwarded (B -> A)", "requests/s", None, "", f"check failed: {exc}")
            return
        owned = _load(plan, "mcp-actors owned (to A)", a.url, a, sid)
        both = Both(a, b)
        relayed = _load(plan, "mcp-actors forwarded (B -> A)", b.url, both, sid)
        still = holder(database, sid) == a.internal_url()
        _ratio(plan, "forwarded / owned", "tools/call ratio", relayed["rps"], owned["rps"],
               f"both processes on core 0; the relayed call's CPU: {both.split(relayed['requests'])}"
               + ("" if still else "; NOTE: the session moved off A"))


# -- 3. handshakes --------------------------------------------------------------------------------------


def _handshakes(plan: Plan, label: str, server: servers.Server, threads: int = 8) -> float:
    with server:
        clients.open_session(server.url)
        load.run(server.url, load.HANDSHAKE, plan.warmup, threads, threads)
        result = plan.measure("l", label, server,
                              lambda: load.run(server.url, load.HANDSHAKE, plan.seconds, threads, threads))
        rate = result["requests"] / 2 / result["seconds"]
        plan.add("l", label, "handshakes/s", rate, "/s",
                 plan.note(f"initialize + initialized, {threads} connections" + (
                     f", {result['errors']} errors" if result["errors"] else ""), label, result))
        return rate


def handshakes(plan: Plan, pg: PostgresServer) -> None:
    say("(l.3) initialize + notifications/initialized per second: PostgreSQL vs SQLite")
    cap = ("--max-sessions", "1000000")
    lite = _handshakes(plan, "mcp-actors (sqlite)", servers.engine(*cap, store="sqlite"))
    ours = _handshakes(plan, "mcp-actors (postgresql)", Node(pg.new_database(), *cap, pg=pg))
    _ratio(plan, "postgresql / sqlite", "handshakes ratio", ours, lite, "same run; fsync on")


# -- 4. takeover after kill -9 --------------------------------------------------------------------------


def _echo_ok(client: httpx.Client, url: str, sid: str) -> int:
    """A tools/call for ``sid`` through ``url``: 0 when it succeeded, else its HTTP status (-1: no answer)."""
    try:
        r = client.post(url, headers=clients._headers(sid), json={
            "jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "x"}}})
    except httpx.HTTPError:
        return -1
    if r.status_code != 200:
        return r.status_code
    try:
        return 0 if clients.messages_of(r)[-1]["result"]["content"][0]["text"] == "x" else 1
    except (KeyError, IndexError, ValueError):
        return 1


def takeover(plan: Plan, pg: PostgresServer) -> None:
    kills = 5 if plan.quick else 20
    say(f"(l.4) takeover after kill -9, lease {LEASE:g} s, {kills} kills")
    database = pg.new_database()
    a, b = Node(database, pg=pg), Node(database)
    times: list[float] = []
    seen: dict[int, int] = {}
    failed = ""
    try:
        with httpx.Client(timeout=5) as client:
            for _ in range(kills):
                sid = clients.open_session(a.url)
                clients.check_echo(a.url, sid, expect_sse=True)
                if not _wait_holder(database, sid, a.internal_url()):
                    failed = "A did not hold its session"
                    break
                a.kill()
                started = time.monotonic()
                deadline = started + 10 * LEASE
                while (status := _echo_ok(client, b.url, sid)) != 0:
                    seen[status] = seen.get(status, 0) + 1
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.02)
                if status != 0:
                    failed = f"no success through B within {10 * LEASE:g} s"
                    break
                times.append(time.monotonic() - started)
                a = Node(database, port=a.port, pg=pg)
    finally:
        a.stop()
        b.stop()
    if not times:
        plan.add("l", "mcp-actors takeover", "takeover p99", None, "s", f"not measured: {failed}")
        return
    ordered = sorted(times)
    p99 = ordered[math.ceil(0.99 * len(ordered)) - 1]  # nearest rank: the slowest of up to 100
    answers = ", ".join(f"{'no answer' if k == -1 else k}: {v}" for k, v in sorted(seen.items()))
    note = f"{len(times)} kills, lease {LEASE:g} s; max {ordered[-1]:.2f} s; failed tries meanwhile ({answers})"
    if failed:
        note += f"; stopped early: {failed}"
    plan.add("l", "mcp-actors takeover", "takeover p50", statistics.median(ordered), "s", note)
    plan.add("l", "mcp-actors takeover", "takeover p99", p99, "s", f"lease {LEASE:g} s")
    plan.add("l", "mcp-actors takeover", "lease", LEASE, "s", "--lease")


# -- 5. --workers 2 vs --workers 1 ----------------------------------------------------------------------


def _modern(plan: Plan, label: str, server: Node) -> dict | None:
    with server:
        try:
            clients.check_modern_echo(server.url)
        except clients.CheckFailed as exc:
            plan.add("l", label, "requests/s", None, "", f"check failed: {exc}")
            return None
        load.run(server.url, load.MODERN_CALL, plan.warmup, plan.connections)
        cpu, wrk = server.cpu_seconds(), resource.getrusage(resource.RUSAGE_CHILDREN)
        result = load.run(server.url, load.MODERN_CALL, plan.seconds, plan.connections)
        cpu, after = server.cpu_seconds() - cpu, resource.getrusage(resource.RUSAGE_CHILDREN)
        n = max(1, result["requests"])
        result["cpu_us"] = 1e6 * cpu / n
        result["wrk_us"] = 1e6 * (after.ru_utime + after.ru_stime - wrk.ru_utime - wrk.ru_stime) / n
        result["cores"] = cpu / result["seconds"]
        plan.add("l", label, "requests/s", result["rps"], "req/s",
                 f"p50 {result['p50_ms']:.2f} ms, p99 {result['p99_ms']:.2f} ms; server CPU (engine + PostgreSQL) "
                 f"{result['cpu_us']:.1f} us/request ({cpu / result['seconds']:.2f} cores); wrk "
                 f"{result['wrk_us']:.1f} us/request" + (f", {result['errors']} errors" if result["errors"] else ""))
        return result


def workers(plan: Plan, pg: PostgresServer) -> None:
    say("(l.5) 2026-07-28 tools/call on PostgreSQL: --workers 2 vs --workers 1 (engine unpinned, wrk on core 1)")
    one = _modern(plan, "mcp-actors --workers 1", Node(pg.new_database(), pin=False, pg=pg))
    two = _modern(plan, "mcp-actors --workers 2", Node(pg.new_database(), pin=False, workers=2, pg=pg))
    if not one or not two:
        return
    _ratio(plan, "workers 2 / 1", "req/s ratio (raw)", two["rps"], one["rps"],
           "measured with wrk on the same 2 cores")
    _ratio(plan, "workers 2 / 1", "CPU/request ratio", two["cpu_us"], one["cpu_us"],
           "server CPU per request, 2 workers over 1: above 1 is the cost of the second process")
    _ratio(plan, "workers 2 / 1", "req/s ratio (projected)", 2 * one["cpu_us"], two["cpu_us"],
           "2 x cpu1 / cpu2: on 2 cores free of the load generator, 1 worker saturating 1 core, 2 saturating 2"
           + ("" if two["cores"] > 1.1 else f"; NOTE: the two workers used {two['cores']:.2f} cores, so the load "
              "did not spread over them and this projection does not hold"))


# -- 6. bytes per hibernated session ----------------------------------------------------------------------


TABLES = ("mcp_actors.kv", "mcp_actors.alarms", "mcp_actors.owners")


def _sizes(database: str) -> list[int]:
    return [int(sql(database, f"SELECT pg_total_relation_size('{t}')")[0][0]) for t in TABLES]


async def _make_sessions(url: str, count: int, concurrency: int = 16) -> int:
    made = 0

    async def one(client: httpx.AsyncClient) -> None:
        nonlocal made
        r = await client.post(url, json=clients.INIT, headers=clients._headers(None))
        sid = r.headers.get("mcp-session-id")
        if r.status_code != 200 or not sid:
            return
        r = await client.post(url, json={"jsonrpc": "2.0", "method": "notifications/initialized"},
                              headers=clients._headers(sid))
        r = await client.post(url, headers=clients._headers(sid), json={
            "jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "x"}}})
        if r.status_code == 200:
            made += 1

    async def worker(client: httpx.AsyncClient, share: int) -> None:
        for _ in range(share):
            await one(client)

    async with httpx.AsyncClient(timeout=30) as client:
        share = [count // concurrency + (i < count % concurrency) for i in range(concurrency)]
        await asyncio.gather(*(worker(client, s) for s in share))
    return made


def hibernated(plan: Plan, pg: PostgresServer) -> None:
    count = 1000 if plan.quick else 2000
    say(f"(l.6) PostgreSQL bytes per hibernated session, {count:,} sessions with one call each")
    database = pg.new_database()
    with Node(database, "--idle-evict", "0.5", pg=pg) as server:
        before = _sizes(database)
        made = asyncio.run(_make_sessions(server.url, count))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            owners = int(sql(database, "SELECT count(*) FROM mcp_actors.owners")[0][0])
            stored = int(sql(database, "SELECT count(*) FROM mcp_actors.kv WHERE key = 'meta'")[0][0])
            if owners == 0 and stored >= made:
                break
            time.sleep(0.25)
        after = _sizes(database)
        rows = int(sql(database, "SELECT count(*) FROM mcp_actors.kv")[0][0])
        alarms = int(sql(database, "SELECT count(*) FROM mcp_actors.alarms")[0][0])
        live = int(sql(database, "SELECT sum(pg_column_size(k.*)) FROM mcp_actors.kv k")[0][0] or 0)
    grown = [x - y for x, y in zip(after, before)]
    plan.add("l", "mcp-actors (postgresql)", "bytes/hibernated session", sum(grown) / max(1, made), "B",
             f"{made:,} sessions, {stored:,} in kv, {owners} still held; kv {grown[0] / max(1, made):,.0f} + alarms "
             f"{grown[1] / max(1, made):,.0f} + owners {grown[2] / max(1, made):,.0f} B (tables, indexes, TOAST); "
             f"{rows / max(1, made):.1f} kv rows and {alarms / max(1, made):.1f} alarms per session, "
             f"{live / max(1, rows):,.0f} B per kv row")


def cluster(plan: Plan) -> None:
    say("(l) the cluster: mcp-actors over PostgreSQL 15 (fsync on)")
    try:
        pg = PostgresServer().start()
    except PostgresMissing as exc:
        plan.add("l", "mcp-actors (postgresql)", "requests/s", None, "", f"not run: {exc}")
        return
    try:
        _pin_group(pg.proc.pid, servers.cores()[0])
        for part in (tools_call, forwarded, handshakes, takeover, workers, hibernated):
            try:
                # Each figure starts from a quiet database: the WAL the last one wrote is
                # checkpointed now rather than while the next is measured. (The relayed figure,
                # measured right after tools_call's loads, once came out 0.36 against 0.51
                # measured alone, with a p99 of 20 ms.)
                pg.psql("CHECKPOINT")
                part(plan, pg)
            except Exception as exc:  # one figure failing leaves the others standing
                say(f"  {part.__name__} failed: {type(exc).__name__}: {exc}")
                plan.add("l", part.__name__, "-", None, "", f"failed: {type(exc).__name__}: {str(exc)[:200]}")
    finally:
        pg.stop()
