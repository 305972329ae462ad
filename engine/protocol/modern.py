"""The rules of the stateless era (2026-07-28), written once: which requests belong to it,
the order in which a request is checked, its errors, and the shape of its results.

Sans-IO like the rest of :mod:`engine.protocol`: the front calls :func:`is_modern` and
:func:`check` on a decoded message and its headers, and the stateless runner calls
:func:`finish` on each result. The ladder follows 2026-07-28 basic/index (request
``_meta``), streamable-http (header mirroring, status codes) and versioning (-32022), in
the order the official conformance suite expects: a malformed ``_meta`` is -32602 before
any header is looked at; header mismatches are -32020 before the version itself is
judged (-32022); an unknown or removed method is 404 with -32601.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import msgspec
from msgspec import UNSET

from . import mcp_headers, spec
from .http import HttpError, request_id_of
from .jsonrpc import Message

_TASK_ROUTED = frozenset({"tasks/get", "tasks/update", "tasks/cancel"})

#: Methods of the session era that 2026-07-28 removed: 404 with -32601, like unknown ones.
REMOVED = frozenset({spec.INITIALIZE, "ping", "logging/setLevel", "resources/subscribe", "resources/unsubscribe"})


class Meta(msgspec.Struct, kw_only=True):
    """What a 2026-07-28 request says about itself in ``params._meta``."""

    version: str
    capabilities: dict
    client_info: dict | None = None
    log_level: str | None = None
    progress_token: Any = None


def is_modern(headers: Mapping[str, str], msg: Message) -> bool:
    """A request is 2026-07-28 if its version header names no session-era version, or its
    ``_meta`` names a protocol version. A request carrying a session id and no such
    ``_meta`` stays in the session era (there, a bad version header keeps its old answer)."""
    meta = _meta(msg)
    names_version = isinstance(meta, dict) and spec.META_PROTOCOL_VERSION in meta
    if names_version:
        return True
    if headers.get(spec.HEADER_SESSION_ID):
        return False
    version = headers.get(spec.HEADER_PROTOCOL_VERSION)
    return version is not None and version.strip() not in spec.SESSION_VERSIONS


def is_modern_head(headers: Mapping[str, str]) -> bool:
    """For a GET or DELETE (no body): a version header of the stateless era."""
    version = headers.get(spec.HEADER_PROTOCOL_VERSION)
    return (version is not None and version.strip() not in spec.SESSION_VERSIONS
            and not headers.get(spec.HEADER_SESSION_ID))


def _meta(msg: Message) -> Any:
    return msg.params.get("_meta") if msg.params is not UNSET else None


# -- errors -------------------------------------------------------------------------------------


def error(code: int, message: str, msg: Message | None, data: Any = UNSET) -> HttpError:
    """A 2026-07-28 error answered before any stream: its status from the code, the
    request's id echoed (and left out, never null, when there is none)."""
    return HttpError(spec.MODERN_ERROR_STATUS.get(code, 500), code, message,
                     request_id=request_id_of(msg), data=data, omit_null_id=True)


def header_mismatch(text: str, msg: Message) -> HttpError:
    return error(spec.HEADER_MISMATCH, f"Header mismatch: {text}", msg)


def unsupported_version(requested: str, msg: Message) -> HttpError:
    return error(spec.UNSUPPORTED_PROTOCOL_VERSION,
                 f"Unsupported protocol version {requested[:40]!r}; this server speaks "
                 f"{', '.join(spec.SUPPORTED_VERSIONS)}", msg,
                 data={"supported": list(spec.SUPPORTED_VERSIONS), "requested": requested})


def missing_capability(capabilities: dict, what: str, msg: Message | None) -> HttpError:
    return error(spec.MISSING_CLIENT_CAPABILITY,
                 f"Missing required client capability: {', '.join(capabilities)} (to {what})", msg,
                 data={"requiredCapabilities": capabilities})


def method_not_found(method: str, msg: Message) -> HttpError:
    why = " (removed in 2026-07-28)" if method in REMOVED else ""
    return error(spec.METHOD_NOT_FOUND, f"Method not found: {method[:80]!r}{why}", msg)


# -- the ladder ---------------------------------------------------------------------------------


