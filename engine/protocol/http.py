"""The Streamable HTTP rules, written once.

Pure functions over a method, a header mapping and a decoded message: no sockets, no
ASGI. The local ASGI server and the Cloudflare Worker both call these, so a status code
or a header rule exists in exactly one place. A failed check raises :class:`HttpError`,
which knows its status, extra headers and JSON-RPC error body.
"""

from __future__ import annotations

import functools
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
    ):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id
        self.data = data
        self.headers = headers

    def body(self) -> bytes:
        return jsonrpc.error(self.request_id, self.code, self.message, self.data)


# -- host and origin (DNS-rebinding protection) ---------------------------------------


def _hostname(hostport: str) -> str:
    """``"[::1]:8000"`` -> ``"[::1]"``, ``"Example.com:80"`` -> ``"example.com"``."""
    hostport = hostport.strip().lower()
    if hostport.startswith("["):
        end = hostport.find("]")
        return hostport[: end + 1] if end != -1 else hostport
    return hostport.split(":", 1)[0]


def _allowed(value: str, allow: tuple[str, ...], full: str | None = None) -> bool:
    host = _hostname(value)
    for entry in allow:
        entry = entry.lower()
        if entry == "*" or entry == host or (full is not None and entry == full):
            return True
        if entry.startswith("*.") and host.endswith(entry[1:]):  # "*.workers.dev"
            return True
    return False


def check_host_and_origin(headers: Mapping[str, str], config: HttpConfig) -> None:
    host = headers.get("host")
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


def _request_id(msg: Message | None) -> RequestId | None:
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
        if version == spec.STATELESS_VERSION:
            raise _unsupported_stateless(version, _request_id(msg))
        raise HttpError(
            400,
            spec.INVALID_REQUEST,
            f"Bad Request: unsupported MCP-Protocol-Version {version!r}; supported: "
            f"{', '.join(spec.SESSION_VERSIONS)}",
            request_id=_request_id(msg),
            data={"supported": list(spec.SESSION_VERSIONS), "requested": version},
        )
    return version


def era(headers: Mapping[str, str], msg: Message | None = None) -> str:
    """Which era a request belongs to: the dispatch point between the two.

    A request with a session id, or an ``initialize``, is session era. A session-less
    request that names the stateless version (in ``_meta`` or the version header) is
    stateless era. Anything else is session era too, and is refused for lacking a session.
    """
    if headers.get(spec.HEADER_SESSION_ID):
        return spec.LATEST_VERSION
    if msg is not None and msg.params is not UNSET:
        meta = msg.params.get("_meta")
        if isinstance(meta, dict):
            requested = meta.get(spec.META_PROTOCOL_VERSION)
            if isinstance(requested, str) and requested not in spec.SESSION_VERSIONS:
                return requested
    if headers.get(spec.HEADER_PROTOCOL_VERSION, "").strip() == spec.STATELESS_VERSION:
        return spec.STATELESS_VERSION
    return spec.LATEST_VERSION


def stateless_not_served(requested: str, msg: Message | None = None) -> HttpError:
    """Until the stateless era is served: -32022 with the versions we do speak, so a
    2026 client learns to fall back instead of giving up."""
    return _unsupported_stateless(requested, _request_id(msg))


def require_session(headers: Mapping[str, str], msg: Message | None = None) -> str:
    """The session id of a session-era request that is not ``initialize``, or the 400."""
    session_id = headers.get(spec.HEADER_SESSION_ID)
    if session_id:
        return session_id
    raise HttpError(
        400,
        spec.INVALID_REQUEST,
        "Bad Request: missing Mcp-Session-Id header; send 'initialize' first and repeat the "
        "session id it returns on every later request",
        request_id=_request_id(msg),
    )


def session_not_found(session_id: str, msg: Message | None = None) -> HttpError:
    return HttpError(
        404,
        spec.SESSION_NOT_FOUND,
        "Session not found: it expired or was deleted; start a new one with 'initialize'",
        request_id=_request_id(msg),
    )


def initialize_with_session(msg: Message) -> HttpError:
    return HttpError(
        400,
        spec.INVALID_REQUEST,
        "Bad Request: 'initialize' starts a new session and must not carry Mcp-Session-Id",
        request_id=_request_id(msg),
    )
