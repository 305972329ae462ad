"""A profile of the Worker and its objects under ``wrangler dev`` (bench (k)).

The session call's cost is split by cutting it short: with ``MCP_ACTORS_BENCH_CUT=worker``
the Worker answers a session's tools/call right where it would forward it (admitted, its
id checked), and with ``=object`` the session's object answers it as soon as it has read
the call. The bench measures each beside the whole call, so the Worker's part, the hop
itself and the object's work are each a difference of two measurements. Both hooks work
only with the test hooks on (``config.test_hooks``), and each isolate or object reads them
once.

With ``MCP_ACTORS_PROFILE=1`` (and the test hooks on), cProfile runs from the isolate's
first request on, and ``GET /__profile`` answers its statistics so far, sorted by own time
(``?reset`` starts it over). Locally, workerd runs the Worker and its Durable Objects in one
isolate, so one profile holds both sides of the hop. Time inside a request advances under
``wrangler dev`` (it is frozen only between I/O on Cloudflare's edge), so the figures are
wall time in Python, including the calls into JavaScript it waits on.
"""

from __future__ import annotations

import config

PATH = "/__profile"

_state: dict = {}


#: What a cut request is answered with: the engine's answer to the bench's echo, as SSE.
CUT_BODY = (b'event: message\ndata: {"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"hello"}]}}'
            b"\n\n")


def cut_short(on: bool, msg):
    """With the cut ``on`` here (:func:`cut`), the answer to a session's tools/call: what the
    engine would answer the bench's echo; None for any other request, or with the cut off."""
    if not on or msg is None or msg.method != "tools/call":
        return None
    from workers import Response

    from engine.protocol import spec

    return Response(CUT_BODY, headers={"content-type": spec.CONTENT_SSE})


def cut(env, where: str) -> bool:
    """Whether a session request is to be answered at ``where`` (``worker`` or ``object``)."""
    return str(getattr(env, "MCP_ACTORS_BENCH_CUT", "")) == where and config.test_hooks(env)


def enabled(env) -> bool:
    """Whether this isolate profiles itself (``MCP_ACTORS_PROFILE=1``, test hooks on)."""
    return str(getattr(env, "MCP_ACTORS_PROFILE", "")) == "1" and config.test_hooks(env)


def start() -> None:
    if "profile" not in _state:
        import cProfile

        _state["profile"] = cProfile.Profile()
        _state["profile"].enable()


def report(reset: bool, limit: int = 60) -> str:
    import io
    import pstats

    profile = _state.get("profile")
    if profile is None:
        return "no profile: it starts with the first request\n"
    profile.disable()
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(limit)
    pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(limit)
    if reset:
        del _state["profile"]
        start()
    else:
        profile.enable()
    return out.getvalue()
