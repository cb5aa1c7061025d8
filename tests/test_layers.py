"""Plain facts about the code's shape: no import circles (lazy imports inside
functions count too), and a thin command line."""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"hwnas": ROOT / "hwnas", "hwnas.cli": ROOT / "cli"}
MAX_CLI_LOGIC = 150   # lines of code outside argument definitions, per CLI module


def _modules() -> dict[str, Path]:
    out = {}
    for pkg, root in PACKAGES.items():
        for p in root.rglob("*.py"):
            parts = list(p.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join([pkg, *parts])] = p
    return out


def _known(name: str, mods: dict[str, Path]) -> str | None:
    while name and name not in mods:
        name = name.rpartition(".")[0]
    return name or None


def import_graph() -> dict[str, set[str]]:
    """module -> the project's modules it imports anywhere in its text."""
    mods = _modules()
    graph: dict[str, set[str]] = defaultdict(set)
    for mod, path in mods.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                    base = ".".join(up + ([base] if base else []))
                if base == "cli" or base.startswith("cli."):
                    base = "hwnas." + base
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base
                           for a in node.names]
            for t in targets:
                known = _known(t, mods)
                if known and known != mod:
                    graph[mod].add(known)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in list(graph):
        if v not in index:
            visit(v)
    return out


def test_the_cycle_finder_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_circles():
    graph = import_graph()
    assert "hwnas.profiling.profiler" in graph   # the graph is really read
    assert cycles(graph) == []


def _logic_lines(path: Path) -> int:
    """Code lines of a CLI module's functions, argument definitions
    (``add_parsers``), docstrings, comments and blank lines left out."""
    tree = ast.parse(path.read_text())
    lines = path.read_text().splitlines()
    skip: set[int] = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value,
                                                                           str):
            skip |= set(range(body[0].lineno, body[0].end_lineno + 1))
    n = 0
    for f in tree.body:
        if isinstance(f, ast.FunctionDef) and f.name != "add_parsers":
            n += sum(1 for i in range(f.lineno, f.end_lineno + 1)
                     if i not in skip and lines[i - 1].strip()
                     and not lines[i - 1].strip().startswith("#"))
    return n


def test_the_command_line_is_thin():
    sizes = {p.name: _logic_lines(p) for p in (ROOT / "cli").glob("*.py")}
    assert sizes["search.py"] > 20   # really counted
    assert {k: v for k, v in sizes.items() if v > MAX_CLI_LOGIC} == {}


# --- layers: imports run one way, by the order docs/architecture.md states ---------------

# entry points, test helpers
EXEMPT = {"hwnas", "hwnas.__main__", "hwnas.asr.demo", "hwnas.testing"}


def layer_order() -> list[set[str]]:
    """The layers of docs/architecture.md's first code block, top first: each a
    set of dotted names (``cli`` for the command line)."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    block = text.split("```")[1]
    layers = []
    for line in block.splitlines():
        if line[:1] not in ("", " "):
            head = re.match(r"[\w/.]+(?:,\s*[\w/.]+)*", line).group(0)
            names = [n.strip().rstrip("/") for n in head.split(",")]
            first = names[0]
            folder = first.rpartition("/")[0]
            layers.append({("cli" if n == "cli" else
                            (n if "/" in n else f"{folder}/{n}").replace("/", ".")
                            .removesuffix(".py")) for n in names})
    return layers


def _layer_of(mod: str, index: dict[str, int]) -> int | None:
    if mod.startswith("hwnas.cli"):
        return index["cli"]
    for n in (".".join(mod.split(".")[:2]), mod):
        if n in index:
            return index[n]
    return None


def upward_imports() -> set[tuple[str, str]]:
    """(module, imported module) pairs where a lower layer imports a higher one."""
    index = {n: i for i, names in enumerate(layer_order()) for n in names}
    out = set()
    for mod, targets in import_graph().items():
        if mod in EXEMPT:
            continue
        a = _layer_of(mod, index)
        for t in targets:
            b = _layer_of(t, index)
            if a is not None and b is not None and a > b:
                out.add((mod, t))
    return out


# Upward imports allowed for now, by name. Only ever shrinks; empty since the
# intelligibility join (a recogniser hearing a TTS model) moved above both tasks.
DEBT: set[tuple[str, str]] = set()


def test_the_layer_order_is_read_from_the_docs_and_covers_every_package():
    layers = layer_order()
    assert layers[0] == {"cli"}
    assert {"hwnas.paths", "hwnas.state", "hwnas.errors", "hwnas.plugins"} in layers
    index = {n: i for i, names in enumerate(layers) for n in names}
    # "hwnas" exempts the package's own __init__ only, the others their whole folder
    unplaced = {m for m in import_graph() if _layer_of(m, index) is None and m not in EXEMPT
                and not any(m.startswith(e + ".") for e in EXEMPT - {"hwnas"})}
    assert unplaced == set()


def test_the_layer_check_finds_an_upward_import(monkeypatch):
    import tests.test_layers as t

    monkeypatch.setattr(t, "import_graph", lambda: {"hwnas.space.space": {"hwnas.search.study"},
                                                   "hwnas.search.study": {"hwnas.space"}})
    assert t.upward_imports() == {("hwnas.space.space", "hwnas.search.study")}


def test_no_lower_layer_imports_a_higher_one_beyond_the_listed_debt():
    up = upward_imports()
    assert up - DEBT == set(), f"new upward imports: {sorted(up - DEBT)}"
    assert DEBT - up == set(), f"gone, strike them from DEBT: {sorted(DEBT - up)}"


def test_bench_is_a_package_without_path_edits_or_private_imports():
    """Benchmarks run as `python -m bench.NAME` and use only public names."""
    assert (ROOT / "bench" / "__init__.py").is_file()
    bad = []
    for path in sorted((ROOT / "bench").glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr == "path" and \
                    isinstance(node.value, ast.Name) and node.value.id == "sys":
                bad.append(f"{path.name}:{node.lineno} sys.path")
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("hwnas"):
                bad += [f"{path.name}:{node.lineno} {node.module}.{a.name}" for a in node.names
                        if a.name.startswith("_")]
    assert bad == []


# --- only the tasks reach a task -------------------------------------------------------

TASK_PACKAGES = ("hwnas.asr", "hwnas.tts")
TASK_SIDE = ("hwnas.tasks", *TASK_PACKAGES)   # where a task's own code may be named


def task_imports() -> set[tuple[str, str]]:
    """(module, task module) pairs where shared code imports a task's package."""
    return {(mod, t) for mod, targets in import_graph().items()
            if mod.startswith("hwnas.") and not mod.startswith("hwnas.cli")
            and not any(mod == s or mod.startswith(s + ".") for s in TASK_SIDE)
            for t in targets if any(t == p or t.startswith(p + ".") for p in TASK_PACKAGES)}


def test_shared_code_reaches_a_task_only_through_the_task_registry():
    """Outside ``hwnas/tasks/``, ``hwnas/asr/`` and ``hwnas/tts/`` no module
    imports a task's package: what differs by task is asked of ``hwnas.tasks``.
    (The command line's per-task modules -- ``cli/train.py``, ``cli/tts.py`` --
    are the tasks' own commands.)"""
    graph = import_graph()
    assert "hwnas.asr" in graph["hwnas.tasks.asr"] or any(
        t.startswith("hwnas.asr") for t in graph["hwnas.tasks.asr"])   # really read
    assert sorted(task_imports()) == []
