"""Serving apps written with the official Python MCP SDK, unchanged.

``python -m engine serve module:attr`` (and :func:`from_sdk` for ASGI and the Worker)
accepts an SDK server object as well as an :class:`~engine.App`:

- mcp 2.x ``mcp.server.mcpserver.MCPServer`` (:mod:`.v2`: each request goes through the
  SDK's own ``ServerRunner``);
- mcp 1.x ``mcp.server.fastmcp.FastMCP`` (:mod:`.v1`: each request goes to the SDK's own
  request handlers, with its request context set).

The SDK keeps computing what it computes (schemas, names, titles, annotations, icons,
output schemas, result shaping, its ``Context``); the engine supplies the session, the
streams, durability, the eras and the runtimes (:mod:`.bridge`). The kind of server is
told by its class's module and name, so ``mcp`` is imported only when such an app is
served.
"""

from __future__ import annotations

from typing import Any

#: (module, class) of the SDK servers this package serves, by kind.
KINDS = {
    ("mcp.server.mcpserver.server", "MCPServer"): "mcp2",
    ("mcp.server.fastmcp.server", "FastMCP"): "mcp1",
}


def kind(server: Any) -> str | None:
    """``"mcp2"``, ``"mcp1"``, or None when ``server`` is no SDK server (subclasses count)."""
    for cls in type(server).__mro__:
        found = KINDS.get((cls.__module__, cls.__qualname__))
        if found is not None:
            return found
    return None


def from_sdk(server: Any, *, tasks: dict[str, str] | None = None) -> Any:
    """An :class:`~engine.App` that serves the SDK server ``server``.

    ``tasks`` names tools that may run as tasks (``{"report": "optional"}``; "required" or
    "optional"), which the SDK itself cannot declare."""
    found = kind(server)
    if found == "mcp2":
        from .v2 import McpServerApp

        return McpServerApp(server, tasks or {})
    if found == "mcp1":
        from .v1 import FastMcpApp

        return FastMcpApp(server, tasks or {})
    raise TypeError(f"{type(server).__module__}.{type(server).__qualname__} is not an MCP SDK server "
                    "(mcp 2.x MCPServer or mcp 1.x FastMCP)")
