"""Runs as results: learning curves binned by frames, and the export of small artefacts."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
from helpers import make_grid, write_run

from rl_coordconv.report import make_report
from rl_coordconv.results import EXPORT_GZIP_BYTES, Run, binned_curve, export_run, export_runs, load_runs


def test_binned_curve_means_each_bin_and_carries_over_empty_ones(tmp_path):
    frames = np.array([100, 250, 400, 401, 1000])
    run = Run(tmp_path, "a2c", "Pong", "conv", 0, {}, True, 250, frames, np.array([1.0, 3.0, 5.0, 7.0, 9.0]))
    edges = np.array([0, 400, 600, 800, 1000])  # a game ending on an edge counts in the bin it closes
    np.testing.assert_array_equal(binned_curve(run, edges), [3.0, 7.0, 7.0, 9.0])


def test_export_copies_only_small_artefacts_of_finished_runs(tmp_path):
    make_grid(tmp_path / "runs", seeds=range(2))
    (tmp_path / "runs/a2c/Pong/conv/seed0/final_model.zip").write_bytes(b"big")
    (tmp_path / "runs/a2c/Pong/conv/seed1/state.json").write_text(json.dumps({"status": "running", "agent_steps": 1}))
    assert export_runs(tmp_path / "runs", tmp_path / "copy") == 7
    files = sorted(str(p.relative_to(tmp_path / "copy")) for p in (tmp_path / "copy").rglob("*") if p.is_file())
    assert "a2c/Pong/conv/seed0/episodes.csv" in files and not any(f.endswith(".zip") for f in files)
    assert not any(f.endswith("scalars.csv") for f in files)  # these runs have no TensorBoard events
    assert not (tmp_path / "copy/a2c/Pong/conv/seed1").exists()
    # and the copy plots like the original
    assert make_report(tmp_path / "copy", tmp_path / "out").exists()


def test_export_turns_event_files_into_scalars_csv_and_keeps_it_on_export_again(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    make_grid(tmp_path / "runs", seeds=range(1))
    writer = SummaryWriter(str(tmp_path / "runs/a2c/Pong/coordconv/seed0"))
    for step in (10, 20):
        writer.add_scalar("losses/entropy_loss", -1.79, step)
    writer.close()
    export_runs(tmp_path / "runs", tmp_path / "copy")
    copy = tmp_path / "copy/a2c/Pong/coordconv/seed0"
    assert sorted(p.name for p in copy.iterdir()) == ["config.yaml", "episodes.csv", "scalars.csv", "state.json"]
    assert copy.joinpath("scalars.csv").read_text().splitlines() == [
        "tag,step,value",
        "losses/entropy_loss,10,-1.79",
        "losses/entropy_loss,20,-1.79",
    ]
    export_runs(tmp_path / "copy", tmp_path / "again")  # a committed copy has no events: copied as is
    assert (tmp_path / "again/a2c/Pong/coordconv/seed0/scalars.csv").read_text() == (copy / "scalars.csv").read_text()


def test_a_large_episodes_csv_is_exported_gzipped_reproducibly_and_reads_the_same(tmp_path):
    path, _ = write_run(tmp_path / "runs", "Catch", "conv", 0, games=20_000, mean=0.0)
    original = path / "episodes.csv"
    assert original.stat().st_size > EXPORT_GZIP_BYTES
    export_runs(tmp_path / "runs", tmp_path / "copy")
    copy = tmp_path / "copy/a2c/Catch/conv/seed0"
    assert sorted(p.name for p in copy.iterdir()) == ["config.yaml", "episodes.csv.gz", "state.json"]
    assert gzip.decompress((copy / "episodes.csv.gz").read_bytes()) == original.read_bytes()
    export_runs(tmp_path / "runs", tmp_path / "again")  # the same bytes every time (no time stamp inside)
    again = tmp_path / "again/a2c/Catch/conv/seed0/episodes.csv.gz"
    assert again.read_bytes() == (copy / "episodes.csv.gz").read_bytes()
    export_runs(tmp_path / "copy", tmp_path / "copy_of_copy")  # a committed copy exports as is
    assert (tmp_path / "copy_of_copy/a2c/Catch/conv/seed0/episodes.csv.gz").exists()
    [run], [copied] = load_runs(tmp_path / "runs"), load_runs(tmp_path / "copy")
    np.testing.assert_array_equal(copied.returns, run.returns)
    np.testing.assert_array_equal(copied.frames, run.frames)


def test_a_run_is_not_exported_onto_itself(tmp_path):
    make_grid(tmp_path / "runs", seeds=range(1))
    run = tmp_path / "runs/a2c/Pong/conv/seed0"
    episodes = (run / "episodes.csv").read_bytes()
    (run / "episodes.csv").write_bytes(episodes * (EXPORT_GZIP_BYTES // len(episodes) + 1))  # exported gzipped
    with pytest.raises(ValueError, match="onto itself"):
        export_run(run, tmp_path / "runs/a2c/../a2c/Pong/conv/seed0")
    assert (run / "episodes.csv").stat().st_size > EXPORT_GZIP_BYTES  # still there, not gzipped away
