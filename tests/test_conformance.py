"""The official MCP conformance suite, both pinned versions, against examples.everything.

0.1.16 ``--suite all`` has 32 scenarios; 0.2.0-alpha.12 ``--suite all --spec-version
2025-11-25`` has 33 (adds server-session-lifecycle). Both must report 0 failed checks, and
we also hold ourselves to 0 warnings by reading every scenario's checks.json.
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from conftest import NODE_MODULES

SUITES = {
    "0.1.16": (NODE_MODULES / "conformance-0116" / "dist" / "index.js", [], 32),
    "0.2.0-alpha.12": (NODE_MODULES / "@modelcontextprotocol" / "conformance" / "dist" / "index.js",
                       ["--spec-version", "2025-11-25"], 33),
}


@pytest.mark.peers
@pytest.mark.parametrize("version", list(SUITES))
def test_conformance_suite(version, node, everything_server, tmp_path):
    script, extra, expected = SUITES[version]
    results = tmp_path / "results"
    proc = subprocess.run(
        [node, str(script), "server", "--url", everything_server.url, "--suite", "all", *extra, "-o", str(results)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    out = proc.stdout + proc.stderr
    summary = out[out.find("=== SUMMARY ==="):]
    scenarios = re.findall(r"^([✓✗]) (\S+): (\d+) passed, (\d+) failed", summary, re.M)
    failed = [name for mark, name, _, _ in scenarios if mark != "✓"]
    assert proc.returncode == 0, f"conformance {version} failed: {failed}\n{summary}"
    assert len(scenarios) == expected, summary
    assert not failed, summary
    total = re.search(r"^Total: (\d+) passed, (\d+) failed$", summary, re.M)
    assert total and int(total.group(2)) == 0 and int(total.group(1)) >= expected

    not_clean = []
    for checks_file in results.glob("*/checks.json"):
        for check in json.loads(checks_file.read_text()):
            if check["status"] in ("FAILURE", "WARNING"):
                not_clean.append(f"{checks_file.parent.name}: {check['status']} {check['id']}: "
                                 f"{check.get('errorMessage') or check.get('description')}")
    assert len(list(results.glob("*/checks.json"))) >= expected
    assert not not_clean, "\n".join(not_clean)
