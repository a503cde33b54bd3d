"""The toy tasks stand apart from the RL side of the package."""

from __future__ import annotations

import ast
from pathlib import Path

from rl_coordconv.toy_tasks import __main__ as cli


def test_toy_tasks_import_nothing_above_the_layers():
    """DESIGN.md: layers ← extractors ← agents/envs ← CLIs; the toy tasks sit beside the agents."""
    allowed = {"rl_coordconv.layers", "rl_coordconv.runtime", "rl_coordconv.runs"}
    allowed.add("rl_coordconv.cli")  # the CLIs' help formatter; it imports nothing of the package
    package = Path(cli.__file__).parent
    for source in package.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            names += [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            for name in names:
                if name.startswith("rl_coordconv") and not name.startswith("rl_coordconv.toy_tasks"):
                    assert name in allowed, f"{source.name} imports {name}"
