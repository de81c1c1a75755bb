"""The import graph of our modules has no circle (lazy imports included) and follows the
one-way rule of DESIGN §1: arch and workloads import nothing of ours (but the input
leaf, ``tilesim/_input.py``: the bounded YAML reader and number checker), mapper only those
two, sim only those three, reports nothing of ours, explore anything but the façade, and
no package imports the façade (tilesim/__init__.py, api.py, cli.py).

The graph is read from the source with ``ast``: every ``import`` and ``from ... import``
at any depth (function-level and ``TYPE_CHECKING`` imports too), relative imports
resolved. ``from pkg import name`` is an edge to ``pkg.name`` when that is a module, else
to ``pkg``. A parent package's ``__init__`` that Python runs on the way to a submodule is
not an edge (it is the interpreter's doing, not the importer's). Imports under ``if
TYPE_CHECKING:`` never run: they count for the package rule (a type-level dependency is
still a dependency) but not for circles (they are how annotations avoid one).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: installed package -> folder of the repository (pyproject's package-dir)
FOLDERS = {"tilesim.arch": "arch", "tilesim.workloads": "workloads",
           "tilesim.mapper": "mapper", "tilesim.sim": "sim", "tilesim.reports": "reports",
           "tilesim.explore": "explore", "tilesim": "tilesim"}
FACADE = {"tilesim", "tilesim.api", "tilesim.cli"}
#: the version lives in a leaf module that explore and the façade may import
VERSION = "tilesim._version"
#: reading untrusted input (bounded YAML, the number checker): a leaf every package may use
INPUT = "tilesim._input"
#: package -> the packages it may import (besides itself)
ALLOWED = {"arch": {"input"}, "workloads": {"input"}, "mapper": {"arch", "workloads", "input"},
           "sim": {"arch", "workloads", "mapper", "input"}, "reports": set(),
           "explore": {"arch", "workloads", "mapper", "sim", "reports", "version", "input"},
           "version": set(), "input": set(),
           "facade": {"arch", "workloads", "mapper", "sim", "reports", "explore", "version",
                      "input", "facade"}}
#: the top-level names these folders had before 0.2.0 (``import arch`` no longer works)
OLD_TOP = {"arch", "workloads", "mapper", "sim", "reports"}


def modules(root: Path = ROOT, folders: dict = FOLDERS) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file of our packages."""
    out = {}
    for pkg, folder in folders.items():
        base = root / folder
        files = base.glob("*.py") if pkg == "tilesim" else base.rglob("*.py")
        for f in files:
            if "__pycache__" in f.parts:
                continue
            rel = f.relative_to(base).with_suffix("").parts
            if rel[-1] == "__init__":
                rel = rel[:-1]
            out[".".join((pkg, *rel))] = f
    return out


def _type_checking_only(tree: ast.AST) -> set[int]:
    """ids of the import nodes inside ``if TYPE_CHECKING:`` (or ``typing.TYPE_CHECKING``)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING",
                                                                   "typing.TYPE_CHECKING"):
            for stmt in node.body:
                out |= {id(n) for n in ast.walk(stmt) if isinstance(n, (ast.Import,
                                                                        ast.ImportFrom))}
    return out


def imports_of(name: str, path: Path, known: set[str]) -> list[tuple[str, int, bool]]:
    """(imported module, line, runs) for every import of ``path`` (module ``name``) at any
    depth; ``runs`` is False under ``if TYPE_CHECKING:``. Names outside ``tilesim`` are kept
    only when they are a pre-0.2.0 top-level name of ours (``import arch``), so that the
    test can reject them."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    is_pkg = path.name == "__init__.py"
    typing_only = _type_checking_only(tree)
    out = []

    def target(dotted: str) -> str:
        parts = dotted.split(".")
        for i in range(len(parts), 0, -1):   # the longest known prefix
            if ".".join(parts[:i]) in known:
                return ".".join(parts[:i])
        return dotted                         # unknown: reported by the test

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name == "tilesim" or a.name.startswith("tilesim."):
                    out.append((target(a.name), node.lineno, id(node) not in typing_only))
                elif a.name.split(".")[0] in OLD_TOP:
                    out.append((a.name, node.lineno, id(node) not in typing_only))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                pkg = name.split(".") if is_pkg else name.split(".")[:-1]
                if node.level > 1:
                    pkg = pkg[:-(node.level - 1)]
                base = ".".join(pkg + ([node.module] if node.module else []))
            else:
                base = node.module or ""
                if base.split(".")[0] in OLD_TOP:
                    out.append((base, node.lineno, id(node) not in typing_only))
                    continue
                if not (base == "tilesim" or base.startswith("tilesim.")):
                    continue
            for a in node.names:
                sub = f"{base}.{a.name}"
                out.append((sub if sub in known else target(base), node.lineno,
                            id(node) not in typing_only))
    return out


