"""rl_coordconv: CoordConv (Liu et al., 2018) in reinforcement-learning agents and the paper's toy tasks.

Every public name loads on first use, so importing the package costs nothing, and the one process
option below is set before any of its modules loads PyTorch.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rl_coordconv.extractors import AtariCNN, atari_policy_kwargs
    from rl_coordconv.layers import AddCoords, CoordConv2d, CoordConvTranspose2d, coord_weight_ratio

# Before PyTorch loads OpenMP: idle OpenMP threads sleep instead of spinning, which otherwise steals
# the cores the emulator's threads step on between two network calls, and slowed the toy-task tests
# about 5× on 2 cores (BENCHMARKS.md). Set here, every entry point (CLIs, tests, actor processes,
# Ray workers) gets it; a value already in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
__all__ = [
    "AddCoords",
    "AtariCNN",
    "CoordConv2d",
    "CoordConvTranspose2d",
    "__version__",
    "atari_policy_kwargs",
    "coord_weight_ratio",
]

_LAZY = {
    "AddCoords": "rl_coordconv.layers",
    "CoordConv2d": "rl_coordconv.layers",
    "CoordConvTranspose2d": "rl_coordconv.layers",
    "coord_weight_ratio": "rl_coordconv.layers",
    "AtariCNN": "rl_coordconv.extractors",
    "atari_policy_kwargs": "rl_coordconv.extractors",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'rl_coordconv' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
