"""The session state machine of the session era (2024-11-05 to 2025-11-25).

Sans-IO: it holds what a session knows (negotiated version, the client's identity and
capabilities, log level, subscriptions, which request ids are in flight, the counter for
ids of server-to-client requests) and answers questions about it. It never awaits and
never touches a socket; the actor drives it and the storage keeps it.

Lifecycle: ``NEW --initialize--> READY --notifications/initialized--> OPERATING``.
Requests are accepted in READY as well as OPERATING, because over HTTP the initialized
notification and the client's first request travel on separate connections and may
arrive in either order.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import msgspec

from . import spec
from .jsonrpc import ProtocolError, RequestId, shown
from .storage import Storage

NEW, READY, OPERATING, CLOSED = "new", "ready", "operating", "closed"


class SessionState(msgspec.Struct, kw_only=True):
    """The part of a session that must outlive any one request; stored under ``meta``."""

    version: str = spec.LATEST_VERSION
    #: Which HTTP transport the session was opened on; it keeps to it.
    transport: str = spec.TRANSPORT_STREAMABLE
    #: The principal that opened it (``auth.owner_of``); "" when the server checks no tokens.
    owner: str = ""
    client_info: dict = {}
    client_capabilities: dict = {}
    phase: str = NEW
    log_level: str | None = None
    #: Read from records written before subscriptions were stored per key (``u/<uri>``);
    #: moved to keys on load, never written again.
    subscriptions: list[str] = []
    next_server_request: int = 0
    #: Wall-clock time of the last activity that was written down (expiry counts from it).
    last_seen: float = 0.0
    #: The number of the app's last announcement this session has heard (list changes,
    #: resource updates); woken from storage, it catches up from there.
    announced: int = 0
    #: Wall-clock time the session was created (0: a record written before this was kept);
    #: what ``mcp.server.session.duration`` measures from.
    opened: float = 0.0


_encode = msgspec.json.Encoder().encode
_decode_state = msgspec.json.Decoder(SessionState).decode


_BEFORE_INITIALIZE = frozenset({spec.INITIALIZE, "ping"})
_SUB_PREFIX = "u/"


def negotiate(requested: Any) -> str:
    """lifecycle: answer with the client's version when we speak it, else our latest."""
    if isinstance(requested, str) and requested in spec.SESSION_VERSIONS:
        return requested
    return spec.LATEST_VERSION


