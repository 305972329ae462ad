"""The official TypeScript SDK client (@modelcontextprotocol/sdk) against the demo server.

``tests/peers/ts_client.mjs`` runs one scripted session (tools, progress, sampling,
elicitation, roots, resources, prompts, completion, a resource subscription, DELETE) and
prints what it saw as one JSON object; these tests check every value. The same session
runs over Streamable HTTP (``/mcp``) and over the 2024-11-05 HTTP+SSE transport (``/sse``,
the SDK's SSEClientTransport), where only DELETE is left out.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from conftest import DEMO_TOOLS
from sse_client import events, headers, initialize

pytestmark = pytest.mark.peers

DRIVER = Path(__file__).resolve().parent / "peers" / "ts_client.mjs"
DRIVER_TIMEOUT = 60  # seconds; the driver has its own 30 s watchdog and normally takes < 2 s


def run_driver(node: str, url: str, server, *args: str) -> dict:
    try:
        proc = subprocess.run([node, str(DRIVER), url, *args], capture_output=True, text=True,
                              timeout=DRIVER_TIMEOUT, cwd=DRIVER.parent)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"ts_client.mjs timed out after {DRIVER_TIMEOUT} s\nstderr:\n{exc.stderr}\n"
                    f"server:\n{server.output()}")
    assert proc.returncode == 0, (f"ts_client.mjs exited {proc.returncode}\nstderr:\n{proc.stderr}\n"
                                  f"stdout:\n{proc.stdout}\nserver:\n{server.output()}")
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one JSON line on stdout, got:\n{proc.stdout}"
    return json.loads(lines[0])


def post(url: str, session_id: str, body: dict) -> httpx.Response:
    return httpx.post(url, json=body, timeout=10, headers={
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
        "mcp-session-id": session_id,
        "mcp-protocol-version": "2025-11-25",
    })


def sse_url(server) -> str:
    return server.url.replace("/mcp", "/sse")


def check_demo_session(seen: dict, fresh: bool = True) -> None:
    """Everything the demo scenario observes that is the same on both transports. ``fresh``: the
    session's process has no notes yet (false in a cluster whose processes other tests used)."""
    # -- handshake -------------------------------------------------------------------
    session_id = seen["sessionId"]
    assert isinstance(session_id, str) and session_id
    assert seen["protocolVersion"] == "2025-11-25"  # the SDK 1.32.2's latest, which we support
    assert seen["serverInfo"] == {"name": "mcp-actors-demo", "version": "0.1.0"}
    caps = seen["serverCapabilities"]
    assert caps["resources"] == {"subscribe": True, "listChanged": True}
    assert caps["completions"] == {}
    assert caps["tools"] == {"listChanged": True}

    # -- tools -----------------------------------------------------------------------
    assert seen["tools"] == DEMO_TOOLS
    assert seen["echo"] == "hello from ts"

    # progress: one notification per step, in order, with total and message, before the result
    assert seen["progress"] == [
        {"progress": 1, "total": 3, "message": "step 1/3"},
        {"progress": 2, "total": 3, "message": "step 2/3"},
        {"progress": 3, "total": 3, "message": "step 3/3"},
    ]
    assert seen["longTask"].startswith("long_task finished 3 steps in ")
    elapsed = float(seen["longTask"].removeprefix("long_task finished 3 steps in ").removesuffix(" s"))
    assert 0.14 <= elapsed < 5  # 3 x 0.05 s, printed with 2 decimals

    # sampling: the server's request reached the handler, and the handler's answer came back
    assert seen["sampling"]["requests"] == [{
        "messages": [{"role": "user", "content": {"type": "text", "text": "What is 2+2?"}}],
        "maxTokens": 200,
    }]
    assert seen["sampling"]["result"] == "LLM says: What is 2+2?"

    # elicitation: the form schema arrived intact, and the accepted answer was used
    assert seen["elicitation"]["requests"] == [{
        "message": "Do you want to deploy?",
        "requestedSchema": {
            "type": "object",
            "properties": {"confirm": {"type": "boolean", "description": "Go ahead?"}},
            "required": ["confirm"],
        },
    }]
    assert seen["elicitation"]["result"] == "confirmed: deploy"

    # roots
    assert seen["roots"] == {"requests": 1, "result": "file:///work/project\nfile:///tmp/scratch"}

    # -- resources, prompts, completion ------------------------------------------------------
    assert seen["resources"] == {
        "demo://about": [{
            "uri": "demo://about",
            "mimeType": "text/markdown",
            "text": "# mcp-actors demo\nSessions live in actors; streams survive disconnects.\n",
        }],
        "demo://greeting/Ann": [{"uri": "demo://greeting/Ann", "mimeType": "text/plain", "text": "Hello, Ann!"}],
    }
    assert seen["prompt"] == {
        "description": "Ask for a short summary of a text",
        "messages": [{
            "role": "user",
            "type": "text",
            "text": "Summarize the following text in one paragraph:\n\nMCP is a protocol.",
        }],
    }
    assert seen["completion"] == {"values": ["the README", "the changelog"], "total": 2, "hasMore": False}

    # -- subscription ----------------------------------------------------------------
    assert seen["subscribe"] == {}
    if fresh:
        assert seen["addNote"] == "1 note(s)"  # a fresh server: this is its first note
    else:  # the demo's notes are per process: others may have added some to the session's
        assert re.fullmatch(r"[1-9]\d* note\(s\)", seen["addNote"]), seen["addNote"]
    assert seen["updateArrived"] is True
    assert seen["updated"] == ["demo://notes"]  # exactly once

    # nothing unexpected on the way
    assert seen["otherNotifications"] == []
    assert seen["logMessages"] == []


