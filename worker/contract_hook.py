"""A test hook (``MCP_ACTORS_TEST_HOOKS=1``): run one storage-contract check inside a fresh
Durable Object, so the Worker tier holds ``do_storage.py`` to the same text as the memory
and SQLite backends (``engine.actors.storage_contract``)."""

from __future__ import annotations

import msgspec

from workers import Response

from engine.actors import storage_contract

HEADER = "x-mcp-actors-contract"
PATH = "/__contract/"

_encode = msgspec.json.Encoder().encode


async def run(check: str, storage) -> Response:
    headers = {"content-type": "application/json"}
    try:
        await storage_contract.run(check, storage)
    except Exception as exc:  # report, so the test shows what broke
        return Response(_encode({"check": check, "error": f"{type(exc).__name__}: {exc}"}).decode(),
                        status=500, headers=headers)
    return Response(_encode({"check": check, "ok": True}).decode(), headers=headers)