def graph(mods: dict[str, Path]) -> dict[str, list[tuple[str, int, bool]]]:
    known = set(mods)
    return {m: imports_of(m, p, known) for m, p in sorted(mods.items())}


def package_of(mod: str) -> str:
    if mod in FACADE:
        return "facade"
    if mod == VERSION:
        return "version"
    if mod == INPUT:
        return "input"
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 and f"tilesim.{parts[1]}" in FOLDERS else "facade"


def find_cycle(g: dict[str, list[tuple[str, int, bool]]]) -> list[str] | None:
    """One import circle of imports that run, as [a, b, ..., a], or None (iterative DFS,
    white/grey/black)."""
    colour = {m: 0 for m in g}

    def succ(m):
        return iter(sorted({t for t, _, runs in g[m] if runs}))
    for start in sorted(g):
        if colour[start]:
            continue
        stack = [(start, succ(start))]
        path = [start]
        colour[start] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                colour[node] = 2
                stack.pop()
                path.pop()
            elif nxt in colour and colour[nxt] == 1:
                return path[path.index(nxt):] + [nxt]
            elif nxt in colour and colour[nxt] == 0:
                colour[nxt] = 1
                stack.append((nxt, succ(nxt)))
                path.append(nxt)
    return None


@pytest.fixture(scope="module")
def project():
    mods = modules()
    return mods, graph(mods)


def test_the_walk_sees_every_package(project):
    """The walk reads every package's modules (a renamed folder would silently drop out)."""
    mods, _ = project
    for pkg in FOLDERS:
        assert pkg in mods, f"{pkg}: no __init__.py found under {FOLDERS[pkg]}/"
    assert {"tilesim.api", "tilesim.cli", VERSION, INPUT} <= set(mods)
    assert len(mods) > 60


def test_every_import_names_a_module_of_ours(project):
    """No import of a module that no longer exists (``tilesim.sim.sweep``) and none of a
    pre-0.2.0 top-level name (``import arch``): those fail at run time, perhaps only in a
    lazily imported code path."""
    mods, g = project
    bad = [f"{mods[m].relative_to(ROOT)}:{line}: imports {t}" for m, edges in g.items()
           for t, line, _ in edges if t not in mods]
    assert not bad, "imports of modules that do not exist:\n" + "\n".join(bad)


def test_no_import_circle(project):
    """No circle among our modules, lazy (function-level) imports included."""
    _, g = project
    cycle = find_cycle(g)
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_one_way_package_rule(project):
    """DESIGN §1: each package imports only the packages below it; none imports the
    façade (explore reads the version from tilesim/_version.py, a leaf)."""
    mods, g = project
    bad = []
    for m, edges in g.items():
        src = package_of(m)
        for t, line, _ in edges:
            dst = package_of(t)
            if dst != src and dst not in ALLOWED[src]:
                bad.append(f"{mods[m].relative_to(ROOT)}:{line}: {src} module {m} imports "
                           f"{t} ({dst}); {src} may import only "
                           f"{', '.join(sorted(ALLOWED[src])) or 'nothing of ours'}")
    assert not bad, "one-way rule broken (DESIGN §1):\n" + "\n".join(bad)


def test_walker_finds_lazy_relative_circle(tmp_path):
    """The walker itself: a circle closed only by a function-level relative import, and a
    ``from pkg import submodule``, are seen (so the tests above can fail)."""
    pkg = tmp_path / "arch"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from .loader import load\n")
    (pkg / "loader.py").write_text("def load(p):\n    from .cfg import read\n    return read(p)\n")
    (pkg / "cfg.py").write_text("def read(p):\n    if p:\n        from . import loader\n"
                                "        return loader\n")
    (pkg / "leaf.py").write_text("import tilesim.arch.cfg as c\nfrom tilesim import api\n")
    (pkg / "typed.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                  "    from .typed2 import T\n")
    (pkg / "typed2.py").write_text("from .typed import T\n")
    mods = modules(tmp_path, {"tilesim.arch": "arch"})
    g = graph(mods)
    assert ("tilesim.arch.cfg", 2, True) in g["tilesim.arch.loader"]
    assert g["tilesim.arch.leaf"][0] == ("tilesim.arch.cfg", 1, True)
    assert g["tilesim.arch.typed"] == [("tilesim.arch.typed2", 3, False)]
    assert find_cycle(g) in (["tilesim.arch.cfg", "tilesim.arch.loader", "tilesim.arch.cfg"],
                             ["tilesim.arch.loader", "tilesim.arch.cfg", "tilesim.arch.loader"])
    assert package_of(g["tilesim.arch.leaf"][1][0]) == "facade"
    del g["tilesim.arch.cfg"]
    g["tilesim.arch.loader"] = []
    assert find_cycle(g) is None
