"""Finding the app to serve from a ``module:attribute`` string.

The command line and the Cloudflare Worker (its ``MCP_APP`` variable) name the app the
same way, so they load it the same way: here.
"""

from __future__ import annotations

import importlib
import os
import sys

from . import sdk
from .application import App


class AppLoadError(ValueError):
    """The spec names nothing servable; the message says what was found instead."""


def load_app(spec: str, add_cwd: bool = True) -> App:
    """``module:attribute`` -> the App it names (``module`` alone means ``module:app``), or
    the App that serves the official SDK server it names.

    ``add_cwd``: let the current folder's modules be found, as ``python -m`` users expect
    (the Worker has no working folder worth adding).
    """
    module_name, _, attr = spec.partition(":")
    if not module_name:
        raise AppLoadError(f"{spec!r} names no module: use module:attribute, e.g. myserver:app")
    if add_cwd and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise AppLoadError(f"cannot import {module_name!r}: {exc}") from None
    app = getattr(module, attr or "app", None)
    if isinstance(app, App):
        return app
    if sdk.kind(app) is not None:  # an official SDK server: served through engine.app.sdk
        return sdk.from_sdk(app)
    raise AppLoadError(f"{spec!r} is not an engine.App or an MCP SDK server (MCPServer, FastMCP); "
                       f"got {type(app).__name__}")
