"""The app every engine scenario serves: the benchmark's echo, and event producers."""

from __future__ import annotations

import asyncio

from engine import App, Context

app = App("mcp-actors-bench", "0.1.0")


@app.tool()
def echo(text: str) -> str:
    """Return the text unchanged."""
    return text


@app.tool()
async def burst(ctx: Context, n: int = 10000) -> str:
    """Emit n progress notifications as fast as possible (replay scenario)."""
    for i in range(1, n + 1):
        await ctx.progress(i, n)
        if i % 500 == 0:
            await asyncio.sleep(0)
    return f"burst of {n}"


@app.tool()
async def ticks(ctx: Context, steps: int = 10, interval_s: float = 0.1) -> str:
    """A long call: one progress notification per step (concurrent streams scenario)."""
    for i in range(1, steps + 1):
        await asyncio.sleep(interval_s)
        await ctx.progress(i, steps)
    return f"ticks {steps}"


@app.tool()
async def firehose(ctx: Context, seconds: float = 30.0, size: int = 1000) -> str:
    """Progress notifications of about ``size`` bytes as fast as possible for ``seconds``
    (the hostile scenario: a client that never reads its stream)."""
    message = "x" * size
    deadline = asyncio.get_running_loop().time() + seconds
    sent = 0
    while asyncio.get_running_loop().time() < deadline:
        sent += 1
        await ctx.progress(sent, None, message)
        if sent % 50 == 0:
            await asyncio.sleep(0)
    return f"firehose sent {sent}"


@app.tool(task="required")
async def job(text: str) -> str:
    """The smallest task: it finishes at once (the tasks scenario measures the bookkeeping)."""
    return text
