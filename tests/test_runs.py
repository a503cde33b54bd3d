"""Run directories: RNG state round trip, file modes, checkpoint pruning and extras, a crafted checkpoint refused."""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import SMALL_A2C, run_dir

from rl_coordconv import train
from rl_coordconv.runs import RunDir, RunStateError, atomic_write_text, rng_state, set_rng_state


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


class _Crafted:
    """A pickle that runs a command when it is loaded, as a run directory from a stranger might."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_crafted_checkpoint_state_is_refused_not_run(tmp_path, capsys):
    args = [*SMALL_A2C, "--timesteps", "160", "--checkpoint-every", "80", "--log-dir", str(tmp_path)]
    assert train.main(args) == 0
    run = run_dir(tmp_path)
    (run / "state.json").write_text(json.dumps({"status": "running", "agent_steps": 80}))
    state = json.loads((run / "checkpoints" / "latest.json").read_text())["state"]
    marker = tmp_path / "code-ran"
    torch.save({"step": 80, "rng": _Crafted(marker)}, run / "checkpoints" / state)
    assert train.main([*args, "--resume"]) == 2
    err = capsys.readouterr().err
    assert not marker.exists()
    assert err.count("\n") == 1 and "refusing to load" in err and "it would call posix.system" in err


def test_a_checkpoints_extra_directory_appears_whole_and_only_the_newest_keeps_one(tmp_path):
    run = RunDir(tmp_path / "run")
    run.path.mkdir()

    def write(directory: Path) -> bool:
        (directory / "replay.bin").write_bytes(b"replay")
        return True

    run.save_checkpoint(100, b"model", b"state", write)
    (run.checkpoint_dir / ".step_000000000150.extra.tmp").mkdir()  # left by a run killed while writing

    def fail(directory: Path) -> bool:
        (directory / "replay.bin").write_bytes(b"half")
        raise OSError("No space left on device")

    with pytest.raises(OSError, match="No space left"):
        run.save_checkpoint(150, b"model", b"state", fail)
    assert run.latest_checkpoint().step == 100  # nothing of the failed one counts
    run.save_checkpoint(200, b"model", b"state", write)
    latest = run.latest_checkpoint()
    assert latest.extra == run.checkpoint_dir / "step_000000000200.extra"
    assert (latest.extra / "replay.bin").read_bytes() == b"replay"
    assert sorted(p.name for p in run.checkpoint_dir.iterdir() if p.is_dir()) == ["step_000000000200.extra"]
    run.save_checkpoint(300, b"model", b"state", lambda directory: False)  # nothing to keep this time
    assert run.latest_checkpoint().extra is None
    assert not [p for p in run.checkpoint_dir.iterdir() if p.is_dir()]
    run.save_checkpoint(400, b"model", b"state", write)
    run.drop_checkpoint_extras()  # when the run finishes
    assert run.latest_checkpoint().extra is None and not list(run.checkpoint_dir.glob("*.extra"))
    run.save_checkpoint(500, b"model", b"state", write)
    shutil.rmtree(run.checkpoint_dir / "step_000000000500.extra")
    with pytest.raises(RunStateError, match=r"checkpoint file .*step_000000000500\.extra named by .* is missing"):
        run.latest_checkpoint()
