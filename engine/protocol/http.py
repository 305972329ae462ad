"""The Streamable HTTP rules, written once.

Pure functions over a method, a header mapping and a decoded message: no sockets, no
ASGI. The local ASGI server and the Cloudflare Worker both call these, so a status code
or a header rule exists in exactly one place. A failed check raises :class:`HttpError`,
which knows its status, extra headers and JSON-RPC error body.
"""

from __future__ import annotations

import functools
import re
from typing import Any, Mapping
from urllib.parse import unquote

import msgspec
from msgspec import UNSET

from . import jsonrpc, spec
from .jsonrpc import Message, RequestId


class HttpConfig(msgspec.Struct, kw_only=True):
    """What an operator can tune about the HTTP surface."""

    #: Origins allowed to call us: a hostname (any scheme and port), a full origin
    #: (``https://app.example.com``), ``*.example.com`` for its subdomains, or ``*`` for any.
    allowed_origins: tuple[str, ...] = spec.LOCAL_HOSTS
    #: Values allowed in ``Host`` (hostname, any port), or ``*`` for any.
    allowed_hosts: tuple[str, ...] = spec.LOCAL_HOSTS
    max_body: int = spec.DEFAULT_MAX_BODY
    #: Answer request POSTs with one ``application/json`` body instead of SSE.
    json_response: bool = False
    retry_ms: int = spec.DEFAULT_RETRY_MS


class HttpError(Exception):
    """A request refused at the HTTP layer, with the spec's status and a JSON-RPC body."""

    def __init__(
        self,
        status: int,
        code: int,
        message: str,
        *,
        request_id: RequestId | None = None,
        data: Any = UNSET,
        headers: tuple[tuple[str, str], ...] = (),
        omit_null_id: bool = False,
    ):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id
        self.data = data
        self.headers = headers
        #: 2026-07-28 errors leave an unknown id out rather than sending null.
        self.omit_null_id = omit_null_id

    def body(self) -> bytes:
        if self.request_id is None and self.omit_null_id:
            return jsonrpc.error_without_id(self.code, self.message, self.data)
        return jsonrpc.error(self.request_id, self.code, self.message, self.data)


# -- host and origin (DNS-rebinding protection) ---------------------------------------


#: RFC 3986 host (reg-name or IPv4, or an IP literal in brackets) and an optional port:
#: the shape of a Host header and of an origin's authority. Nothing else (userinfo, a
#: path, spaces) may ride along, so ``localhost:80@evil.example`` is not "localhost".
_HOSTPORT = re.compile(r"(\[[0-9a-f:.]+\]|[a-z0-9._~%!$&'()*+,;=-]+)(:[0-9]{0,5})?")


@functools.lru_cache(maxsize=512)
def _hostname(hostport: str) -> str | None:
    """``"[::1]:8000"`` -> ``"[::1]"``, ``"Example.com:80"`` -> ``"example.com"``; None when
    the value is not a host with an optional port."""
    m = _HOSTPORT.fullmatch(hostport.strip().lower())
    return m.group(1) if m else None


@functools.lru_cache(maxsize=512)
def _allowed(value: str, allow: tuple[str, ...], full: str | None = None) -> bool:
    """Cached, like the media types below: clients send the same few hosts every time."""
    host = _hostname(value)
    if host is None:
        return False
    for entry in allow:
        entry = entry.lower()
        if entry == "*" or entry == host or (full is not None and entry == full):
            return True
        if entry.startswith("*.") and host.endswith(entry[1:]):  # "*.workers.dev"
            return True
    return False


