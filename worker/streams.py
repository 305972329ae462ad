"""The front's Writer on a JavaScript stream, for streamed (SSE) responses.

Kept free of Pyodide imports (``to_js`` is handed in) so the test suite drives it under
CPython with the same front tests as the local server's ASGI writer.
"""

from __future__ import annotations

from typing import Any, Callable


class JsStreamWriter:
    """Writes to a ``WritableStreamDefaultWriter`` (a TransformStream's writable side,
    whose readable side is the Response body)."""

    __slots__ = ("writer", "to_js")

    def __init__(self, writer: Any, to_js: Callable[[bytes], Any]):
        self.writer = writer
        self.to_js = to_js

    async def write(self, data: bytes) -> None:
        try:
            await self.writer.write(self.to_js(data))
        except Exception as exc:  # a JsException: the reader side was cancelled
            raise ConnectionResetError(f"the client went away: {exc}") from None

    async def close(self) -> None:
        try:
            await self.writer.close()
        except Exception as exc:
            raise ConnectionResetError(f"the client went away: {exc}") from None
