"""Authorization as MCP defines it: the server is an OAuth 2.1 resource server.

Pure rules, no I/O (verifying a token is :mod:`engine.actors.auth`'s business):

- where the Protected Resource Metadata lives (RFC 9728 §3.1: the well-known segment goes
  between the host and the endpoint's path) and what it says;
- reading the bearer token: from the ``Authorization`` header only (a token in the query
  string is refused, never used), one of them, in the RFC 6750 ``b64token`` syntax;
- the challenges (RFC 6750 §3, RFC 9728 §5.1): a missing token gets 401 with
  ``resource_metadata`` (and ``scope`` when scopes are required), a bad token 401
  ``error="invalid_token"``, a token without the scopes an operation needs 403
  ``error="insufficient_scope"`` naming every scope it needs, a malformed request 400
  ``error="invalid_request"``;
- scopes, with their hierarchy (2026-07-28 MUST): a granted scope implies every scope
  below it, ``files`` implies ``files:read`` (the colon separates the levels);
- who the caller is (:class:`Principal`): the token's issuer and subject, the binding key
  of everything durable it creates.
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any, Mapping
from urllib.parse import parse_qsl, urlsplit

import msgspec

from . import spec
from .http import HttpError

WELL_KNOWN = "/.well-known/oauth-protected-resource"
#: RFC 6750 §2.1 b64token, after the scheme and one space.
_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
#: What may appear inside a quoted challenge parameter (RFC 6750 §3: no '"' and no '\').
_UNQUOTABLE = re.compile(r'["\\\x00-\x1f\x7f-\uffff]')
#: Never advertised (2026-07-28 authorization: refresh tokens are the client's business).
OFFLINE_ACCESS = "offline_access"


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """Who a request is from: the access token's issuer and subject (identity is the pair:
    a subject is unique only within its issuer), with what the token granted."""

    issuer: str
    subject: str
    client_id: str = ""
    scopes: tuple[str, ...] = ()
    #: The token's claims (without the signature; the token itself is never kept).
    claims: dict = {}

    @property
    def key(self) -> str:
        """The binding key recorded on what this principal creates: a digest of the pair (a
        fixed-size ASCII string, fit for storage keys and headers whatever the subject holds)."""
        digest = hashlib.sha256(f"{len(self.issuer)}:{self.issuer}{self.subject}".encode()).digest()
        return "p-" + base64.urlsafe_b64encode(digest[:24]).decode()


def owner_of(principal: Principal | None) -> str:
    """The owner recorded on a session, task or stream: "" without authorization."""
    return principal.key if principal is not None else ""


class AuthRules(msgspec.Struct, frozen=True, kw_only=True):
    """What a protected endpoint asks of every request (settings: ``--auth-*``)."""

    #: The authorization servers' issuer identifiers (RFC 9728 ``authorization_servers``).
    issuers: tuple[str, ...]
    #: The endpoint's canonical URL (RFC 8707); None: the URL the request was addressed to.
    resource: str | None = None
    #: Scopes every request needs (``scopes_supported`` in the metadata too).
    scopes: tuple[str, ...] = ()
    #: The app's name, shown in the metadata.
    name: str = ""


def metadata_path(endpoint_path: str) -> str:
    """RFC 9728 §3.1: ``/mcp`` -> ``/.well-known/oauth-protected-resource/mcp``."""
    return WELL_KNOWN + ("" if endpoint_path == "/" else endpoint_path)


def resource_url(rules: AuthRules, base_url: str, endpoint_path: str) -> str:
    """The canonical resource: configured, or this server's URL for the endpoint."""
    return rules.resource or base_url.rstrip("/") + endpoint_path


def metadata_url(resource: str) -> str:
    """Where the metadata of ``resource`` lives (what ``resource_metadata`` points at)."""
    parts = urlsplit(resource)
    return f"{parts.scheme}://{parts.netloc}{metadata_path(parts.path or '/')}"


