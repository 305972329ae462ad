"""``python -m engine serve [APP]``: run an app on the local runtime under uvicorn.

The flags come from the shared settings table (:mod:`engine.actors.settings`), so each one
means here what its variable means on the Worker; a bad value exits with a message that
names the flag, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys

import msgspec

from .actors.settings import DEFAULT_APP, BadSetting, ServerLimits, Settings, add_arguments, from_args
from .actors.sqlite_store import StoreError
from .app.application import App
from .app.loader import AppLoadError, load_app
from .protocol.storage import Backend
from .local.runtime import open_backend

_ANY_ADDRESS = ("0.0.0.0", "::", "")
#: File descriptors kept free of connections: the store, its lock, the log, the listener.
_SPARE_FDS = 32


def open_store(spec: str) -> Backend:
    """``memory`` or ``sqlite:PATH`` -> a backend; a bad spec or file is a clear exit."""
    try:
        return open_backend(spec)
    except StoreError as exc:
        raise SystemExit(f"error: --store: {exc}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m engine", description="mcp-actors MCP server engine")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve an app over Streamable HTTP and HTTP+SSE")
    serve.add_argument("app", nargs="?", help=f"module:attribute of an engine.App (default: the built-in demo, "
                                              f"{DEFAULT_APP})")
    add_arguments(serve)
    return parser


def configure(argv: list[str] | None = None) -> tuple[Settings, dict]:
    """Parsed and checked settings, and every option's value by flag; a bad value exits."""
    args = build_parser().parse_args(argv)
    try:
        settings, values = from_args(args)
    except BadSetting as exc:
        raise SystemExit(f"error: {exc}") from None
    if not settings.secret:
        settings.secret = os.environ.get("MCP_ACTORS_SECRET", "")
    host = values["--host"]
    if host not in _ANY_ADDRESS and host not in settings.http.allowed_hosts:
        name = host if ":" not in host else f"[{host}]"
        settings.http.allowed_hosts = (*settings.http.allowed_hosts, name)
    return settings, values


