"""Which action an HTTP request asks for, with the HTTP rules applied in their order.

Sans-IO and shared by every runtime through :mod:`engine.actors.front`, which calls
:func:`route` on a request's head, reads the body if the route needs one, calls
:func:`admit` on it, and hands the resulting :class:`Route` to the session actor's
``serve()``. The rules themselves live in :mod:`engine.http`; this module only fixes the
order in which they apply, so no runtime can apply them differently.
"""

from __future__ import annotations

from typing import Callable, Mapping

import msgspec
from msgspec import UNSET

from . import http, jsonrpc, modern, spec
from .http import HttpConfig, HttpError
from .jsonrpc import Message
from .auth import Principal
from .modern import Meta

# Actions, each served by SessionActor.serve().
OPEN = "open"  # POST initialize on the MCP endpoint: a new Streamable HTTP session
MESSAGE = "message"  # POST one message to a session
LISTEN = "listen"  # GET: the session's GET stream, or resume a stream (Last-Event-ID)
END = "end"  # DELETE the session
LEGACY_OPEN = "legacy-open"  # GET on the HTTP+SSE path: a new HTTP+SSE session and its stream
LEGACY_MESSAGE = "legacy-message"  # POST one message to an HTTP+SSE session
PREFLIGHT = "preflight"  # a CORS preflight from an allowed origin
MODERN = "modern"  # a 2026-07-28 request, served statelessly (no actor)
SUBSCRIBE = "subscribe"  # 2026-07-28 subscriptions/listen: a stream from the listen hub
MODERN_ACCEPT = "modern-accept"  # a 2026-07-28 notification or response: 202, nothing to do

#: Actions that make a new session (the rest need an existing one).
CREATES = frozenset({OPEN, LEGACY_OPEN})

_PREFLIGHT_HEADERS = (
    ("access-control-allow-methods", spec.ALLOWED_METHODS),
    ("access-control-max-age", "86400"),
)
_ALLOWED_REQUEST_HEADERS = "content-type, accept, authorization, mcp-session-id, mcp-protocol-version, " \
                           "last-event-id, mcp-method, mcp-name"


def _preflight(headers: Mapping[str, str], cors: tuple) -> Route:
    """A CORS preflight: the methods, and the request headers asked for if they are ours
    (``Mcp-Param-*`` names depend on the tool, so they are echoed rather than listed)."""
    asked = [h.strip().lower() for h in headers.get("access-control-request-headers", "").split(",") if h.strip()]
    extra = [h for h in asked if h.startswith(spec.HEADER_PARAM_PREFIX) and len(h) < 100][:32]
    allow = _ALLOWED_REQUEST_HEADERS + "".join(", " + h for h in extra)
    return Route(action=PREFLIGHT, headers=cors + _PREFLIGHT_HEADERS + (("access-control-allow-headers", allow),))


class Paths(msgspec.Struct, frozen=True, kw_only=True):
    mcp: str = "/mcp"
    #: The HTTP+SSE transport's paths; None turns it off.
    sse: str | None = spec.DEFAULT_SSE_PATH
    messages: str | None = spec.DEFAULT_MESSAGES_PATH


class Route(msgspec.Struct, kw_only=True):
    action: str
    session_id: str | None = None
    transport: str = spec.TRANSPORT_STREAMABLE
    needs_body: bool = False
    last_event_id: str | None = None
    #: For LEGACY_OPEN: the path the stream's endpoint event names (the session id is added).
    endpoint: str | None = None
    #: Headers every response to this request carries (CORS).
    headers: tuple[tuple[str, str], ...] = ()
    #: For MODERN and SUBSCRIBE: what the request's ``_meta`` said (checked).
    meta: Meta | None = None
    #: Who sent it, when the server checks access tokens (what it creates is bound to it).
    principal: Principal | None = None


