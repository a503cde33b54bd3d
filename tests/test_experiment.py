"""What a run is: the names of the arms and the CoordConv layers they take."""

from __future__ import annotations

import pytest

from rl_coordconv.experiment import TrainConfig, arm_name, identity_mismatch, resolve_coord_layers


def test_arm_names():
    assert arm_name(False) == "conv"
    assert arm_name(True) == "coordconv"
    assert arm_name(True, with_r=True) == "coordconv_r"
    assert arm_name(True, coord_layers="all") == "coordconv_all"
    assert arm_name(False, head="pool") == "conv_pool"
    assert arm_name(True, with_r=True, head="pool") == "coordconv_r_pool"


def test_the_head_is_part_of_a_runs_identity_and_old_runs_had_the_flatten_head():
    flatten, pooled = TrainConfig(), TrainConfig(head="pool")
    assert flatten.run_dir().path != pooled.run_dir().path  # a pooled run never shares a flatten run's directory
    stored = flatten.identity()
    assert identity_mismatch(stored, flatten) is None
    assert identity_mismatch(stored, pooled) == "was made with head='flatten', not 'pool'"
    del stored["head"]  # a run made before heads existed
    assert identity_mismatch(stored, flatten) is None


def test_coord_layers_are_validated():
    assert resolve_coord_layers("all") == (0, 1, 2)
    assert resolve_coord_layers([2, 0]) == (0, 2)
    with pytest.raises(ValueError, match="'second'"):
        resolve_coord_layers("second")
    with pytest.raises(ValueError, match=r"\[3\]"):
        resolve_coord_layers([3])
