"""The scenarios of issue 6, each measuring every server it names in the same run."""

from __future__ import annotations

import asyncio
import re
import sys
import time
from typing import Callable

from . import clients, hostile, load, profile, servers

Row = dict


def say(text: str) -> None:
    print(f"bench: {text}", file=sys.stderr, flush=True)


class Plan:
    def __init__(self, quick: bool, profiled: bool = False):
        self.quick = quick
        self.profiled = profiled
        self.profiles: list[dict] = []
        self.seconds = 1 if quick else 10
        self.warmup = 1 if quick else 2
        self.connections = 16
        self.rows: list[Row] = []

    def add(self, scenario: str, server: str, metric: str, value: float | None, unit: str, note: str = "") -> None:
        self.rows.append({"scenario": scenario, "server": server, "metric": metric, "value": value,
                          "unit": unit, "note": note})
        shown = "-" if value is None else (f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.3g}")
        say(f"  {server:28} {metric:24} {shown} {unit} {note}")

    def measure(self, scenario: str, label: str, server: servers.Server, run: Callable[[], dict]) -> dict:
        """``run()`` the measured load; under --profile, with py-spy sampling mcp-actors meanwhile."""
        recording = None
        if self.profiled and label.startswith("mcp-actors"):
            slug = re.sub(r"[^a-z0-9]+", "-", f"{scenario} {label}".lower()).strip("-")
            recording = profile.Recording(server.proc.pid, slug, self.seconds)
        cpu = server.cpu_seconds()
        result = run()
        cpu = server.cpu_seconds() - cpu
        # The server's CPU per request and how busy its core was: with the core saturated,
        # throughput is the inverse of the first (docs/benchmarks.md, "Where the time goes").
        result["cpu_us"] = 1e6 * cpu / max(1, result["requests"])
        result["busy"] = cpu / max(1e-9, result["seconds"])
        if recording is not None:
            summary = recording.finish()
            self.profiles.append(summary)
            say(profile.describe(summary))
        return result

    def note(self, text: str, label: str, result: dict | None = None) -> str:
        if result is not None and "cpu_us" in result:
            text += f"; server CPU {result['cpu_us']:.1f} us/request, {result['busy']:.0%} busy"
        return text + (", measured while profiled" if self.profiled and label.startswith("mcp-actors") else "")

    def value(self, scenario: str, server: str, metric: str) -> float | None:
        for row in self.rows:
            if (row["scenario"], row["server"], row["metric"]) == (scenario, server, metric):
                return row["value"]
        return None


def _throughput(plan: Plan, scenario: str, label: str, start: Callable[[], servers.Server | None],
                sse: bool, stateless: bool = False) -> None:
    server = start()
    if server is None:
        plan.add(scenario, label, "requests/s", None, "", "not run: node_modules missing (npm install)")
        return
    with server:
        try:
            sid = clients.open_session(server.url, stateless=stateless) if label != "raw ASGI floor" else None
            clients.check_echo(server.url, sid, expect_sse=sse)
        except clients.CheckFailed as exc:
            plan.add(scenario, label, "requests/s", None, "", f"check failed: {exc}")
            return
        env = {"MCP_SID": sid or ""}
        load.run(server.url, load.CALL, plan.warmup, plan.connections, env=env)
        result = plan.measure(scenario, label, server,
                              lambda: load.run(server.url, load.CALL, plan.seconds, plan.connections, env=env))
        note = f"p50 {result['p50_ms']:.2f} ms, p99 {result['p99_ms']:.2f} ms"
        if result["errors"]:
            note += f", {result['errors']} errors"
        plan.add(scenario, label, "requests/s", result["rps"], "req/s", plan.note(note, label, result))


