"""Checking access tokens: the front's gate, and the verifier it asks.

The gate (:class:`Gate`) runs in the front before any session, task or stream is touched
(on Workers, in the stateless Worker, before any Durable Object is addressed): it serves
the Protected Resource Metadata, reads the bearer token (:mod:`engine.protocol.auth`), asks
the verifier who it is, and checks the scopes the server and the called tool need. The
:class:`~engine.protocol.auth.Principal` it returns travels with the request: what the
request creates is bound to it.

The verifier is a small port (:class:`TokenVerifier`: a token in, a principal out, or
:class:`InvalidToken`), so opaque tokens, introspection (RFC 7662) or other schemes plug in.
The built-in one, :class:`JwtVerifier`, checks RFC 9068 JWT access tokens with PyJWT (a
well-kept JOSE library; its claim checks, algorithm allow-list and ``crit`` handling are
not rewritten here): ``typ`` is ``at+jwt``, the algorithm is the one the key was made for
(never ``none``, never an HMAC keyed with a public key), ``iss`` is the issuer, ``aud``
names this resource, ``exp``/``nbf``/``iat`` hold within a small leeway. Its keys come from
the issuer's JWKS, found through its metadata (RFC 8414, OpenID Connect discovery as the
fallback, the metadata's ``issuer`` checked); an unknown ``kid`` refetches the JWKS, at most
once per ``REFETCH_EVERY`` seconds. Fetching is the runtime's (:class:`JsonFetcher`).
Tokens are never logged, kept, or passed on.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Awaitable, Callable, Mapping, Protocol
from urllib.parse import urlsplit

from ..protocol import auth
from ..protocol.auth import AuthRules, Principal
from ..protocol.http import HttpError

log = logging.getLogger("engine")

#: Asymmetric algorithms only (RFC 9068 §2.1: RS256 at least); never ``none`` or HS*.
ALGORITHMS = ("RS256", "ES256", "EdDSA")
_KEY_SHAPE = {"RS256": ("RSA", None), "ES256": ("EC", "P-256"), "EdDSA": ("OKP", "Ed25519")}
_DEFAULT_ALG = {("RSA", None): "RS256", ("EC", "P-256"): "ES256", ("OKP", "Ed25519"): "EdDSA"}
#: RFC 9068 §4: the ``typ`` of a JWT access token (compared without case).
AT_JWT_TYPES = ("at+jwt", "application/at+jwt")
#: RFC 9068 §2.2's required claims.
REQUIRED_CLAIMS = ("iss", "exp", "aud", "sub", "client_id", "iat", "jti")
#: Seconds of clock skew allowed on exp, nbf and iat.
LEEWAY = 60
#: Seconds between JWKS fetches caused by an unknown key id (key rotation).
REFETCH_EVERY = 30.0
#: Seconds a fetched JWKS is used before it is fetched again.
JWKS_TTL = 3600.0


def _refusal(exc: Exception) -> str:
    """What a PyJWT refusal means, in words for ``error_description``."""
    import jwt

    for kind, text in ((jwt.ExpiredSignatureError, "the token has expired"),
                       (jwt.ImmatureSignatureError, "the token is not valid yet"),
                       (jwt.InvalidAudienceError, "the token was not issued for this server (aud)"),
                       (jwt.InvalidIssuerError, "the token is from another issuer"),
                       (jwt.InvalidAlgorithmError, "the token's algorithm does not match its key"),
                       (jwt.InvalidSignatureError, "the token's signature does not verify")):
        if isinstance(exc, kind):
            return text
    return f"the token is invalid ({type(exc).__name__})"

#: ``await fetch(url)``: the JSON document at ``url`` (raises on failure); the runtime's.
JsonFetcher = Callable[[str], Awaitable[Any]]


class InvalidToken(Exception):
    """The token was refused; the message says why (it goes in ``error_description``)."""


class TokenVerifier(Protocol):
    async def verify(self, token: str) -> Principal:
        """The token's principal, or :class:`InvalidToken`."""
        ...


def alg_for(jwk: Mapping[str, Any]) -> str:
    """The one algorithm a JWK may verify (from its ``alg``, else its key type); refuses
    keys that do not fit it or are not for signatures."""
    kty, crv = jwk.get("kty"), jwk.get("crv")
    alg = jwk.get("alg") or _DEFAULT_ALG.get((kty, None if kty == "RSA" else crv))
    if alg not in ALGORITHMS:
        raise InvalidToken(f"the key's algorithm {alg!r} is not accepted")
    want_kty, want_crv = _KEY_SHAPE[alg]
    if kty != want_kty or (want_crv and crv != want_crv):
        raise InvalidToken(f"a {kty} key cannot verify {alg}")
    if jwk.get("use", "sig") != "sig" or "verify" not in jwk.get("key_ops", ["verify"]):
        raise InvalidToken("the key is not for verifying signatures")
    return alg


