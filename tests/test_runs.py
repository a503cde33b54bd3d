"""Run directories: RNG state round trip, torn episodes.csv lines, checkpoint pruning, scalars.csv."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from rl_coordconv.runs import (
    SCALARS_FILE,
    RunDir,
    RunStateError,
    atomic_write_text,
    read_episodes,
    read_scalars,
    rng_state,
    set_rng_state,
    write_scalars,
)


def _draw() -> tuple[float, float, float]:
    return random.random(), float(np.random.random()), float(torch.rand(1))


def test_a_saved_rng_state_replays_the_same_numbers():
    state = rng_state()
    first = _draw()
    _draw()  # move every generator on
    set_rng_state(state)
    assert _draw() == first


def test_an_atomic_write_gives_the_file_the_mode_open_would(tmp_path):
    # mkstemp's 0600 would hide run directories on shared storage from the rest of a team
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    atomic = tmp_path / "state.json"
    atomic_write_text(atomic, "{}")
    assert atomic.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777
    atomic_write_text(atomic, "{}")  # replacing keeps it
    assert atomic.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777


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


def _write_events(run: Path, scalars: dict[str, list[tuple[int, float]]]) -> None:
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(run))
    for tag, points in scalars.items():
        for step, value in points:
            writer.add_scalar(tag, value, step)
    writer.close()


def test_scalars_csv_keeps_every_scalar_but_the_per_game_ones(tmp_path):
    run, copy = tmp_path / "run", tmp_path / "copy"
    logged = {
        "losses/entropy_loss": [(10, -1.792), (20, -1.791759), (30, -1.6)],
        "coordconv/coord_weight_ratio": [(10, 0.987654321)],
        "charts/episodic_return": [(12, -21.0), (25, -20.0)],  # episodes.csv holds these
    }
    _write_events(run, logged)
    copy.mkdir()
    assert write_scalars(run, copy / SCALARS_FILE)
    assert not list(copy.glob("events.out.tfevents.*"))
    assert set(read_scalars(run)) == set(logged)
    read = read_scalars(copy)
    assert set(read) == {"losses/entropy_loss", "coordconv/coord_weight_ratio"}
    for tag, points in read.items():
        expected = logged[tag]
        assert [step for step, _ in points] == [step for step, _ in expected]
        assert [value for _, value in points] == pytest.approx([value for _, value in expected], rel=1e-5)
    assert not write_scalars(copy, tmp_path / "none.csv") and not (tmp_path / "none.csv").exists()


def test_a_run_without_scalars_or_with_a_bad_scalars_csv_is_one_clear_error(tmp_path):
    with pytest.raises(RunStateError, match=r"no TensorBoard event files .* and no scalars\.csv"):
        read_scalars(tmp_path)
    (tmp_path / SCALARS_FILE).write_text("tag,step,value\nlosses/entropy_loss,10,-1.79\nlosses/entropy_loss,ten,-1\n")
    with pytest.raises(RunStateError, match=r"scalars\.csv line 3 is not a row of \(tag, step, value\)"):
        read_scalars(tmp_path)