def tools_call_sse(plan: Plan) -> None:
    say("(a) tools/call echo in a session, SSE reply, 16 connections")
    _throughput(plan, "a", "mcp-actors", lambda: servers.engine(), sse=True)
    if not plan.quick:
        _throughput(plan, "a", "mcp-actors (memory store)", lambda: servers.engine(store="memory"), sse=True)
    _throughput(plan, "a", "raw ASGI floor", lambda: servers.floor("sse"), sse=True)
    _throughput(plan, "a", "python SDK 2.3.0", lambda: servers.python_sdk(), sse=True)
    if not plan.quick:
        _throughput(plan, "a", "TypeScript SDK", lambda: servers.typescript_sdk(), sse=True)


def tools_call_json(plan: Plan) -> None:
    say("(b) tools/call echo, JSON reply, 16 connections")
    _throughput(plan, "b", "mcp-actors", lambda: servers.engine("--json-response"), sse=False)
    _throughput(plan, "b", "raw ASGI floor", lambda: servers.floor("json"), sse=False)
    _throughput(plan, "b", "python SDK 2.3.0 stateless", lambda: servers.python_sdk("--json", "--stateless"),
                sse=False, stateless=True)
    if not plan.quick:
        _throughput(plan, "b", "python SDK 2.3.0", lambda: servers.python_sdk("--json"), sse=False)
        _throughput(plan, "b", "TypeScript SDK", lambda: servers.typescript_sdk(json_mode=True), sse=False)


def _handshakes(plan: Plan, label: str, server: servers.Server, threads: int = 8) -> None:
    with server:
        clients.open_session(server.url)
        load.run(server.url, load.HANDSHAKE, plan.warmup, threads, threads)
        result = plan.measure("c", label, server,
                              lambda: load.run(server.url, load.HANDSHAKE, plan.seconds, threads, threads))
        plan.add("c", label, "handshakes/s", result["requests"] / 2 / result["seconds"], "/s",
                 plan.note(f"initialize + initialized, {threads} connections" + (
                     f", {result['errors']} errors" if result["errors"] else ""), label, result))


def handshakes(plan: Plan) -> None:
    say("(c) initialize + notifications/initialized per second")
    # Every handshake makes a session that lives on: the default cap (100,000) would be met
    # within the 12 s of this load, and refused handshakes are cheap answers, not handshakes.
    cap = ("--max-sessions", "1000000")
    _handshakes(plan, "mcp-actors (sqlite)", servers.engine(*cap, store="sqlite"))
    if not plan.quick:
        _handshakes(plan, "mcp-actors (memory)", servers.engine(*cap, store="memory"))
    _handshakes(plan, "python SDK 2.3.0", servers.python_sdk())


def _sessions(server: servers.Server, count: int, threads: int = 8) -> int:
    """Open about ``count`` sessions as fast as the server takes them; returns how many.

    wrk runs for whole seconds, so the run is sized from a one-second probe of the rate,
    and the sessions actually made are counted from its requests (two per handshake).
    """
    probe = load.run(server.url, load.HANDSHAKE, 1, threads, threads)
    made = probe["requests"] // 2
    rate = max(made / probe["seconds"], 1.0)
    if made < count:
        seconds = max(1, int((count - made) / rate + 0.999))
        made += load.run(server.url, load.HANDSHAKE, seconds, threads, threads)["requests"] // 2
    return made


def memory(plan: Plan) -> None:
    say("(d) memory per idle session")
    counts = [1000] if plan.quick else [10_000, 100_000]
    for count in counts:
        for label, start, wait in (
            ("mcp-actors live", lambda: servers.engine("--idle-evict", "1e9", store="sqlite"), 0.0),
            ("mcp-actors hibernated", lambda: servers.engine("--idle-evict", "0.5", store="sqlite"),
             1.5 if plan.quick else 3.0),
            ("python SDK 2.3.0", lambda: servers.python_sdk(), 0.0),
        ):
            if label.startswith("python") and (plan.quick or count > 10_000):
                if count > 10_000:  # at about 270 handshakes/s, 100k sessions take six minutes
                    plan.add("d", label, f"bytes/session @{count:,}", None, "B", "not run: too slow to fill")
                continue
            with start() as server:
                load.run(server.url, load.HANDSHAKE, 1, 8, 8)  # warm: code paths, allocator arenas
                time.sleep(max(wait, 0.5))
                before = server.rss()
                made = _sessions(server, count)
                time.sleep(wait + (0.2 if plan.quick else 0.5))
                after = server.rss()
                plan.add("d", label, f"bytes/session @{count:,}", (after - before) / made, "B",
                         f"{made:,} sessions; RSS {before / 2**20:.0f} -> {after / 2**20:.0f} MiB")


