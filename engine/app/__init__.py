"""What app authors touch: :class:`App` and its decorators, :class:`Context`, content types.

An app is plain data plus handlers; it knows nothing of sessions, transports or runtimes.
Handlers reach whatever runs them only through the :class:`~engine.app.context.HandlerHost`
port.
"""

from .application import App
from .context import CapabilityError, ClientError, Context, Elicited, HandlerHost, Sampled

__all__ = ["App", "CapabilityError", "ClientError", "Context", "Elicited", "HandlerHost", "Sampled"]
