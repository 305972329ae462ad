"""Results out: a table on stdout, JSON and a PNG chart under bench/results/."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    cpu = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


def table(rows: list[dict], judged: list[dict]) -> str:
    lines = ["| scenario | server | metric | value | note |", "|---|---|---|---|---|"]
    for r in rows:
        v = r["value"]
        shown = "-" if v is None else (f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.3g}")
        lines.append(f"| {r['scenario']} | {r['server']} | {r['metric']} | {shown} {r['unit']} | {r['note']} |")
    lines += ["", "| target | this run | met |", "|---|---|---|"]
    for t in judged:
        lines.append(f"| {t['target']} | {t['shown']} | {'yes' if t['met'] else 'no'} |")
    return "\n".join(lines)


def chart(rows: list[dict], path: Path) -> str:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "no PNG chart: matplotlib is not installed (pip install -e '.[bench]')"
    panels = [("a", "tools/call, SSE (req/s)"), ("b", "tools/call, JSON (req/s)"), ("c", "handshakes/s")]
    fig, axes = plt.subplots(1, len(panels), figsize=(15, 4.5))
    for ax, (scenario, title) in zip(axes, panels):
        data = [(r["server"], r["value"]) for r in rows if r["scenario"] == scenario and r["value"]]
        ax.barh([d[0] for d in data], [d[1] for d in data], color="#4477aa")
        ax.set_title(title)
        ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return f"chart: {path}"


def write(rows: list[dict], judged: list[dict], quick: bool, profiles: list[dict] | None = None) -> list[str]:
    RESULTS.mkdir(parents=True, exist_ok=True)
    doc = {"machine": machine(), "quick": quick, "rows": rows, "targets": judged}
    if profiles:
        doc["profiles"] = profiles
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for name in (f"results-{stamp}.json", "latest.json"):
        (RESULTS / name).write_text(json.dumps(doc, indent=1))
    return [f"json: {RESULTS / 'latest.json'}", chart(rows, RESULTS / "latest.png")]
