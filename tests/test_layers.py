"""The package's shape: no import cycle, imports pointing one way between the layers, and
no protocol rule in a runtime adapter.

Imports are read from the source with ``ast`` (function-level and ``TYPE_CHECKING``
imports included: a cycle hidden there is still a cycle in the design).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENGINE = ROOT / "engine"

#: Which engine layers each layer may import. The app surface sits on the protocol core,
#: the actors on both, the runtimes on everything; nothing imports back up.
ALLOWED = {
    "protocol": {"protocol"},
    "app": {"protocol", "app"},
    "actors": {"protocol", "app", "actors"},
    "local": {"protocol", "app", "actors", "local"},
    # The cluster is the local runtime with its actors' homes in a shared database.
    "cluster": {"protocol", "app", "actors", "local", "cluster"},
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in ENGINE.rglob("*.py")}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Engine modules that ``name`` imports (relative imports resolved)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target.startswith("engine") and target != name:
                out.add(target)
    return out


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(name, path, known) for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_the_import_graph_reader_sees_a_cycle_when_there_is_one():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_in_engine():
    graph = _graph()
    assert "engine.actors.session_actor" in graph and graph["engine.actors.session_actor"]
    assert _cycles(graph) == []


def test_imports_point_one_way_between_layers():
    wrong = []
    for name, targets in _graph().items():
        parts = name.split(".")
        if len(parts) < 3 or parts[1] not in ALLOWED:
            continue
        for target in targets:
            layer = target.split(".")[1] if target.count(".") >= 1 else ""
            if layer in ALLOWED and layer not in ALLOWED[parts[1]]:
                wrong.append(f"{name} -> {target}")
    assert wrong == []


def test_the_protocol_core_does_no_io_and_nothing_imports_mcp():
    for path in (ENGINE / "protocol").rglob("*.py"):
        tree = ast.parse(path.read_text())
        names = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                 for alias in node.names}
        names |= {(node.module or "").split(".")[0] for node in ast.walk(tree)
                  if isinstance(node, ast.ImportFrom) and not node.level}
        assert not names & {"asyncio", "anyio", "socket", "sqlite3", "uvicorn"}, path
    # The engine imports mcp only to serve an app written with it: in the modules that drive
    # each SDK version, which are imported only then (tests/test_sdk_apps.py checks that).
    bridges = {ENGINE / "app" / "sdk" / "v1.py", ENGINE / "app" / "sdk" / "v2.py"}
    for path in ENGINE.rglob("*.py"):
        if path not in bridges:
            assert not re.search(r"^\s*(import mcp|from mcp\b)", path.read_text(), re.M), path


#: Words that only a protocol or HTTP rule would spell: status codes, MCP header names,
#: media types, JSON-RPC codes. None may appear in a runtime adapter.
_RULE_WORDS = re.compile(
    r"\b(40[0-9]|41[0-9]|42[0-9]|50[0-9])\b|mcp-session-id|last-event-id|mcp-protocol-version|"
    r"text/event-stream|application/json|access-control|x-accel|-32[0-9]{3}|initialize\b", re.I)


def test_runtime_adapters_hold_no_protocol_rule_and_stay_thin():
    adapters = [ENGINE / "local" / "asgi.py", ROOT / "worker" / "entry.py", ROOT / "worker" / "session_object.py"]
    for path in adapters:
        code = "\n".join(line for line in path.read_text().splitlines()
                         if not line.lstrip().startswith("#"))
        code = re.sub(r'"""(.|\n)*?"""', "", code)  # docstrings may name what the front does
        assert not _RULE_WORDS.search(code), f"{path.name}: {_RULE_WORDS.search(code).group(0)!r}"
        assert len(path.read_text().splitlines()) < 300, path


def test_the_shared_rules_are_written_once():
    """What the fronts used to write twice now lives in one place each."""
    sources = {p: p.read_text() for p in list(ENGINE.rglob("*.py")) + list((ROOT / "worker").glob("*.py"))}

    def where(pattern: str) -> list[str]:
        return sorted(p.name for p, text in sources.items() if re.search(pattern, text))

    assert where(r'b"x-accel-buffering"') == ["front.py"]
    assert where(r"def error_headers\(") == ["router.py"]
    assert where(r"def load_app\(") == ["loader.py"]
    assert where(r"def pump\(") == ["front.py"]
    assert where(r"\.arm\(") == ["front.py", "runtime.py"]  # the front arms new sessions; the runtime's create() for tests
