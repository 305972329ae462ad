"""Body fields mirrored into HTTP headers (2026-07-28 streamable-http, Request Metadata).

A 2026-07-28 client repeats ``method`` in ``Mcp-Method``, the tool/prompt name or resource
URI in ``Mcp-Name``, and each tool argument whose input schema carries ``x-mcp-header``
in ``Mcp-Param-{Name}``, so intermediaries can route without parsing bodies. The server
checks that the copies agree with the body. Values that cannot travel as a plain header
(non-ASCII, control characters, edge whitespace) are sent as ``=?base64?{UTF-8 base64}?=``.
Pure functions: decoding a header value, the form a body value takes, and the
``x-mcp-header`` annotations of a schema.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

#: RFC 9110 token characters: what an ``x-mcp-header`` name may be made of.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_SENTINEL = re.compile(r"=\?base64\?(.*)\?=", re.S)
#: Integers a header may carry exactly (JavaScript's safe range).
_MAX_SAFE = 2**53 - 1


class BadHeader(ValueError):
    """A mirrored header is malformed (not decodable as its encoding promises)."""


def decode(raw: str) -> str:
    """A header value as the body value it stands for: the base64 sentinel form decoded
    (strictly: canonical base64 of UTF-8), anything else literally, edge whitespace off."""
    value = raw.strip(" \t")
    m = _SENTINEL.fullmatch(value)
    if m is None:
        return value
    encoded = m.group(1)
    try:
        data = base64.b64decode(encoded, validate=True)
        if base64.b64encode(data).decode("ascii") != encoded:  # not canonical (padding, say)
            raise ValueError
        return data.decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise BadHeader(f"{raw[:60]!r} is not valid base64 sentinel encoding") from None


def body_form(value: Any) -> str | None:
    """How a body value reads as a header value (None: it is not sent as one)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str):
        return value
    return None


def same(header_value: str, body_value: Any) -> bool:
    """Whether a decoded header value stands for ``body_value`` (integers numerically)."""
    expected = body_form(body_value)
    if expected is None:
        return False
    if isinstance(body_value, (int, float)) and not isinstance(body_value, bool):
        try:
            return float(header_value) == float(body_value)
        except ValueError:
            return False
    return header_value == expected


def annotations(schema: Any) -> dict[str, tuple[str, ...]]:
    """The ``x-mcp-header`` annotations of a tool's input schema: header name (lower case)
    -> the property path it mirrors. Raises ValueError for an annotation the spec forbids
    (a client must drop such a tool, so the server must not publish it)."""
    found: dict[str, tuple[str, ...]] = {}

    def walk(node: Any, path: tuple[str, ...]) -> None:
        if not isinstance(node, dict):
            return
        props = node.get("properties")
        if not isinstance(props, dict):
            return
        for name, prop in props.items():
            if not isinstance(prop, dict):
                continue
            header = prop.get("x-mcp-header")
            if header is not None:
                kind = prop.get("type")
                if not isinstance(header, str) or not _TOKEN.fullmatch(header):
                    raise ValueError(f"x-mcp-header {header!r} on {'.'.join(path + (name,))} is not an HTTP token")
                if kind not in ("string", "integer", "boolean"):
                    raise ValueError(f"x-mcp-header on {'.'.join(path + (name,))} needs a string, integer or "
                                     f"boolean property, not {kind!r}")
                key = header.lower()
                if key in found:
                    raise ValueError(f"x-mcp-header {header!r} is used twice")
                found[key] = path + (name,)
            walk(prop, path + (name,))

    walk(schema, ())
    return found


def at(arguments: Any, path: tuple[str, ...]) -> Any:
    """The argument at ``path`` (None if absent)."""
    node = arguments
    for part in path:
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    if isinstance(node, int) and not isinstance(node, bool) and abs(node) > _MAX_SAFE:
        return None
    return node
