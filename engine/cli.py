"""``python -m engine serve [APP]``: run an app on the local runtime under uvicorn."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from . import protocol
from .actor import Lifetimes
from .eventlog import StreamLimits
from .app import App
from .http import HttpConfig
from .sqlite_store import SqliteBackend, StoreError
from .storage import Backend, MemoryBackend

_ANY_ADDRESS = ("0.0.0.0", "::", "")
DEFAULT_STORE = "sqlite:.mcp-actors/state.db"


def open_store(spec: str) -> Backend:
    """``memory`` or ``sqlite:PATH`` -> a backend; a bad spec or file is a clear exit."""
    if spec == "memory":
        return MemoryBackend()
    kind, sep, path = spec.partition(":")
    if kind != "sqlite" or not sep or not path:
        raise SystemExit(f"error: --store {spec!r}: use sqlite:PATH or memory")
    try:
        return SqliteBackend(path)
    except StoreError as exc:
        raise SystemExit(f"error: {exc}") from None


def load_app(spec: str) -> App:
    """``module:attribute`` -> the App it names (``module`` alone means ``module:app``)."""
    module_name, _, attr = spec.partition(":")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SystemExit(f"error: cannot import {module_name!r}: {exc}") from None
    app = getattr(module, attr or "app", None)
    if not isinstance(app, App):
        raise SystemExit(f"error: {spec!r} is not an engine.App (got {type(app).__name__})")
    return app


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m engine", description="mcp-actors MCP server engine")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve an app over Streamable HTTP")
    serve.add_argument("app", nargs="?", help="module:attribute of an engine.App (default: the built-in demo)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--path", default="/mcp", help="the MCP endpoint path (default /mcp)")
    serve.add_argument("--sse-path", default=protocol.DEFAULT_SSE_PATH,
                       help="GET path of the 2024-11-05 HTTP+SSE transport (default /sse; '' turns it off)")
    serve.add_argument("--messages-path", default=protocol.DEFAULT_MESSAGES_PATH,
                       help="POST path of the HTTP+SSE transport (default /messages)")
    serve.add_argument("--keepalive", type=float, default=15.0, metavar="SECONDS",
                       help="send an SSE comment on idle streams this often (default 15)")
    serve.add_argument("--json-response", action="store_true",
                       help="answer request POSTs with one JSON body instead of an SSE stream")
    serve.add_argument("--allowed-origin", action="append", default=[], metavar="ORIGIN",
                       help="allow this Origin (hostname, full origin, or *); repeatable; "
                            "localhost, 127.0.0.1 and [::1] are always allowed")
    serve.add_argument("--allowed-host", action="append", default=[], metavar="HOST",
                       help="allow this Host header (hostname or *); repeatable; local names always allowed")
    serve.add_argument("--max-body", type=int, default=protocol.DEFAULT_MAX_BODY, help="request body limit in bytes")
    serve.add_argument("--store", default=DEFAULT_STORE, metavar="SPEC",
                       help=f"where sessions live: sqlite:PATH (default {DEFAULT_STORE}) or memory")
    serve.add_argument("--idle-evict", type=float, default=30.0, metavar="SECONDS",
                       help="idle seconds before a session's actor leaves memory (default 30)")
    serve.add_argument("--session-ttl", type=float, default=3600.0, metavar="SECONDS",
                       help="idle seconds before a session is deleted (default 3600)")
    serve.add_argument("--stream-events", type=int, default=StreamLimits().max_events, metavar="N",
                       help="events each stream keeps for resumption (default 1000)")
    serve.add_argument("--log-level", default="warning", help="server log level (default warning)")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.app:
        app = load_app(args.app)
    else:
        from .demo import app
    hosts = list(protocol.LOCAL_HOSTS) + args.allowed_host
    if args.host not in _ANY_ADDRESS and args.host not in hosts:
        hosts.append(args.host if ":" not in args.host else f"[{args.host}]")
    config = HttpConfig(
        allowed_origins=tuple(protocol.LOCAL_HOSTS) + tuple(args.allowed_origin),
        allowed_hosts=tuple(hosts),
        max_body=args.max_body,
        json_response=args.json_response,
    )
    if args.session_ttl <= 0 or args.idle_evict < 0:
        raise SystemExit("error: --session-ttl must be positive and --idle-evict not negative")
    backend = open_store(args.store)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    import uvicorn

    from .asgi import McpAsgi
    from .local import LocalRuntime

    display = f"[{args.host}]" if ":" in args.host else args.host
    print(f"mcp-actors serving {app.name!r} at http://{display}:{args.port}{args.path} "
          f"(store: {args.store})", flush=True)
    if args.sse_path and args.messages_path:
        print(f"HTTP+SSE (2024-11-05) clients: http://{display}:{args.port}{args.sse_path}", flush=True)
    if args.host in _ANY_ADDRESS and not args.allowed_host:
        print("note: listening on all interfaces; pass --allowed-host NAME for the names clients use", flush=True)
    runtime = LocalRuntime(app, config, backend, Lifetimes(
        session_ttl=args.session_ttl, idle_evict=args.idle_evict,
        streams=StreamLimits(max_events=args.stream_events)))

    class Server(uvicorn.Server):
        async def shutdown(self, sockets=None):
            # Open SSE responses never end by themselves; end them (clients get a
            # retry hint) so the graceful drain below finishes at once.
            runtime.close_connections()
            await super().shutdown(sockets)

    server = Server(uvicorn.Config(
        McpAsgi(runtime, path=args.path, keepalive=args.keepalive,
                sse_path=args.sse_path or None, messages_path=args.messages_path or None),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=5,
    ))
    try:
        server.run()
    except KeyboardInterrupt:
        pass  # uvicorn re-raises the Ctrl-C it handled, after the graceful shutdown