def pyjwt_key(jwk: dict, alg: str) -> Any:
    """What PyJWT verifies with: a PyJWK (with ``cryptography``), else the JWK itself for
    the algorithms a runtime registered (the Worker's WebCrypto ones)."""
    import jwt
    from jwt.algorithms import has_crypto

    return jwt.PyJWK(jwk, algorithm=alg) if has_crypto else jwk


def audiences(resource: str) -> list[str]:
    """The spellings of one canonical URL a token's ``aud`` may use (RFC 8707: the scheme
    and host without case, with or without one trailing slash)."""
    parts = urlsplit(resource)
    base = f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path}"
    out = {resource, base, base.rstrip("/"), base.rstrip("/") + "/"}
    return sorted(out)


def metadata_urls(issuer: str) -> list[str]:
    """Where an issuer's metadata may be (RFC 8414 §3.1 path insertion, then OpenID
    Connect discovery: inserted, then appended)."""
    parts = urlsplit(issuer)
    origin, path = f"{parts.scheme}://{parts.netloc}", parts.path.rstrip("/")
    if path:
        return [f"{origin}/.well-known/oauth-authorization-server{path}",
                f"{origin}/.well-known/openid-configuration{path}",
                f"{origin}{path}/.well-known/openid-configuration"]
    return [f"{origin}/.well-known/oauth-authorization-server", f"{origin}/.well-known/openid-configuration"]


class JwtVerifier:
    """RFC 9068 JWT access tokens of one issuer (see the module doc)."""

    def __init__(self, issuer: str, audience: str | None, fetch: JsonFetcher, jwks_url: str | None = None,
                 leeway: float = LEEWAY, required: tuple[str, ...] = REQUIRED_CLAIMS,
                 key: Callable[[dict, str], Any] = pyjwt_key):
        """``audience``: this resource's URL (None: the resource each request names)."""
        self.issuer = issuer
        self.audience = audience
        self.fetch = fetch
        self.jwks_url = jwks_url
        self.leeway = leeway
        self.required = list(required)
        self.key = key
        self._keys: dict[str, dict] = {}
        self._fetched_at = 0.0
        self._keyed: dict[tuple[str, str], Any] = {}

    async def _discover(self) -> str:
        for url in metadata_urls(self.issuer):
            try:
                meta = await self.fetch(url)
            except Exception:
                continue
            if not isinstance(meta, dict):
                continue
            if meta.get("issuer") != self.issuer:  # RFC 8414 §3.3: otherwise it is not this issuer's
                log.warning("auth: %s names issuer %r, not %r; ignored", url, meta.get("issuer"), self.issuer)
                continue
            if isinstance(meta.get("jwks_uri"), str):
                return meta["jwks_uri"]
        raise InvalidToken("the authorization server's keys cannot be found (no usable metadata)")

    async def _refresh(self) -> None:
        if self.jwks_url is None:
            self.jwks_url = await self._discover()
        try:
            document = await self.fetch(self.jwks_url)
        except Exception as exc:
            raise InvalidToken(f"the authorization server's keys cannot be fetched: {type(exc).__name__}") from None
        keys = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(keys, list):
            raise InvalidToken("the authorization server's JWKS has no keys")
        self._keys = {str(k.get("kid", "")): k for k in keys if isinstance(k, dict)}
        self._keyed.clear()
        self._fetched_at = time.monotonic()

    async def _jwk(self, kid: str | None) -> dict:
        now = time.monotonic()
        if not self._keys or now - self._fetched_at > JWKS_TTL:
            await self._refresh()
        found = self._pick(kid)
        if found is None and now - self._fetched_at >= REFETCH_EVERY:  # rotated keys: look again
            await self._refresh()
            found = self._pick(kid)
        if found is None:
            raise InvalidToken("the token is signed with a key the authorization server does not publish")
        return found

    def _pick(self, kid: str | None) -> dict | None:
        if kid is None:  # a token without kid: only a JWKS of one key says which
            return next(iter(self._keys.values())) if len(self._keys) == 1 else None
        return self._keys.get(kid)

    async def verify(self, token: str, resource: str | None = None) -> Principal:
        import jwt  # PyJWT: imported by the first token, not by a server that checks none

        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError:
            raise InvalidToken("the token is not a JWT") from None
        except jwt.PyJWTError as exc:  # a bad kid, an unsupported critical extension
            raise InvalidToken(f"the token's header is refused: {str(exc)[:100]}") from None
        if str(header.get("typ", "")).lower() not in AT_JWT_TYPES:
            raise InvalidToken("the token is not a JWT access token (typ must be at+jwt)")
        kid = header.get("kid")
        jwk = await self._jwk(kid if isinstance(kid, str) else None)
        alg = alg_for(jwk)
        cache_key = (str(kid), alg)
        key = self._keyed.get(cache_key)
        if key is None:
            key = self._keyed[cache_key] = self.key(jwk, alg)
        audience = self.audience or resource
        try:
            claims = jwt.decode(token, key=key, algorithms=[alg], audience=audiences(audience) if audience else None,
                                issuer=self.issuer, leeway=self.leeway,
                                options={"require": self.required, "verify_aud": audience is not None})
        except jwt.MissingRequiredClaimError as exc:
            raise InvalidToken(f"the token lacks the {exc.claim} claim") from None
        except jwt.PyJWTError as exc:
            raise InvalidToken(_refusal(exc)) from None
        client_id = claims.get("client_id", "")
        if not isinstance(client_id, str) or not isinstance(claims.get("sub"), str):
            raise InvalidToken("client_id and sub must be strings")
        try:
            scopes = auth.scopes_of(claims)
        except ValueError as exc:
            raise InvalidToken(str(exc)) from None
        return Principal(issuer=claims["iss"], subject=claims["sub"], client_id=client_id, scopes=scopes,
                         claims=claims)