def replay(plan: Plan) -> None:
    n = 2000 if plan.quick else 10_000
    say(f"(e) replay of {n:,} missed events with Last-Event-ID")
    for label, start in (("mcp-actors", lambda: servers.engine("--stream-events", str(2 * n))),
                         ("python SDK 2.3.0 + memory event store", lambda: servers.python_sdk("--events"))):
        if plan.quick and label.startswith("python"):
            continue
        with start() as server:
            result = clients.replay(server.url, n)
            if result.get("seconds") is None:
                plan.add("e", label, "replay seconds", None, "s", result["why"])
                continue
            plan.add("e", label, "replay seconds", result["seconds"], "s",
                     f"{result['events']:,} events, " + ("exact, in order" if result["ok"] else
                                                         f"NOT exact: {result['why']}"))


def concurrency(plan: Plan) -> None:
    streams, steps, interval = (100, 5, 0.1) if plan.quick else (1000, 10, 0.1)
    say(f"(f) {streams:,} concurrent long streams, {steps} progress events each")
    for label, start in (("mcp-actors", lambda: servers.engine()), ("python SDK 2.3.0", lambda: servers.python_sdk())):
        if plan.quick and label.startswith("python"):
            continue
        with start() as server:
            result = asyncio.run(clients.concurrent_streams(server.url, streams, steps, interval, server.rss))
            plan.add("f", label, "events/s", result["events_per_s"], "/s",
                     f"{result['complete']}/{streams} streams complete in {result['seconds']:.2f} s, "
                     f"peak RSS {result['peak_rss'] / 2**20:.0f} MiB")


def _modern_throughput(plan: Plan, label: str, start: Callable[[], servers.Server]) -> None:
    with start() as server:
        try:
            clients.check_modern_echo(server.url)
        except clients.CheckFailed as exc:
            plan.add("h", label, "requests/s", None, "", f"check failed: {exc}")
            return
        load.run(server.url, load.MODERN_CALL, plan.warmup, plan.connections)
        result = plan.measure("h", label, server,
                              lambda: load.run(server.url, load.MODERN_CALL, plan.seconds, plan.connections))
        note = f"p50 {result['p50_ms']:.2f} ms, p99 {result['p99_ms']:.2f} ms"
        if result["errors"]:
            note += f", {result['errors']} errors"
        plan.add("h", label, "requests/s", result["rps"], "req/s", plan.note(note, label, result))


def modern_tools_call(plan: Plan) -> None:
    say("(h) tools/call echo in MCP 2026-07-28 (stateless, JSON reply), 16 connections")
    _modern_throughput(plan, "mcp-actors", lambda: servers.engine())
    _modern_throughput(plan, "raw ASGI floor", lambda: servers.floor("modern"))
    _modern_throughput(plan, "python SDK 2.3.0", lambda: servers.python_sdk("--json"))


