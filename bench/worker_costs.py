"""(k): the Worker under ``wrangler dev`` (workerd), against a Python Worker floor and
Cloudflare's own TypeScript handlers: CPU per request for a 2026-07-28 call, a session-era
call (split into the Worker's part, the hop and the object's work) and a handshake; the
Worker's start-up and its imports timed inside workerd's Python."""

from __future__ import annotations

from pathlib import Path

from . import clients, load
from .scenarios import Plan, say


def _workerd_cost(plan: Plan, server, label: str, script: str, env: dict, check, per_item: int = 1) -> float | None:
    """workerd's CPU per request (``per_item``: requests per item, 2 for a handshake's
    initialize and initialized), at 4 connections."""
    try:
        check()
    except clients.CheckFailed as exc:
        plan.add("k", label, "CPU ms/request", None, "", f"check failed: {exc}")
        return None
    # A thread per connection: wrk keeps one script state per thread, and the handshake's
    # script keeps its session id there.
    load.run(server.url, script, plan.warmup, 4, threads=4, env=env)
    before = server.workerd_cpu()
    result = load.run(server.url, script, plan.seconds, 4, threads=4, env=env)
    per = 1000 * (server.workerd_cpu() - before) / max(1, result["requests"] / per_item)
    plan.add("k", label, "CPU ms/request" if per_item == 1 else "CPU ms/handshake", per, "ms",
             f"{result['rps']:,.0f} req/s on 4 connections; p50 {result['p50_ms']:.1f} ms, "
             f"p99 {result['p99_ms']:.1f} ms" + (f", {result['errors']} errors" if result["errors"] else ""))
    return per


def worker(plan: Plan) -> None:
    say("(k) the Worker under wrangler dev (workerd): CPU time per tools/call, and per Durable Object hop")
    from . import wrangler

    if not wrangler.available():
        plan.add("k", "Worker", "CPU ms/request", None, "", "not run: wrangler is not installed (npm install)")
        return
    import tempfile

    wrangler.vendor()
    floor = wrangler.Wrangler("", tempfile.mkdtemp(prefix="mcp-actors-bench-wrangler-"), root=wrangler.floor_root())
    try:
        _startup(plan, floor, "Python Worker floor")
        _workerd_cost(plan, floor, "Python Worker floor (fixed bytes)", load.MODERN_CALL, {}, lambda: None)
    finally:
        floor.stop()
    server = wrangler.Wrangler("engine.demo:app", tempfile.mkdtemp(prefix="mcp-actors-bench-wrangler-"), "bench")
    try:
        _startup(plan, server, "the engine's Worker")
        modern = _workerd_cost(plan, server, "Worker alone (2026-07-28 echo)", load.MODERN_CALL, {},
                               lambda: clients.check_modern_echo(server.url))
        sid = clients.open_session(server.url)
        session = _workerd_cost(plan, server, "Worker + session DO (SSE echo)", load.CALL, {"MCP_SID": sid},
                                lambda: clients.check_echo(server.url, sid, expect_sse=True))
        if modern is not None and session is not None:
            plan.add("k", "one Durable Object hop", "CPU ms/request", session - modern, "ms",
                     "the session request's CPU less the stateless one's: the hop and the session actor's work")
            plan.add("k", "session / stateless", "CPU ratio", session / modern, "",
                     "a session-era call's CPU against a 2026-07-28 call's (target 1.5)")
        _workerd_cost(plan, server, "Worker + session DO, handshake", load.HANDSHAKE, {}, lambda: None, per_item=2)
    finally:
        server.stop()
    _hop_parts(plan, wrangler, session)
    _imports(plan, wrangler, "engine.demo:app", "the engine's Worker")
    _sdk_startup(plan, wrangler)
    _cloudflare_peers(plan, wrangler)


def _hop_parts(plan: Plan, wrangler, session: float | None) -> None:
    """The session call cut short (``worker/profiling.py``): answered by the Worker where it
    would forward, and by an object that answers as soon as it is called. The differences
    are the Worker's part, the hop itself and the object's work."""
    import tempfile

    parts = {}
    for where, label in (("worker", "session call, the Worker's part (answered where it would forward)"),
                         ("object", "session call, Worker + hop (to an object that answers at once)")):
        server = wrangler.Wrangler("engine.demo:app", tempfile.mkdtemp(prefix="mcp-actors-bench-wrangler-"), "bench",
                                   {"MCP_ACTORS_BENCH_CUT": where})
        try:
            sid = clients.open_session(server.url)
            parts[where] = _workerd_cost(plan, server, label, load.CALL, {"MCP_SID": sid},
                                         lambda: clients.check_echo(server.url, sid, expect_sse=True))
        finally:
            server.stop()
    if parts.get("worker") and parts.get("object"):
        plan.add("k", "the hop itself", "CPU ms/request", parts["object"] - parts["worker"], "ms",
                 "an object called and answering at once, less the Worker answering itself")
        if session is not None:
            plan.add("k", "the session object's work", "CPU ms/request", session - parts["object"], "ms",
                     "the whole session call less the call to an object that answers at once")


