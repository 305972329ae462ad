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
from typing import Any

import msgspec

from . import spec
from .jsonrpc import ProtocolError, RequestId
from .storage import Storage

NEW, READY, OPERATING, CLOSED = "new", "ready", "operating", "closed"


class SessionState(msgspec.Struct, kw_only=True):
    """The part of a session that must outlive any one request; stored under ``meta``."""

    version: str = spec.LATEST_VERSION
    #: Which HTTP transport the session was opened on; it keeps to it.
    transport: str = spec.TRANSPORT_STREAMABLE
    client_info: dict = {}
    client_capabilities: dict = {}
    phase: str = NEW
    log_level: str | None = None
    subscriptions: list[str] = []
    next_server_request: int = 0
    #: Wall-clock time of the last activity that was written down (expiry counts from it).
    last_seen: float = 0.0


_encode = msgspec.json.Encoder().encode
_decode_state = msgspec.json.Decoder(SessionState).decode


def negotiate(requested: Any) -> str:
    """lifecycle: answer with the client's version when we speak it, else our latest."""
    if isinstance(requested, str) and requested in spec.SESSION_VERSIONS:
        return requested
    return spec.LATEST_VERSION


class Session:
    __slots__ = ("id", "storage", "restored", "state", "in_flight")

    def __init__(self, session_id: str, storage: Storage, fresh: bool = False):
        """``fresh``: a session being created, so there is nothing in storage to read."""
        self.id = session_id
        self.storage = storage
        raw = None if fresh else storage.get("meta")
        #: Woken from storage (hibernation or a restart) rather than newly made.
        self.restored = raw is not None
        self.state = _decode_state(raw) if raw is not None else SessionState()
        # A dict as an ordered set: an empty set costs 216 bytes, an empty dict 64.
        self.in_flight: dict[RequestId, None] = {}

    # -- lifecycle --------------------------------------------------------------------

    def initialize(self, params: dict) -> str:
        if self.state.phase != NEW:
            raise ProtocolError(spec.INVALID_REQUEST, "Session is already initialized")
        caps = params.get("capabilities")
        info = params.get("clientInfo")
        self.state.version = negotiate(params.get("protocolVersion"))
        self.state.client_capabilities = caps if isinstance(caps, dict) else {}
        self.state.client_info = info if isinstance(info, dict) else {}
        self.state.phase = READY
        self.save()
        return self.state.version

    def initialized(self) -> None:
        # Not written at once: READY and OPERATING admit the same requests, so losing this
        # step in a crash changes nothing; the next save records it.
        if self.state.phase == READY:
            self.state.phase = OPERATING

    @property
    def ready(self) -> bool:
        return self.state.phase in (READY, OPERATING)

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

    def begin(self, request_id: RequestId) -> None:
        """Admit a client request; a reused in-flight id is refused at once, never queued."""
        if request_id in self.in_flight:
            raise ProtocolError(
                spec.INVALID_REQUEST,
                f"Request id {request_id!r} is already in flight in this session; "
                "every request needs an id not used before",
            )
        self.in_flight[request_id] = None

    def end(self, request_id: RequestId) -> None:
        self.in_flight.pop(request_id, None)

    def next_server_request_id(self) -> int:
        rid = self.state.next_server_request
        self.state.next_server_request = rid + 1
        return rid

    # -- logging and subscriptions ------------------------------------------------------

    def set_log_level(self, level: Any) -> None:
        if level not in spec.LOG_SEVERITY:
            raise ProtocolError(
                spec.INVALID_PARAMS,
                f"Unknown log level {level!r}; use one of {', '.join(spec.LOG_LEVELS)}",
            )
        self.state.log_level = level
        self.save()

    def logs(self, level: str) -> bool:
        floor = self.state.log_level
        return floor is None or spec.LOG_SEVERITY.get(level, 0) >= spec.LOG_SEVERITY[floor]

    def subscribe(self, uri: str) -> None:
        if uri not in self.state.subscriptions:
            self.state.subscriptions.append(uri)
            self.save()

    def unsubscribe(self, uri: str) -> None:
        if uri in self.state.subscriptions:
            self.state.subscriptions.remove(uri)
            self.save()

    def client_supports(self, capability: str) -> bool:
        return capability in self.state.client_capabilities


def new_session_id() -> str:
    """A cryptographically random id of visible ASCII (transports: Session Management)."""
    return secrets.token_urlsafe(24)
