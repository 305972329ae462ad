"""The operator's endpoints: health and readiness beside the MCP paths, and the metrics port.

Plain text, GET or HEAD, never cached, never behind a token and never MCP traffic: they are
for load balancers, orchestrators and Prometheus, not for MCP clients, so they are kept
apart from the MCP transport's rules (:mod:`engine.protocol.http`). Pure functions: each
runtime adapter sends what they return.
"""

from __future__ import annotations

from typing import Callable

#: Liveness and readiness, beside the MCP paths (Kubernetes' names for them).
HEALTH_PATH, READY_PATH = "/healthz", "/readyz"
HEALTH_PATHS = frozenset((HEALTH_PATH, READY_PATH))


PLAIN_TEXT = "text/plain; charset=utf-8"


def read_only(method: str, status: int, body: bytes, content_type: str = PLAIN_TEXT
              ) -> tuple[int, tuple[tuple[str, str], ...], bytes]:
    """An answer for an operator's endpoint (health, metrics): GET or HEAD only (else 405),
    never cached, HEAD without its body."""
    if method not in ("GET", "HEAD"):
        return 405, (("content-type", PLAIN_TEXT), ("cache-control", "no-store"), ("allow", "GET, HEAD")), \
            b"use GET or HEAD\n"
    return status, (("content-type", content_type), ("cache-control", "no-store")), b"" if method == "HEAD" else body


def health(method: str, path: str, unready: str | None) -> tuple[int, tuple[tuple[str, str], ...], bytes]:
    """``/healthz``: the process answers (200). ``/readyz``: 200 if it should be sent traffic,
    else 503 with ``unready``, the reason. Plain text (:func:`read_only`); for balancers and
    orchestrators, so never behind a token and never MCP traffic."""
    if path == READY_PATH and unready:
        return read_only(method, 503, f"not ready: {unready}\n".encode())
    return read_only(method, 200, b"ok\n")


METRICS_PATH = "/metrics"


def metrics_port(method: str, path: str, unready: str | None,
                 exposition: Callable[[], tuple[bytes, str]]) -> tuple[int, tuple[tuple[str, str], ...], bytes]:
    """The metrics port's answer: the health paths, ``/metrics`` (``exposition()`` gives the
    body and its content type, called only when asked for) and 404 for anything else, any
    method: nothing of MCP is served there."""
    if path in HEALTH_PATHS:
        return health(method, path, unready)
    if path == METRICS_PATH:
        return read_only(method, 200, *exposition())
    return 404, (("content-type", PLAIN_TEXT), ("cache-control", "no-store")), \
        b"not found: this port serves /metrics, /healthz and /readyz\n"
