"""The Worker floor: a Python Worker that answers every request with fixed bytes (the
engine's answer to a 2026-07-28 echo). What Cloudflare's Python runtime costs per request
with no MCP at all, under the same wrangler dev: the bench's (k) measures the engine
against it."""

from workers import Response, WorkerEntrypoint

BODY = '{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"hello"}],"resultType":"complete"}}'


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        await request.bytes()
        return Response(BODY, headers={"content-type": "application/json"})