def check_host_and_origin(headers: Mapping[str, str], config: HttpConfig) -> None:
    host = headers.get("host")
    if host is not None and _hostname(host) is None:
        raise HttpError(400, spec.INVALID_REQUEST,
                        "Bad Request: the Host header is not a host name with an optional port")
    if host is not None and not _allowed(host, config.allowed_hosts):
        raise HttpError(
            421,
            spec.INVALID_REQUEST,
            f"Misdirected request: Host {host!r} is not served here (allowed: "
            f"{', '.join(config.allowed_hosts)}; see --allowed-host)",
        )
    origin = headers.get("origin")
    if origin is not None:
        origin_l = origin.strip().lower()
        scheme, sep, rest = origin_l.partition("://")
        if not sep or not _allowed(rest, config.allowed_origins, origin_l):
            raise HttpError(
                403,
                spec.INVALID_REQUEST,
                f"Forbidden: Origin {origin!r} is not allowed (allowed: "
                f"{', '.join(config.allowed_origins)}; see --allowed-origin)",
            )


# -- content negotiation ------------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def _media_types(value: str | None) -> frozenset[str]:
    """Media types named in an Accept or Content-Type value. Cached: clients send the same
    few values on every request, and this runs on every request."""
    if not value:
        return frozenset()
    return frozenset(part.split(";", 1)[0].strip().lower() for part in value.split(","))


def _accepts(types: frozenset[str], wanted: str) -> bool:
    return wanted in types or "*/*" in types or f"{wanted.split('/')[0]}/*" in types


def check_post(headers: Mapping[str, str], config: HttpConfig) -> None:
    """Accept, Content-Type and declared length of a POST, before its body is read."""
    accept = _media_types(headers.get("accept"))
    if not (_accepts(accept, spec.CONTENT_JSON) and _accepts(accept, spec.CONTENT_SSE)):
        raise HttpError(
            406,
            spec.INVALID_REQUEST,
            "Not Acceptable: a POST must send 'Accept: application/json, text/event-stream'",
        )
    ctype = _media_types(headers.get("content-type"))
    if spec.CONTENT_JSON not in ctype:
        raise HttpError(
            415,
            spec.INVALID_REQUEST,
            "Unsupported Media Type: the body must be JSON sent with 'Content-Type: application/json'",
        )
    _check_length(headers, config)


def _check_length(headers: Mapping[str, str], config: HttpConfig) -> None:
    length = headers.get("content-length")
    if length is not None:
        try:
            size = int(length)
        except ValueError:
            raise HttpError(400, spec.INVALID_REQUEST, "Bad Request: Content-Length is not a number") from None
        if size > config.max_body:
            raise body_too_large(config.max_body)


def body_too_large(limit: int) -> HttpError:
    return HttpError(
        413,
        spec.INVALID_REQUEST,
        f"Payload Too Large: the body exceeds the limit of {limit} bytes (see --max-body)",
    )


def check_legacy_post(headers: Mapping[str, str], config: HttpConfig) -> None:
    """A 2024-11-05 message POST: JSON body within the limit (that transport names no Accept rule)."""
    if spec.CONTENT_JSON not in _media_types(headers.get("content-type")):
        raise HttpError(
            415,
            spec.INVALID_REQUEST,
            "Unsupported Media Type: the body must be JSON sent with 'Content-Type: application/json'",
        )
    _check_length(headers, config)


def legacy_session(query: str) -> str:
    """The session id in a 2024-11-05 message URL's query, or the 400."""
    for part in query.split("&"):
        name, _, value = part.partition("=")
        if name == spec.LEGACY_SESSION_PARAM and value:
            return unquote(value)
    raise HttpError(
        400,
        spec.INVALID_REQUEST,
        f"Bad Request: missing '{spec.LEGACY_SESSION_PARAM}' query parameter; POST to the URL "
        "the stream's 'endpoint' event gave",
    )


def legacy_session_mismatch(transport: str) -> HttpError:
    """A session id used on the other transport's endpoint: not a session of this one."""
    where = "the HTTP+SSE message endpoint" if transport == "sse" else "the MCP endpoint"
    return HttpError(
        404,
        spec.SESSION_NOT_FOUND,
        f"Session not found here: it belongs to the other transport; send its messages to {where}",
    )


