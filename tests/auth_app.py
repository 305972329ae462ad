"""A small app for the authorization tests: it tells who called, has a tool that needs a
scope of its own, asks a question (input-required state to bind) and runs a task."""

from __future__ import annotations

import asyncio

from engine import App, Context

app = App("secured", "1.0")


@app.tool()
def whoami(ctx: Context) -> str:
    """Who the request is from, as the handler sees it."""
    p = ctx.principal
    if p is None:
        return "anonymous"
    return f"{p.subject} of {p.issuer} via {p.client_id}; scopes: {' '.join(p.scopes)}"


@app.tool(scopes=["files:write"])
def write_file(name: str) -> str:
    """Needs files:write on top of the server's scopes."""
    return f"wrote {name}"


@app.tool()
async def ask_name(ctx: Context) -> str:
    answer = await ctx.elicit("Your name?", {"type": "object", "properties": {"name": {"type": "string"}},
                                             "required": ["name"]}, key="name")
    return f"Hello, {(answer.content or {}).get('name')}"


@app.tool(task="optional")
async def slow(ctx: Context, seconds: float = 0.2) -> str:
    await asyncio.sleep(seconds)
    who = ctx.principal.subject if ctx.principal else "anonymous"
    return f"done for {who}"


@app.tool()
async def steps(ctx: Context, n: int = 3, interval_s: float = 0.05) -> str:
    for i in range(1, n + 1):
        await asyncio.sleep(interval_s)
        await ctx.progress(i, n)
    return f"{n} steps"