def hostile_clients(plan: Plan) -> None:
    clients_n, seconds, slow = (20, 5.0, 200) if plan.quick else (100, 30.0, 1000)
    say(f"(g) hostile clients: {clients_n} that never read for {seconds:g} s; 1 MB heads and {slow:,} "
        "slow half-open connections against a pinging session")
    with servers.engine() as server:
        rss = hostile.non_reading_clients(server, clients_n, seconds)
        plan.add("g", "mcp-actors", "RSS with non-readers", rss["peak"] / 2**20, "MiB",
                 f"{clients_n} clients, {seconds:g} s; RSS {rss['before'] / 2**20:.0f} -> peak "
                 f"{rss['peak'] / 2**20:.0f} -> {rss['after'] / 2**20:.0f} MiB after they left")
    with servers.engine() as server:
        s = hostile.stalls(server, 10.0 if not plan.quick else 4.0, slow)
        plan.add("g", "mcp-actors", "longest stall", s["max_ms"], "ms",
                 f"longest of {s['pings']} pings every 20 ms while {s['big_heads']} 1 MB heads and "
                 f"{s['slow_opened']} slow connections arrived; {s['failures']} pings failed")
        plan.add("g", "mcp-actors", "ping p99 under attack", s["p99_ms"], "ms", f"median {s['median_ms']:.2f} ms")
    cap = 200 if plan.quick else 500
    with servers.engine("--max-connections", str(cap)) as server:
        f = hostile.fresh_clients_at_the_cap(server, cap, 20 if plan.quick else 50)
        plan.add("g", "mcp-actors", "fresh client at the cap", f["median_ms"], "ms",
                 f"initialize + call on a new connection while {f['slow_opened']} slow heads (2x the cap "
                 f"of {cap}) are open: median of {f['clients']}, max {f['max_ms']:.0f} ms, {f['failures']} failed")


def _tasks_of(plan: Plan, label: str, server: servers.Server, disk: bool) -> None:
    with server:
        try:
            task_id = clients.finished_task(server.url)
        except clients.CheckFailed as exc:
            plan.add("i", label, "tasks created/s", None, "", f"check failed: {exc}")
            return
        load.run(server.url, load.TASK_CREATE, plan.warmup, plan.connections)
        time.sleep(0.5)
        rss, before = server.rss(), server.store_bytes()
        result = load.run(server.url, load.TASK_CREATE, plan.seconds, plan.connections)
        made = result["requests"] - result["errors"]
        plan.add("i", label, "tasks created/s", result["rps"], "/s",
                 ("each durable before its reply; " if disk else "in memory only; ")
                 + f"p50 {result['p50_ms']:.2f} ms, p99 {result['p99_ms']:.2f} ms"
                 + (f", {result['errors']} errors" if result["errors"] else ""))
        time.sleep(1.0)  # the last ones finish and their groups commit
        if disk:
            plan.add("i", label, "store bytes/finished task", (server.store_bytes() - before) / made, "B",
                     f"{made:,} tasks; SQLite {before / 2**20:.1f} -> {server.store_bytes() / 2**20:.1f} MiB")
        plan.add("i", label, "RSS bytes/finished task", (server.rss() - rss) / made, "B",
                 "measured 1 s after the last: a finished task's actor leaves memory after 2 s idle" if disk else
                 "kept for the task's TTL")
        load.run(server.url, load.TASK_GET, plan.warmup, plan.connections, env={"MCP_TASK": task_id})
        result = load.run(server.url, load.TASK_GET, plan.seconds, plan.connections, env={"MCP_TASK": task_id})
        plan.add("i", label, "tasks/get/s", result["rps"], "/s",
                 f"p50 {result['p50_ms']:.2f} ms, p99 {result['p99_ms']:.2f} ms"
                 + (f", {result['errors']} errors" if result["errors"] else ""))


def tasks(plan: Plan) -> None:
    say("(i) tasks (2026-07-28 extension): created/s, tasks/get/s, bytes per finished task")
    _tasks_of(plan, "mcp-actors", servers.engine(), disk=True)
    fastmcp = servers.fastmcp_tasks()
    if isinstance(fastmcp, str):
        plan.add("i", "FastMCP 4.1.4 + Docket", "tasks created/s", None, "", fastmcp)
    else:
        _tasks_of(plan, "FastMCP 4.1.4 + Docket (memory://)", fastmcp, disk=False)
    plan.add("i", "python SDK 2.3.0", "tasks created/s", None, "", "not run: the SDK serves no tasks")


