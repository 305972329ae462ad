"""The CLI: prints its URL, loads apps by module:attribute, stops cleanly on Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx

from conftest import ROOT, free_port
from sse_client import headers, initialize


def test_ctrl_c_stops_cleanly_with_open_streams(start_server):
    server = start_server(None)
    with httpx.Client(timeout=10) as c:
        sid = initialize(c, server.url)
        with c.stream("GET", server.url, headers={**headers(sid), "accept": "text/event-stream"}) as r:
            assert r.status_code == 200
            body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                    "params": {"name": "long_task", "arguments": {"steps": 100, "interval_s": 0.1}}}
            with httpx.Client(timeout=10) as c2, c2.stream("POST", server.url, json=body, headers=headers(sid)):
                started = time.monotonic()
                os.killpg(server.proc.pid, signal.SIGINT)
                code = server.proc.wait(timeout=10)
    assert time.monotonic() - started < 8
    assert code == 0
    out = server.output()
    assert f"at http://127.0.0.1:{server.port}/mcp" in out
    assert "Traceback" not in out


def test_bad_app_spec_is_a_clear_error():
    for spec, words in (("no_such_module:app", "cannot import"), ("engine.demo:echo", "is not an engine.App")):
        proc = subprocess.run([sys.executable, "-m", "engine", "serve", spec, "--port", str(free_port())],
                              cwd=ROOT, capture_output=True, text=True, timeout=20)
        assert proc.returncode != 0
        assert words in proc.stderr and "Traceback" not in proc.stderr


def test_the_readme_documents_every_setting_with_its_default():
    """Every flag in the settings table is in the settings page's tables, with its Worker variable and
    its default as the code has it (so the two cannot drift)."""
    from engine.actors.settings import OPTIONS, shown

    readme = (ROOT / "docs" / "http-and-limits.md").read_text()
    rows = {line.split("|")[1].strip(): line for line in readme.splitlines() if line.startswith("| `--")}
    for option in OPTIONS:
        row = rows.get(f"`{option.flag}`")
        assert row is not None, f"{option.flag} is not in docs/http-and-limits.md"
        cells = [c.strip() for c in row.split("|")[1:-1]]
        assert cells[1] == (f"`{option.env}`" if option.env else "—"), option.flag
        assert cells[2] == shown(option), (option.flag, cells[2], shown(option))