def check_get(headers: Mapping[str, str]) -> None:
    if not _accepts(_media_types(headers.get("accept")), spec.CONTENT_SSE):
        raise HttpError(
            406,
            spec.INVALID_REQUEST,
            "Not Acceptable: a GET must send 'Accept: text/event-stream' to open an SSE stream",
        )


def method_not_allowed(method: str, allow: str = spec.ALLOWED_METHODS, what: str = "the MCP endpoint") -> HttpError:
    return HttpError(
        405,
        spec.INVALID_REQUEST,
        f"Method Not Allowed: {what} takes {allow}, not {method}",
        headers=(("allow", allow),),
    )


# -- sessions and versions ------------------------------------------------------------------


def decode_body(body: bytes) -> Message:
    try:
        return jsonrpc.decode(body)
    except jsonrpc.ProtocolError as exc:
        raise HttpError(400, exc.code, exc.message) from None


def request_id_of(msg: Message | None) -> RequestId | None:
    if msg is None or msg.id is UNSET or msg.method is UNSET:
        return None
    return msg.id


def _unsupported_stateless(requested: str, request_id: RequestId | None) -> HttpError:
    return HttpError(
        400,
        spec.UNSUPPORTED_PROTOCOL_VERSION,
        f"Unsupported protocol version {requested}: this server speaks the session era; "
        "send 'initialize' with one of the supported versions",
        request_id=request_id,
        data={"supported": list(spec.SESSION_VERSIONS), "requested": requested},
    )


def check_version_header(headers: Mapping[str, str], msg: Message | None = None) -> str:
    """The request's protocol version; an unknown one is 400 (transports: Protocol Version Header)."""
    version = headers.get(spec.HEADER_PROTOCOL_VERSION)
    if version is None:
        return spec.HEADERLESS_VERSION
    version = version.strip()
    if version not in spec.SESSION_VERSIONS:
        raise HttpError(
            400,
            spec.INVALID_REQUEST,
            f"Bad Request: unsupported MCP-Protocol-Version {version!r}; supported: "
            f"{', '.join(spec.SESSION_VERSIONS)}",
            request_id=request_id_of(msg),
            data={"supported": list(spec.SESSION_VERSIONS), "requested": version},
        )
    return version


def stateless_not_served(requested: str, msg: Message | None = None) -> HttpError:
    """With the stateless era turned off (``--modern off``): -32022 with the session era's
    versions, so a 2026 client learns to fall back instead of giving up."""
    return _unsupported_stateless(requested, request_id_of(msg))


def require_session(headers: Mapping[str, str], msg: Message | None = None) -> str:
    """The session id of a session-era request that is not ``initialize``, or the 400."""
    session_id = headers.get(spec.HEADER_SESSION_ID)
    if session_id:
        if len(session_id) > spec.MAX_HEADER_ID_CHARS:  # not one we issued; never looked up
            raise session_not_found(session_id, msg)
        return session_id
    raise HttpError(
        400,
        spec.INVALID_REQUEST,
        "Bad Request: missing Mcp-Session-Id header; send 'initialize' first and repeat the "
        "session id it returns on every later request",
        request_id=request_id_of(msg),
    )


def session_not_found(session_id: str, msg: Message | None = None) -> HttpError:
    return HttpError(
        404,
        spec.SESSION_NOT_FOUND,
        "Session not found: it expired or was deleted; start a new one with 'initialize'",
        request_id=request_id_of(msg),
    )


def initialize_with_session(msg: Message) -> HttpError:
    return HttpError(
        400,
        spec.INVALID_REQUEST,
        "Bad Request: 'initialize' starts a new session and must not carry Mcp-Session-Id",
        request_id=request_id_of(msg),
    )


def last_event_id(headers: Mapping[str, str]) -> str | None:
    """The ``Last-Event-ID`` to resume after, or None; an overlong one is 400."""
    value = headers.get(spec.HEADER_LAST_EVENT_ID)
    if value and len(value) > spec.MAX_HEADER_ID_CHARS:
        raise HttpError(400, spec.INVALID_REQUEST,
                        f"Bad Request: Last-Event-ID is longer than {spec.MAX_HEADER_ID_CHARS} characters; "
                        "send the id of the last event you received")
    return value or None


