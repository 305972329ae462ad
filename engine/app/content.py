"""Mapping handler return values to MCP content blocks.

Users return plain Python (a string, a list, an :class:`Image`); this module is the one
place that knows the wire shapes of text, image, audio and embedded-resource content.
"""

from __future__ import annotations

import base64
from typing import Any

import msgspec


def _b64(data: bytes | str) -> str:
    return data if isinstance(data, str) else base64.b64encode(data).decode()


class Image(msgspec.Struct):
    """Image content; ``data`` as raw bytes or already base64-encoded text."""

    data: bytes | str
    mime_type: str = "image/png"

    def block(self) -> dict:
        return {"type": "image", "data": _b64(self.data), "mimeType": self.mime_type}


class Audio(msgspec.Struct):
    data: bytes | str
    mime_type: str = "audio/wav"

    def block(self) -> dict:
        return {"type": "audio", "data": _b64(self.data), "mimeType": self.mime_type}


class Resource(msgspec.Struct):
    """Resource contents: text, or binary ``blob`` (bytes or base64 text).

    Returned from a resource handler it is one entry of ``contents``; returned from a tool
    or prompt it becomes an embedded ``resource`` content block.
    """

    uri: str
    text: str | None = None
    blob: bytes | str | None = None
    mime_type: str | None = None

    def contents(self) -> dict:
        out: dict[str, Any] = {"uri": self.uri}
        if self.mime_type:
            out["mimeType"] = self.mime_type
        if self.blob is not None:
            out["blob"] = _b64(self.blob)
        else:
            out["text"] = self.text or ""
        return out

    def block(self) -> dict:
        return {"type": "resource", "resource": self.contents()}


class ResourceLink(msgspec.Struct):
    uri: str
    name: str
    description: str | None = None
    mime_type: str | None = None

    def block(self) -> dict:
        out: dict[str, Any] = {"type": "resource_link", "uri": self.uri, "name": self.name}
        if self.description:
            out["description"] = self.description
        if self.mime_type:
            out["mimeType"] = self.mime_type
        return out


class ToolResult(msgspec.Struct):
    """Full control over a ``tools/call`` result, when plain return values are not enough."""

    content: Any = None
    structured: Any = None
    is_error: bool = False


class PromptMessage(msgspec.Struct):
    role: str
    content: Any


_BLOCKS = (Image, Audio, Resource, ResourceLink)
encode = msgspec.json.Encoder().encode


def is_content_type(tp: Any) -> bool:
    """Return annotations that mean "content", never structured output."""
    return isinstance(tp, type) and issubclass(tp, (*_BLOCKS, ToolResult, PromptMessage))


def blocks(value: Any) -> list[dict]:
    """Content blocks for a return value: str is text, lists concatenate, None is empty."""
    if value is None:
        return []
    if isinstance(value, str):
        return [{"type": "text", "text": value}]
    if isinstance(value, _BLOCKS):
        return [value.block()]
    if isinstance(value, (list, tuple)):
        out: list[dict] = []
        for item in value:
            out.extend(blocks(item))
        return out
    if isinstance(value, dict) and isinstance(value.get("type"), str):
        return [value]
    return [{"type": "text", "text": encode(value).decode()}]


def tool_result(value: Any, structured: bool) -> dict:
    if isinstance(value, ToolResult):
        result: dict[str, Any] = {"content": blocks(value.content)}
        if value.structured is not None:
            result["structuredContent"] = msgspec.to_builtins(value.structured)
            if not result["content"]:
                result["content"] = blocks(encode(result["structuredContent"]).decode())
        if value.is_error:
            result["isError"] = True
        return result
    if structured:
        data = msgspec.to_builtins(value)
        if not isinstance(data, dict):
            data = {"result": data}
        # tools: a tool returning structured content SHOULD also return it as text.
        return {"content": [{"type": "text", "text": encode(data).decode()}], "structuredContent": data}
    return {"content": blocks(value)}


def tool_error(message: str) -> dict:
    return {"content": [{"type": "text", "text": message}], "isError": True}


def resource_contents(uri: str, value: Any, mime_type: str | None) -> list[dict]:
    if isinstance(value, Resource):
        return [value.contents()]
    if isinstance(value, (list, tuple)):
        out: list[dict] = []
        for item in value:
            out.extend(resource_contents(uri, item, mime_type))
        return out
    if isinstance(value, (bytes, bytearray)):
        return [Resource(uri, blob=bytes(value), mime_type=mime_type or "application/octet-stream").contents()]
    if not isinstance(value, str):
        value = encode(value).decode()
        mime_type = mime_type or "application/json"
    return [Resource(uri, text=value, mime_type=mime_type or "text/plain").contents()]


def prompt_messages(value: Any) -> list[dict]:
    items = value if isinstance(value, (list, tuple)) else [value]
    out = []
    for item in items:
        if isinstance(item, PromptMessage):
            role, content = item.role, item.content
        elif isinstance(item, dict) and "role" in item:
            out.append(item)
            continue
        else:
            role, content = "user", item
        for block in blocks(content):
            out.append({"role": role, "content": block})
    return out
