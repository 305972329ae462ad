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
from .app.schema import header
from .actors.auth import InvalidToken
from .app.sdk import from_sdk
from .protocol.auth import Principal
from .protocol.http import HttpConfig
from .protocol.jsonrpc import ProtocolError

__all__ = [
    "App", "Audio", "CapabilityError", "ClientError", "Context", "Elicited", "HttpConfig", "Image", "InvalidToken",
    "Principal", "PromptMessage", "ProtocolError", "Resource", "ResourceLink", "Sampled", "ToolResult", "asgi_app", "from_sdk",
    "header",
]


def asgi_app(app: App, config: HttpConfig | None = None, path: str = "/mcp", backend=None, lifetimes=None,
             store: str | None = None, auth=None, verifier=None):
    """An ASGI application serving ``app`` at ``path`` with in-process session actors.

    Sessions are kept in memory unless told otherwise, so they end with the process:
    ``store="sqlite:PATH"`` makes them durable (what ``python -m engine serve`` does by
    default), or pass a ``backend``. ``lifetimes``: an
    ``engine.actors.session_actor.Lifetimes``. Mounted under a prefix (``root_path``),
    ``path`` is relative to it. Limits below the application (request heads, connection
    counts) are the ASGI server's business here; see ``engine.local.protocols`` for uvicorn.

    ``auth``: an ``engine.actors.settings.AuthSettings`` (issuer, jwks, audience, resource,
    scopes) makes it an OAuth resource server; ``verifier``: a token verifier of your own
    (``async verify(token) -> engine.Principal``, raising ``engine.InvalidToken``), with the
    issuer to advertise in ``auth``.
    """
    import logging

    from .actors.settings import Settings
    from .local.asgi import McpAsgi
    from .local.runtime import LocalRuntime, open_backend
    from .protocol.router import Paths

    if backend is None and store is not None:
        backend = open_backend(store)
    if backend is None:
        logging.getLogger("engine").warning(
            "engine.asgi_app: sessions are kept in memory and end with the process; "
            "pass store='sqlite:PATH' to make them durable")
    settings = Settings(http=config or HttpConfig(), paths=Paths(mcp=path))
    if lifetimes is not None:
        settings.lifetimes = lifetimes
    if auth is not None:
        settings.auth = auth
    return McpAsgi(LocalRuntime(app, settings.http, backend, settings.lifetimes), settings, verifier)
