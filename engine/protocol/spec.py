"""Protocol constants, named after the MCP specification.

Everything a reader might grep the spec for lives here: protocol versions, JSON-RPC
error codes, header names and the HTTP status each transport-level failure maps to.
No other module spells these literals, so the local server and the Cloudflare Worker
cannot drift apart.
"""

from __future__ import annotations

# -- Versions -----------------------------------------------------------------------

#: Session-era versions we negotiate, newest first. ``initialize`` answers with the
#: client's version when it is listed here, else with ``LATEST_VERSION``.
SESSION_VERSIONS: tuple[str, ...] = ("2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05")
LATEST_VERSION = SESSION_VERSIONS[0]

#: Transports 2025-11-25 says: no ``MCP-Protocol-Version`` header and no other way to
#: tell means the client speaks 2025-03-26.
HEADERLESS_VERSION = "2025-03-26"

#: The stateless era (2026-07-28): no handshake, everything a request needs in its ``_meta``.
MODERN_VERSIONS: tuple[str, ...] = ("2026-07-28",)
MODERN_VERSION = MODERN_VERSIONS[0]
#: Every version this server speaks, newest first: ``server/discover``'s
#: ``supportedVersions`` and the ``data.supported`` of -32022, in both eras.
SUPPORTED_VERSIONS: tuple[str, ...] = MODERN_VERSIONS + SESSION_VERSIONS

#: Versions whose clients understand priming events (id + empty data) and polling;
#: older clients may try to parse the empty ``data`` as JSON, so they never get one.
PRIMING_VERSIONS = frozenset({"2025-11-25"})

#: ``_meta`` keys of the stateless era (basic/index: Request and Result Metadata).
META_PROTOCOL_VERSION = "io.modelcontextprotocol/protocolVersion"
META_CLIENT_CAPABILITIES = "io.modelcontextprotocol/clientCapabilities"
META_CLIENT_INFO = "io.modelcontextprotocol/clientInfo"
META_LOG_LEVEL = "io.modelcontextprotocol/logLevel"
META_SERVER_INFO = "io.modelcontextprotocol/serverInfo"
META_SUBSCRIPTION_ID = "io.modelcontextprotocol/subscriptionId"

#: ``resultType`` values (basic/index: Result Types; basic/patterns/mrtr).
RESULT_COMPLETE = "complete"
RESULT_INPUT_REQUIRED = "input_required"
#: Methods whose results may be ``input_required`` (mrtr: Where It Applies).
MRTR_METHODS = frozenset({"tools/call", "prompts/get", "resources/read"})
#: Methods whose complete results carry ``ttlMs`` and ``cacheScope`` (server/utilities/caching).
CACHEABLE_METHODS = frozenset({"server/discover", "tools/list", "prompts/list", "resources/list",
                               "resources/templates/list", "resources/read",
                               "skills/list", "skills/get"})  # the last two: the Skills extension

# -- JSON-RPC error codes -------------------------------------------------------------

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
#: Server-defined range. The SDKs use -32001 for an unknown session; we follow them.
SESSION_NOT_FOUND = -32001
#: Resources: "Resource not found" (server/resources).
RESOURCE_NOT_FOUND = -32002
#: 2026-07-28 basic/index, Error Codes.
HEADER_MISMATCH = -32020
MISSING_CLIENT_CAPABILITY = -32021
UNSUPPORTED_PROTOCOL_VERSION = -32022
#: 2026-07-28 streamable-http: the HTTP status of a JSON-RPC error answered as JSON before
#: (or instead of) a stream: the request errors are 400, an unknown method 404.
MODERN_ERROR_STATUS = {PARSE_ERROR: 400, INVALID_REQUEST: 400, INVALID_PARAMS: 400, HEADER_MISMATCH: 400,
                       MISSING_CLIENT_CAPABILITY: 400, UNSUPPORTED_PROTOCOL_VERSION: 400, METHOD_NOT_FOUND: 404}
