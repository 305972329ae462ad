"""Signed session ids: the Worker tells a forged or mistyped id from a real one by itself.

An id is ``<random>.<mac>``; the MAC is HMAC-SHA256 under the Worker's signing key
(``SESSION_SECRET``, or the key ``keys.py`` makes once). A request with an id that fails
the check gets 404 without any Durable Object being addressed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from engine.protocol.session import new_session_id


def _mac(secret: str, raw: str) -> str:
    digest = hmac.new(secret.encode(), raw.encode(), hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def mint(secret: str) -> str:
    raw = new_session_id()
    return f"{raw}.{_mac(secret, raw)}"


def genuine(secret: str, session_id: str) -> bool:
    raw, dot, mac = session_id.rpartition(".")
    return bool(dot and raw) and hmac.compare_digest(mac, _mac(secret, raw))
