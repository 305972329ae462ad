"""Spans where a request's time goes: a port the actors call, filled in by telemetry.

The actors know where time goes (the app's handler, the output gate's commit, a wait for
the client's answer, a forward to another process, a task running on after its request);
what a span is belongs to :mod:`engine.observe.traces`, which the protocol core must not
import (it is optional, and needs the OpenTelemetry SDK). So the core calls the functions
here, which do nothing until :func:`install` is given a tracer.

It is one per process, like OpenTelemetry's own global provider: the actors deep in a
request have no handle on the front that served it, and the span they would nest under is
found the same way (the current span, a context variable of the request's task).

With tracing off (the default) each call site pays a test of one module global: :func:`span`
returns one shared no-op context manager and :func:`start` returns None.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any, Mapping, Protocol

from ..protocol.jsonrpc import Message

# Child span names, named after what an operator sees the time go to.
HANDLER = "handler"
COMMIT = "store commit"
FORWARD = "forward"
FORWARDED = "forwarded"  # the holder's side of a forward


class Tracer(Protocol):
    """What :mod:`engine.observe.traces` provides."""

    def begin(self, msg: Message, headers: Mapping[str, str], session_id: str | None) -> Any:
        """The SERVER span of a request just admitted, current in this task from now
        (``session_id``: its session's, from the header or, for HTTP+SSE, the query)."""

    def start(self, name: str, attributes: Mapping[str, Any], kind: str, task: bool,
              parent: Mapping[str, str] | None) -> Any:
        """A span under the current one, current in this task from now (tasks started
        meanwhile run inside it); ``kind``: ``internal``, ``client`` or ``server``.
        ``task``: a span of its own trace, linked to the current one (work that outlives
        the request that started it). ``parent``: headers carrying the parent's context
        (a hop from another process, :meth:`inject`). None when there is nothing to nest
        under: no span current, and neither ``task`` nor a valid ``parent``."""

    def inject(self, headers: dict[str, str]) -> None:
        """Add the current span's context to a hop's headers (``traceparent``)."""

    def leave(self, handle: Any) -> None:
        """Not current in this task any more; still open (a task it started runs on)."""

    def end(self, handle: Any, error: str | None, attributes: Mapping[str, Any] | None = None) -> None:
        """Ended (and left, if still current), ERROR with ``error.type`` if ``error``."""


TRACER: Tracer | None = None
_NOTHING = nullcontext()


def install(tracer: Tracer | None) -> None:
    global TRACER
    TRACER = tracer


def start(name: str, attributes: Mapping[str, Any] | None = None, kind: str = "internal",
          task: bool = False, parent: Mapping[str, str] | None = None) -> Any:
    """A span to :func:`leave` and :func:`end` by hand, or None (tracing off)."""
    tracer = TRACER
    return None if tracer is None else tracer.start(name, attributes or {}, kind, task, parent)


def inject(headers: dict[str, str]) -> None:
    if TRACER is not None:
        TRACER.inject(headers)


def leave(handle: Any) -> None:
    if handle is not None:
        TRACER.leave(handle)  # type: ignore[union-attr]


def end(handle: Any, error: str | None = None, attributes: Mapping[str, Any] | None = None) -> None:
    if handle is not None:
        TRACER.end(handle, error, attributes)  # type: ignore[union-attr]


def outlive(handle: Any, task: Any) -> None:
    """``handle`` was started around the creation of ``task`` (so the task runs inside it):
    it is left here, and ended when the task ends (``cancelled`` if it was)."""
    if handle is not None:
        tracer = TRACER
        tracer.leave(handle)  # type: ignore[union-attr]
        task.add_done_callback(lambda t: tracer.end(handle, "cancelled" if t.cancelled() else None))  # type: ignore[union-attr]


def span(name: str, attributes: Mapping[str, Any] | None = None, kind: str = "internal") -> AbstractContextManager:
    """A span around a ``with`` block (an await), ERROR with the exception's type if it
    raises one."""
    tracer = TRACER
    return _NOTHING if tracer is None else _Around(tracer, name, attributes or {}, kind)


class _Around:
    __slots__ = ("tracer", "name", "attributes", "kind", "handle")

    def __init__(self, tracer: Tracer, name: str, attributes: Mapping[str, Any], kind: str):
        self.tracer, self.name, self.attributes, self.kind = tracer, name, attributes, kind

    def __enter__(self) -> Any:
        self.handle = self.tracer.start(self.name, self.attributes, self.kind, False, None)
        return self.handle

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> None:
        if self.handle is not None:
            self.tracer.end(self.handle, None if kind is None else kind.__name__)
