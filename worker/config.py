"""The Worker's settings and app, read once per isolate from its variables.

The Worker front and the Durable Object read the same variables through the engine's one
settings table (``engine.actors.settings``), so both see the same app, HTTP rules and
lifetimes, and a setting means here what its flag means locally.
"""

from __future__ import annotations

import json

from pyodide.ffi import to_js

from engine.actors.auth import Gate, gate_from
from engine.actors.settings import Settings, from_env
from engine.app.application import App
from engine.app.loader import load_app
from engine.protocol.request_state import derive

import keys
from hub import Announcer
from task_directory import WorkerTasks

_cache: dict = {}


def settings(env) -> Settings:
    """``[vars]`` and secrets as Settings (``MCP_APP``, ``SESSION_TTL``, ...)."""
    s = _cache.get("settings")
    if s is None:
        s = _cache["settings"] = from_env(lambda name: getattr(env, name, None))
    return s


def app(env) -> App:
    """The app ``MCP_APP`` names, imported once; its announcements go to the listen hub."""
    a = _cache.get("app")
    if a is None:
        a = _cache["app"] = load_app(settings(env).app, add_cwd=False)
        a.listen(announcer(env))
    return a


def announcer(env) -> Announcer:
    """This isolate's carrier of app announcements to the listen hub."""
    carrier = _cache.get("announcer")
    if carrier is None:
        carrier = _cache["announcer"] = Announcer(env)
    return carrier


async def state_key(env) -> bytes:
    """The key that seals 2026-07-28 requestState: from the Worker's signing key."""
    key = _cache.get("state_key")
    if key is None:
        key = _cache["state_key"] = derive(await keys.signing_key(env, settings(env).secret), "request-state")
    return key


async def tasks(env) -> WorkerTasks:
    """Where tasks live: a Durable Object each, reached through the ``TASKS`` binding."""
    directory = _cache.get("tasks")
    if directory is None:
        directory = _cache["tasks"] = WorkerTasks(env, await keys.signing_key(env, settings(env).secret))
    return directory


def gate(env) -> Gate | None:
    """The Worker's authorization gate (``AUTH_ISSUER`` and the other ``AUTH_*`` variables),
    verifying with WebCrypto; None when the server is open."""
    if "gate" not in _cache:
        if settings(env).auth.issuer:  # PyJWT and its algorithms only where tokens are checked
            import webcrypto_jwt

            webcrypto_jwt.install()
        _cache["gate"] = gate_from(settings(env), fetch_json, app(env).name)
    return _cache["gate"]


async def fetch_json(url: str):
    """The authorization server's metadata and keys, by the runtime's fetch (JSON, 1 MiB at most)."""
    import js

    response = await js.fetch(url, to_js({"headers": {"accept": "application/json"}},
                                         dict_converter=js.Object.fromEntries))
    if not response.ok:
        raise OSError(f"{url} answered {response.status}")
    text = await response.text()
    if len(text) > 1024 * 1024:
        raise OSError(f"{url} is larger than 1 MiB")
    return json.loads(text)


def test_hooks(env) -> bool:
    """``MCP_ACTORS_TEST_HOOKS=1`` (tests only): ``/__contract/<check>`` runs a
    storage-contract check inside a fresh Durable Object."""
    return str(getattr(env, "MCP_ACTORS_TEST_HOOKS", "")) == "1"
