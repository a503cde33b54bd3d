"""Numbers of agent steps as people write them: ``100000``, ``1e6``, ``500k``, ``10M``.

It imports nothing but ``re``, so scripts that only need to read ``--steps 10k`` do not load
PyTorch, SB3 or the emulator.
"""

from __future__ import annotations

import re

__all__ = ["parse_steps"]

_STEPS = re.compile(r"\s*([0-9][0-9_]*(?:\.[0-9]+)?(?:e[0-9]+)?)\s*([kKmMgG]?)\s*")
_SCALE = {"": 1, "k": 1e3, "m": 1e6, "g": 1e9}


def parse_steps(text: str) -> int:
    """``"1e6"``, ``"10M"``, ``"500k"``, ``"2_000_000"`` → an int number of agent steps (> 0).

    :raises ValueError: naming the text and the forms it takes
    """
    match = _STEPS.fullmatch(text)
    if not match:
        raise ValueError(f"cannot read {text!r} as a number of steps; use e.g. 100000, 1e6, 500k or 10M")
    value = float(match.group(1).replace("_", "")) * _SCALE[match.group(2).lower()]
    if value <= 0 or value != int(value):
        raise ValueError(f"the number of steps must be a positive whole number, got {text!r}")
    return int(value)
