"""The layer rules of docs/DESIGN.md ("Layers"), checked on the source: which hrm layer may import which.

One table (``LAYERS``), read from every module's syntax tree: an import at module level is a dependency
of the layer; an import inside a function is a lazy one (allowed where the table says so, e.g. the torch
backend's model, the exporter's validation reference). The torch rule itself is proven by running code
with torch blocked (``tests/runtime/test_no_torch.py``); this test keeps the arrows of the picture true.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: folder -> import name of the packages (pyproject's package-dir)
PACKAGES = {"hrm": "hrm", "export": "hrm.export", "runtime": "hrm.runtime", "trt_plugins": "hrm.trt_plugins"}
CORE = "core"  # hrm.config, errors, io, halting, manifest, sources, hub, checkpoint, identifiers, tiny, doctor

#: layer -> (may import at module level, may import lazily as well). Every layer may import core.
LAYERS: dict[str, tuple[set[str], set[str]]] = {
    CORE: (set(), {"hrm.tasks", "hrm.model", "hrm.export", "hrm.runtime", "hrm.evaluation"}),
    "hrm.tasks": (set(), {"hrm.runtime"}),
    "hrm.model": (set(), set()),
    "hrm.train": ({"hrm.model"}, {"hrm.tasks"}),
    "hrm.export": ({"hrm.runtime"}, {"hrm.model", "hrm.tasks"}),
    "hrm.runtime": ({"hrm.tasks"}, {"hrm.model"}),
    "hrm.evaluation": ({"hrm.runtime", "hrm.tasks"}, {"hrm.model"}),
    "hrm.bench": ({"hrm.runtime", "hrm.evaluation"}, {"hrm.export", "hrm.tasks", "hrm.model"}),
    "hrm.serve": ({"hrm.runtime", "hrm.tasks"}, {"hrm.evaluation"}),
    "hrm.cli": ({"hrm.runtime", "hrm.tasks"}, {"hrm.export", "hrm.evaluation", "hrm.bench", "hrm.serve", "hrm.train",
                                               "hrm.model"}),
    "hrm.trt_plugins": (set(), set()),
}
#: what ``hrm.runtime`` may import at module level from hrm.tasks: the token check and the Puzzle record only
RUNTIME_TASK_MODULES = {"hrm.tasks.base"}


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "hrm":
        return None
    if len(parts) > 1 and f"hrm.{parts[1]}" in LAYERS:
        return f"hrm.{parts[1]}"
    return CORE


def modules() -> list[tuple[str, Path]]:
    out = []
    for folder, package in PACKAGES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT / folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            out.append((".".join([package, *parts]), path))
    return out


def imports(path: Path) -> list[tuple[str, bool, int]]:
    """(imported module, at module level?, line) of every hrm import in ``path``."""
    tree = ast.parse(path.read_text())
    top = {id(n) for n in tree.body}
    # module level = a statement of the body, or inside a module-level if/try (guards, fallbacks)
    for node in tree.body:
        if isinstance(node, (ast.If, ast.Try)):
            top |= {id(n) for n in ast.walk(node)}
    found = []
    for node in ast.walk(tree):
        names = [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else \
            [a.name for a in node.names] if isinstance(node, ast.Import) else []
        found += [(n, id(node) in top, node.lineno) for n in names if n == "hrm" or n.startswith("hrm.")]
    return found


def violations(module: str, path: Path) -> list[str]:
    """The imports of ``module`` (source at ``path``) that the table does not allow, one line each."""
    mine = layer_of(module)
    eager, lazy = LAYERS[mine]
    bad = []
    for target, at_top, line in imports(path):
        theirs = layer_of(target)
        if theirs in (mine, CORE):
            continue
        allowed = eager if at_top else eager | lazy
        if theirs not in allowed:
            bad.append(f"{path.name}:{line}: {mine} imports {target} {'at module level' if at_top else 'lazily'}; "
                       f"docs/DESIGN.md 'Layers' allows {sorted(allowed) or 'nothing but core'}")
        elif mine == "hrm.runtime" and at_top and theirs == "hrm.tasks" and target not in RUNTIME_TASK_MODULES:
            bad.append(f"{path.name}:{line}: hrm.runtime imports {target} at module level (only {RUNTIME_TASK_MODULES})")
    return bad


@pytest.mark.parametrize("module,path", modules(), ids=lambda v: v if isinstance(v, str) else "")
def test_imports_follow_the_layer_rules(module, path):
    assert violations(module, path) == []


def test_a_broken_rule_is_caught(tmp_path):
    src = tmp_path / "m.py"
    src.write_text("from hrm.manifest import IO_NAMES\nfrom hrm.export.api import export_deployment\n"
                   "def f():\n    from hrm.model import HRM\n    from hrm.bench import runner\n")
    assert len(violations("hrm.runtime.m", src)) == 2  # export anywhere, bench anywhere; the lazy model is allowed
    src.write_text("from hrm.tasks.sudoku import SudokuTask\n")
    assert len(violations("hrm.runtime.m", src)) == 1  # runtime takes only the token check from the tasks
    src.write_text("def f():\n    from hrm.runtime import Session\n")
    assert violations("hrm.tasks.m", src) == [] and len(violations("hrm.model.m", src)) == 1
