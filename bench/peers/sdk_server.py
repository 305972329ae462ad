"""The official Python SDK (mcp 2.3.0) serving the same tools, as its users would run it."""

from __future__ import annotations

import argparse
import asyncio

import uvicorn
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.streamable_http import EventStore

server = MCPServer("python-sdk-bench")


@server.tool()
def echo(text: str) -> str:
    """Return the text unchanged."""
    return text


@server.tool()
async def burst(ctx: Context, n: int = 10000) -> str:
    for i in range(1, n + 1):
        await ctx.report_progress(i, n)
    return f"burst of {n}"


@server.tool()
async def ticks(ctx: Context, steps: int = 10, interval_s: float = 0.1) -> str:
    for i in range(1, steps + 1):
        await asyncio.sleep(interval_s)
        await ctx.report_progress(i, steps)
    return f"ticks {steps}"


class MemoryEventStore(EventStore):
    """An in-memory event store (the SDK ships the interface; servers bring the store)."""

    def __init__(self) -> None:
        self.events: list = []

    async def store_event(self, stream_id, message):
        self.events.append((stream_id, message))
        return str(len(self.events))

    async def replay_events_after(self, last_event_id, send_callback):
        index = int(last_event_id)
        stream = self.events[index - 1][0]
        for number, (sid, message) in enumerate(self.events[index:], start=index + 1):
            if sid == stream and message is not None:
                await send_callback(type("E", (), {"message": message, "event_id": str(number)})())
        return stream


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--stateless", action="store_true")
    parser.add_argument("--events", action="store_true", help="with an in-memory event store (resumable)")
    args = parser.parse_args()
    app = server.streamable_http_app(json_response=args.json, stateless_http=args.stateless,
                                     event_store=MemoryEventStore() if args.events else None,
                                     max_sessions=None)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="error", access_log=False)
