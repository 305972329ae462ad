"""The Cloudflare Worker front: stateless, it applies the HTTP rules and routes to sessions.

It translates a fetch into :meth:`engine.actors.front.Front.admit`, the same rules in the
same order as the local server: a bad request is answered here, and no Durable Object is
touched. A new session (``initialize``, or GET on the HTTP+SSE path) gets a freshly
minted, signed id; any other request goes to the Durable Object named by its session id,
if that id is genuine. The route travels to the object in a header and the body as the
body; the object does the rest (``session_object.py``).
"""

from __future__ import annotations

from urllib.parse import urlparse

import msgspec

from workers import Response, WorkerEntrypoint

from engine.actors.front import Front, str_headers
from engine.protocol import http, router

import config
import contract_hook
import keys
import session_ids
from session_object import ROUTE_HEADER, SessionObject

__all__ = ["Default", "SessionObject"]  # the runtime finds the Durable Object class here

_encode = msgspec.json.Encoder().encode
_fronts: dict = {}


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        front = _fronts.get("front")
        if front is None:
            front = _fronts["front"] = Front(config.settings(self.env))
        url = urlparse(request.url)
        if url.path.startswith(contract_hook.PATH) and config.test_hooks(self.env):
            stub = self.env.SESSIONS.getByName(f"contract-{session_ids.mint('contract')}")
            return await stub.fetch("https://session.internal/", method="POST",
                                    headers={contract_hook.HEADER: url.path[len(contract_hook.PATH):]})
        headers = {name.lower(): value for name, value in request.headers.items()}

        async def read_body(_limit: int) -> bytes:
            return await request.bytes()

        admitted = await front.admit(request.method, url.path, url.query, headers, read_body)
        if not isinstance(admitted, tuple):
            return Response(admitted.body or None, status=admitted.status, headers=str_headers(admitted.headers))
        r, msg, body = admitted
        secret = await keys.signing_key(self.env, front.settings.secret)
        if r.action in router.CREATES:
            r.session_id = session_ids.mint(secret)
        elif not session_ids.genuine(secret, r.session_id or ""):
            refused = front.error(http.session_not_found(r.session_id or "", msg), r, headers)
            return Response(refused.body, status=refused.status, headers=str_headers(refused.headers))
        stub = self.env.SESSIONS.getByName(r.session_id)
        return await stub.fetch(
            "https://session.internal/",
            method="POST",
            headers={ROUTE_HEADER: _encode(r).decode()},
            body=body or None,
            signal=request.js_object.signal,
        )