def cors_headers(headers: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """What lets a browser page on an allowed origin read our responses (errors included)."""
    origin = headers.get("origin")
    if origin is None:
        return ()
    return (("access-control-allow-origin", origin),
            ("access-control-expose-headers", "mcp-session-id, www-authenticate"), ("vary", "origin"))


def error_headers(r: Route | None, headers: Mapping[str, str], status: int) -> tuple[tuple[str, str], ...]:
    """CORS on error replies too, so a page can read why; never for a refused Origin or Host."""
    if r is not None:
        return r.headers
    return () if status in (403, 421) else cors_headers(headers)


def endpoint(path: str, headers: Mapping[str, str], paths: Paths, config: HttpConfig, root_path: str = "") -> str:
    """Phase zero: the request is for one of our endpoints (404 otherwise), from an allowed
    Host and Origin (403/421: DNS rebinding is refused before anything is looked at); the
    path relative to ``root_path``. With authorization on, the token is checked right after
    this and before every other rule, so a caller without one learns nothing but how to get one."""
    if root_path and path.startswith(root_path):
        path = path[len(root_path):] or "/"
    legacy = paths.sse is not None and paths.messages is not None
    if path != paths.mcp and not (legacy and path in (paths.sse, paths.messages)):
        raise HttpError(404, spec.INVALID_REQUEST, f"Not Found: the MCP endpoint is {paths.mcp}")
    http.check_host_and_origin(headers, config)
    return path


def is_preflight(method: str, headers: Mapping[str, str]) -> bool:
    """A CORS preflight (it carries no credentials, by the Fetch standard)."""
    return method == "OPTIONS" and "origin" in headers and "access-control-request-method" in headers


def route(method: str, path: str, query: str, headers: Mapping[str, str], paths: Paths,
          config: HttpConfig, root_path: str = "") -> Route:
    """Phase one, from the request's head: the route, or the HttpError to answer with.

    ``root_path`` is where the app is mounted (ASGI): the path includes it (ASGI 2.3+), and
    the endpoint paths are relative to it."""
    path = endpoint(path, headers, paths, config, root_path)
    cors = cors_headers(headers)
    if path == paths.mcp:
        if method == "POST":
            http.check_post(headers, config)
            return Route(action=MESSAGE, needs_body=True, headers=cors)
        if method in ("GET", "DELETE") and modern.is_modern_head(headers):
            # 2026-07-28 has no GET stream and no session to delete (streamable-http, 405).
            raise http.method_not_allowed(method, "POST", "the MCP endpoint in 2026-07-28")
        if method == "GET":
            http.check_get(headers)
            http.check_version_header(headers)
            return Route(action=LISTEN, session_id=http.require_session(headers),
                         last_event_id=http.last_event_id(headers), headers=cors)
        if method == "DELETE":
            http.check_version_header(headers)
            return Route(action=END, session_id=http.require_session(headers), headers=cors)
        if is_preflight(method, headers):
            return _preflight(headers, cors)
        raise http.method_not_allowed(method)
    if path == paths.sse:
        if method != "GET":
            raise http.method_not_allowed(method, "GET", "the HTTP+SSE stream endpoint")
        http.check_get(headers)
        return Route(action=LEGACY_OPEN, transport=spec.TRANSPORT_SSE,
                     endpoint=f"{root_path}{paths.messages}", headers=cors)
    if is_preflight(method, headers):
        return _preflight(headers, cors)
    if method != "POST":
        raise http.method_not_allowed(method, "POST", "the HTTP+SSE message endpoint")
    http.check_legacy_post(headers, config)
    return Route(action=LEGACY_MESSAGE, session_id=http.legacy_session(query), transport=spec.TRANSPORT_SSE,
                 needs_body=True, headers=cors)


def admit(r: Route, headers: Mapping[str, str], body: bytes,
          header_paths: Callable[[str], dict | None] = lambda tool: None, serve_modern: bool = True) -> Message:
    """Phase two, with the body: decode it, and settle what a POST to the MCP endpoint is:
    a 2026-07-28 request (checked by :func:`engine.protocol.modern.check`), or one of a
    session. ``header_paths``: the app's ``x-mcp-header`` annotations, by tool;
    ``serve_modern=False`` answers 2026-07-28 requests with -32022 naming the session era's
    versions, so clients fall back."""
    try:
        msg = http.decode_body(body)
    except HttpError as exc:
        exc.omit_null_id = modern.is_modern_head(headers)
        raise
    if r.action == LEGACY_MESSAGE:
        return msg
    if modern.is_modern(headers, msg):
        if not serve_modern:
            raise http.stateless_not_served(spec.MODERN_VERSION, msg)
        if jsonrpc.kind(msg) != jsonrpc.REQUEST:
            r.action = MODERN_ACCEPT  # this era defines none a client sends over HTTP: accepted, ignored
            return msg
        r.meta = modern.check(headers, msg, header_paths)
        r.action = SUBSCRIBE if msg.method == spec.LISTEN else MODERN
        return msg
    if msg.method == spec.INITIALIZE and msg.id is not UNSET:
        if spec.HEADER_SESSION_ID in headers:
            raise http.initialize_with_session(msg)
        r.action = OPEN
        return msg
    http.check_version_header(headers, msg)
    r.session_id = http.require_session(headers, msg)
    return msg
