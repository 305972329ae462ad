"""Every operator setting, once: its flag, its Worker variable, its default, its check.

The command line (``python -m engine serve --session-ttl 600``) and the Cloudflare Worker
(``SESSION_TTL = "600"`` in ``[vars]``) read the same table, so a setting cannot mean one
thing locally and another on Workers, and a bad value is refused the same way, naming the
setting. :func:`build` turns the parsed values into :class:`Settings`, the runtime-neutral
configuration the front and the actors take.
"""

from __future__ import annotations

import argparse
from typing import Any, Callable, Mapping

import msgspec

from ..protocol import spec
from ..protocol.eventlog import StreamLimits
from ..protocol.http import HttpConfig
from ..protocol.router import Paths
from .session_actor import Lifetimes

DEFAULT_APP = "engine.demo:app"


class ServerLimits(msgspec.Struct, kw_only=True, frozen=True):
    """Limits of the local HTTP server below the application (:mod:`engine.local.protocols`);
    on Workers, Cloudflare's edge plays this part."""

    #: Seconds for a whole request head to arrive (also bounds idle keep-alive connections).
    head_timeout: float = 10.0
    #: Seconds an idle keep-alive connection waits for its next request (uvicorn's).
    idle_timeout: float = 5.0
    #: Seconds for the rest of a request body to arrive once its head has.
    body_timeout: float = 30.0
    max_headers: int = 100
    #: Bytes of request line and headers.
    max_head_bytes: int = 32 * 1024
    #: Open connections at once. At it, a new one sheds the oldest connection still sending
    #: its first head, else the oldest idle one; only when all are busy is it refused (503).
    #: About 7 KB each when idle, so the default is some 70 MB; lowered to fit the file limit.
    max_connections: int = 10_000
    #: Seconds a client may leave a response unread (its buffers full) before it is cut off.
    write_timeout: float = 30.0


class AuthSettings(msgspec.Struct, kw_only=True, frozen=True):
    """Authorization (``--auth-*``): the server as an OAuth 2.1 resource server."""

    #: The authorization server's issuer identifier; empty: no authorization.
    issuer: str = ""
    #: Its JWKS URL; empty: found through the issuer's metadata.
    jwks: str = ""
    #: The audience tokens must name; empty: the resource.
    audience: str = ""
    #: This endpoint's canonical URL; empty: the URL each request was addressed to.
    resource: str = ""
    #: Scopes every request needs.
    scopes: tuple[str, ...] = ()


class Settings(msgspec.Struct, kw_only=True):
    """What the front, the actors and the runtimes are configured with."""

    app: str = DEFAULT_APP
    http: HttpConfig = msgspec.field(default_factory=HttpConfig)
    paths: Paths = Paths()
    lifetimes: Lifetimes = Lifetimes()
    server: ServerLimits = ServerLimits()
    #: Seconds between SSE comments on idle streams.
    keepalive: float = 15.0
    #: The server's secret (``--secret`` / ``SESSION_SECRET``): seals 2026-07-28
    #: ``requestState`` and signs the Worker's session ids; when empty, one is made once and
    #: kept in the store.
    secret: str = ""
    #: Serve the stateless era (2026-07-28) on the same endpoint as the session era.
    modern: bool = True
    auth: AuthSettings = AuthSettings()


class BadSetting(ValueError):
    """A setting's value is unusable; the message names the setting and what it takes."""


# -- value checks: each returns the parsed value or raises ValueError saying what is wanted


def _number(kind: type, low: float | None = None, high: float | None = None, low_open: bool = False) -> Callable:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except (TypeError, ValueError):
            raise ValueError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
        if value != value or (low is not None and (value <= low if low_open else value < low)) \
                or (high is not None and value > high):
            bounds = (f"greater than {low:g}" if low_open else f"at least {low:g}") if low is not None else ""
            if high is not None:
                bounds = f"from {low:g} to {high:g}" if low is not None else f"at most {high:g}"
            raise ValueError(f"{text!r} is out of range: it must be {bounds}")
        return value

    return parse


def _path(allow_empty: bool) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text == "" and allow_empty:
            return text
        if not text.startswith("/") or any(c in text for c in "?# \t"):
            raise ValueError(f"{text!r} is not a URL path: it must start with '/'"
                             + (" (or be '' to turn it off)" if allow_empty else ""))
        return text

    return parse


