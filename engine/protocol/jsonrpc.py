"""JSON-RPC 2.0 codec on msgspec.

A body is decoded exactly once, straight into :class:`Message`; everything after that is
attribute access. The one struct covers requests, notifications and responses because
that is the cheapest shape for msgspec to decode and MCP messages are classified by which
fields are present, not by a tag.
"""

from __future__ import annotations

import re
from typing import Any, Union

import msgspec
from msgspec import UNSET, UnsetType

from . import spec

RequestId = Union[int, str]


class ErrorObject(msgspec.Struct, omit_defaults=True):
    code: int
    message: str
    data: Any = UNSET


class Message(msgspec.Struct, omit_defaults=True):
    """Any JSON-RPC message; see :func:`kind` for which one it is."""

    jsonrpc: str
    id: Union[int, str, None, UnsetType] = UNSET
    method: Union[str, UnsetType] = UNSET
    params: Union[dict, UnsetType] = UNSET
    result: Union[Any, UnsetType] = UNSET
    error: Union[ErrorObject, UnsetType] = UNSET


REQUEST = "request"
NOTIFICATION = "notification"
RESPONSE = "response"


class ProtocolError(Exception):
    """A failure with a JSON-RPC error code; becomes an error response.

    ``status`` is the HTTP status the transport should use when the error cannot ride on
    a normal response (body-level errors before a session exists, for instance).
    """

    def __init__(self, code: int, message: str, data: Any = UNSET, status: int = 400):
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data
        self.status = status


_decoder = msgspec.json.Decoder(Message)
encode = msgspec.json.Encoder().encode


_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"')
_NOT_BRACKETS = bytes(c for c in range(256) if c not in b"[]{}")


def _too_deep(body: bytes, limit: int) -> bool:
    """Whether ``body`` nests arrays or objects more than ``limit`` deep. Checked before
    decoding, because decoding deep JSON recurses in C: under Pyodide (the Worker) that
    overflows the WebAssembly stack and kills the whole isolate, a fault no ``except`` can
    catch. Cheap for ordinary bodies (two ``count`` calls); a full scan, in C but for the
    last loop over the brackets alone, only when there are more brackets than the limit."""
    if body.count(b"{") + body.count(b"[") <= limit:
        return False
    depth = 0
    for c in _STRINGS.sub(b"", body).translate(None, _NOT_BRACKETS):
        if c == 123 or c == 91:  # { [
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def decode(body: bytes) -> Message:
    """Decode one JSON-RPC message or raise :class:`ProtocolError` saying what is wrong."""
    if _too_deep(body, spec.MAX_JSON_DEPTH):
        raise ProtocolError(
            spec.INVALID_REQUEST,
            f"Invalid Request: the message nests objects or arrays more than {spec.MAX_JSON_DEPTH} levels deep",
        )
    try:
        msg = _decoder.decode(body)
    except RecursionError:  # pragma: no cover - the depth check comes first
        raise ProtocolError(spec.INVALID_REQUEST, "Invalid Request: the message nests too deeply") from None
    except msgspec.ValidationError as exc:
        if body.lstrip()[:1] == b"[":
            raise ProtocolError(
                spec.INVALID_REQUEST,
                "JSON-RPC batches are not supported: send one message per POST",
            ) from None
        raise ProtocolError(
            spec.INVALID_REQUEST, f"Not a JSON-RPC 2.0 message: {exc}"
        ) from None
    except msgspec.DecodeError as exc:
        raise ProtocolError(spec.PARSE_ERROR, f"Parse error: body is not valid JSON ({exc})") from None
    kind(msg)  # validates the shape
    if msg.params is not UNSET:
        _check_params(msg)
    return msg


def _is_id(value: Any) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)) or (
        isinstance(value, str) and len(value) <= spec.MAX_ID_CHARS)


def _check_params(msg: Message) -> None:
    """The MCP fields of ``params`` that the server copies or looks up: each must have
    its type and stay within its cap (:data:`spec.MAX_ID_CHARS`)."""
    params = msg.params
    meta = params.get("_meta")  # type: ignore[union-attr]
    if meta is not None:
        if not isinstance(meta, dict):
            raise ProtocolError(spec.INVALID_PARAMS, "Invalid params: '_meta' must be an object")
        token = meta.get("progressToken")
        if token is not None and not _is_id(token):
            raise ProtocolError(
                spec.INVALID_PARAMS,
                f"Invalid params: '_meta.progressToken' must be an integer or a string of at most "
                f"{spec.MAX_ID_CHARS} characters",
            )
    if msg.method == spec.CANCELLED and not _is_id(params.get("requestId")):  # type: ignore[union-attr]
        raise ProtocolError(
            spec.INVALID_PARAMS,
            f"Invalid params: 'requestId' must be the id of a request (an integer or a string of at most "
            f"{spec.MAX_ID_CHARS} characters)",
        )


def kind(msg: Message) -> str:
    """Classify a decoded message, rejecting shapes JSON-RPC and MCP forbid."""
    if msg.jsonrpc != "2.0":
        raise ProtocolError(spec.INVALID_REQUEST, 'Not a JSON-RPC 2.0 message: "jsonrpc" must be "2.0"')
    if msg.method is not UNSET:
        if msg.id is UNSET:
            return NOTIFICATION
        if msg.id is None:
            raise ProtocolError(spec.INVALID_REQUEST, "Request id must be a string or an integer, not null")
        if isinstance(msg.id, str) and len(msg.id) > spec.MAX_ID_CHARS:
            raise ProtocolError(spec.INVALID_REQUEST,
                                f"Request id is longer than {spec.MAX_ID_CHARS} characters")
        return REQUEST
    if msg.id is UNSET or (msg.result is UNSET and msg.error is UNSET):
        raise ProtocolError(
            spec.INVALID_REQUEST,
            'Not a JSON-RPC message: it needs "method" (request or notification) or "result"/"error" with an "id"',
        )
    return RESPONSE


def shown(value: Any, limit: int = 80, quoted: bool = True) -> str:
    """A client-chosen value as an error message quotes it: its repr (or a string as it is,
    ``quoted=False``), cut to ``limit`` characters, so an error never echoes a megabyte back."""
    text = repr(value) if quoted or not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 3] + "..."


def response(request_id: RequestId, result: Any) -> bytes:
    return encode({"jsonrpc": "2.0", "id": request_id, "result": result})


def error(request_id: RequestId | None, code: int, message: str, data: Any = UNSET) -> bytes:
    err: dict[str, Any] = {"code": code, "message": message}
    if data is not UNSET:
        err["data"] = data
    return encode({"jsonrpc": "2.0", "id": request_id, "error": err})


def error_without_id(code: int, message: str, data: Any = UNSET) -> bytes:
    """An error about a message whose id is unknown, for 2026-07-28 (its schema has no null ids)."""
    err: dict[str, Any] = {"code": code, "message": message}
    if data is not UNSET:
        err["data"] = data
    return encode({"jsonrpc": "2.0", "error": err})


def notification(method: str, params: dict | None = None) -> bytes:
    if params is None:
        return encode({"jsonrpc": "2.0", "method": method})
    return encode({"jsonrpc": "2.0", "method": method, "params": params})


def request(request_id: RequestId, method: str, params: dict | None = None) -> bytes:
    msg: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        msg["params"] = params
    return encode(msg)
