"""The package's layers: no module imports one above it, and nothing imports a command-line tool."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "rl_coordconv"

# Each module's layer; a module may import its own layer and those below. Packages count as a
# whole unless listed by module.
LAYERS = {
    0: ["layers", "backward", "experiment", "steps", "runs", "logs", "runtime"],
    1: ["extractors", "envs", ""],  # "": the package itself, which re-exports the layers and AtariCNN
    2: ["agents"],
    3: ["lifecycle", "grid", "stats", "results", "figures", "report", "cli"],
}
CLIS = {"train", "sweep", "plot", "enjoy", "toy_tasks.__main__", "__main__"}
TOY_TASKS_MAY_USE = {"layers", "runs", "runtime", "cli", "toy_tasks"}


def _name(path: Path) -> str:
    name = ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
    return "" if name == "__init__" else name.removesuffix(".__init__")


def _layer(module: str) -> int | None:
    for layer, names in LAYERS.items():
        if any(module == name or module.startswith(name + ".") for name in names):
            return layer
    return None


def _imports(path: Path) -> set[str]:
    """Every rl_coordconv module ``path`` imports, at the top or inside functions, without the prefix."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        found |= {n.removeprefix("rl_coordconv.") for n in names if n.startswith("rl_coordconv.")}
    return found


MODULES = sorted(p for p in PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=[_name(p) for p in MODULES])
def test_no_module_imports_upward_or_a_command_line_tool(path):
    me = _name(path)
    imported = _imports(path)
    if me == "__main__":  # `python -m rl_coordconv` is `python -m rl_coordconv.train`
        assert imported == {"train", "train.main"}
        return
    assert not imported & CLIS, f"{me} imports a command-line tool {imported & CLIS}: use the library"
    if me.startswith("toy_tasks"):
        outside = {m for m in imported if m.split(".")[0] not in TOY_TASKS_MAY_USE}
        assert not outside, f"toy_tasks uses the foundation only; {me} imports {outside}"
        return
    mine = _layer(me)
    if mine is None:  # a command-line tool: it may import any library module
        assert me in CLIS, f"{me} has no layer in LAYERS: give it one"
        return
    above = {m for m in imported if (_layer(m) or 0) > mine}
    assert not above, f"{me} (layer {mine}) imports {sorted(above)} from above it"


@pytest.mark.parametrize("folder", ["scripts", "benchmarks"])
def test_scripts_and_benchmarks_import_no_command_line_tool(folder):
    for path in sorted((ROOT / folder).glob("*.py")):
        assert not (_imports(path) & CLIS), f"{path.name} imports a command-line tool: use the library"
