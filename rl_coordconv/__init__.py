"""rl_coordconv: CoordConv (Liu et al., 2018) in reinforcement-learning agents and the paper's toy tasks.

The layers are plain PyTorch and import nothing else; the SB3 pieces load on first use, so
``from rl_coordconv import CoordConv2d`` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rl_coordconv.layers import AddCoords, CoordConv2d, CoordConvTranspose2d, coord_weight_ratio

if TYPE_CHECKING:
    from rl_coordconv.extractors import AtariCNN, atari_policy_kwargs

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

_LAZY = {"AtariCNN": "rl_coordconv.extractors", "atari_policy_kwargs": "rl_coordconv.extractors"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'rl_coordconv' has no attribute {name!r}")
