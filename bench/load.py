"""The load: Debian's wrk (C) with Lua scripts that set the MCP headers and give every
request a unique JSON-RPC id; pinned to the other core."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from .servers import cores, pinned

HEADERS = """
local function base_headers(sid)
  local h = {}
  h["Content-Type"] = "application/json"
  h["Accept"] = "application/json, text/event-stream"
  h["MCP-Protocol-Version"] = "2025-11-25"
  if sid ~= nil and sid ~= "" then h["Mcp-Session-Id"] = sid end
  return h
end
local function modern_headers(method, name)
  local h = base_headers(nil)
  h["MCP-Protocol-Version"] = "2026-07-28"
  h["Mcp-Method"] = method
  h["Mcp-Name"] = name
  return h
end
local counter = 0
local function next_id()
  counter = counter + 1
  return (tid or 1) * 100000000 + counter
end
local threads = 0
function setup(thread) threads = threads + 1; thread:set("tid", threads) end
function done(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d %d %d\\n", summary.requests, summary.duration,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""

CALL = HEADERS + """
local sid = os.getenv("MCP_SID")
function request()
  return wrk.format("POST", nil, base_headers(sid), string.format(
    '{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello"}}}', next_id()))
end
"""

# A 2026-07-28 tools/call: no session; the version, method and name mirrored into headers
# and the request's facts in _meta.
MODERN_CALL = HEADERS + """
function request()
  return wrk.format("POST", nil, modern_headers("tools/call", "echo"), string.format(
    '{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello"},' ..
    '"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28",' ..
    '"io.modelcontextprotocol/clientCapabilities":{}}}}', next_id()))
end
"""

# 2026-07-28 with the tasks extension declared: create a task (tools/call of a task tool),
# or poll one (tasks/get of MCP_TASK).
_TASKS_META = ('"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28",'
               '"io.modelcontextprotocol/clientCapabilities":{"extensions":{"io.modelcontextprotocol/tasks":{}}}}')

TASK_CREATE = HEADERS + """
function request()
  return wrk.format("POST", nil, modern_headers("tools/call", "job"), string.format(
    '{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"job","arguments":{"text":"hello"},' ..
    '""" + _TASKS_META + """}}', next_id()))
end
"""

TASK_GET = HEADERS + """
local task = os.getenv("MCP_TASK")
function request()
  return wrk.format("POST", nil, modern_headers("tasks/get", task), string.format(
    '{"jsonrpc":"2.0","id":%d,"method":"tasks/get","params":{"taskId":"%s",' ..
    '""" + _TASKS_META + """}}', next_id(), task))
end
"""

# One connection per thread (-t N -c N): each thread alternates initialize and
# notifications/initialized, reading the session id from the initialize response.
HANDSHAKE = HEADERS + """
local state, sid = "init", nil
local init = '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25",' ..
  '"capabilities":{},"clientInfo":{"name":"bench","version":"0"}}}'
function request()
  if state == "init" then
    local h = base_headers(nil); h["MCP-Protocol-Version"] = nil
    return wrk.format("POST", nil, h, init)
  end
  return wrk.format("POST", nil, base_headers(sid), '{"jsonrpc":"2.0","method":"notifications/initialized"}')
end
function response(status, headers, body)
  if state == "init" then
    sid = headers["mcp-session-id"] or headers["Mcp-Session-Id"]
    state = "notify"
  else
    state = "init"
  end
end
"""


class WrkMissing(RuntimeError):
    pass


def wrk_path() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise WrkMissing("wrk is not installed: `apt-get install wrk` (Debian) and run again")
    return path


def run(url: str, script: str, seconds: float, connections: int, threads: int = 1,
        env: dict | None = None) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    cmd = pinned([wrk_path(), "-t", str(threads), "-c", str(connections), "-d", f"{max(1, round(seconds))}s",
                  "--timeout", "10s", "-s", f.name, url], cores()[1])
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60,
                         env={**__import__("os").environ, **(env or {})})
    Path(f.name).unlink()
    m = re.search(r"^RESULT (\d+) (\d+) (\d+) (\d+) (\d+)$", out.stdout, re.M)
    if not m:
        raise RuntimeError(f"wrk said: {out.stdout}\n{out.stderr}")
    requests, duration_us, errors, p50, p99 = map(int, m.groups())
    return {"requests": requests, "seconds": duration_us / 1e6, "errors": errors,
            "rps": requests / (duration_us / 1e6), "p50_ms": p50 / 1000, "p99_ms": p99 / 1000}