def _boolean(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"{text!r} is not a boolean: use true or false")


def _choice(*names: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text.lower() not in names:
            raise ValueError(f"{text!r} is not one of {', '.join(names)}")
        return text.lower()

    return parse


def _url(text: str) -> str:
    if text and not (text.startswith("https://") or text.startswith("http://")):
        raise ValueError(f"{text!r} is not an http(s) URL")
    return text


def _names(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


class Option(msgspec.Struct, frozen=True):
    """One setting. ``target`` is where it lands in :class:`Settings` (dotted), or None
    for a runtime's own setting (the local server's port, say) that it reads itself."""

    flag: str
    env: str | None
    parse: Callable[[str], Any]
    default: Any
    help: str
    target: str | None = None
    #: A list: the flag repeats, the variable is comma-separated.
    many: bool = False
    #: A switch on the command line (``--json-response``), true/false as a variable.
    switch: bool = False
    metavar: str = "VALUE"


OPTIONS: tuple[Option, ...] = (
    Option("--host", None, str, "127.0.0.1", "address to listen on", metavar="ADDRESS"),
    Option("--port", None, _number(int, 1, 65535), 8000, "TCP port to listen on (1-65535)", metavar="PORT"),
    Option("--path", "MCP_PATH", _path(False), "/mcp", "the MCP endpoint's path", "paths.mcp", metavar="PATH"),
    Option("--sse-path", "SSE_PATH", _path(True), spec.DEFAULT_SSE_PATH,
           "GET path of the 2024-11-05 HTTP+SSE transport ('' turns it off)", "paths.sse", metavar="PATH"),
    Option("--messages-path", "MESSAGES_PATH", _path(True), spec.DEFAULT_MESSAGES_PATH,
           "POST path of the HTTP+SSE transport", "paths.messages", metavar="PATH"),
    Option("--keepalive", "KEEPALIVE", _number(float, 0, low_open=True), 15.0,
           "seconds between SSE comments on idle streams", "keepalive", metavar="SECONDS"),
    Option("--json-response", "JSON_RESPONSE", _boolean, False,
           "answer request POSTs with one JSON body instead of an SSE stream", "http.json_response", switch=True),
    Option("--allowed-origin", "ALLOWED_ORIGINS", str, (),
           "allow this Origin (hostname, full origin, *.domain or *), besides the local names", "http.allowed_origins",
           many=True, metavar="ORIGIN"),
    Option("--allowed-host", "ALLOWED_HOSTS", str, (),
           "allow this Host (hostname, *.domain or *), besides the local names", "http.allowed_hosts", many=True, metavar="HOST"),
    Option("--max-body", "MAX_BODY", _number(int, 1), spec.DEFAULT_MAX_BODY, "request body limit in bytes",
           "http.max_body", metavar="BYTES"),
    Option("--store", None, str, "sqlite:.mcp-actors/state.db",
           "where sessions live: sqlite:PATH, memory, or postgresql://... (a cluster of processes)", metavar="SPEC"),
    Option("--workers", None, _number(int, 1, 1024), 1,
           "processes serving the port together (needs a postgresql:// store)", metavar="N"),
    Option("--advertise-url", None, _url, "",
           "with a postgresql:// store: where the other processes reach this one (http://HOST:PORT, its internal "
           "port); default http://--host:--internal-port", metavar="URL"),
    Option("--internal-port", None, _number(int, 0, 65535), 0,
           "with a postgresql:// store: the port of the endpoint other processes call (0: any free one; with "
           "--workers, worker i takes PORT+i)", metavar="PORT"),
    Option("--lease", None, _number(float, 0.5, 600), 5.0,
           "with a postgresql:// store: seconds without a heartbeat after which a process's actors are taken over",
           metavar="SECONDS"),
    Option("--metrics-port", None, _number(int, 0, 65535), 0,
           "serve Prometheus metrics (/metrics) and /healthz, /readyz on this port of --host, apart from the MCP "
           "port (0: off; with --workers, worker i takes PORT+i); needs mcp-actors[otel]", metavar="PORT"),
    Option("--drain-timeout", None, _number(float, 0, 3600), 10.0,
           "seconds a stopping process (SIGTERM) waits for running work before it hands everything over",
           metavar="SECONDS"),
    Option("--idle-evict", None, _number(float, 0), Lifetimes().idle_evict,
           "idle seconds before a session's actor leaves memory", "lifetimes.idle_evict", metavar="SECONDS"),
    Option("--session-ttl", "SESSION_TTL", _number(float, 0, low_open=True), Lifetimes().session_ttl,
           "idle seconds before a session is deleted", "lifetimes.session_ttl", metavar="SECONDS"),
    Option("--stream-events", "STREAM_EVENTS", _number(int, 1), StreamLimits().max_events,
           "events each stream keeps for resumption", "lifetimes.streams.max_events", metavar="N"),
    Option("--max-sessions", None, _number(int, 1), Lifetimes().max_sessions,
           "sessions that may exist at once; past it initialize gets 503", "lifetimes.max_sessions",
           metavar="N"),
    Option("--handshake-ttl", "HANDSHAKE_TTL", _number(float, 0, low_open=True), Lifetimes().handshake_ttl,
           "seconds a session that never completed its handshake lives", "lifetimes.handshake_ttl",
           metavar="SECONDS"),
    Option("--max-subscriptions", "MAX_SUBSCRIPTIONS", _number(int, 0), Lifetimes().max_subscriptions,
           "resource subscriptions one session may hold", "lifetimes.max_subscriptions", metavar="N"),
    Option("--max-buffer", "MAX_BUFFER", _number(int, 1024), Lifetimes().max_buffer,
           "bytes one SSE response may hold for a client that is not reading; past it the "
           "connection is closed and the client resumes with Last-Event-ID", "lifetimes.max_buffer",
           metavar="BYTES"),
    Option("--max-connections", None, _number(int, 1), ServerLimits().max_connections,
           "open connections at once; at it a new one sheds the oldest that has not sent a whole head (else the oldest idle one), and gets 503 only when every one is busy", "server.max_connections", metavar="N"),
    Option("--max-headers", None, _number(int, 1), ServerLimits().max_headers,
           "request headers; past it 431", "server.max_headers", metavar="N"),
    Option("--max-head-bytes", None, _number(int, 256), ServerLimits().max_head_bytes,
           "bytes of request line and headers; past it 431", "server.max_head_bytes", metavar="BYTES"),
    Option("--head-timeout", None, _number(float, 0, low_open=True), ServerLimits().head_timeout,
           "seconds for a request head to arrive; past it 408", "server.head_timeout", metavar="SECONDS"),
    Option("--idle-timeout", None, _number(float, 0, low_open=True), ServerLimits().idle_timeout,
           "seconds an idle keep-alive connection is kept", "server.idle_timeout", metavar="SECONDS"),
    Option("--body-timeout", None, _number(float, 0, low_open=True), ServerLimits().body_timeout,
           "seconds for a request body to arrive; past it 408", "server.body_timeout", metavar="SECONDS"),
    Option("--write-timeout", None, _number(float, 0, low_open=True), ServerLimits().write_timeout,
           "seconds a client may leave a response unread before it is cut off", "server.write_timeout",
           metavar="SECONDS"),
    Option("--modern", "MODERN", _boolean, True,
           "serve MCP 2026-07-28 (stateless) beside the session era on the same endpoint; off answers its "
           "requests with -32022 so clients fall back", "modern", metavar="on|off"),
    Option("--secret", "SESSION_SECRET", str, "",
           "the server's secret: seals requestState (and signs session ids on Workers); every replica needs the "
           "same; default: made once and kept in the store (or env MCP_ACTORS_SECRET)", "secret",
           metavar="SECRET"),
    Option("--auth-issuer", "AUTH_ISSUER", _url, "",
           "require OAuth access tokens from this authorization server (its issuer URL); off when empty",
           "auth.issuer", metavar="URL"),
    Option("--auth-jwks", "AUTH_JWKS", _url, "",
           "the issuer's JWKS URL (default: from the issuer's metadata, RFC 8414 or OpenID discovery)",
           "auth.jwks", metavar="URL"),
    Option("--auth-audience", "AUTH_AUDIENCE", str, "", "the audience tokens must name (default: the resource)",
           "auth.audience", metavar="AUD"),
    Option("--auth-resource", "AUTH_RESOURCE", _url, "",
           "this endpoint's canonical URL (default: the URL a request was addressed to; set it behind a proxy "
           "and on Workers)", "auth.resource", metavar="URL"),
    Option("--auth-scope", "AUTH_SCOPES", str, (), "a scope every request needs (repeat for more)",
           "auth.scopes", many=True, metavar="SCOPE"),
    Option("--log-level", "LOG_LEVEL", _choice("critical", "error", "warning", "info", "debug", "trace"), "warning",
           "server log level: debug, info, warning, error or critical", metavar="LEVEL"),
    Option("--log-format", None, _choice("text", "json"), "text",
           "text, or json: one JSON object per line with time, level, message, session and request ids, method "
           "and trace ids", metavar="FORMAT"),
)

BY_FLAG = {o.flag: o for o in OPTIONS}


def _set(tree: dict, dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for part in parents:
        tree = tree.setdefault(part, {})
    tree[leaf] = value


def build(values: Mapping[str, Any], app: str | None = None) -> Settings:
    """Settings from parsed values keyed by flag (``{"--session-ttl": 600.0}``); flags
    not given keep their defaults. The local names are always allowed as Host and Origin."""
    tree: dict[str, Any] = {}
    for option in OPTIONS:
        if option.target is None or option.flag not in values:
            continue
        value = values[option.flag]
        if option.flag in ("--allowed-origin", "--allowed-host"):
            value = tuple(spec.LOCAL_HOSTS) + tuple(value)
        elif option.flag in ("--sse-path", "--messages-path"):
            value = value or None
        _set(tree, option.target, value)
    tree.setdefault("http", {}).setdefault("allowed_origins", spec.LOCAL_HOSTS)
    tree["http"].setdefault("allowed_hosts", spec.LOCAL_HOSTS)
    if app:
        tree["app"] = app
    return msgspec.convert(tree, Settings)


def parse_value(option: Option, text: str) -> Any:
    try:
        if option.many:
            return tuple(option.parse(part) for part in _names(text))
        return option.parse(text)
    except ValueError as exc:
        where = option.flag if option.env is None else f"{option.flag} ({option.env})"
        raise BadSetting(f"{where}: {exc}") from None


# -- the two sources -----------------------------------------------------------------------


def from_env(get: Callable[[str], Any], extra: Mapping[str, str] = {}) -> Settings:
    """Settings from a Worker's variables (``get(name)`` -> value or None)."""
    values: dict[str, Any] = {}
    for option in OPTIONS:
        if option.env is None:
            continue
        raw = get(option.env)
        if raw is not None:
            values[option.flag] = parse_value(option, str(raw))
    app = get("MCP_APP")
    return build(values, str(app) if app else None)


def shown(option: Option) -> str:
    """An option's default as help and docs/http-and-limits.md show it."""
    default = option.default
    if option.switch or isinstance(default, bool):
        return "on" if default else "off"
    if option.flag in ("--allowed-origin", "--allowed-host"):
        return "local names"
    if default == "" or default == ():
        return "none"
    if isinstance(default, float) and default.is_integer():
        return str(int(default))
    return str(default)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Every option with a flag, as argparse arguments (values are checked in :func:`from_args`)."""
    for option in OPTIONS:
        help_text = option.help + (f" (default {shown(option)})" if not option.switch and not option.many else "")
        if option.env:
            help_text += f"; Worker variable {option.env}"
        if option.switch:
            parser.add_argument(option.flag, action="store_true", help=help_text)
        elif option.many:
            parser.add_argument(option.flag, action="append", default=[], metavar=option.metavar,
                                help=help_text + "; repeatable")
        else:
            parser.add_argument(option.flag, default=None, metavar=option.metavar, help=help_text)


def from_args(args: argparse.Namespace) -> tuple[Settings, dict[str, Any]]:
    """Settings from parsed command-line arguments, and every option's value by flag."""
    values: dict[str, Any] = {}
    for option in OPTIONS:
        raw = getattr(args, option.flag[2:].replace("-", "_"))
        if option.switch:
            values[option.flag] = bool(raw)
        elif option.many:
            values[option.flag] = tuple(item for part in raw for item in parse_value(option, part))
        elif raw is None:
            values[option.flag] = option.default
        else:
            values[option.flag] = parse_value(option, raw)
    return build(values, getattr(args, "app", None)), values
