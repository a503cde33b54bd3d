"""The plot CLI: refuses to mix budgets or settings, lists the planned grid, bad input in one line,
and loads its statistics without matplotlib."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml
from helpers import make_grid, write_run

from rl_coordconv import plot


def test_mixed_budgets_are_refused_unless_allowed(tmp_path, capsys):
    make_grid(tmp_path / "runs", seeds=range(2))
    write_run(tmp_path / "runs", "Pong", "conv", 7, timesteps=2000)
    assert plot.main([str(tmp_path / "runs"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "runs differ in timesteps" in err and "--allow-mixed" in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()
    assert plot.main([str(tmp_path / "runs"), "--out", str(tmp_path / "out"), "--allow-mixed"]) == 0


@pytest.mark.parametrize(
    ("key", "value"),
    [("protocol", {"frame_skip": 4, "version": 1}), ("hyperparams", {"n_steps": 20}), ("env_backend", "sb3")],
)
def test_runs_made_under_other_settings_are_refused(tmp_path, capsys, key, value):
    make_grid(tmp_path / "runs", seeds=range(2))
    odd, _ = write_run(tmp_path / "runs", "Pong", "coordconv", 7)
    config = yaml.safe_load((odd / "config.yaml").read_text())
    (odd / "config.yaml").write_text(yaml.safe_dump({**config, key: value}))
    assert plot.main([str(tmp_path / "runs"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"runs differ in {key}" in err and str(odd) in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_the_planned_grid_lists_runs_not_yet_made(tmp_path, capsys):
    make_grid(tmp_path / "runs", seeds=[0])
    out = tmp_path / "out"
    args = [str(tmp_path / "runs"), "--out", str(out), "--games", "atari9", "--seeds", "0", "1"]
    assert plot.main(args) == 0
    report = (out / "report.md").read_text()
    assert "- missing: Pong/conv/seed1" in report and "- missing: Qbert/coordconv/seed0" in report
    assert "- missing: Pong/conv/seed0" not in report
    assert "| Qbert | – | – | – | – | missing runs |" in report
    assert "single seed" in report  # one seed per game: point estimates, said so
    assert plot.main([str(tmp_path / "runs"), "--out", str(out), "--games", "Pnog"]) == 2
    err = capsys.readouterr().err.strip()
    assert "Pnog" in err and "\n" not in err


def test_games_and_seeds_keep_only_those_runs_so_other_budgets_in_the_directory_do_not_mix(tmp_path, capsys):
    make_grid(tmp_path / "runs", seeds=range(3))  # Pong and Breakout, 1,000 steps
    for arm in ("conv", "coordconv"):
        write_run(tmp_path / "runs", "Catch", arm, 0, timesteps=3000, mean=0.5)  # another budget
    root, out = str(tmp_path / "runs"), tmp_path / "out"
    assert plot.main([root, "--out", str(out)]) == 2
    assert "runs differ in timesteps" in capsys.readouterr().err
    assert plot.main([root, "--out", str(out), "--games", "Pong", "--seeds", "0", "2"]) == 0
    report = (out / "report.md").read_text()
    assert "| Pong |" in report and "Catch" not in report and "Breakout" not in report
    assert "0: " in report and "2: " in report and "1: " not in report and "missing" not in report
    assert plot.main([root, "--out", str(out), "--games", "Catch"]) == 0
    report = (out / "report.md").read_text()
    assert report.startswith("# A2C on Catch") and "| Catch |" in report and "Pong" not in report
    assert plot.main([root, "--out", str(out), "--games", "Pong", "--seeds", "7"]) == 2
    err = capsys.readouterr().err
    assert "no runs of the planned games and seeds" in err and err.count("\n") == 1


def test_export_copies_only_the_runs_games_and_seeds_select(tmp_path):
    make_grid(tmp_path / "runs", seeds=range(3))  # Pong and Breakout × conv, coordconv
    root, copy = str(tmp_path / "runs"), tmp_path / "copy"
    assert (
        plot.main([root, "--out", str(tmp_path / "out"), "--games", "Pong", "--seeds", "0", "2", "--export", str(copy)])
        == 0
    )
    exported = sorted(str(p.parent.relative_to(copy)) for p in copy.rglob("config.yaml"))
    assert exported == [f"a2c/Pong/{arm}/seed{seed}" for arm in ("conv", "coordconv") for seed in (0, 2)]
    assert plot.main([root, "--out", str(tmp_path / "out"), "--export", str(tmp_path / "all")]) == 0
    assert len(list((tmp_path / "all").rglob("config.yaml"))) == 12  # no selection: every finished run


@pytest.mark.parametrize(
    "setup,args,message",
    [
        ("none", [], "does not exist"),
        ("empty", [], "no runs (directories with config.yaml)"),
        ("grid", ["--last-k", "0"], "must be positive"),
        ("grid", ["--algo", "ppo"], "no ppo runs"),
        ("out is a file", [], "cannot write to"),
    ],
)
def test_bad_input(tmp_path, capsys, setup, args, message):
    root = tmp_path / "runs"
    if setup == "empty":
        root.mkdir()
    elif setup in ("grid", "out is a file"):
        make_grid(root, seeds=range(2))
    if setup == "out is a file":
        (tmp_path / "out").write_text("not a directory")
    assert plot.main([str(root), "--out", str(tmp_path / "out"), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_statistics_and_the_report_load_without_matplotlib():
    code = (
        "import sys, rl_coordconv.plot, rl_coordconv.report, rl_coordconv.stats, rl_coordconv.results; "
        "print('matplotlib' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"
