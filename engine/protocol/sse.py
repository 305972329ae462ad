"""Server-Sent Events framing: bytes out, nothing else.

JSON from msgspec never contains a raw newline, so a message is always one ``data:``
line and framing is concatenation.
"""

from __future__ import annotations


def event(event_id: str, data: bytes) -> bytes:
    return b"id: " + event_id.encode() + b"\nevent: message\ndata: " + data + b"\n\n"


def priming(event_id: str, retry_ms: int) -> bytes:
    """The 2025-11-25 priming event: an id and empty data, plus the reconnect delay."""
    return b"id: " + event_id.encode() + b"\nretry: " + str(retry_ms).encode() + b"\ndata: \n\n"


def retry(retry_ms: int) -> bytes:
    """Sent before the server closes a connection it means the client to poll again."""
    return b"retry: " + str(retry_ms).encode() + b"\n\n"


def endpoint(url: str) -> bytes:
    """The first event of a 2024-11-05 HTTP+SSE stream: where to POST messages."""
    return b"event: endpoint\ndata: " + url.encode() + b"\n\n"


KEEPALIVE = b": keep-alive\n\n"


def data(payload: bytes) -> bytes:
    """An event with no id: 2026-07-28 streams are not resumable, so they carry none."""
    return b"data: " + payload + b"\n\n"