class Session:
    __slots__ = ("id", "storage", "restored", "state", "in_flight", "subscribed")

    def __init__(self, session_id: str, storage: Storage, fresh: bool = False):
        """``fresh``: a session being created, so there is nothing in storage to read."""
        self.id = session_id
        self.storage = storage
        raw = None if fresh else storage.get("meta")
        #: Woken from storage (hibernation or a restart) rather than newly made.
        self.restored = raw is not None
        self.state = _decode_state(raw) if raw is not None else SessionState(opened=time.time() if fresh else 0.0)
        #: Requests in flight (a dict as an ordered set); None when there are none: an idle
        #: session holds no table (a dict that once held a request keeps ~160 bytes).
        self.in_flight: dict[RequestId, None] | None = None
        #: Subscribed resource URIs (each stored under ``u/<uri>``); None when there are none.
        self.subscribed: dict[str, None] | None = None
        if raw is not None:
            self._load_subscriptions()

    def _load_subscriptions(self) -> None:
        uris = [key[2:] for key, _ in self.storage.list(_SUB_PREFIX)]
        if self.state.subscriptions:  # an older record: move its list to keys
            for uri in self.state.subscriptions:
                self.storage.put(_SUB_PREFIX + uri, b"")
            uris += self.state.subscriptions
            self.state.subscriptions = []
            self.save()
        if uris:
            self.subscribed = dict.fromkeys(uris)

    # -- lifecycle --------------------------------------------------------------------

    def initialize(self, params: dict) -> str:
        if self.state.phase != NEW:
            raise ProtocolError(spec.INVALID_REQUEST, "Session is already initialized")
        requested, caps, info = params.get("protocolVersion"), params.get("capabilities"), params.get("clientInfo")
        if not isinstance(requested, str) or not requested or len(requested) > 32:
            raise ProtocolError(spec.INVALID_PARAMS, "Invalid params: 'protocolVersion' must be a version string "
                                                     f"such as {spec.LATEST_VERSION!r}")
        if not isinstance(caps, dict):
            raise ProtocolError(spec.INVALID_PARAMS, "Invalid params: 'capabilities' must be an object "
                                                     "(send {} for none)")
        if not isinstance(info, dict) or not isinstance(info.get("name"), str) \
                or not isinstance(info.get("version", ""), str):
            raise ProtocolError(spec.INVALID_PARAMS, "Invalid params: 'clientInfo' must be an object with string "
                                                     "'name' and 'version'")
        self.state.version = negotiate(requested)
        self.state.client_capabilities = shared(caps)
        self.state.client_info = shared(info)
        self.state.phase = READY
        self.save()
        return self.state.version

    def initialized(self) -> None:
        """The handshake is complete: from now on the session lives its full TTL (until
        then, an unused session expires soon), so this step is written down."""
        if self.state.phase == READY:
            self.state.phase = OPERATING
            self.save()

    @property
    def ready(self) -> bool:
        return self.state.phase in (READY, OPERATING)

    @property
    def operating(self) -> bool:
        return self.state.phase == OPERATING

    @property
    def primes(self) -> bool:
        """Whether this client's SSE streams get a priming event (2025-11-25 and later,
        Streamable HTTP only: an HTTP+SSE stream starts with its ``endpoint`` event)."""
        return self.state.version in spec.PRIMING_VERSIONS and not self.legacy

    @property
    def legacy(self) -> bool:
        """On the 2024-11-05 HTTP+SSE transport: every message goes out on the one GET stream."""
        return self.state.transport == spec.TRANSPORT_SSE

    def save(self) -> None:
        self.storage.put("meta", _encode(self.state))

    # -- requests -----------------------------------------------------------------------

    def begin(self, request_id: RequestId, method: str) -> None:
        """Admit a client request; a reused in-flight id is refused at once, never queued,
        and before ``initialize`` only ``initialize`` and ``ping`` are served (lifecycle)."""
        if self.state.phase == NEW and method not in _BEFORE_INITIALIZE:
            raise ProtocolError(spec.INVALID_REQUEST,
                                f"Session not initialized: send 'initialize' before {shown(method)}")
        in_flight = self.in_flight
        if in_flight is None:
            in_flight = self.in_flight = {}
        elif request_id in in_flight:
            raise ProtocolError(
                spec.INVALID_REQUEST,
                f"Request id {shown(request_id)} is already in flight in this session; "
                "every request needs an id not used before",
            )
        in_flight[request_id] = None

    def end(self, request_id: RequestId) -> None:
        in_flight = self.in_flight
        if in_flight is not None:
            in_flight.pop(request_id, None)
            if not in_flight:
                self.in_flight = None

    def next_server_request_id(self) -> int:
        rid = self.state.next_server_request
        self.state.next_server_request = rid + 1
        return rid

    # -- logging and subscriptions ------------------------------------------------------

    def set_log_level(self, level: Any) -> None:
        if not isinstance(level, str) or level not in spec.LOG_SEVERITY:
            raise ProtocolError(
                spec.INVALID_PARAMS,
                f"Unknown log level {shown(level)}; use one of {', '.join(spec.LOG_LEVELS)}",
            )
        self.state.log_level = level
        self.save()

    def logs(self, level: str) -> bool:
        floor = self.state.log_level
        return floor is None or spec.LOG_SEVERITY.get(level, 0) >= spec.LOG_SEVERITY[floor]

    def subscribe(self, uri: str, limit: int) -> None:
        """Subscribe to ``uri``: one key written, whatever the count (the cost stays flat);
        at most ``limit`` per session."""
        if len(uri) > spec.MAX_URI_CHARS:
            raise ProtocolError(spec.INVALID_PARAMS, f"Invalid params: the URI is longer than "
                                                     f"{spec.MAX_URI_CHARS} characters")
        subscribed = self.subscribed
        if subscribed is None:
            subscribed = self.subscribed = {}
        elif uri in subscribed:
            return
        if len(subscribed) >= limit:
            raise ProtocolError(spec.INVALID_PARAMS, f"Too many subscriptions: a session may hold {limit}; "
                                                     "unsubscribe from one first")
        subscribed[uri] = None
        self.storage.put(_SUB_PREFIX + uri, b"")

    def unsubscribe(self, uri: str) -> None:
        if self.subscribed is not None and uri in self.subscribed:
            del self.subscribed[uri]
            self.storage.delete(_SUB_PREFIX + uri)

    def subscribes(self, uri: str) -> bool:
        return self.subscribed is not None and uri in self.subscribed

    def client_supports(self, capability: str) -> bool:
        return capability in self.state.client_capabilities


_SHARED: dict[bytes, dict] = {}
#: Distinct values kept for sharing; past it the table starts over.
_SHARED_MAX = 1024


def shared(value: dict) -> dict:
    """One object for equal client infos and capabilities: most sessions come from a few
    kinds of client, and each would otherwise hold its own copy (a few hundred bytes). The
    result must not be mutated (nothing does: the session only reads them)."""
    key = _encode(value)
    found = _SHARED.get(key)
    if found is None:
        if len(_SHARED) >= _SHARED_MAX:
            _SHARED.clear()
        found = _SHARED[key] = value
    return found


def new_session_id() -> str:
    """A cryptographically random id of visible ASCII (transports: Session Management)."""
    return secrets.token_urlsafe(24)