def metadata_document(rules: AuthRules, resource: str) -> dict:
    """The Protected Resource Metadata (RFC 9728 §2)."""
    doc: dict[str, Any] = {"resource": resource, "authorization_servers": list(rules.issuers),
                           "bearer_methods_supported": ["header"]}
    scopes = [s for s in rules.scopes if s != OFFLINE_ACCESS]
    if scopes:
        doc["scopes_supported"] = scopes
    if rules.name:
        doc["resource_name"] = rules.name
    return doc


def _quoted(text: str) -> str:
    return _UNQUOTABLE.sub("?", text)[:300]


def challenge(resource: str, scopes: tuple[str, ...] = (), error: str | None = None,
              description: str | None = None) -> str:
    """A ``WWW-Authenticate: Bearer`` value: error first when there is one (RFC 6750 §3)."""
    params = []
    if error:
        params.append(f'error="{error}"')
        if description:
            params.append(f'error_description="{_quoted(description)}"')
    params.append(f'resource_metadata="{metadata_url(resource)}"')
    shown = [s for s in scopes if s != OFFLINE_ACCESS and not _UNQUOTABLE.search(s) and " " not in s]
    if shown:
        params.append(f'scope="{" ".join(shown)}"')
    return "Bearer " + ", ".join(params)


def _refusal(status: int, message: str, value: str) -> HttpError:
    code = spec.INVALID_REQUEST
    return HttpError(status, code, message, headers=(("www-authenticate", value),))


def unauthorized(resource: str, scopes: tuple[str, ...]) -> HttpError:
    """No token: 401 with where to learn how to get one (and no error code, RFC 6750 §3.1)."""
    return _refusal(401, "Unauthorized: this server needs an OAuth access token (Authorization: Bearer ...); "
                         "its metadata names the authorization server", challenge(resource, scopes))


def invalid_token(resource: str, scopes: tuple[str, ...], why: str) -> HttpError:
    return _refusal(401, f"Unauthorized: the access token was refused: {why}",
                    challenge(resource, scopes, "invalid_token", why))


def insufficient_scope(resource: str, needed: tuple[str, ...], what: str) -> HttpError:
    """403 naming every scope the operation needs (2026-07-28: all of them in one challenge)."""
    why = f"{what} needs the scope{'s' if len(needed) > 1 else ''} {' '.join(needed)}"
    return _refusal(403, f"Forbidden: {why}", challenge(resource, needed, "insufficient_scope", why))


def invalid_request(resource: str, why: str) -> HttpError:
    return _refusal(400, f"Bad Request: {why}", challenge(resource, (), "invalid_request", why))


def bearer_token(headers: Mapping[str, str], query: str, resource: str, scopes: tuple[str, ...]) -> str:
    """The request's access token, or the HttpError that answers it (see the module doc)."""
    if "access_token" in {name for name, _ in parse_qsl(query, keep_blank_values=True)}:
        raise invalid_token(resource, scopes, "access tokens are not accepted in the query string; "
                                              "send them in the Authorization header")
    value = headers.get("authorization")
    if value is None:
        raise unauthorized(resource, scopes)
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise unauthorized(resource, scopes)  # another scheme: as if there were no credentials
    token = token.strip()
    if not _TOKEN.fullmatch(token):
        raise invalid_request(resource, "the Authorization header must be one 'Bearer <token>'")
    return token


def implied(granted: tuple[str, ...] | frozenset, needed: str) -> bool:
    """Whether ``needed`` is granted, directly or by a broader scope (``a`` covers ``a:b``)."""
    if needed in granted:
        return True
    parts = needed.split(":")
    return any(":".join(parts[:n]) in granted for n in range(1, len(parts)))


def missing(granted: tuple[str, ...], needed: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(s for s in needed if not implied(granted, s))


def scopes_of(claims: Mapping[str, Any]) -> tuple[str, ...]:
    """RFC 9068 §2.2.3: ``scope`` is a space-delimited string."""
    scope = claims.get("scope", "")
    if not isinstance(scope, str):
        raise ValueError("the scope claim must be a space-delimited string")
    return tuple(scope.split())
