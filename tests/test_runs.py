"""Run directories: RNG state round trip, torn episodes.csv lines, checkpoint pruning."""

from __future__ import annotations

import random

import numpy as np
import torch

from rl_coordconv.runs import RunDir, read_episodes, rng_state, set_rng_state


def _draw() -> tuple[float, float, float]:
    return random.random(), float(np.random.random()), float(torch.rand(1))


def test_a_saved_rng_state_replays_the_same_numbers():
    state = rng_state()
    first = _draw()
    _draw()  # move every generator on
    set_rng_state(state)
    assert _draw() == first


def test_a_torn_last_line_is_skipped(tmp_path):
    path = tmp_path / "episodes.csv"
    path.write_text("agent_step,frames,wall_time,return,length\n10,40,0.5,3,7\n20,80,1.0,4,")  # killed mid-write
    assert [row["agent_step"] for row in read_episodes(path)] == ["10"]


def test_checkpoints_are_pruned_to_the_last_two_and_latest_points_at_the_newest(tmp_path):
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    for step in (100, 200, 300):
        run.save_checkpoint(step, f"model {step}".encode(), f"state {step}".encode())
    assert sorted(path.name for path in run.checkpoint_dir.glob("*.zip")) == [
        "step_000000000200.zip",
        "step_000000000300.zip",
    ]
    latest = run.latest_checkpoint()
    assert (
        latest.step == 300 and latest.model.read_bytes() == b"model 300" and latest.state.read_bytes() == b"state 300"
    )
