"""Flame graphs of the engine under the bench's own load, kept with the results.

`python -m bench --profile` samples every mcp-actors server with py-spy (a sampling profiler
that attaches from outside, so the server runs its ordinary code) for the whole measured
window of the throughput scenarios. Each recording is kept twice under bench/results/:
the collapsed stacks (`.collapsed`: the flame graph's data, which speedscope.app and
flamegraph.pl open) and an SVG flame graph drawn from them. A summary says where the CPU
went by layer (uvicorn, the event loop, the protocol core, the actors, the SQLite store...),
which is how docs/benchmarks.md explains the targets that are out of reach.

Figures measured while profiling are marked as such: the sampler takes CPU from the load's
core, so a profiled run's throughput is not the one to compare.
"""

from __future__ import annotations

import html
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

from .report import RESULTS
from .servers import cores, pinned

RATE = 250  # samples a second: enough for a 10 s window, cheap enough to leave the load alone

# Where a sample's CPU went, by the file of its innermost Python frame; the first match wins.
# C code (httptools, msgspec, sqlite3, uvloop) is counted in the Python frame that called it.
LAYERS = (
    ("SQLite store", ("engine/actors/sqlite_store.py", "sqlite3/")),
    ("protocol core", ("engine/protocol/",)),
    ("actors and front", ("engine/actors/",)),
    ("app surface and handler", ("engine/app/", "bench/apps.py")),
    ("local runtime adapter", ("engine/local/",)),
    ("uvicorn and httptools", ("uvicorn/", "httptools", "h11/")),
    ("event loop", ("asyncio/", "uvloop", "selectors.py")),
)

FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")


def available() -> str | None:
    """Why profiling cannot run here, or None."""
    if not _py_spy():
        return "py-spy is not installed (pip install -e '.[bench]')"
    return None


def _py_spy() -> str | None:
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


class Recording:
    """py-spy attached to one server for ``seconds``; ``finish()`` writes the files."""

    def __init__(self, pid: int, name: str, seconds: float):
        RESULTS.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.collapsed = RESULTS / f"profile-{name}.collapsed"
        cmd = [_py_spy() or "py-spy", "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))),
               "--rate", str(RATE), "--nonblocking", "--format", "raw", "--output", str(self.collapsed)]
        self.proc = subprocess.Popen(pinned(cmd, cores()[1]), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def finish(self) -> dict:
        """Wait for py-spy; write the SVG; return the summary (layer shares, top functions)."""
        _, err = self.proc.communicate(timeout=120)
        if self.proc.returncode != 0 or not self.collapsed.exists():
            return {"name": self.name, "error": (err or b"").decode(errors="replace").strip()[-300:]}
        stacks = read_collapsed(self.collapsed.read_text())
        svg = self.collapsed.with_suffix(".svg")
        svg.write_text(flame_svg(stacks, f"mcp-actors under load: {self.name}"))
        return {"name": self.name, "svg": str(svg), "collapsed": str(self.collapsed), **summarize(stacks)}


def read_collapsed(text: str) -> list[tuple[list[str], int]]:
    """``frame;frame;...;leaf count`` lines, as (frames root first, samples); the process and
    thread pseudo-frames py-spy puts first are dropped."""
    stacks = []
    for line in text.splitlines():
        path, _, count = line.rpartition(" ")
        if not path or not count.isdigit():
            continue
        frames = [f for f in path.split(";") if not f.startswith(("process ", "thread "))]
        if frames:
            stacks.append((frames, int(count)))
    return stacks


def _file(frame: str) -> str:
    m = FRAME.match(frame)
    return m.group("file") if m else frame


def _func(frame: str) -> str:
    m = FRAME.match(frame)
    if not m:
        return frame
    return f"{m.group('func')} ({m.group('file').rsplit('site-packages/', 1)[-1]})"


def layer_of(frame: str) -> str:
    file = _file(frame)
    for name, marks in LAYERS:
        if any(mark in file for mark in marks):
            return name
    return "other"


def summarize(stacks: list[tuple[list[str], int]], top: int = 12) -> dict:
    """Self time by layer and by function, as shares of all samples."""
    total = sum(n for _, n in stacks) or 1
    layers: Counter[str] = Counter()
    funcs: Counter[str] = Counter()
    for frames, n in stacks:
        layers[layer_of(frames[-1])] += n
        funcs[_func(frames[-1])] += n
    return {"samples": total,
            "layers": {k: round(100 * v / total, 1) for k, v in layers.most_common()},
            "top": [(k, round(100 * v / total, 1)) for k, v in funcs.most_common(top)]}


def describe(summary: dict) -> str:
    if "error" in summary:
        return f"profile {summary['name']}: not recorded ({summary['error']})"
    layers = ", ".join(f"{k} {v}%" for k, v in summary["layers"].items())
    return f"profile {summary['name']}: {summary['samples']:,} samples; self time by layer: {layers}; svg: {summary['svg']}"


def flame_svg(stacks: list[tuple[list[str], int]], title: str, width: int = 1200, row: int = 16) -> str:
    """A plain flame graph: one rectangle per frame, as wide as its samples, root at the bottom,
    its name and share in a tooltip."""
    tree: dict = {}
    for frames, n in stacks:
        node = tree
        for f in frames:
            child = node.setdefault(f, [0, {}])
            child[0] += n
            node = child[1]
    total = sum(n for _, n in stacks) or 1
    rects: list[tuple[float, int, float, str, int]] = []
    depth_max = 0

    def draw(children: dict, x: float, depth: int) -> None:
        nonlocal depth_max
        depth_max = max(depth_max, depth)
        for frame, (n, grand) in sorted(children.items()):
            w = width * n / total
            if w >= 0.3:
                rects.append((x, depth, w, frame, n))
                draw(grand, x, depth + 1)
            x += w

    draw(tree, 0.0, 0)
    height = (depth_max + 2) * row + 40
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="monospace" '
           f'font-size="11"><text x="4" y="14">{html.escape(title)} ({total:,} samples)</text>']
    palette = {name: color for (name, _), color in zip(LAYERS, (
        "#d9a441", "#5b8def", "#7ab87a", "#c77dd1", "#e06f6f", "#f0b27a", "#a0a0a0"))}
    x = 4.0
    for name, color in [*palette.items(), ("other", "#cccccc")]:  # the legend, under the title
        out.append(f'<rect x="{x:.0f}" y="20" width="10" height="10" fill="{color}"/>'
                   f'<text x="{x + 13:.0f}" y="29">{html.escape(name)}</text>')
        x += 20 + 7 * len(name)
    for x, depth, w, frame, n in rects:
        y = height - (depth + 1) * row
        label = _func(frame)
        text = html.escape(label[: int(w / 7)]) if w > 21 else ""
        out.append(f'<g><title>{html.escape(label)}: {n:,} samples, {100 * n / total:.1f}%</title>'
                   f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{row - 1}" '
                   f'fill="{palette.get(layer_of(frame), "#cccccc")}"/>'
                   f'<text x="{x + 2:.1f}" y="{y + row - 4}">{text}</text></g>')
    out.append("</svg>")
    return "\n".join(out)
