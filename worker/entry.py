"""The Cloudflare Worker front: stateless, it applies the HTTP rules and routes to sessions.

For every request it runs the same :mod:`engine.router` as the local server: a bad
request is answered here with the spec's status, and no Durable Object is touched. A new
session (``initialize``, or GET on the HTTP+SSE path) gets a freshly minted, signed id;
any other request goes to the Durable Object named by its session id, if that id is
genuine. The route travels to the object in a header and the body as the body.
"""

from __future__ import annotations

from urllib.parse import urlparse

import msgspec

from workers import Response, WorkerEntrypoint

from engine import http, router
from engine.http import HttpError

import session_ids
import worker_settings
from session_object import CONTRACT_HEADER, ROUTE_HEADER, SESSION_HEADER, SessionObject, error_response

CONTRACT_PATH = "/__contract/"

__all__ = ["Default", "SessionObject"]  # the runtime finds the Durable Object class here

_encode = msgspec.json.Encoder().encode
_settings: dict = {}


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        s = _settings.get("s")
        if s is None:
            s = _settings["s"] = worker_settings.from_env(self.env)
        url = urlparse(request.url)
        if s.test_hooks and url.path.startswith(CONTRACT_PATH):
            check = url.path[len(CONTRACT_PATH):]
            stub = self.env.SESSIONS.getByName(f"contract-{session_ids.mint('')}")
            return await stub.fetch("https://session.internal/", method="POST", headers={CONTRACT_HEADER: check})
        headers = {name.lower(): value for name, value in request.headers.items()}
        r = None
        try:
            r = router.route(request.method, url.path, url.query, headers, s.paths, s.http)
            body = b""
            if r.needs_body:
                body = await request.bytes()
                if len(body) > s.http.max_body:
                    raise http.body_too_large(s.http)
                msg = router.admit(r, headers, body)
            else:
                msg = None
            if r.action == router.PREFLIGHT:
                return Response(None, status=204, headers=dict(r.headers))
            if r.action in router.CREATES:
                session_id = session_ids.mint(s.secret)
            else:
                session_id = r.session_id or ""
                if not session_ids.genuine(s.secret, session_id):
                    raise http.session_not_found(session_id, msg)
        except HttpError as exc:
            cors = r.headers if r else (() if exc.status in (403, 421) else router.cors_headers(headers))
            return error_response(exc, cors)
        stub = self.env.SESSIONS.getByName(session_id)
        return await stub.fetch(
            "https://session.internal/",
            method="POST",
            headers={ROUTE_HEADER: _encode(r).decode(), SESSION_HEADER: session_id},
            body=body if body else None,
            signal=request.js_object.signal,
        )
