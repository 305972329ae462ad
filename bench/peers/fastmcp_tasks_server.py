"""FastMCP 4 with its SEP-2663 background tasks (``io.modelcontextprotocol/tasks``), as its users would run it.

Versions: fastmcp==4.1.4, fastmcp-tasks==4.1.4 (fastmcp-slim 4.1.4, mcp 2.3.0), pydocket 0.27.0,
burner-redis 0.1.7; it runs in a venv of its own (``bench.servers.fastmcp_tasks`` makes
``.cache/venv-fastmcp`` from PyPI on first use), not the project's.

Docket backend: ``memory://``, the default of ``TasksExtension``. pydocket serves that URL
with burner-redis, an embedded Redis-compatible store inside this process, so no Redis server
is needed. The Docket worker is an asyncio task in the same process, started by the extension's
lifespan, and task state lives in memory only: it goes when the process stops and is not shared
with other processes. A task runs once a worker poll picks it up (about every 50 ms by
default), not while ``tools/call`` is answered.

Started from the project root: .cache/venv-fastmcp/bin/python -m bench.peers.fastmcp_tasks_server
--port N; it serves Streamable HTTP at http://127.0.0.1:N/mcp.
"""

from __future__ import annotations

import argparse

from fastmcp import FastMCP
from fastmcp_tasks import TasksExtension

mcp = FastMCP("fastmcp-tasks-bench")
mcp.add_extension(TasksExtension(url="memory://"))


@mcp.tool(task=True)
async def job(text: str) -> str:
    """Return the text. Runs as a task when the client declares the tasks extension."""
    return text


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    mcp.run(transport="http", host="127.0.0.1", port=args.port, path="/mcp",
            show_banner=False, log_level="error", uvicorn_config={"access_log": False})
