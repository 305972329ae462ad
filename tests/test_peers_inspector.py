"""The MCP Inspector's CLI mode (@modelcontextprotocol/inspector-cli 1.0.3) over the 2024-11-05
HTTP+SSE transport, against the demo and the everything apps.

How the CLI is driven (read from its build/cli.js and build/index.js):

* ``node build/cli.js --cli URL --transport sse --method M [method options]``. The URL is the
  positional target. ``--server-url`` is only read by the web UI mode: with ``--cli`` it is not
  passed on, and ``--cli --transport sse --server-url URL --method tools/list`` fails with
  "error: missing required argument 'target'".
* cli.js runs build/index.js as a child process started as plain ``node``, found on PATH, so
  PATH must lead to the Node 22 binary or the child runs on whatever ``node`` the system has.
* index.js reads its own package.json with ``fs.existsSync("../package.json")``, relative to the
  *working directory*, and then imports that path relative to *itself*. Started from anywhere
  whose parent has no package.json it fails with "Cannot find module
  '.../node_modules/@modelcontextprotocol/package.json'". Running it in its own build/ directory
  satisfies both readings.
* It prints the result as pretty JSON on stdout (its v1 deprecation notice goes to stderr),
  exits 0, and on a JSON-RPC error prints the error on stderr and exits 1. Nothing is downloaded.

Each run is bounded, and runs in its own process group, which is killed at the end.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from conftest import DEMO_TOOLS, NODE_MODULES

pytestmark = pytest.mark.peers

INSPECTOR_BUILD = NODE_MODULES / "@modelcontextprotocol" / "inspector-cli" / "build"
CLI_TIMEOUT = 30.0  # seconds; a run normally takes under a second


def sse_url(server) -> str:
    return server.url.replace("/mcp", "/sse")


def inspector(node: str, url: str, *method_args: str) -> subprocess.CompletedProcess:
    """One Inspector CLI call over HTTP+SSE; returns the finished process (text stdout/stderr)."""
    env = {**os.environ, "PATH": f"{Path(node).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("DEBUG", None)
    proc = subprocess.Popen(
        [node, "cli.js", "--cli", url, "--transport", "sse", *method_args],
        cwd=INSPECTOR_BUILD, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=CLI_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate(timeout=5)
        pytest.fail(f"inspector cli {' '.join(method_args)} timed out after {CLI_TIMEOUT} s\n"
                    f"stdout:\n{stdout}\nstderr:\n{stderr}")
    finally:
        try:  # its child (build/index.js) too, should it have outlived it
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def inspect(node: str, server, *method_args: str) -> dict:
    """A call that must succeed: its stdout is exactly one JSON document."""
    done = inspector(node, sse_url(server), *method_args)
    assert done.returncode == 0, (f"inspector cli exited {done.returncode}\nstdout:\n{done.stdout}\n"
                                  f"stderr:\n{done.stderr}\nserver:\n{server.output()}")
    assert "inspector v1 is deprecated" in done.stderr  # its banner, kept off stdout
    return json.loads(done.stdout)


def test_inspector_cli_sse_tools_list(node, demo_server):
    result = inspect(node, demo_server, "--method", "tools/list")
    by_name = {t["name"]: t for t in result["tools"]}
    assert sorted(by_name) == DEMO_TOOLS
    assert by_name["echo"] == {
        "name": "echo",
        "description": "Return the text unchanged (the benchmark's tool).",
        "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
    }


def test_inspector_cli_sse_tools_call(node, demo_server):
    echo = inspect(node, demo_server, "--method", "tools/call", "--tool-name", "echo",
                   "--tool-arg", "text=hello inspector")
    assert echo == {"content": [{"type": "text", "text": "hello inspector"}]}
    # --tool-arg values are JSON-parsed when they can be: these arrive as numbers
    added = inspect(node, demo_server, "--method", "tools/call", "--tool-name", "add",
                    "--tool-arg", "a=2", "b=3.5")
    assert added == {"content": [{"type": "text", "text": "5.5"}]}


def test_inspector_cli_sse_resources_read(node, everything_server):
    static = inspect(node, everything_server, "--method", "resources/read", "--uri", "test://static-text")
    assert static == {"contents": [{
        "uri": "test://static-text",
        "mimeType": "text/plain",
        "text": "This is the content of the static text resource.",
    }]}
    templated = inspect(node, everything_server, "--method", "resources/read", "--uri", "test://template/42/data")
    assert templated == {"contents": [{
        "uri": "test://template/42/data",
        "mimeType": "application/json",
        "text": '{"id":"42","templateTest":true,"data":"Data for ID: 42"}',
    }]}


def test_inspector_cli_sse_prompts_get(node, everything_server):
    prompt = inspect(node, everything_server, "--method", "prompts/get", "--prompt-name", "test_prompt_with_arguments",
                     "--prompt-args", "arg1=paris", "arg2=beta")
    assert prompt == {
        "description": "A prompt with two required arguments",
        "messages": [{"role": "user", "content": {
            "type": "text", "text": "Prompt with arguments: arg1='paris', arg2='beta'"}}],
    }


def test_inspector_cli_sse_error_is_reported(node, everything_server):
    """A JSON-RPC error that came down the SSE stream: exit 1, the server's code and message on stderr."""
    done = inspector(node, sse_url(everything_server), "--method", "resources/read", "--uri", "test://nope")
    assert done.returncode == 1, done
    assert done.stdout == ""
    assert "Failed to read resource test://nope: MCP error -32002: Resource not found: test://nope" in done.stderr
