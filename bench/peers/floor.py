"""The floor: a raw ASGI app on the same uvicorn answering every POST with fixed bytes,
the same bytes our server sends for an echo call. No MCP at all: what HTTP alone costs."""

from __future__ import annotations

import argparse

import uvicorn

RESULT = b'{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"hello"}]}}'
SSE = b"id: 1:1\nretry: 1000\ndata: \n\nid: 1:2\nevent: message\ndata: " + RESULT + b"\n\n"
#: What the engine answers a 2026-07-28 echo call: the result with its resultType and the
#: server's identity.
MODERN = (b'{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"hello"}],"resultType":"complete",'
          b'"_meta":{"io.modelcontextprotocol/serverInfo":{"name":"mcp-actors-bench","version":"0.1.0"}}}}')
INIT = (b'{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-11-25","capabilities":{},'
        b'"serverInfo":{"name":"floor","version":"0"}}}')


def make_app(mode: str):
    body = {"sse": SSE, "json": RESULT, "modern": MODERN}[mode]
    ctype = b"text/event-stream" if mode == "sse" else b"application/json"

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", ctype), (b"mcp-session-id", b"floor")]})
        await send({"type": "http.response.body", "body": body})

    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mode", choices=("sse", "json", "modern"), default="sse")
    args = parser.parse_args()
    uvicorn.run(make_app(args.mode), host="127.0.0.1", port=args.port, log_level="error", access_log=False,
                lifespan="off")
