"""mcp-actors: MCP servers whose sessions live in Durable-Object-style actors.

Write an :class:`App`, serve it with ``python -m engine serve module:app`` (or
:func:`asgi_app` under any ASGI server); deploy the same app to Cloudflare Workers.

The package is layered; imports point from the runtimes into the core, never back:

- :mod:`engine.protocol`: the MCP and HTTP rules as pure functions and state machines
  (no I/O, no asyncio), and the storage port they write through;
- :mod:`engine.app`: what app authors touch (``App``, ``Context``, content types);
- :mod:`engine.actors`: the actors, the HTTP front every runtime shares, the settings and
  the storage backends;
- :mod:`engine.local`: the local runtime (in-process actors, raw ASGI, the CLI);
  the Cloudflare runtime is ``worker/`` at the project's top level.
"""

from .app.application import App
from .app.content import Audio, Image, PromptMessage, Resource, ResourceLink, ToolResult
from .app.context import CapabilityError, ClientError, Context, Elicited, Sampled
from .protocol.http import HttpConfig
from .protocol.jsonrpc import ProtocolError

__all__ = [
    "App", "Audio", "CapabilityError", "ClientError", "Context", "Elicited", "HttpConfig", "Image",
    "PromptMessage", "ProtocolError", "Resource", "ResourceLink", "Sampled", "ToolResult", "asgi_app",
]


def asgi_app(app: App, config: HttpConfig | None = None, path: str = "/mcp", backend=None, lifetimes=None):
    """An ASGI application serving ``app`` at ``path`` with in-process session actors.

    ``backend``: a storage backend (default: in memory, so sessions end with the process;
    ``engine.actors.sqlite_store.SqliteBackend(path)`` makes them durable); ``lifetimes``:
    an ``engine.actors.session_actor.Lifetimes``.
    """
    from .actors.settings import Settings
    from .local.asgi import McpAsgi
    from .local.runtime import LocalRuntime
    from .protocol.router import Paths

    settings = Settings(http=config or HttpConfig(), paths=Paths(mcp=path))
    if lifetimes is not None:
        settings.lifetimes = lifetimes
    return McpAsgi(LocalRuntime(app, settings.http, backend, settings.lifetimes), settings)
