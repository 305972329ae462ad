"""``python -m engine serve [APP]``: run an app on the local runtime under uvicorn.

The flags come from the shared settings table (:mod:`engine.actors.settings`), so each one
means here what its variable means on the Worker; a bad value exits with a message that
names the flag, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import os

import msgspec

from ..actors.settings import DEFAULT_APP, BadSetting, ServerLimits, Settings, add_arguments, from_args
from ..actors.sqlite_store import StoreError
from ..app.application import App
from ..app.loader import AppLoadError, load_app
from ..protocol.storage import Backend
from .runtime import open_backend

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


def main(argv: list[str] | None = None) -> None:
    settings, values = configure(argv)
    try:
        app: App = load_app(settings.app)
    except AppLoadError as exc:
        raise SystemExit(f"error: {exc}") from None
    backend = open_store(values["--store"])
    level = values["--log-level"]
    logging.basicConfig(level="DEBUG" if level == "trace" else level.upper(),
                        format="%(levelname)s %(name)s: %(message)s")
    import uvicorn

    from .asgi import McpAsgi
    from .runtime import LocalRuntime

    host, port, paths = values["--host"], values["--port"], settings.paths
    display = f"[{host}]" if ":" in host else host
    runtime = LocalRuntime(app, settings.http, backend, settings.lifetimes)
    limits = _fit_to_fd_limit(settings.server)
    try:
        from .protocols import protocol_class

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
                      f"(store: {values['--store']})", flush=True)
                if paths.sse and paths.messages:
                    print(f"HTTP+SSE (2024-11-05) clients: http://{display}:{port}{paths.sse}", flush=True)
                if host in _ANY_ADDRESS and not values["--allowed-host"]:
                    print("note: listening on all interfaces; pass --allowed-host NAME for the names clients use",
                          flush=True)

        async def shutdown(self, sockets=None):
            # Open SSE responses never end by themselves; end them (clients get a
            # retry hint) so the graceful drain below finishes at once.
            runtime.close_connections()
            await super().shutdown(sockets)

    server = Server(uvicorn.Config(
        McpAsgi(runtime, settings),
        host=host,
        port=port,
        http=http_protocol,  # type: ignore[arg-type]
        h11_max_incomplete_event_size=limits.max_head_bytes,
        timeout_keep_alive=limits.idle_timeout,
        # X-Forwarded-* rewriting of the client address and scheme: nothing here reads them
        # (behind a proxy, --auth-resource names the public URL), so none of its per-request cost.
        proxy_headers=False,
        log_level=level,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=5,
    ))
    try:
        server.run()
    except KeyboardInterrupt:
        pass  # uvicorn re-raises the Ctrl-C it handled, after the graceful shutdown
    if not server.started:
        raise SystemExit(f"error: could not listen on {display}:{port} (see the message above)")