class Gate:
    """The front's authorization step (see the module doc)."""

    __slots__ = ("rules", "verifier", "endpoint", "refused")

    def __init__(self, rules: AuthRules, verifier: Any, endpoint: str):
        """``endpoint``: the MCP endpoint's path (the resource's path when none is configured)."""
        self.rules = rules
        self.verifier = verifier
        self.endpoint = endpoint
        #: Requests refused, by reason (missing_token, invalid_token, insufficient_scope,
        #: invalid_request): counters for operators.
        self.refused: dict[str, int] = {}

    def resource(self, base_url: str) -> str:
        return auth.resource_url(self.rules, base_url, self.endpoint)

    def metadata_paths(self) -> tuple[str, ...]:
        """Where the metadata is served: path-inserted for the endpoint, and the root one."""
        path = urlsplit(self.rules.resource).path if self.rules.resource else self.endpoint
        return (auth.metadata_path(path or "/"), auth.WELL_KNOWN)

    def metadata(self, base_url: str) -> dict:
        return auth.metadata_document(self.rules, self.resource(base_url))

    async def admit(self, headers: Mapping[str, str], query: str, base_url: str) -> Principal:
        """The request's principal, or the HttpError (401/403/400) that answers it."""
        try:
            return await self._admit(headers, query, base_url)
        except HttpError as exc:
            self._refused(exc)
            raise

    def _refused(self, exc: HttpError) -> None:
        """Counted by the challenge's RFC 6750 error (no token at all: ``missing_token``)."""
        reason = {401: "missing_token", 403: "insufficient_scope", 400: "invalid_request"}.get(exc.status, "other")
        for name, value in exc.headers:
            if name.lower() == "www-authenticate" and 'error="invalid_token"' in value:
                reason = "invalid_token"
        self.refused[reason] = self.refused.get(reason, 0) + 1

    async def _admit(self, headers: Mapping[str, str], query: str, base_url: str) -> Principal:
        resource = self.resource(base_url)
        token = auth.bearer_token(headers, query, resource, self.rules.scopes)
        try:
            if isinstance(self.verifier, JwtVerifier):
                principal = await self.verifier.verify(token, resource)
            else:
                principal = await self.verifier.verify(token)
        except InvalidToken as exc:
            raise auth.invalid_token(resource, self.rules.scopes, str(exc)) from None
        need = auth.missing(principal.scopes, self.rules.scopes)
        if need:
            raise auth.insufficient_scope(resource, self.rules.scopes, "this server")
        return principal

    def allow(self, principal: Principal, scopes: tuple[str, ...], what: str, base_url: str) -> None:
        """An operation that needs ``scopes`` (a tool's): 403 naming all it needs, if lacking."""
        if scopes and auth.missing(principal.scopes, scopes):
            needed = tuple(dict.fromkeys(self.rules.scopes + scopes))
            exc = auth.insufficient_scope(self.resource(base_url), needed, what)
            self._refused(exc)
            raise exc


def gate_from(settings: Any, fetch: JsonFetcher, app_name: str = "", verifier: Any = None) -> Gate | None:
    """The gate the settings ask for (None without ``--auth-issuer`` or a verifier);
    ``verifier``: one of your own instead of the JWT one."""
    conf = settings.auth
    if not conf.issuer and verifier is None:
        return None
    rules = AuthRules(issuers=(conf.issuer,) if conf.issuer else (), resource=conf.resource or None,
                      scopes=tuple(conf.scopes), name=app_name)
    if verifier is None:
        verifier = JwtVerifier(conf.issuer, conf.audience or conf.resource or None, fetch, conf.jwks or None)
    return Gate(rules, verifier, settings.paths.mcp)
