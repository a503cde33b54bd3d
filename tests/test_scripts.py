"""scripts/monitor_curve.py: published SB3 Monitor logs binned by the run's frames."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[1] / "scripts" / "monitor_curve.py"
_spec = importlib.util.spec_from_file_location("monitor_curve", _PATH)
assert _spec is not None and _spec.loader is not None
monitor_curve = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(monitor_curve)


def _monitor(path: Path, games: list[tuple[float, int]]) -> Path:
    rows = "".join(f"{r},{frames},{i}.5\n" for i, (r, frames) in enumerate(games))
    path.write_text('#{"t_start": 0, "env_id": "PongNoFrameskip-v4"}\nr,l,t\n' + rows)
    return path


def test_games_are_binned_by_the_runs_frames_across_envs(tmp_path):
    # env a's games end at its frames 300, 700, 1000; env b's at 500, 1000: × 2 envs
    a = _monitor(tmp_path / "0.monitor.csv", [(-21, 300), (-19, 400), (-15, 300)])
    b = _monitor(tmp_path / "1.monitor.csv", [(-20, 500), (-11, 500)])
    table = monitor_curve.binned([a, b], n_envs=2, bin_frames=1000)
    # run frames 600 (a), 1000 (b), 1400 (a), 2000 (a, b): bins [0, 1000), [1000, 2000), [2000, 3000)
    assert table == [(1000, -21.0, 1), (2000, pytest.approx(-19.5), 2), (3000, pytest.approx(-13.0), 2)]


def test_cli_prints_a_table_and_refuses_other_files_in_one_line(tmp_path, capsys):
    a = _monitor(tmp_path / "0.monitor.csv", [(-21, 3000), (-20, 3000)])
    assert monitor_curve.main([str(a), "--n-envs", "16", "--bin", "50k"]) == 0
    out = capsys.readouterr().out
    assert "| 50k |" not in out and "| 0.05M | -21.00 | 1 |" in out and "| 0.1M | -20.00 | 1 |" in out
    other = tmp_path / "episodes.csv"
    other.write_text("agent_step,frames,wall_time,return,length\n1,4,0.1,-21,1\n")
    assert monitor_curve.main([str(other)]) == 2
    assert capsys.readouterr().err.count("\n") == 1