def _imports(plan: Plan, wrangler, app: str, label: str) -> None:
    """The Worker's top-level import and its app's, timed inside workerd's Python
    (bench/peers/worker_floor/import_probe.py): the median of five fresh imports."""
    import statistics
    import tempfile

    import httpx

    server = wrangler.Wrangler(app, tempfile.mkdtemp(prefix="mcp-actors-bench-wrangler-"), root=wrangler.probe_root())
    try:
        base = server.url.replace("/mcp", "/")
        runs = [httpx.get(base + "?measure", timeout=120).json() for _ in range(5)]
    finally:
        server.stop()
    top = statistics.median(r["import_ms"] for r in runs)
    first = statistics.median(r["app_ms"] for r in runs)
    plan.add("k", f"top-level import, {label}", "ms", top, "ms",
             f"{runs[0]['modules']} modules, inside workerd's Python; the platform's start-up limit for a "
             f"Worker's own code is 1 s ({top / 10:.0f}% of it)")
    plan.add("k", f"first request's app import, {label}", "ms", first, "ms",
             "MCP_APP's module, imported on the first request (not at start-up)")


def _startup(plan: Plan, server, label: str) -> None:
    """From ``wrangler dev``'s start to the Worker's first answer: workerd's CPU (its boot, the
    isolate, the Python runtime and the Worker's top-level import) and the wall time."""
    plan.add("k", f"start-up, {label}", "CPU s to first answer", server.startup_cpu, "s",
             f"{server.startup_seconds:.1f} s wall from wrangler dev's start")


def _sdk_startup(plan: Plan, wrangler) -> None:
    """The same with the official SDK vendored (``worker/vendor.sh --mcp 2``) and an SDK app
    served: what the SDK's imports add to a fresh isolate."""
    import shutil
    import tempfile

    apps = wrangler.ROOT / "python_modules" / "sdk_apps"
    try:
        wrangler.vendor("--mcp", "2")
        shutil.copytree(wrangler.ROOT / "tests" / "sdk_apps", apps, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__", "tasked.py"))
        server = wrangler.Wrangler("sdk_apps.everything_sdk:mcp", tempfile.mkdtemp(prefix="mcp-actors-bench-wrangler-"),
                                   "bench")
        try:
            _startup(plan, server, "the engine's Worker with the SDK (mcp 2.x app)")
        finally:
            server.stop()
        _imports(plan, wrangler, "sdk_apps.everything_sdk:mcp", "the engine's Worker with the SDK (mcp 2.x app)")
    finally:
        shutil.rmtree(apps, ignore_errors=True)
        wrangler.vendor()


def _cloudflare_peers(plan: Plan, wrangler) -> None:
    """Cloudflare's own TypeScript handlers (the agents package, pinned in bench/peers/cf_agents):
    createMcpHandler (stateless, the one Cloudflare recommends) for a 2026-07-28 call, and
    McpAgent (a Durable Object per session) for a session-era call and a handshake, under the
    same wrangler dev, the same echo tool, the same load."""
    import tempfile

    peers = Path(__file__).resolve().parent / "peers" / "cf_agents"
    if not (peers / "node_modules" / "agents").exists():
        plan.add("k", "Cloudflare's agents", "CPU ms/request", None, "",
                 "not run: cd bench/peers/cf_agents && npm install")
        return
    handler = wrangler.Wrangler("", tempfile.mkdtemp(prefix="mcp-actors-bench-wrangler-"), root=peers / "handler")
    try:
        _workerd_cost(plan, handler, "createMcpHandler (TypeScript, 2026-07-28 echo)", load.MODERN_CALL, {},
                      lambda: clients.check_modern_echo(handler.url))
    finally:
        handler.stop()
    agent = wrangler.Wrangler("", tempfile.mkdtemp(prefix="mcp-actors-bench-wrangler-"), root=peers / "agent")
    try:
        sid = clients.open_session(agent.url)
        _workerd_cost(plan, agent, "McpAgent (TypeScript, session DO, SSE echo)", load.CALL, {"MCP_SID": sid},
                      lambda: clients.check_echo(agent.url, sid, expect_sse=True))
        _workerd_cost(plan, agent, "McpAgent, handshake", load.HANDSHAKE, {}, lambda: None, per_item=2)
    finally:
        agent.stop()
    for ours, theirs, metric in (
            ("Worker alone (2026-07-28 echo)", "createMcpHandler (TypeScript, 2026-07-28 echo)", "CPU ms/request"),
            ("Worker + session DO (SSE echo)", "McpAgent (TypeScript, session DO, SSE echo)", "CPU ms/request"),
            ("Worker + session DO, handshake", "McpAgent, handshake", "CPU ms/handshake")):
        a, b = plan.value("k", ours, metric), plan.value("k", theirs, metric)
        if a and b:
            plan.add("k", f"{ours} / {theirs}", "CPU ratio", a / b, "", "ours against Cloudflare's, same run")
