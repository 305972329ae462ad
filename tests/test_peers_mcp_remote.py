"""mcp-remote 0.15.1 (the stdio <-> remote MCP proxy many desktop clients use) in front of the demo server.

The test plays the stdio client: newline-delimited JSON-RPC on mcp-remote's stdin and
stdout, answering the server-to-client requests the proxy forwards (sampling). Every wait
is bounded; the proxy runs in its own process group, which is killed at the end whatever
happened.

The proxy speaks Streamable HTTP to ``/mcp`` (``--transport http-only``) and the 2024-11-05
HTTP+SSE transport to ``/sse``: asked to (``--transport sse-only``), and by falling back to it
in its default http-first mode when its POST to ``/sse`` is answered 405.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from conftest import DEMO_TOOLS

pytestmark = pytest.mark.peers

MCP_REMOTE = Path(__file__).resolve().parent.parent / "node_modules" / "mcp-remote" / "dist" / "proxy.js"
STARTUP_TIMEOUT = 30.0  # mcp-remote probes OAuth metadata and opens a test session before it reads stdin
REQUEST_TIMEOUT = 15.0
EXIT_TIMEOUT = 15.0

_EOF = object()


class StdioPeer:
    """mcp-remote as a subprocess, spoken to in newline-delimited JSON-RPC."""

    def __init__(self, node: str, url: str, config_dir: Path, transport: str | None = "http-only",
                 extra: list[str] | None = None):
        """``transport``: mcp-remote's ``--transport`` strategy; None leaves the flag out (http-first);
        ``extra``: more of its flags (``--header "Authorization: Bearer ..."``)."""
        flags = (["--transport", transport] if transport else []) + (extra or [])
        self.proc = subprocess.Popen(
            [node, str(MCP_REMOTE), url, *flags],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, bufsize=1, start_new_session=True,
            env={**os.environ, "MCP_REMOTE_CONFIG_DIR": str(config_dir)},
        )
        self.inbox: queue.Queue[Any] = queue.Queue()
        self.stderr_lines: list[str] = []
        self.received: list[dict] = []  # every message from stdout, in order
        self._out = threading.Thread(target=self._read_stdout, daemon=True)
        self._err = threading.Thread(target=self._read_stderr, daemon=True)
        self._out.start()
        self._err.start()

    def _read_stdout(self) -> None:
        try:
            for line in self.proc.stdout:
                if line.strip():
                    self.inbox.put(line)
        finally:
            self.inbox.put(_EOF)

    def _read_stderr(self) -> None:
        for line in self.proc.stderr:
            self.stderr_lines.append(line)

    def stderr(self) -> str:
        return "".join(self.stderr_lines)

    def send(self, msg: dict) -> None:
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()

    def next_message(self, deadline: float) -> dict:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"timed out waiting for mcp-remote\nstderr:\n{self.stderr()}")
        try:
            item = self.inbox.get(timeout=remaining)
        except queue.Empty:
            raise AssertionError(f"timed out waiting for mcp-remote\nstderr:\n{self.stderr()}") from None
        if item is _EOF:
            raise AssertionError(f"mcp-remote closed stdout (exit {self.proc.poll()})\nstderr:\n{self.stderr()}")
        try:
            msg = json.loads(item)
        except json.JSONDecodeError:
            raise AssertionError(f"mcp-remote wrote a non-JSON line on stdout: {item!r}") from None
        self.received.append(msg)
        return msg

    def request(self, id_: int, method: str, params: dict | None = None, *,
                on_server_request: Callable[[dict], dict] | None = None,
                timeout: float = REQUEST_TIMEOUT) -> tuple[dict, list[dict]]:
        """Send a request; return its response and everything else that arrived before it."""
        msg: dict[str, Any] = {"jsonrpc": "2.0", "id": id_, "method": method}
        if params is not None:
            msg["params"] = params
        self.send(msg)
        deadline = time.monotonic() + timeout
        before: list[dict] = []
        while True:
            got = self.next_message(deadline)
            if "method" not in got and got.get("id") == id_:
                return got, before
            before.append(got)
            if "method" in got and "id" in got:  # a server-to-client request forwarded by the proxy
                if on_server_request is None:
                    raise AssertionError(f"unexpected server request during {method}: {got}")
                self.send({"jsonrpc": "2.0", "id": got["id"], "result": on_server_request(got)})

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                stream.close()
            except (OSError, ValueError):
                pass


@pytest.fixture
def peer_factory(node, tmp_path):
    peers: list[StdioPeer] = []

    def make(url: str, transport: str | None = "http-only") -> StdioPeer:
        peer = StdioPeer(node, url, tmp_path, transport)
        peers.append(peer)
        return peer

    yield make
    for peer in peers:
        peer.kill()


def text_of(response: dict) -> str:
    assert "error" not in response, response
    result = response["result"]
    assert result.get("isError") is not True, result
    return "".join(block["text"] for block in result["content"])


def answer_sampling(req: dict) -> dict:
    """Our fake LLM: answers a forwarded sampling/createMessage with the question echoed."""
    assert req["method"] == "sampling/createMessage", req
    question = req["params"]["messages"][0]["content"]["text"]
    return {"role": "assistant", "model": "pytest-fake", "stopReason": "endTurn",
            "content": {"type": "text", "text": f"LLM says: {question}"}}


def proxy_core_session(peer: StdioPeer, protocol_version: str) -> None:
    """Requests 1-5 through the proxy, every value checked: initialize (forwarded verbatim, so the
    server sees our protocol version), tools/list, echo, long_task with its progress notifications
    before its result, and ask_llm with the server's sampling request answered by us."""
    # -- handshake ---------------------------------------------------------------------------------
    init, before = peer.request(1, "initialize", {
        "protocolVersion": protocol_version,
        "capabilities": {"sampling": {}, "elicitation": {}},
        "clientInfo": {"name": "pytest-stdio", "version": "0.0.0"},
    }, timeout=STARTUP_TIMEOUT)
    assert before == []
    result = init["result"]
    assert result["protocolVersion"] == protocol_version
    assert result["serverInfo"] == {"name": "mcp-actors-demo", "version": "0.1.0"}
    assert result["instructions"] == "A demo of mcp-actors: try echo and long_task."
    assert result["capabilities"]["resources"] == {"subscribe": True, "listChanged": True}
    peer.send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    # -- tools/list ------------------------------------------------------------------------------
    tools, before = peer.request(2, "tools/list", {})
    assert before == []
    by_name = {t["name"]: t for t in tools["result"]["tools"]}
    assert sorted(by_name) == DEMO_TOOLS
    assert by_name["echo"]["inputSchema"] == {
        "type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}

    # -- tools/call echo ---------------------------------------------------------------------------
    echo, before = peer.request(3, "tools/call", {"name": "echo", "arguments": {"text": "through the proxy"}})
    assert before == []
    assert echo["result"] == {"content": [{"type": "text", "text": "through the proxy"}]}

    # -- progress notifications arrive, in order, before the result ------------------------------------
    done, before = peer.request(4, "tools/call", {
        "name": "long_task", "arguments": {"steps": 3, "interval_s": 0.05}, "_meta": {"progressToken": "tok-4"},
    })
    assert before == [
        {"jsonrpc": "2.0", "method": "notifications/progress",
         "params": {"progressToken": "tok-4", "progress": step, "total": 3, "message": f"step {step}/3"}}
        for step in (1, 2, 3)
    ]
    assert text_of(done).startswith("long_task finished 3 steps in ")

    # -- sampling: the proxy forwards the server's request to us and our answer back --------------------------
    answered, before = peer.request(5, "tools/call", {"name": "ask_llm", "arguments": {"question": "Why is the sky blue?"}},
                                    on_server_request=answer_sampling)
    assert [m.get("method") for m in before] == ["sampling/createMessage"]
    assert before[0]["params"] == {
        "messages": [{"role": "user", "content": {"type": "text", "text": "Why is the sky blue?"}}],
        "maxTokens": 200,
    }
    assert text_of(answered) == "LLM says: Why is the sky blue?"


def shut_down_cleanly(peer: StdioPeer, config_dir: Path) -> None:
    """Close stdin: the proxy must exit 0 in time, leaving nothing unread and no OAuth state."""
    peer.proc.stdin.close()
    try:
        code = peer.proc.wait(timeout=EXIT_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"mcp-remote did not exit within {EXIT_TIMEOUT} s of stdin EOF\nstderr:\n{peer.stderr()}")
    # Both readers drain to EOF before we look: the process has exited, but its last lines
    # ("Shutting down") may still be in the pipe, unread by the reader thread.
    peer._out.join(timeout=5)
    peer._err.join(timeout=5)
    assert code == 0, peer.stderr()
    # nothing was left unread on stdout (no stray notification or duplicate response)
    leftovers = []
    while True:
        try:
            item = peer.inbox.get_nowait()
        except queue.Empty:
            break
        if item is not _EOF:
            leftovers.append(item)
    assert leftovers == []
    # no OAuth flow was started against our server: nothing was stored in the config dir
    assert [p.name for p in config_dir.rglob("*") if p.is_file()] == []
    assert "Shutting down" in peer.stderr()


def test_mcp_remote_proxies_a_full_session(start_server, peer_factory, tmp_path):
    check_full_session(peer_factory, start_server(None).url, tmp_path)


def check_full_session(peer_factory: Callable[..., StdioPeer], url: str, config_dir: Path) -> None:
    """The proxy over Streamable HTTP to the demo app at ``url`` (one server, or a cluster's balancer)."""
    peer = peer_factory(url)
    proxy_core_session(peer, "2025-06-18")

    # -- resources/read ----------------------------------------------------------------------------------------
    about, before = peer.request(6, "resources/read", {"uri": "demo://about"})
    assert before == []
    assert about["result"]["contents"] == [{
        "uri": "demo://about",
        "mimeType": "text/markdown",
        "text": "# mcp-actors demo\nSessions live in actors; streams survive disconnects.\n",
    }]

    # -- prompts/get -------------------------------------------------------------------------------------------
    prompt, before = peer.request(7, "prompts/get", {"name": "summarize", "arguments": {"text": "Proxies relay."}})
    assert before == []
    assert prompt["result"] == {
        "description": "Ask for a short summary of a text",
        "messages": [{"role": "user", "content": {
            "type": "text", "text": "Summarize the following text in one paragraph:\n\nProxies relay."}}],
    }

    # -- a protocol error is relayed as a JSON-RPC error, not swallowed ---------------------------------------------
    missing, before = peer.request(8, "resources/read", {"uri": "demo://nope"})
    assert before == []
    assert missing["error"]["code"] == -32002
    assert "demo://nope" in missing["error"]["message"]

    shut_down_cleanly(peer, config_dir)
    assert "Connected to remote server using StreamableHTTPClientTransport" in peer.stderr()


# -- the 2024-11-05 HTTP+SSE transport at /sse ------------------------------------------------------


def test_mcp_remote_sse_only(start_server, peer_factory, tmp_path):
    check_sse_only(peer_factory, start_server(None).url, tmp_path)


def check_sse_only(peer_factory: Callable[..., StdioPeer], url: str, config_dir: Path) -> None:
    """``--transport sse-only`` to the /sse beside ``url`` (the demo app's /mcp)."""
    peer = peer_factory(url.replace("/mcp", "/sse"), "sse-only")
    proxy_core_session(peer, "2024-11-05")
    shut_down_cleanly(peer, config_dir)
    log = peer.stderr()
    assert "Using transport strategy: sse-only" in log
    assert "Connected to remote server using SSEClientTransport" in log
    assert "StreamableHTTPClientTransport" not in log  # never tried the other transport
    assert "Received error" not in log
    assert "Remote SSE stream reconnected" not in log  # one stream for the whole session


def test_mcp_remote_http_first_falls_back_to_sse(start_server, peer_factory, tmp_path):
    """No --transport flag: mcp-remote POSTs an initialize to /sse first. The 405 (Allow: GET) we
    answer must make it fall back to HTTP+SSE at once, with no second fallback and no auth flow."""
    check_http_first_falls_back_to_sse(peer_factory, start_server(None).url, tmp_path)


def check_http_first_falls_back_to_sse(peer_factory: Callable[..., StdioPeer], url: str, config_dir: Path) -> None:
    """No ``--transport``, pointed at the /sse beside ``url``: one 405, then HTTP+SSE."""
    peer = peer_factory(url.replace("/mcp", "/sse"), None)
    proxy_core_session(peer, "2024-11-05")
    shut_down_cleanly(peer, config_dir)
    log = peer.stderr()
    assert "Using transport strategy: http-first" in log
    assert log.count("Received error (status 405)") == 1, log
    assert "Method Not Allowed: the HTTP+SSE stream endpoint takes GET, not POST" in log  # our 405's body
    assert log.count("Recursively reconnecting for reason: falling-back-to-alternate-transport") == 1, log
    assert "Using transport strategy: sse-only" in log
    assert "Connected to remote server using SSEClientTransport" in log
    assert "Connected to remote server using StreamableHTTPClientTransport" not in log
    assert "Already attempted transport fallback" not in log
    assert "Authentication required" not in log
    assert "Remote SSE stream reconnected" not in log