def session_unreadable(msg: Message | None = None) -> HttpError:
    """A session whose stored state cannot be read: it is as good as gone for its client
    (the server logged why); other sessions are untouched."""
    return HttpError(
        404,
        spec.SESSION_NOT_FOUND,
        "Session not found: its stored state cannot be read; start a new one with 'initialize'",
        request_id=request_id_of(msg),
    )


def store_unavailable(msg: Message | None = None) -> HttpError:
    """The store could not commit (disk full, an I/O error): nothing of this request was
    kept. Retry shortly; the session is reloaded from what was stored."""
    return HttpError(
        503,
        spec.STORE_UNAVAILABLE,
        "Service Unavailable: the server could not store this request (it was not applied); retry shortly",
        request_id=request_id_of(msg),
        headers=(("retry-after", "1"),),
    )


def holder_lost(msg: Message | None = None) -> HttpError:
    """In a cluster: the request went to the process holding its session, which stopped
    answering before its reply began; whether it was applied is unknown. Retrying is safe
    for what can be repeated; the session itself lives on (another process takes it over)."""
    return HttpError(
        503,
        spec.HOLDER_LOST,
        "Service Unavailable: the server process holding this session stopped while handling this request, so "
        "whether it was applied is unknown; the session carries on elsewhere: retry, or resume the stream with "
        "Last-Event-ID",
        request_id=request_id_of(msg),
        headers=(("retry-after", "1"),),
    )


def internal_error(msg: Message | None = None) -> HttpError:
    """A fault of the server's own (logged there); the client learns no more than that."""
    return HttpError(
        500,
        spec.INTERNAL_ERROR,
        "Internal error: the server failed while handling this request and logged why",
        request_id=request_id_of(msg),
    )


# -- connection-level refusals (written by the server's HTTP protocol, before any routing) ---


def head_too_large(max_headers: int, max_bytes: int) -> HttpError:
    return HttpError(
        431,
        spec.INVALID_REQUEST,
        f"Request Header Fields Too Large: at most {max_headers} headers and {max_bytes} bytes of "
        "request line and headers",
    )


def head_timeout(seconds: float) -> HttpError:
    return HttpError(408, spec.INVALID_REQUEST,
                     f"Request Timeout: the request head did not arrive within {seconds:g} s")


def body_timeout(seconds: float) -> HttpError:
    return HttpError(408, spec.INVALID_REQUEST,
                     f"Request Timeout: the request body did not arrive within {seconds:g} s")


def too_many_connections(limit: int) -> HttpError:
    return HttpError(503, spec.SERVER_BUSY,
                     f"Service Unavailable: the server holds its limit of {limit} connections; retry shortly",
                     headers=(("retry-after", "1"),))


def malformed_http() -> HttpError:
    return HttpError(400, spec.INVALID_REQUEST, "Bad Request: not a valid HTTP/1.1 request")


def raw_response(exc: HttpError) -> bytes:
    """A whole HTTP/1.1 response (JSON-RPC error body, then close) for refusals made below
    the application, where there is no ASGI ``send`` to answer with."""
    body = exc.body()
    reasons = {400: "Bad Request", 408: "Request Timeout", 431: "Request Header Fields Too Large",
               503: "Service Unavailable"}
    head = [f"HTTP/1.1 {exc.status} {reasons.get(exc.status, 'Error')}",
            f"content-type: {spec.CONTENT_JSON}", f"content-length: {len(body)}", "connection: close"]
    head += [f"{name}: {value}" for name, value in exc.headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


def too_many_sessions(limit: int, msg: Message | None = None) -> HttpError:
    return HttpError(
        503,
        spec.SERVER_BUSY,
        f"Service Unavailable: the server holds its limit of {limit} sessions; retry later "
        "(sessions that are not used expire)",
        request_id=request_id_of(msg),
        headers=(("retry-after", "30"),),
    )
