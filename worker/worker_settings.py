"""Configuration from the Worker's environment (``[vars]`` in wrangler.toml), read once.

The Worker front and the Durable Object read the same variables, so both see the same
app, HTTP rules and lifetimes.
"""

from __future__ import annotations

import importlib

import msgspec

from engine import protocol
from engine.actor import Lifetimes
from engine.app import App
from engine.http import HttpConfig
from engine.router import Paths


class Settings(msgspec.Struct, kw_only=True):
    app_spec: str
    http: HttpConfig
    paths: Paths
    lifetimes: Lifetimes
    keepalive: float
    #: Signs session ids so forged ones are refused before any Durable Object is touched.
    secret: str
    #: MCP_ACTORS_TEST_HOOKS=1 (tests only): /__contract/<check> runs a storage-contract
    #: check inside a fresh Durable Object.
    test_hooks: bool = False


def _var(env, name: str, default: str) -> str:
    value = getattr(env, name, None)
    return default if value is None else str(value)


def _list(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def from_env(env) -> Settings:
    local = ",".join(protocol.LOCAL_HOSTS)
    return Settings(
        app_spec=_var(env, "MCP_APP", "engine.demo:app"),
        http=HttpConfig(
            allowed_origins=_list(_var(env, "ALLOWED_ORIGINS", local)),
            allowed_hosts=_list(_var(env, "ALLOWED_HOSTS", local)),
            max_body=int(_var(env, "MAX_BODY", str(protocol.DEFAULT_MAX_BODY))),
            json_response=_var(env, "JSON_RESPONSE", "false").lower() in ("1", "true", "yes"),
        ),
        paths=Paths(
            mcp=_var(env, "MCP_PATH", "/mcp"),
            sse=_var(env, "SSE_PATH", protocol.DEFAULT_SSE_PATH) or None,
            messages=_var(env, "MESSAGES_PATH", protocol.DEFAULT_MESSAGES_PATH) or None,
        ),
        lifetimes=Lifetimes(session_ttl=float(_var(env, "SESSION_TTL", "3600"))),
        keepalive=float(_var(env, "KEEPALIVE", "15")),
        secret=_var(env, "SESSION_SECRET", ""),
        test_hooks=_var(env, "MCP_ACTORS_TEST_HOOKS", "") == "1",
    )


def load_app(spec: str) -> App:
    module_name, _, attr = spec.partition(":")
    app = getattr(importlib.import_module(module_name), attr or "app")
    if not isinstance(app, App):
        raise TypeError(f"MCP_APP={spec!r} is not an engine.App")
    return app
