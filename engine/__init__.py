"""mcp-actors: MCP servers whose sessions live in Durable-Object-style actors.

Write an :class:`App`, serve it with ``python -m engine serve module:app`` (or
:func:`asgi_app` under any ASGI server); deploy the same app to Cloudflare Workers.
"""

from .app import App
from .content import Audio, Image, PromptMessage, Resource, ResourceLink, ToolResult
from .context import CapabilityError, ClientError, Context, Elicited, Sampled
from .http import HttpConfig
from .jsonrpc import ProtocolError

__all__ = [
    "App", "Audio", "CapabilityError", "ClientError", "Context", "Elicited", "HttpConfig", "Image",
    "PromptMessage", "ProtocolError", "Resource", "ResourceLink", "Sampled", "ToolResult", "asgi_app",
]


def asgi_app(app: App, config: HttpConfig | None = None, path: str = "/mcp", backend=None, lifetimes=None):
    """An ASGI application serving ``app`` at ``path`` with in-process session actors.

    ``backend``: a storage backend (default: in memory; ``engine.sqlite_store.SqliteBackend``
    for durable sessions); ``lifetimes``: an ``engine.actor.Lifetimes``.
    """
    from .asgi import McpAsgi
    from .local import LocalRuntime

    return McpAsgi(LocalRuntime(app, config, backend, lifetimes), path=path)
