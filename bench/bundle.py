"""The Worker's bundle against its budget: what ``wrangler deploy --dry-run`` would upload.

Python Workers must start within the platform's start-up limit and fit its size limit (3 MiB
compressed on the free plan, 10 MiB on paid plans). The budgets are written here, once; the
Cloudflare tier of the tests measures the engine's bundle and the bundle with the official
SDK vendored against them, and fails when one passes its budget.

``python -m bench.bundle [engine|sdk]`` prints the sizes of whatever is vendored now.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

from .wrangler import ROOT, environment

MIB = 1024 * 1024
#: Compressed (gzip) bytes each bundle may take: the engine alone keeps well inside the free
#: plan's 3 MiB; with the SDK it must stay within the paid plans' 10 MiB.
BUDGETS = {"engine": 1 * MIB, "sdk": 10 * MIB}

_TOTAL = re.compile(r"Total Upload:\s*([\d.]+)\s*KiB\s*/\s*gzip:\s*([\d.]+)\s*KiB")


class OverBudget(AssertionError):
    pass


def measure(root: Path = ROOT) -> tuple[int, int]:
    """(bytes, gzip bytes) of the Worker in ``root`` as ``wrangler deploy --dry-run`` reports them."""
    with tempfile.TemporaryDirectory(prefix="mcp-actors-bundle-") as out:
        wrangler = ROOT / "node_modules" / ".bin" / "wrangler"
        done = subprocess.run([str(wrangler), "deploy", "--dry-run", "--outdir", out], cwd=root,
                              env=environment(), capture_output=True, text=True, timeout=300)
    found = _TOTAL.search(done.stdout + done.stderr)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"wrangler deploy --dry-run failed ({done.returncode}):\n{(done.stdout + done.stderr)[-3000:]}")
    return int(float(found.group(1)) * 1024), int(float(found.group(2)) * 1024)


def check(kind: str, root: Path = ROOT) -> str:
    """The sizes, as a line to print; raises OverBudget when the compressed size passes
    ``BUDGETS[kind]``."""
    raw, packed = measure(root)
    budget = BUDGETS[kind]
    line = (f"{kind} bundle: {raw / MIB:.2f} MiB, {packed / MIB:.2f} MiB compressed "
            f"(budget {budget / MIB:.0f} MiB compressed)")
    if packed > budget:
        raise OverBudget(f"{line}: over budget by {(packed - budget) / MIB:.2f} MiB")
    return line


if __name__ == "__main__":
    print(check(sys.argv[1] if len(sys.argv) > 1 else "engine"))
