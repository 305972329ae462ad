"""The built-in demo app served by ``python -m engine serve`` with no APP argument."""

from __future__ import annotations

import asyncio
import math
import time

from .app.application import App
from .app.context import Context

app = App("mcp-actors-demo", "0.1.0", instructions="A demo of mcp-actors: try echo and long_task.")


@app.tool()
def echo(text: str) -> str:
    """Return the text unchanged (the benchmark's tool)."""
    return text


@app.tool()
def add(a: float, b: float) -> float:
    """Add two numbers."""
    return a + b


@app.tool(task="optional")
async def long_task(ctx: Context, steps: int = 10, interval_s: float = 1.0) -> str:
    """Work for steps x interval_s seconds, reporting progress once per step.

    Its stream survives a dropped connection: resume with GET and Last-Event-ID. A client
    that takes tasks may run it as one: its result then outlives the connection.
    """
    started = time.monotonic()
    for step in range(1, steps + 1):
        await asyncio.sleep(interval_s)
        await ctx.progress(step, steps, f"step {step}/{steps}")
    return f"long_task finished {steps} steps in {time.monotonic() - started:.2f} s"


@app.tool(task="optional", rerun=True)
async def count_primes(ctx: Context, below: int = 100_000, pause_s: float = 0.0) -> str:
    """Count the primes below a number, ten thousand at a time, with progress.

    Pure, so safe to run again from the start (rerun=True): as a task, a server restart
    in the middle does not lose it.
    """
    below = max(2, min(below, 10_000_000))
    sieve = bytearray([1]) * below
    sieve[:2] = b"\0\0"
    chunk = 10_000
    for start in range(0, below, chunk):
        end = min(start + chunk, below)
        for n in range(2, math.isqrt(end - 1) + 1):
            if sieve[n]:
                first = max(n * n, (start + n - 1) // n * n)
                sieve[first:end:n] = bytes(len(range(first, end, n)))
        await ctx.progress(end, below)
        await asyncio.sleep(pause_s)
    return f"{sum(sieve)} primes below {below}"


@app.tool(thread=True)
def slow_sum(n: int = 1_000_000) -> int:
    """Sum 0..n-1 in a worker thread (a blocking sync tool that does not stall the server)."""
    return sum(range(n))


@app.resource("demo://about", mime_type="text/markdown", description="What this server is")
def about() -> str:
    return "# mcp-actors demo\nSessions live in actors; streams survive disconnects.\n"


@app.resource("demo://greeting/{name}", mime_type="text/plain", description="A greeting for {name}")
def greeting(name: str) -> str:
    return f"Hello, {name}!"


@app.prompt(description="Ask for a short summary of a text")
def summarize(text: str) -> str:
    return f"Summarize the following text in one paragraph:\n\n{text}"


NOTES: list[str] = []


@app.resource("demo://notes", mime_type="text/plain", description="Notes added with add_note; subscribe to hear of changes")
def notes() -> str:
    return "\n".join(NOTES)


@app.tool()
def add_note(text: str) -> str:
    """Append a note to demo://notes and tell subscribers it changed."""
    NOTES.append(text)
    app.notify_resource_updated("demo://notes")
    return f"{len(NOTES)} note(s)"


@app.tool()
async def ask_llm(ctx: Context, question: str) -> str:
    """Ask the client's LLM a question (sampling)."""
    answer = await ctx.sample(question, max_tokens=200)
    return answer.text


@app.tool()
async def confirm(ctx: Context, action: str) -> str:
    """Ask the user to confirm an action (elicitation)."""
    answer = await ctx.elicit(f"Do you want to {action}?", {
        "type": "object",
        "properties": {"confirm": {"type": "boolean", "description": "Go ahead?"}},
        "required": ["confirm"],
    })
    if answer.action == "accept" and answer.content and answer.content.get("confirm"):
        return f"confirmed: {action}"
    return f"not confirmed ({answer.action}): {action}"


@app.tool()
async def show_roots(ctx: Context) -> str:
    """List the client's roots."""
    roots = await ctx.list_roots()
    return "\n".join(r.get("uri", "") for r in roots) or "(no roots)"


@app.completion(prompt="summarize")
def complete_summarize(argument: str, value: str, context: dict) -> list[str]:
    return [t for t in ("the README", "the changelog", "this file") if t.startswith(value)]
