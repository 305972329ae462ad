"""The official MCP conformance suite against ONE running examples.everything server:
both eras on one endpoint.

- 0.1.16 ``--suite all``: 32 scenarios (session era);
- 0.2.0-alpha.12 ``--suite all --spec-version 2025-11-25``: 33 (adds server-session-lifecycle);
- 0.2.0-alpha.12 ``--suite all --spec-version 2026-07-28``: 40 (the stateless era: discover,
  the header and ``_meta`` ladder, input-required round trips, caching, listen streams);
- 0.2.0-alpha.12 ``--suite all`` with no version: 65, every scenario it has, including the
  draft extensions: Tasks (both wires' scenarios) and Skills (sep-2640-*).

Every run must report 0 failed checks, and we also hold ourselves to 0 warnings by reading
every scenario's checks.json.
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from conftest import NODE_MODULES

ALPHA = NODE_MODULES / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"
SUITES = {
    "0.1.16": (NODE_MODULES / "conformance-0116" / "dist" / "index.js", [], 32),
    "0.2.0-alpha.12 all": (ALPHA, [], 65),
    "0.2.0-alpha.12 2025-11-25": (ALPHA, ["--spec-version", "2025-11-25"], 33),
    "0.2.0-alpha.12 2026-07-28": (ALPHA, ["--spec-version", "2026-07-28"], 40),
}


def check_suite(node: str, url: str, version: str, tmp_path) -> None:
    """Run one of SUITES against ``url``: every scenario passes, no check fails or warns."""
    script, extra, expected = SUITES[version]
    results = tmp_path / "results"
    proc = subprocess.run(
        [node, str(script), "server", "--url", url, "--suite", "all", *extra, "-o", str(results)],
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


@pytest.mark.peers
@pytest.mark.parametrize("version", list(SUITES))
def test_conformance_suite(version, node, everything_server, tmp_path):
    check_suite(node, everything_server.url, version, tmp_path)