def _fit_to_fd_limit(limits: ServerLimits) -> ServerLimits:
    """Connections need file descriptors, and so do the store and the log: raise the soft
    fd limit as far as the hard one allows, and keep the connection cap under it (a server
    out of descriptors stops accepting anyone)."""
    try:
        import resource
    except ImportError:  # not POSIX
        return limits
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = limits.max_connections + _SPARE_FDS
    if soft != resource.RLIM_INFINITY and soft < want:
        target = want if hard == resource.RLIM_INFINITY else min(want, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    if soft != resource.RLIM_INFINITY and soft < want:
        fitted = max(1, soft - _SPARE_FDS)
        print(f"note: --max-connections lowered from {limits.max_connections} to {fitted} "
              f"to fit the limit of {soft} open files", flush=True)
        return msgspec.structs.replace(limits, max_connections=fitted)
    return limits


def _is_cluster(store: str) -> bool:
    return store.startswith(("postgresql://", "postgres://"))


def _display(host: str) -> str:
    return f"[{host}]" if ":" in host else host


#: Whether ``--workers`` each listen on a socket of their own (SO_REUSEPORT, Linux's way of
#: spreading connections across processes), rather than all accepting from one.
SPREAD = sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def _listen(host: str, port: int, spread: bool = False, listen: bool = True) -> socket.socket:
    """A listening socket, bound here so that ``--port 0`` is known before anything starts.

    ``spread`` (``--workers`` on Linux): the socket joins the port's SO_REUSEPORT group, and
    the kernel gives each new connection to one of the group's listening sockets, by a hash
    of its addresses. One socket shared by every worker would not spread them: asyncio
    accepts every connection waiting at each wake-up, so the first worker to wake takes a
    burst of them all (a load generator's 16 connections landed on one worker of two). The
    parent binds without listening (it holds the port, and gets no connections); each worker
    listens on its own socket. A worker that dies takes the connections still waiting in its
    queue with it (they are reset; clients retry), which one shared queue would have kept."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if spread:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        if listen:
            sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise SystemExit(f"error: could not listen on {_display(host)}:{port}: {(exc.strerror or str(exc)).lower()}") from None
    sock.set_inheritable(True)
    return sock


def _advertised(values: dict, host: str, port: int, index: int) -> str:
    """Where the other processes reach this one: ``--advertise-url`` (its port moved up by
    the worker's index, when it names one), else the internal socket's own address."""
    url = values["--advertise-url"]
    if not url:
        if host in _ANY_ADDRESS:
            raise SystemExit("error: --advertise-url: with --host " + (host or "''") + " the other processes cannot "
                             "know this one's address; pass --advertise-url http://ADDRESS:PORT (its internal port)")
        return f"http://{_display(host)}:{port}"
    scheme, _, rest = url.partition("://")
    hostport = rest.split("/", 1)[0]
    name, sep, given = hostport.rpartition(":")
    if sep and given.isdigit() and "]" not in given:
        return f"{scheme}://{name}:{int(given) + index}"
    return f"{scheme}://{hostport}:{port}"


def main(argv: list[str] | None = None) -> None:
    settings, values = configure(argv)
    try:
        app: App = load_app(settings.app)
    except AppLoadError as exc:
        raise SystemExit(f"error: {exc}") from None
    store = values["--store"]
    cluster, workers = _is_cluster(store), values["--workers"]
    if workers > 1 and not cluster:
        raise SystemExit("error: --workers: several processes need a store they can share: pass --store "
                         "postgresql://... (an SQLite file is served by one process; see docs/cluster.md)")
    from .local import logs

    logs.configure(values["--log-level"], values["--log-format"])
    spread = workers > 1 and SPREAD
    public = _listen(values["--host"], values["--port"], spread, listen=not spread)
    if workers > 1:
        from .local.workers import supervise

        def worker(i: int) -> None:
            own = _listen(values["--host"], public.getsockname()[1], True) if spread else public
            if spread:
                public.close()  # the parent's copy holds the port
            _serve(app, settings, values, own, i)

        print(f"mcp-actors: {workers} workers on port {public.getsockname()[1]}", flush=True)
        raise SystemExit(supervise(workers, worker, values["--drain-timeout"] + 15))
    _serve(app, settings, values, public, 0)


def _serve(app: App, settings: Settings, values: dict, public: socket.socket, index: int) -> None:
    import uvicorn

    from .local.asgi import McpAsgi
    from .local.runtime import LocalRuntime

    host, paths, store = values["--host"], settings.paths, values["--store"]
    port = public.getsockname()[1]
    display = _display(host)
    sockets = [public]
    cluster = _is_cluster(store)
    runtime: LocalRuntime
    if cluster:
        from .cluster.runtime import ClusterRuntime
        from .cluster.database import _shown
        from .cluster.store import PostgresBackend

        base = values["--internal-port"]
        internal = _listen(host, base + index if base else 0)
        internal_port = internal.getsockname()[1]
        sockets.append(internal)
        url = _advertised(values, host, internal_port, index)
        runtime = ClusterRuntime(app, settings.http, PostgresBackend(store, lease=values["--lease"]),
                                 settings.lifetimes, url=url, lease=values["--lease"],
                                 drain_timeout=values["--drain-timeout"], port=lambda: internal_port)
        shown_store = _shown(store)
    else:
        runtime = LocalRuntime(app, settings.http, open_store(store), settings.lifetimes)
        shown_store = store
    limits = _fit_to_fd_limit(settings.server)
    try:
        from .local.protocols import protocol_class

        http_protocol: object = protocol_class(limits)
    except ImportError:  # no httptools on this platform: uvicorn's h11, with its own head limit
        http_protocol = "h11"
        print("note: httptools is not installed, so head timeouts and the connection cap are not enforced",
              flush=True)

    class Server(uvicorn.Server):
        async def startup(self, sockets=None):
            await super().startup(sockets)
            if self.started:  # the banner only once the port is really ours
                print(f"mcp-actors serving {app.name!r} at http://{display}:{port}{paths.mcp} "
                      f"(store: {shown_store})", flush=True)
                if paths.sse and paths.messages:
                    print(f"HTTP+SSE (2024-11-05) clients: http://{display}:{port}{paths.sse}", flush=True)
                if asgi.metrics_port:
                    print(f"metrics: http://{display}:{asgi.metrics_port}/metrics", flush=True)
                if cluster:
                    print(f"cluster: process {runtime.backend.node} (pid {os.getpid()}), reached by its peers at "
                          f"{runtime.url}", flush=True)  # type: ignore[attr-defined]
                if host in _ANY_ADDRESS and not values["--allowed-host"]:
                    print("note: listening on all interfaces; pass --allowed-host NAME for the names clients use",
                          flush=True)

        async def shutdown(self, sockets=None):
            if cluster and self.servers:
                # Stop taking clients (the balancer sends them elsewhere), close their idle
                # connections, and hand the actors over while peers can still reach us.
                self.servers[0].close()
                for conn in list(self.server_state.connections):
                    if getattr(conn, "server", None) and conn.server[1] == port:
                        conn.shutdown()
                await runtime.drain()  # type: ignore[attr-defined]
            # Open SSE responses never end by themselves; end them (clients get a
            # retry hint) so the graceful drain below finishes at once.
            runtime.close_connections()
            await super().shutdown(sockets)

    asgi = McpAsgi(runtime, settings)
    metrics_base = values["--metrics-port"]
    from .observe import otlp_metrics, otlp_traces

    if metrics_base or otlp_metrics() or otlp_traces():
        try:
            from .observe.telemetry import Telemetry
        except ImportError as exc:
            raise SystemExit(f"error: --metrics-port and OTEL_METRICS_EXPORTER or OTEL_TRACES_EXPORTER need the "
                             f"telemetry extra "
                             f"(pip install 'mcp-actors[otel]'): {exc}") from None
        if metrics_base:
            metrics_socket = _listen(host, metrics_base + index)
            asgi.metrics_port = metrics_socket.getsockname()[1]
            sockets.append(metrics_socket)
        asgi.telemetry = Telemetry(runtime, bool(metrics_base), app.name, app.version, traces=otlp_traces(),
                                   gate=asgi.front.gate)
    server = Server(uvicorn.Config(
        asgi,
        http=http_protocol,  # type: ignore[arg-type]
        h11_max_incomplete_event_size=limits.max_head_bytes,
        timeout_keep_alive=limits.idle_timeout,
        # X-Forwarded-* rewriting of the client address and scheme: nothing here reads them
        # (behind a proxy, --auth-resource names the public URL), so none of its per-request cost.
        proxy_headers=False,
        log_level=values["--log-level"],
        # JSON lines: uvicorn's own loggers go through ours (its config would print text).
        **({"log_config": None} if values["--log-format"] == "json" else {}),
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=5,
    ))
    if asgi.telemetry is not None:
        asgi.telemetry.metrics.observe_server(lambda: len(server.server_state.connections), http_protocol)
    try:
        server.run(sockets=sockets)
    except KeyboardInterrupt:
        pass  # uvicorn re-raises the Ctrl-C it handled, after the graceful shutdown
    if not server.started:
        raise SystemExit(f"error: the server did not start on {display}:{port} (see the message above)")