def test_typescript_sdk_client_full_session(node, start_server):
    check_full_session(node, start_server(None))


def check_full_session(node: str, server, fresh: bool = True) -> None:
    """The demo scenario over Streamable HTTP at ``server.url`` (a demo server, or anything with
    ``url`` and ``output()``: a cluster), then DELETE: the session is gone, others live on."""
    seen = run_driver(node, server.url, server)
    assert seen["transport"] == "streamable-http"
    check_demo_session(seen, fresh)
    session_id = seen["sessionId"]

    # The transport runs with maxRetries 0, so a GET stream dropped mid-session would show up here.
    assert [e for e in seen["clientErrors"] if e["phase"] not in ("terminate", "close")] == []
    # DELETE ends the session's GET stream; the SDK (which always tries to resume a GET stream that
    # ends) may report that before close() aborts it. That one error is expected, and only that one.
    for err in seen["clientErrors"]:
        assert err["error"] == "Error: Maximum reconnection attempts (0) exceeded.", seen["clientErrors"]

    # -- termination -------------------------------------------------------------------
    assert seen["sessionIdAfterTerminate"] is None  # the SDK forgot it after a successful DELETE
    gone = post(server.url, session_id, {"jsonrpc": "2.0", "id": 1, "method": "ping"})
    assert gone.status_code == 404, gone.text
    body = gone.json()
    assert body["id"] == 1
    assert body["error"]["code"] == -32001  # the engine's "session not found"
    assert body["error"]["message"].startswith("Session not found")

    # control: a live session on the same server still answers the same POST
    init = httpx.post(server.url, timeout=10, headers={
        "Accept": "application/json, text/event-stream", "Content-Type": "application/json",
    }, json={"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "control", "version": "0"}}})
    assert init.status_code == 200, init.text
    live = init.headers["mcp-session-id"]
    assert live != session_id
    assert post(server.url, live, {"jsonrpc": "2.0", "method": "notifications/initialized"}).status_code == 202
    assert post(server.url, live, {"jsonrpc": "2.0", "id": 1, "method": "ping"}).status_code == 200


# -- the same SDK over the 2024-11-05 HTTP+SSE transport (SSEClientTransport) ------------------


def check_sse_wire(seen: dict, posts: int) -> None:
    """One GET opened the stream (the EventSource never reconnected, which would have made a new
    session), every message went to the endpoint it named as a POST answered 202, and close()
    ended the stream."""
    session_id = seen["sessionId"]
    endpoint = f"/messages?session_id={session_id}"
    assert seen["endpoint"] == endpoint
    requests = seen["requests"]
    assert requests[0] == {"method": "GET", "path": "/sse", "accept": "text/event-stream",
                           "protocolVersion": None, "status": 200}
    # initialize goes out before a version is agreed; every later POST names it
    assert requests[1:] == [
        {"method": "POST", "path": endpoint, "accept": None, "protocolVersion": version, "status": 202}
        for version in [None] + ["2025-11-25"] * (posts - 1)
    ]
    assert seen["clientErrors"] == []
    assert seen["sessionIdAfterTerminate"] is None  # nothing to terminate: no DELETE in HTTP+SSE
    assert seen["streamAbortedOnClose"] == [True]  # client.close() aborted the stream's GET
    assert seen["closed"] is True


def test_typescript_sdk_sse_client_full_session(node, start_server):
    check_sse_full_session(node, start_server(None))


def check_sse_full_session(node: str, server, fresh: bool = True, update_before_result: bool = True) -> None:
    """The demo scenario over HTTP+SSE at ``server.url``'s /sse, every message down the one stream.
    ``update_before_result``: add_note's resource update precedes its result (one process; in a
    cluster the announcement travels through the database, so it may come just after)."""
    seen = run_driver(node, sse_url(server), server, "--sse")
    assert seen["transport"] == "sse"
    check_demo_session(seen, fresh)

    # 17 POSTs: initialize, initialized, 13 requests and the answers to sampling, elicitation, roots
    check_sse_wire(seen, posts=17)
    # What came down the one stream, in order: each response after the messages of its request
    # (progress before long_task's result, the server's request before the tool's result, the
    # resource update before add_note's result), and nothing else.
    wire = seen["wire"]
    update = {"method": "notifications/resources/updated"}
    if not update_before_result and wire[-2:] == [{"id": 12}, update]:
        wire = wire[:-2] + [update, {"id": 12}]  # the one order a cluster may change
    assert wire == [
        {"id": 0},                                              # initialize
        {"id": 1},                                              # tools/list
        {"id": 2},                                              # echo
        {"method": "notifications/progress"},
        {"method": "notifications/progress"},
        {"method": "notifications/progress"},
        {"id": 3},                                              # long_task
        {"method": "sampling/createMessage", "id": 0},
        {"id": 4},                                              # ask_llm
        {"method": "elicitation/create", "id": 1},
        {"id": 5},                                              # confirm
        {"method": "roots/list", "id": 2},
        {"id": 6},                                              # show_roots
        {"id": 7},                                              # resources/read demo://about
        {"id": 8},                                              # resources/read demo://greeting/Ann
        {"id": 9},                                              # prompts/get
        {"id": 10},                                             # completion/complete
        {"id": 11},                                             # resources/subscribe
        {"method": "notifications/resources/updated"},
        {"id": 12},                                             # add_note
    ]


EVERYTHING_TOOLS = sorted([
    "json_schema_2020_12_tool", "test_audio_content", "test_dynamic_tool", "test_elicitation",
    "test_elicitation_sep1034_defaults", "test_elicitation_sep1330_enums", "test_embedded_resource",
    "test_error_handling", "test_image_content", "test_multiple_content_types", "test_reconnection",
    "test_sampling", "test_simple_text", "test_tool_with_logging", "test_tool_with_progress",
    # the 2026-07-28 fixtures (listed to session-era clients too)
    "test_missing_capability", "test_streaming_elicitation", "test_logging_tool", "test_trigger_tool_change",
    "test_trigger_prompt_change", "test_input_required_result_elicitation", "test_input_required_result_sampling",
    "test_input_required_result_list_roots", "test_input_required_result_request_state",
    "test_input_required_result_multiple_inputs", "test_input_required_result_multi_round",
    "test_input_required_result_tampered_state", "test_input_required_result_capabilities", "test_header_param",
    # the Tasks fixtures
    "greet", "slow_compute", "failing_job", "protocol_error_job", "confirm_delete", "multi_input",
    "test_tool_with_task",
])


def wait_for_tool(server, name: str, timeout: float = 10.0) -> None:
    """The everything app adds tools 2 s after start: wait for that (over Streamable HTTP), so
    the session under test sees a fixed tool list and no list_changed notifications."""
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=10) as c:
        sid = initialize(c, server.url)
        try:
            for request_id in range(1, 1000):
                r = c.post(server.url, headers=headers(sid), json={
                    "jsonrpc": "2.0", "id": request_id, "method": "tools/list"})
                assert r.status_code == 200, r.text
                tools = list(events(r.text.splitlines()))[-1].message["result"]["tools"]
                if name in {t["name"] for t in tools}:
                    return
                assert time.monotonic() < deadline, f"no tool {name!r} after {timeout} s\n{server.output()}"
                time.sleep(0.1)
        finally:
            c.delete(server.url, headers=headers(sid))


def test_typescript_sdk_sse_client_everything(node, start_server):
    check_sse_everything(node, start_server("examples.everything:app"))


def check_sse_everything(node: str, server) -> None:
    """The everything scenario over HTTP+SSE (``server``: an everything server, or a cluster of them)."""
    wait_for_tool(server, "test_dynamic_tool")
    seen = run_driver(node, sse_url(server), server, "--sse", "--scenario", "everything")

    assert seen["transport"] == "sse"
    assert seen["protocolVersion"] == "2025-11-25"
    assert seen["serverInfo"] == {"name": "mcp-actors-everything", "version": "0.1.0"}
    assert seen["tools"] == EVERYTHING_TOOLS
    assert seen["simpleText"] == "This is a simple text response for testing."
    assert seen["progress"] == [{"progress": p, "total": 100, "message": None} for p in (0, 50, 100)]
    assert seen["toolWithProgress"] == "Tool with progress executed successfully"
    assert seen["sampling"]["requests"] == [{
        "messages": [{"role": "user", "content": {"type": "text", "text": "Say hi over SSE"}}],
        "maxTokens": 100,
    }]
    assert seen["sampling"]["result"] == "LLM response: LLM says: Say hi over SSE"
    assert seen["otherNotifications"] == []
    assert seen["logMessages"] == []

    # initialize, initialized, tools/list, three tools/call and the sampling answer
    check_sse_wire(seen, posts=7)
    assert seen["wire"] == [
        {"id": 0},                                              # initialize
        {"id": 1},                                              # tools/list
        {"id": 2},                                              # test_simple_text
        {"method": "notifications/progress"},
        {"method": "notifications/progress"},
        {"method": "notifications/progress"},
        {"id": 3},                                              # test_tool_with_progress
        {"method": "sampling/createMessage", "id": 0},
        {"id": 4},                                              # test_sampling
    ]


# -- the TypeScript client 2.x in the stateless era (2026-07-28) -----------------------------------

MODERN_DRIVER = Path(__file__).resolve().parent / "peers" / "ts_client_modern.mjs"


@pytest.mark.parametrize("mode", ["pinned", "auto"])
def test_typescript_client_2x_in_2026_mode(node, everything_server, mode):
    check_2x_in_2026_mode(node, everything_server, mode)


def check_2x_in_2026_mode(node: str, server, mode: str) -> None:
    """The 2.x client against ``server.url`` (an everything server, or a cluster of them)."""
    args = ["--auto"] if mode == "auto" else []
    proc = subprocess.run([node, str(MODERN_DRIVER), server.url, *args], capture_output=True, text=True,
                          timeout=DRIVER_TIMEOUT, cwd=MODERN_DRIVER.parent)
    assert proc.returncode == 0, f"{proc.stderr}\nserver:\n{server.output()[-3000:]}"
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen["protocolVersion"] == "2026-07-28"
    assert seen["firstTool"] == "test_simple_text" and seen["toolCount"] >= 20
    assert seen["simple"] == "This is a simple text response for testing."
    assert seen["greeted"] == "Hello, Bea!"  # an input-required round trip, answered by its handler
    assert seen["sampled"] == "The model says: Paris"
    assert seen["region"] == "Region: Zürich"  # Mcp-Param-Region in the base64 form
    assert seen["prompt"] == "Use this context: "  # the prompt's elicitation, answered (no 'context' given)
    assert seen["asked"] == ["What is your name?", "What is the capital of France?",
                             "What context should the prompt use?"]


# -- tasks on the 2025-11-25 wire (client.experimental.tasks) ---------------------------------------

TASKS_DRIVER = Path(__file__).resolve().parent / "peers" / "ts_tasks.mjs"


def run_tasks_driver(node: str, url: str) -> dict:
    proc = subprocess.run([node, str(TASKS_DRIVER), url], capture_output=True, text=True, timeout=90,
                          cwd=TASKS_DRIVER.parent)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def check_tasks_run(seen: dict) -> None:
    """What the SDK saw of the everything app's task tools (the same locally and on Workers)."""
    assert seen["capabilities"]["tasks"] == {"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}}
    assert seen["taskSupport"]["slow_compute"] == "optional" and seen["taskSupport"]["confirm_delete"] == "required"
    runs = seen["runs"]
    slow = runs["slow_compute"]
    assert slow["types"][0] == "taskCreated" and slow["types"][-1] == "result" and slow["statuses"][-1] == "completed"
    assert slow["result"]["content"][0]["text"] == 'Computation "ts" completed after 1 seconds. Result: 42.'
    assert slow["result"]["_meta"]["io.modelcontextprotocol/related-task"] == {"taskId": slow["taskId"]}
    confirm = runs["confirm_delete"]
    assert confirm["result"]["content"][0]["text"] == "deleted 'a.txt'"  # the elicitation inside, answered
    assert seen["elicitations"] == [{"message": "Delete 'a.txt'?", "relatedTask": confirm["taskId"]}]
    for name in ("failing_job", "protocol_error_job"):  # 2025-11-25: a tool error ends 'failed' too
        assert runs[name]["statuses"][-1] == "failed" and runs[name]["types"][-1] == "error", runs[name]
    assert seen["cancel"] == {"status": "cancelled", "get": "cancelled"}
    listed = {t["taskId"]: t["status"] for t in seen["listed"]}
    assert len(listed) == 5 and listed[slow["taskId"]] == "completed" and listed[confirm["taskId"]] == "completed"
    assert seen["statusNotifications"] >= 3  # notifications/tasks/status on the GET stream


def test_typescript_sdk_runs_2025_tasks(node, everything_server):
    check_tasks_run(run_tasks_driver(node, everything_server.url))