def sdk_app(plan: Plan) -> None:
    say("(j) one app written with the official SDK (bench/peers/sdk_server.py): tools/call echo served by "
        "the SDK itself and by the engine, 16 connections")
    sdk_app_spec = "bench.peers.sdk_server:server"
    _throughput(plan, "j", "SSE: python SDK 2.3.0 serving it", lambda: servers.python_sdk(), sse=True)
    _throughput(plan, "j", "SSE: mcp-actors serving it", lambda: servers.engine(store="sqlite", app=sdk_app_spec),
                sse=True)
    _throughput(plan, "j", "JSON: python SDK 2.3.0 serving it", lambda: servers.python_sdk("--json"), sse=False)
    _throughput(plan, "j", "JSON: mcp-actors serving it",
                lambda: servers.engine("--json-response", store="sqlite", app=sdk_app_spec), sse=False)


def worker(plan: Plan) -> None:
    from . import worker_costs  # it builds on this module's helpers

    worker_costs.worker(plan)


def telemetry(plan: Plan) -> None:
    """What telemetry costs a request: (a)'s load with it off, with metrics (``--metrics-port``),
    and with metrics and traces (each request a span, exported over OTLP to a sink that throws
    them away), in one run, as a cost per request against the run with it off."""
    say("(m) telemetry's cost: (a) with it off, with metrics, with metrics and traces over OTLP")
    _throughput(plan, "m", "mcp-actors, telemetry off", lambda: servers.engine(), sse=True)
    _throughput(plan, "m", "mcp-actors, metrics", lambda: servers.engine("--metrics-port", str(servers.free_port())),
                sse=True)
    port = servers.free_port()
    with servers.Server("otlp sink", [sys.executable, "-m", "bench.peers.otlp_sink", "--port", str(port)], port):
        traced = {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}"}
        _throughput(plan, "m", "mcp-actors, metrics + traces",
                    lambda: servers.engine("--metrics-port", str(servers.free_port()), env=traced), sse=True)
        # The standard sampler variables: one trace in ten recorded, as a busy server would.
        sampled = {**traced, "OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"}
        _throughput(plan, "m", "mcp-actors, metrics + traces sampled 10%",
                    lambda: servers.engine("--metrics-port", str(servers.free_port()), env=sampled), sse=True)
    off = plan.value("m", "mcp-actors, telemetry off", "requests/s")
    for label in ("mcp-actors, metrics", "mcp-actors, metrics + traces", "mcp-actors, metrics + traces sampled 10%"):
        on = plan.value("m", label, "requests/s")
        if off and on:
            plan.add("m", f"{label} / off", "requests/s ratio", on / off, "",
                     f"{(1 / on - 1 / off) * 1e6:+.1f} us per request (wall clock at 16 connections)")


def cluster(plan: Plan) -> None:
    from . import cluster as module  # it builds on this module's helpers

    module.cluster(plan)


SCENARIOS = {"a": tools_call_sse, "b": tools_call_json, "c": handshakes, "d": memory, "e": replay, "f": concurrency,
             "g": hostile_clients, "h": modern_tools_call, "i": tasks, "j": sdk_app,
             "k": worker, "l": cluster, "m": telemetry}


