"""What the engine's Worker costs to import, measured inside workerd's Python (bench (k)).

A Python Worker's own start-up code (its top-level imports) must finish within the
platform's start-up limit. Time does not advance while a Worker's top level runs, so it
cannot time itself; inside a request it does (under ``wrangler dev``). This probe is the
main module of a copy of the engine's Worker: on each request to ``/?measure`` it drops every module that
was imported after its own top level (the engine's Worker and all it pulled in), then
imports the Worker's entry module again and loads the app (which the Worker does on its
first request), and answers both times in milliseconds. Extension modules (msgspec's
core) are loaded once per isolate and only initialised again, so these are lower bounds.
"""

import importlib
import json
import sys
import time

from workers import Response, WorkerEntrypoint

_BASE = set(sys.modules)


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        if "?measure" not in request.url:  # wrangler's readiness probe: answered at once
            return Response("ready")
        for name in set(sys.modules) - _BASE:
            del sys.modules[name]
        began = time.perf_counter()
        importlib.import_module("entry")  # the engine's Worker, as its top level imports it
        imported = time.perf_counter()
        import config

        config.app(self.env)
        loaded = time.perf_counter()
        return Response(json.dumps({"import_ms": 1000 * (imported - began), "app_ms": 1000 * (loaded - imported),
                                    "modules": len(set(sys.modules) - _BASE)}),
                        headers={"content-type": "application/json"})
