"""A stand-in authorization server for the tests: keys made at test time, its metadata
(RFC 8414) and JWKS served over HTTP on 127.0.0.1, and tokens minted with PyJWT.

It issues RFC 9068 access tokens (``typ: at+jwt``) signed with RS256, ES256 or EdDSA keys;
:meth:`AuthServer.token` takes overrides for every claim and header, so a test can make
exactly the bad token it means.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

_ALGS = {"RS256": RSAAlgorithm, "ES256": ECAlgorithm, "EdDSA": OKPAlgorithm}


def _new_key(alg: str) -> Any:
    if alg == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    return ed25519.Ed25519PrivateKey.generate()


class AuthServer:
    """Serves ``/.well-known/oauth-authorization-server[/path]`` and ``/jwks.json``."""

    def __init__(self, path: str = ""):
        self.keys: dict[str, tuple[str, Any]] = {}  # kid -> (alg, private key)
        self.published: set[str] = set()
        self.jwks_fetches = 0
        for alg in _ALGS:
            self.add_key(alg, f"{alg.lower()}-1")
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.origin = f"http://127.0.0.1:{self.httpd.server_port}"
        self.issuer = self.origin + path
        self.path = path
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def add_key(self, alg: str, kid: str, publish: bool = True) -> str:
        self.keys[kid] = (alg, _new_key(alg))
        if publish:
            self.published.add(kid)
        return kid

    def jwks(self) -> dict:
        out = []
        for kid in sorted(self.published):
            alg, key = self.keys[kid]
            jwk = _ALGS[alg].to_jwk(key.public_key(), as_dict=True)
            jwk.update(kid=kid, alg=alg, use="sig")
            out.append(jwk)
        return {"keys": out}

    def _handler(self) -> type:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                if self.path == f"/.well-known/oauth-authorization-server{server.path}":
                    body = {"issuer": server.issuer, "jwks_uri": f"{server.origin}/jwks.json",
                            "authorization_endpoint": f"{server.origin}/authorize",
                            "token_endpoint": f"{server.origin}/token"}
                elif self.path == "/jwks.json":
                    server.jwks_fetches += 1
                    body = server.jwks()
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                return None

        return Handler

    def token(self, audience: str | list, subject: str = "alice", scope: str = "", kid: str = "rs256-1",
              headers: dict | None = None, **claims: Any) -> str:
        """An access token for ``audience``; ``claims`` override or (as None) remove claims."""
        now = int(time.time())
        body = {"iss": self.issuer, "aud": audience, "sub": subject, "client_id": f"client-of-{subject}",
                "iat": now, "exp": now + 300, "jti": uuid.uuid4().hex, "scope": scope}
        for name, value in claims.items():
            if value is None:
                body.pop(name, None)
            else:
                body[name] = value
        alg, key = self.keys[kid]
        return jwt.encode(body, key, alg, headers={"typ": "at+jwt", "kid": kid, **(headers or {})})

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
