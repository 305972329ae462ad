"""The deploy guide (docs/deploy.md), followed as far as this machine allows.

Its configuration is merged into a copy of the project, and its commands run there: the
secret into ``.dev.vars``, the dry-run deployment, the bundle's budget and ``wrangler dev``,
whose answers then show that the custom domain, the origins, the limits and the secret took.
Only the network step (``wrangler secret put``, ``wrangler deploy``) is left out, and the
guide is read so that a command added to it without a test here fails.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib

import httpx
import pytest

from bench import wrangler
from bench.wrangler import Wrangler
from conftest import ROOT
from test_worker import _require_wrangler, vendor

pytestmark = pytest.mark.worker

GUIDE = (ROOT / "docs" / "deploy.md").read_text()
#: The guide's last step, which needs a Cloudflare account and the network.
NETWORK = ["npx wrangler secret put SESSION_SECRET", "npx wrangler deploy"]
#: Run elsewhere: by .ci/run (and the README's test command), and by the Worker fixtures.
RUN_ELSEWHERE = {"npm install": ".ci/run", "worker/vendor.sh": "tests/test_worker.py (vendor)",
                 "worker/vendor.sh --mcp 2": "tests/test_worker_sdk.py"}
#: Run by this module.
SECRET_COMMAND = next(line for line in GUIDE.splitlines() if line.startswith("printf 'SESSION_SECRET="))
DRY_RUN = "npx wrangler deploy --dry-run --outdir dist"
BUDGET = "python -m bench.bundle engine"
DEV = "npx wrangler dev"


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", GUIDE, re.S)


def _commands() -> list[str]:
    return [line.strip() for block in _blocks("sh") for line in block.splitlines()
            if line.strip() and not line.strip().startswith("#")]


def test_every_command_of_the_guide_runs_in_the_tests_but_the_network_step():
    commands = _commands()
    assert commands[-len(NETWORK):] == NETWORK, "the network step is the guide's last"
    here = {SECRET_COMMAND, DRY_RUN, BUDGET, DEV}
    untested = set(commands) - here - set(RUN_ELSEWHERE) - set(NETWORK)
    assert not untested, f"docs/deploy.md has commands no test runs: {untested}"
    assert here <= set(commands)


def _merged_config() -> dict:
    """The shipped wrangler.toml with the guide's toml block laid over it."""
    config = tomllib.loads((ROOT / "wrangler.toml").read_text())
    (snippet,) = _blocks("toml")
    for key, value in tomllib.loads(snippet).items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    return config


def test_every_bound_durable_object_class_has_its_migration_and_the_guide_lists_them():
    config = tomllib.loads((ROOT / "wrangler.toml").read_text())
    introduced = {}
    for migration in config["migrations"]:
        for cls in migration.get("new_sqlite_classes", []):
            assert cls not in introduced, f"{cls} introduced twice"
            introduced[cls] = migration["tag"]
    tags = [m["tag"] for m in config["migrations"]]
    assert len(tags) == len(set(tags))
    bound = {b["class_name"] for b in config["durable_objects"]["bindings"]}
    assert bound <= set(introduced), f"bound without a migration: {bound - set(introduced)}"
    listed = dict(re.findall(r"^\| `(\w+)` \| `(\w+)` \|", GUIDE, re.M))
    assert listed == {tag: cls for cls, tag in introduced.items()}


def _session_ids():
    spec = importlib.util.spec_from_file_location("worker_session_ids", ROOT / "worker" / "session_ids.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _initialize(url: str, host: str, origin: str | None = None) -> httpx.Response:
    headers = {"host": host, "accept": "application/json, text/event-stream", "content-type": "application/json"}
    if origin:
        headers["origin"] = origin
    return httpx.post(url, headers=headers, timeout=30, json={
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "guide", "version": "0"}}})


def _message(r: httpx.Response) -> dict:
    """The JSON-RPC message of a reply, whole JSON or one SSE event."""
    if r.headers.get("content-type", "").startswith("text/event-stream"):
        return json.loads(next(line[5:] for line in r.text.splitlines() if line.startswith("data:")))
    return r.json()


def test_the_guide_s_configuration_checks_builds_and_serves(tmp_path):
    _require_wrangler()
    vendor()
    project = tmp_path / "project"
    project.mkdir()
    shutil.copytree(ROOT / "worker", project / "worker", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "python_modules", project / "python_modules", ignore=shutil.ignore_patterns("__pycache__"))
    (project / "node_modules").symlink_to(ROOT / "node_modules")
    config = _merged_config()
    (project / "wrangler.json").write_text(json.dumps(config, indent=2))
    env = wrangler.environment()

    # 3. the secret, into .dev.vars
    subprocess.run(["bash", "-c", SECRET_COMMAND], cwd=project, check=True, timeout=60)
    (secret,) = re.findall(r"^SESSION_SECRET=([0-9a-f]{64})$", (project / ".dev.vars").read_text(), re.M)

    # 4. the dry run, and the budget
    done = subprocess.run(DRY_RUN.split(), cwd=project, env=env, capture_output=True, text=True, timeout=300)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    assert "Total Upload" in out and "SESSIONS" in out and "TASKS" in out, out[-3000:]
    assert (project / "dist" / "entry.py").exists() or any((project / "dist").rglob("entry.py"))
    budget = subprocess.run([sys.executable, *BUDGET.split()[1:]], cwd=ROOT, env={**os.environ, **env},
                            capture_output=True, text=True, timeout=300)
    assert budget.returncode == 0 and "(budget 1 MiB compressed)" in budget.stdout, budget.stdout + budget.stderr

    # 5. wrangler dev, with the guide's variables and .dev.vars
    variables = config["vars"]
    server = Wrangler(variables["MCP_APP"], tempfile.mkdtemp(prefix="mcp-actors-guide-"), root=project)
    try:
        ours = _initialize(server.url, "mcp.example.com", "https://app.example.com")
        assert ours.status_code == 200, ours.text
        sid = ours.headers["mcp-session-id"]
        assert _session_ids().genuine(secret, sid), "the id is signed with .dev.vars' SESSION_SECRET"
        assert not _session_ids().genuine("another-secret", sid)
        assert _message(ours)["result"]["serverInfo"]["name"] == "mcp-actors-everything"
        assert _initialize(server.url, "mcp.example.com", "https://evil.example.net").status_code == 403
        big = httpx.post(server.url, headers={"host": "mcp.example.com", "accept": "application/json, text/event-stream",
                                              "content-type": "application/json"},
                         content=b'{"pad":"' + b"x" * int(variables["MAX_BODY"]) + b'"}', timeout=30)
        assert big.status_code == 413 and _message(big)["error"]["code"] == -32600
    finally:
        server.stop()
    # wrangler dev serves every request as the route's host, as Cloudflare's edge would for
    # the custom domain: without it in ALLOWED_HOSTS, each is refused (421), naming it.
    narrow = Wrangler(variables["MCP_APP"], tempfile.mkdtemp(prefix="mcp-actors-guide-"), root=project,
                      variables={"ALLOWED_HOSTS": "localhost,127.0.0.1,[::1],*.workers.dev"})
    try:
        refused = _initialize(narrow.url, "mcp.example.com")
        assert refused.status_code == 421 and "mcp.example.com" in _message(refused)["error"]["message"], refused.text
    finally:
        narrow.stop()