def targets(plan: Plan) -> list[dict]:
    """The targets (issues 6 and 16), judged on this run's own figures, on the default store."""

    def ratio(scenario: str) -> float | None:
        ours, floor = plan.value(scenario, "mcp-actors", "requests/s"), plan.value(scenario, "raw ASGI floor",
                                                                                   "requests/s")
        return ours / floor if ours and floor else None

    out = []

    def judge(name: str, value: float | None, ok: bool | None, shown: str) -> None:
        out.append({"target": name, "value": value, "met": ok, "shown": shown})

    a, b, h = ratio("a"), ratio("b"), ratio("h")
    if a is not None:
        judge("(a) SSE tools/call, SQLite store, >= 50% of the raw ASGI floor", a, a >= 0.5, f"{a:.0%}")
    if b is not None:
        judge("(b) JSON tools/call >= 60% of the raw ASGI floor", b, b >= 0.6, f"{b:.0%}")
    if h is not None:
        judge("(h) 2026-07-28 tools/call (JSON) >= 60% of the raw ASGI floor", h, h >= 0.6, f"{h:.0%}")
    c = plan.value("c", "mcp-actors (sqlite)", "handshakes/s")
    floor = plan.value("a", "raw ASGI floor", "requests/s")
    if c is not None and floor:
        judge("(c) durable handshakes/s >= 25% of the floor's requests/s (each is two requests)", c / floor,
              c / floor >= 0.25, f"{c / floor:.1%} ({c:,.0f}/s)")
    live = [r["value"] for r in plan.rows if r["scenario"] == "d" and r["server"] == "mcp-actors live"]
    hib = [r["value"] for r in plan.rows if r["scenario"] == "d" and r["server"] == "mcp-actors hibernated"]
    if live:
        judge("(d) <= 2 KB per live idle session (RSS)", max(live), max(live) <= 2048, f"{max(live):,.0f} B")
    if hib:
        judge("(d) no RAM for hibernated sessions (RSS)", max(hib), max(hib) <= 256, f"{max(hib):,.0f} B")
        million = max(hib) * 1_000_000 / 2**30
        judge("(d) one million sessions under 1 GiB RSS (extrapolated from hibernated)", million, million < 1,
              f"{million:.2f} GiB")
    f = [r for r in plan.rows if r["scenario"] == "f" and r["value"] is not None]
    ours = [r["value"] for r in f if r["server"] == "mcp-actors"]
    if ours and len(f) > 1:
        best_peer = max(r["value"] for r in f if r["server"] != "mcp-actors")
        judge("(f) 1,000 streams x 10 events: ahead of every peer", ours[0] / best_peer, ours[0] > best_peer,
              f"{ours[0] / best_peer:.1f}x the best peer")
    e = [r for r in plan.rows if r["scenario"] == "e" and r["server"] == "mcp-actors"]
    if e and e[0]["value"] is not None:
        exact = "exact" in e[0]["note"] and "NOT" not in e[0]["note"]
        judge("(e) replay of 10k events <= 0.1 s, exact and in order", e[0]["value"],
              exact and e[0]["value"] <= 0.1, f"{e[0]['value']:.3f} s, {'exact' if exact else 'NOT exact'}")
    pg_ratio = plan.value("l", "postgresql / sqlite", "tools/call ratio")
    if pg_ratio is not None:
        judge("(l) session tools/call on PostgreSQL >= 70% of SQLite", pg_ratio, pg_ratio >= 0.7, f"{pg_ratio:.0%}")
    matched = plan.value("l", "postgresql / sqlite, both fsync each commit", "tools/call ratio")
    if matched is not None:
        judge("(l) the same at matched durability (both fsync each commit)", matched, matched >= 0.7,
              f"{matched:.0%}")
    wide = plan.value("l", f"postgresql / sqlite, {4 * plan.connections} connections", "tools/call ratio")
    if wide is not None:
        judge(f"(l) the same at {4 * plan.connections} connections", wide, wide >= 0.7, f"{wide:.0%}")
    relay = plan.value("l", "forwarded / owned", "tools/call ratio")
    if relay is not None:
        judge("(l) a forwarded tools/call >= 60% of an owned one", relay, relay >= 0.6, f"{relay:.0%}")
    p99, lease = plan.value("l", "mcp-actors takeover", "takeover p99"), plan.value("l", "mcp-actors takeover", "lease")
    if p99 is not None and lease:
        judge("(l) takeover after kill -9: p99 <= 2x the lease", p99 / lease, p99 <= 2 * lease,
              f"{p99:.2f} s (lease {lease:g} s)")
    return out