#: A server-to-client request that got no answer in time (SDK convention).
REQUEST_TIMEOUT = -32001
#: The error a JSON reply carries for a request the client cancelled (a JSON reply must
#: hold one message, and a cancelled request gets no result). Outside JSON-RPC's reserved
#: range, as 2026-07-28 basic/index asks of codes it does not define; LSP's RequestCancelled.
REQUEST_CANCELLED = -32800
#: The server cannot take more sessions now (503 with Retry-After). Outside the reserved range.
SERVER_BUSY = -32801
#: The store could not commit (disk full, I/O error): the request was not applied (503).
STORE_UNAVAILABLE = -32802
#: In a cluster: the process that held the session stopped while it handled the request,
#: so whether it was applied is unknown (503). Outside the reserved range.
HOLDER_LOST = -32803

# -- HTTP ------------------------------------------------------------------------------

HEADER_SESSION_ID = "mcp-session-id"
HEADER_PROTOCOL_VERSION = "mcp-protocol-version"
HEADER_LAST_EVENT_ID = "last-event-id"
#: 2026-07-28 streamable-http, Request Metadata: body fields mirrored into headers.
HEADER_METHOD = "mcp-method"
HEADER_NAME = "mcp-name"
HEADER_PARAM_PREFIX = "mcp-param-"

#: The 2024-11-05 HTTP+SSE transport: GET on the SSE path opens a session's stream, whose
#: first event (``endpoint``) names the path to POST messages to, with this query parameter.
LEGACY_SESSION_PARAM = "session_id"
TRANSPORT_STREAMABLE = "streamable-http"
TRANSPORT_SSE = "sse"
DEFAULT_SSE_PATH = "/sse"
DEFAULT_MESSAGES_PATH = "/messages"

CONTENT_JSON = "application/json"
CONTENT_SSE = "text/event-stream"

#: Methods the MCP endpoint serves; anything else is 405 with this ``Allow``.
ALLOWED_METHODS = "GET, POST, DELETE"

#: Default request body limit (issue: 4 MiB).
DEFAULT_MAX_BODY = 4 * 1024 * 1024

#: Hosts allowed by default, for both the ``Host`` and the ``Origin`` check
#: (DNS-rebinding protection; conformance scenario ``dns-rebinding-protection``).
LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]")

#: Milliseconds a client should wait before reconnecting a closed SSE stream.
DEFAULT_RETRY_MS = 1000

# -- Limits on what a client chooses ---------------------------------------------------------
# Client-chosen strings are copied into stored records and into every related message
# (a progress token rides on every progress notification), so each has a cap.

#: Characters in a string JSON-RPC id, a progress token or a cancelled request's id.
MAX_ID_CHARS = 256
#: Characters in a ``Last-Event-ID`` or ``Mcp-Session-Id`` header value.
MAX_HEADER_ID_CHARS = 256
#: Characters in a resource URI a client subscribes to.
MAX_URI_CHARS = 2048
#: Levels of nested arrays and objects in a message (deeper JSON could exhaust the stack).
MAX_JSON_DEPTH = 100

# -- Methods ---------------------------------------------------------------------------

INITIALIZE = "initialize"
DISCOVER = "server/discover"
LISTEN = "subscriptions/listen"
ACKNOWLEDGED = "notifications/subscriptions/acknowledged"
INITIALIZED = "notifications/initialized"
CANCELLED = "notifications/cancelled"
PROGRESS = "notifications/progress"
LOG_MESSAGE = "notifications/message"
RESOURCE_UPDATED = "notifications/resources/updated"
TOOLS_LIST_CHANGED = "notifications/tools/list_changed"
RESOURCES_LIST_CHANGED = "notifications/resources/list_changed"
PROMPTS_LIST_CHANGED = "notifications/prompts/list_changed"

#: Logging levels of server/utilities/logging, in increasing severity (RFC 5424 order).
LOG_LEVELS: tuple[str, ...] = (
    "debug", "info", "notice", "warning", "error", "critical", "alert", "emergency",
)
LOG_SEVERITY = {name: rank for rank, name in enumerate(LOG_LEVELS)}
