"""What a run is: the names of the arms and the CoordConv layers they take."""

from __future__ import annotations

import pytest

from rl_coordconv.experiment import arm_name, resolve_coord_layers


def test_arm_names():
    assert arm_name(False) == "conv"
    assert arm_name(True) == "coordconv"
    assert arm_name(True, with_r=True) == "coordconv_r"
    assert arm_name(True, coord_layers="all") == "coordconv_all"


def test_coord_layers_are_validated():
    assert resolve_coord_layers("all") == (0, 1, 2)
    assert resolve_coord_layers([2, 0]) == (0, 2)
    with pytest.raises(ValueError, match="'second'"):
        resolve_coord_layers("second")
    with pytest.raises(ValueError, match=r"\[3\]"):
        resolve_coord_layers([3])