def check(headers: Mapping[str, str], msg: Message,
          header_paths: Callable[[str], dict[str, tuple[str, ...]] | None]) -> Meta:
    """Check a 2026-07-28 request (not a notification) in the spec's order; the facts of
    its ``_meta``, or the HttpError to answer with. ``header_paths(tool)`` gives a tool's
    ``x-mcp-header`` annotations (None for an unknown tool: its call fails later)."""
    params = msg.params if msg.params is not UNSET else None
    meta = params.get("_meta") if isinstance(params, dict) else None
    if not isinstance(meta, dict):
        raise error(spec.INVALID_PARAMS, "Invalid params: a 2026-07-28 request needs params._meta", msg)
    version = meta.get(spec.META_PROTOCOL_VERSION)
    capabilities = meta.get(spec.META_CLIENT_CAPABILITIES)
    if not isinstance(version, str) or not version:
        raise error(spec.INVALID_PARAMS, f"Invalid params: _meta needs {spec.META_PROTOCOL_VERSION!r}", msg)
    if not isinstance(capabilities, dict):
        raise error(spec.INVALID_PARAMS, f"Invalid params: _meta needs {spec.META_CLIENT_CAPABILITIES!r} "
                                         "(an object; {} for none)", msg)
    header_version = headers.get(spec.HEADER_PROTOCOL_VERSION)
    if header_version is None:
        raise header_mismatch("the MCP-Protocol-Version header is missing", msg)
    if header_version.strip() != version:
        raise header_mismatch(f"MCP-Protocol-Version {header_version.strip()[:40]!r} does not match "
                              f"_meta protocolVersion {version[:40]!r}", msg)
    method = msg.method
    mirrored = headers.get(spec.HEADER_METHOD)
    if mirrored is None:
        raise header_mismatch("the Mcp-Method header is missing", msg)
    if mirrored.strip() != method:
        raise header_mismatch(f"Mcp-Method {mirrored.strip()[:60]!r} does not match the method {method!r}", msg)
    field = "uri" if method == "resources/read" else "name" if method in ("tools/call", "prompts/get") else None
    if field is not None and params.get(field) is not None:
        _check_mirror(headers, spec.HEADER_NAME, "Mcp-Name", params.get(field), msg)
    elif method in _TASK_ROUTED and spec.HEADER_NAME in headers and params.get("taskId") is not None:
        # the tasks extension: Mcp-Name carries the task id; checked when sent, never required
        _check_mirror(headers, spec.HEADER_NAME, "Mcp-Name", params.get("taskId"), msg)
    if version not in spec.MODERN_VERSIONS:
        raise unsupported_version(version, msg)
    if method == "tools/call" and isinstance(params.get("name"), str):
        paths = header_paths(params["name"])
        if paths:
            arguments = params.get("arguments")
            for header, path in paths.items():
                value = mcp_headers.at(arguments, path)
                if value is None:
                    continue  # absent or null: the client sends no header, and none is expected
                _check_mirror(headers, spec.HEADER_PARAM_PREFIX + header, f"Mcp-Param-{header}", value, msg)
    level = meta.get(spec.META_LOG_LEVEL)
    if level is not None and (not isinstance(level, str) or level not in spec.LOG_SEVERITY):
        raise error(spec.INVALID_PARAMS, f"Invalid params: unknown log level {str(level)[:20]!r}; use one of "
                                         f"{', '.join(spec.LOG_LEVELS)}", msg)
    info = meta.get(spec.META_CLIENT_INFO)
    return Meta(version=version, capabilities=capabilities, client_info=info if isinstance(info, dict) else None,
                log_level=level, progress_token=meta.get("progressToken"))


def _check_mirror(headers: Mapping[str, str], header: str, shown: str, body_value: Any, msg: Message) -> None:
    raw = headers.get(header)
    if raw is None:
        raise header_mismatch(f"the {shown} header is missing", msg)
    try:
        value = mcp_headers.decode(raw)
    except mcp_headers.BadHeader as exc:
        raise header_mismatch(f"{shown}: {exc}", msg) from None
    if not mcp_headers.same(value, body_value):
        raise header_mismatch(f"{shown} {value[:60]!r} does not match the body value {str(body_value)[:60]!r}", msg)


# -- results ------------------------------------------------------------------------------------


def finish(result: dict, method: str, server_info: dict, ttl_ms: int = 0, scope: str = "public") -> dict:
    """A result as 2026-07-28 sends it: ``resultType``, the server's identity in ``_meta``,
    and (complete results of cacheable methods) ``ttlMs`` and ``cacheScope``."""
    out = dict(result)
    kind = out.setdefault("resultType", spec.RESULT_COMPLETE)
    meta = out.get("_meta")
    out["_meta"] = {**meta, spec.META_SERVER_INFO: server_info} if isinstance(meta, dict) else \
        {spec.META_SERVER_INFO: server_info}
    if kind == spec.RESULT_COMPLETE and method in spec.CACHEABLE_METHODS:
        out.setdefault("ttlMs", ttl_ms)
        out.setdefault("cacheScope", scope)
    return out


def answer_fits(method: str, answer: Any) -> bool:
    """Whether an answer (an ``inputResponses`` entry) has the shape its question's method
    asks for: an ElicitResult, a CreateMessageResult, a ListRootsResult."""
    if not isinstance(answer, dict):
        return False
    if method == "elicitation/create":
        content = answer.get("content")
        return answer.get("action") in ("accept", "decline", "cancel") and (content is None or isinstance(content, dict))
    if method == "sampling/createMessage":
        return isinstance(answer.get("role"), str) and "content" in answer and isinstance(answer.get("model"), str)
    if method == "roots/list":
        return isinstance(answer.get("roots"), list)
    return True
