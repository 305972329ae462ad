"""Signed ids: the Worker tells a forged or mistyped session or task id from a real one by
itself.

An id is ``<random>.<mac>``; the MAC is HMAC-SHA256 under the Worker's signing key
(``SESSION_SECRET``, or the key ``keys.py`` makes once). A request with an id that fails
the check gets its error without any Durable Object being addressed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from engine.protocol.session import new_session_id


def _mac(secret: str, raw: str) -> str:
    digest = hmac.new(secret.encode(), raw.encode(), hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def mint(secret: str, raw: str | None = None) -> str:
    """A signed id: of ``raw`` (a task id), else of a new session id."""
    raw = raw or new_session_id()
    return f"{raw}.{_mac(secret, raw)}"


def genuine(secret: str, signed_id: str) -> bool:
    raw, dot, mac = signed_id.rpartition(".")
    return bool(dot and raw) and hmac.compare_digest(mac, _mac(secret, raw))
