"""The import graph: rfprior has no cycle (lazy imports in functions count too); ``operators`` never imports rfprior."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _modules(package: str) -> dict[str, Path]:
    base = ROOT / package
    out = {}
    for path in sorted(base.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _edges(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Modules of ``known`` that ``name`` imports anywhere (``from .x import y``: ``pkg.x``, ``pkg.x.y``)."""
    is_pkg = path.name == "__init__.py"
    here = name.split(".") if is_pkg else name.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            targets = [mod] + [f"{mod}.{a.name}" for a in node.names]
        for t in targets:
            # the most specific known module, plus the subpackages it runs on the way (not the root __init__)
            parts = t.split(".")
            for k in range(2, len(parts) + 1):
                cand = ".".join(parts[:k])
                if cand in known and cand != name and not name.startswith(cand + "."):  # not its own package
                    found.add(cand)
            if t in known and t != name and "." not in t:
                found.add(t)  # ``from rfprior import x`` where x is not a module: the root itself
    return found


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return [*stack[stack.index(m) :], m]
            if m not in state:
                found = visit(m)
                if found:
                    return found
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state:
            found = visit(n)
            if found:
                return found
    return None


def test_rfprior_has_no_import_cycle():
    known = _modules("rfprior")
    graph = {name: _edges(name, path, known) for name, path in known.items()}
    graph.pop("rfprior", None)  # the root re-exports everything: every import passes through it
    graph = {n: {m for m in es if m != "rfprior"} for n, es in graph.items()}
    assert _cycle(graph) is None, " → ".join(_cycle(graph) or [])


def test_operators_never_imports_rfprior():
    for name, path in _modules("operators").items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and not node.level:
                mods = [node.module or ""]
            assert not any(m == "rfprior" or m.startswith("rfprior.") for m in mods), f"{name} imports {mods}"


def test_every_module_imports_on_its_own():
    """Each module in a fresh interpreter, first: an import order that only works from the root would fail here."""
    names = [n for n in _modules("rfprior") if not n.endswith("__main__")]
    code = (
        "import importlib, sys\n"
        "for n in sys.argv[1:]:\n"
        "    importlib.import_module(n)\n"
        "    [sys.modules.pop(k) for k in list(sys.modules) if k.startswith('rfprior')]\n"
    )
    run = subprocess.run([sys.executable, "-c", code, *names], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]


def _graph() -> dict[str, set[str]]:
    known = _modules("rfprior")
    return {name: _edges(name, path, known) for name, path in known.items()}


def test_the_solver_does_not_import_the_file_formats():
    """``rfprior.fit`` is handed what it needs (a warm start's weights come through rfprior.weights)."""
    for name, deps in _graph().items():
        if name == "rfprior.fit" or name.startswith("rfprior.fit."):
            bad = sorted(d for d in deps if d == "rfprior.io" or d.startswith("rfprior.io."))
            assert not bad, f"{name} imports {bad}"


def test_no_module_takes_a_name_from_the_package_root():
    """``from rfprior import __version__`` inside rfprior needs the root's ``__init__`` to have run first (an
    import-order trap); modules import submodules (``from . import defaults``) or names from them only."""
    known = _modules("rfprior")
    for name, path in known.items():
        if name == "rfprior":
            continue
        here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom):
                continue
            if node.level:
                mod = ".".join(here[: len(here) - (node.level - 1)] + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod == "rfprior":
                bad = [a.name for a in node.names if f"rfprior.{a.name}" not in known]
                assert not bad, f"{name} takes {bad} from the package root"


def test_the_layers_point_one_way():
    """files ← modalities ← io ← problem ← cli: a lower layer never imports a higher one."""
    layers = {
        "rfprior.files": 0,
        "rfprior.phantoms": 0,
        "rfprior.noise": 0,
        "rfprior.modalities": 1,
        "rfprior.io": 2,
        "rfprior.problem": 3,
        "rfprior.cli": 4,
    }

    def layer(mod: str) -> int | None:
        for prefix, level in layers.items():
            if mod == prefix or mod.startswith(prefix + "."):
                return level
        return None

    for name, deps in _graph().items():
        here = layer(name)
        if here is None:
            continue
        for d in deps:
            there = layer(d)
            assert there is None or there <= here, f"{name} (layer {here}) imports {d} (layer {there})"
