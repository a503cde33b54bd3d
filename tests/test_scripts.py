"""scripts/: learning curves and TensorBoard scalars as tables, the greedy actions of an Ape-X run, how a Catch
policy catches."""

from __future__ import annotations

import gzip
import importlib.util
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from helpers import run_dir


def _script(name: str) -> Any:
    """Import ``scripts/<name>.py`` (scripts are not a package)."""
    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[1] / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # a dataclass resolves its annotations in its module
    spec.loader.exec_module(module)
    return module


return_curve = _script("return_curve")
tb_scalars = _script("tb_scalars")


def _monitor(path: Path, games: list[tuple[float, int]]) -> Path:
    rows = "".join(f"{r},{frames},{i}.5\n" for i, (r, frames) in enumerate(games))
    path.write_text('#{"t_start": 0, "env_id": "PongNoFrameskip-v4"}\nr,l,t\n' + rows)
    return path


def _episodes(path: Path, games: list[tuple[float, int]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = "".join(f"{frames // 4},{frames},0.1,{r},{frames // 64}\n" for r, frames in games)
    path.write_text("agent_step,frames,wall_time,return,length\n" + rows)
    return path


def test_monitor_games_are_binned_by_the_runs_frames_across_envs(tmp_path):
    # env a's games end at its frames 300, 700, 1000; env b's at 500, 1000: × 2 envs
    a = _monitor(tmp_path / "0.monitor.csv", [(-21, 300), (-19, 400), (-15, 300)])
    b = _monitor(tmp_path / "1.monitor.csv", [(-20, 500), (-11, 500)])
    games = [return_curve.read_games(path)[1:] for path in (a, b)]
    assert all(return_curve.read_games(path)[0] == "monitor" for path in (a, b))
    ends, returns = return_curve.monitor_run(games, n_envs=2)
    table = return_curve.binned(ends, returns, bin_frames=1000)
    # run frames 600 (a), 1400 (a), 2000 (a), 1000 (b), 2000 (b); bins (0, 1000], (1000, 2000]
    assert table == [(1000, -20.5, 2), (2000, pytest.approx(-15.0), 3)]


def test_each_runs_episodes_get_a_row_and_monitor_files_pool_into_one(tmp_path, capsys):
    conv = _episodes(tmp_path / "runs/a2c/Pong/conv/seed0/episodes.csv", [(-21, 1500), (-19, 2000), (-17, 2001)])
    coord = _episodes(tmp_path / "runs/a2c/Pong/coordconv/seed0/episodes.csv", [(-20, 4000)])
    with coord.open("a") as handle:
        handle.write("1100,4400,0.1,")  # a run killed mid-write: its torn last line is skipped
    sb3 = _monitor(tmp_path / "0.monitor.csv", [(-21, 100), (-18, 200)])
    args = [str(conv), str(coord), str(sb3), "--n-envs", "16", "--bin", "2k"]
    assert return_curve.main(args) == 0
    out = capsys.readouterr().out
    assert "| run | 0M–0.002M | 0.002M–0.004M | 0.004M–0.006M |" in out
    assert "| Pong/conv/seed0 | -20.00 (2) | -17.00 (1) |" in out  # the game at 2,000 frames is in the first bin
    assert "| Pong/coordconv/seed0 | – | -20.00 (1) | – |" in out
    # at run frames 1,600 and 4,800: none in the middle bin
    assert "| SB3 Monitor (1 of 16 envs) | -21.00 (1) | – | -18.00 (1) |" in out
    # an exported episodes.csv.gz reads the same
    packed = conv.with_name("episodes.csv.gz")
    packed.write_bytes(gzip.compress(conv.read_bytes()))
    assert return_curve.main([str(packed), "--bin", "2k"]) == 0
    assert "| Pong/conv/seed0 | -20.00 (2) | -17.00 (1) |" in capsys.readouterr().out


def test_cli_refuses_other_files_and_too_few_envs_in_one_line(tmp_path, capsys):
    other = tmp_path / "scores.csv"
    other.write_text("game,score\nPong,-21\n")
    assert return_curve.main([str(other)]) == 2
    err = capsys.readouterr().err
    assert str(other) in err and err.count("\n") == 1
    a = _monitor(tmp_path / "0.monitor.csv", [(-21, 3000)])
    b = _monitor(tmp_path / "1.monitor.csv", [(-21, 3000)])
    assert return_curve.main([str(a), str(b), "--n-envs", "1"]) == 2
    err = capsys.readouterr().err
    assert "--n-envs 1" in err and err.count("\n") == 1
    assert return_curve.main([str(a), "--bin", "0"]) == 2
    err = capsys.readouterr().err
    assert "'0'" in err and "positive" in err and err.count("\n") == 1


def test_tb_scalars_samples_a_runs_events_and_names_a_missing_tag(tmp_path, capsys):
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(tmp_path))
    for step in range(10, 260, 10):  # logged every 10 steps: 10 … 250
        writer.add_scalar("losses/entropy_loss", -step / 100, step)
    writer.close()
    assert tb_scalars.main([str(tmp_path), "--every", "100"]) == 0
    out = capsys.readouterr().out
    assert (
        "| losses/entropy_loss | 10: -0.100, 100: -1.000, 200: -2.000, 250: -2.500 | -2.500 at 250 | -0.100 at 10 |"
        in out
    )
    assert tb_scalars.main([str(tmp_path), "--every", "100", "--from", "95"]) == 0
    assert "| 100: -1.000, 200: -2.000, 250: -2.500 | -2.500 at 250 | -1.000 at 100 |" in capsys.readouterr().out
    assert tb_scalars.main([str(tmp_path), "--from", "300"]) == 2
    err = capsys.readouterr().err
    assert "losses/entropy_loss" in err and "300" in err and err.count("\n") == 1
    assert tb_scalars.main([str(tmp_path), "--tags", "losses/nope"]) == 2
    err = capsys.readouterr().err
    assert "losses/nope" in err and "losses/entropy_loss" in err and err.count("\n") == 1
    (tmp_path / "empty").mkdir()
    assert tb_scalars.main([str(tmp_path / "empty")]) == 2
    assert "no TensorBoard event files" in capsys.readouterr().err
    # a committed copy: the same table from its scalars.csv
    copy = tmp_path / "copy"
    copy.mkdir()
    rows = "".join(f"losses/entropy_loss,{step},{-step / 100:g}\n" for step in range(10, 260, 10))
    (copy / "scalars.csv").write_text("tag,step,value\n" + rows)
    assert tb_scalars.main([str(copy), "--every", "100"]) == 0
    assert (
        "| losses/entropy_loss | 10: -0.100, 100: -1.000, 200: -2.000, 250: -2.500 | -2.500 at 250 |"
        in capsys.readouterr().out
    )
    assert tb_scalars.main([str(tmp_path), "--every", "-5"]) == 2
    assert "'-5'" in capsys.readouterr().err


def test_tb_scalars_defaults_to_the_runs_losses_tags_whatever_the_algo(tmp_path, capsys):
    # an Ape-X run logs losses/loss and losses/q_values, no entropy
    apex = tmp_path / "apex"
    apex.mkdir()
    rows = "".join(
        f"{tag},{step},{step / 10:g}\n" for tag in ("losses/loss", "losses/q_values", "charts/fps") for step in (10, 20)
    )
    (apex / "scalars.csv").write_text("tag,step,value\n" + rows)
    assert tb_scalars.main([str(apex), "--from", "0"]) == 0
    out = capsys.readouterr().out
    assert "| losses/loss | 10: 1.000, 20: 2.000 |" in out and "| losses/q_values |" in out
    assert "charts/fps" not in out
    charts = tmp_path / "charts"
    charts.mkdir()
    (charts / "scalars.csv").write_text("tag,step,value\ncharts/fps,10,1\n")
    assert tb_scalars.main([str(charts)]) == 2
    err = capsys.readouterr().err
    assert "no losses/ scalars" in err and "charts/fps" in err and err.count("\n") == 1


def test_greedy_actions_script_counts_the_q_networks_argmax(local_run, tmp_path, capsys):
    script = _script("greedy_actions")
    run = run_dir(local_run[0], "apex", arm="coordconv")
    counts, spreads = script.greedy_actions(run, 40)
    assert sum(counts.values()) == 40 and set(counts) <= set(range(4)) and (spreads >= 0).all()
    assert script.main([str(run), "--steps", "40"]) == 0
    out = capsys.readouterr().out
    for action, name in enumerate(["NOOP", "FIRE", "RIGHT", "LEFT"]):  # Breakout's actions
        assert f"| {action} {name} | {counts[action]:,} |" in out
    a2c = tmp_path / "a2c"
    a2c.mkdir()
    (a2c / "config.yaml").write_text(yaml.safe_dump({"algo": "a2c", "game": "Pong"}))
    assert script.main([str(a2c)]) == 2
    err = capsys.readouterr().err
    assert "run of a2c" in err and "apex" in err and err.count("\n") == 1


def test_apex_progress_counts_learner_steps_and_splits_games_by_actor(local_run, tmp_path, capsys):
    script = _script("apex_progress")
    run = run_dir(local_run[0], "apex", arm="coordconv")
    loaded = script.load(run)
    state = json.loads((run / "state.json").read_text())
    assert loaded.learner_steps(state["agent_steps"]) == state["learner_steps"]  # logged at the end
    # a run from before charts/learner_steps: rebuilt from the samples per insert it logged
    loaded.learner = []
    assert loaded.learner_steps(state["agent_steps"]) == pytest.approx(state["learner_steps"], rel=0.1, abs=3)
    loaded.spi = []
    assert loaded.learner_steps(state["agent_steps"]) is None  # neither: not a made-up 0
    assert loaded.actors is not None and set(loaded.actors) == {0, 1} and loaded.epsilons[0] == 0.4
    curves = script.return_curves(loaded)  # the run's score (all games) first, then each actor's games
    assert [label.split(", ")[-1] for label, _, _ in curves] == ["all actors", "actor 0 (ε 0.4)", "actor 1 (ε 0.00066)"]
    assert [everyone for _, _, everyone in curves] == [True, False, False] and curves[0][1].all()
    assert (curves[1][1] ^ curves[2][1]).all() and curves[1][1].any() and curves[2][1].any()
    figure = tmp_path / "progress.png"
    first_game = float(loaded.hours[0])
    assert script.main([str(run), "--every", str(first_game / 2), "--figure", str(figure)]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| Breakout/")]
    cells = [[cell.strip() for cell in row.strip("|").split("|")] for row in rows]
    assert len(rows) >= 2 and figure.stat().st_size > 0
    live = tmp_path / "live" / "apex/Breakout/coordconv/seed0"  # a copy: the session's run stays as it is
    shutil.copytree(run, live)
    (live / "state.json").write_text(json.dumps(dict(state, status="running")))  # stopped short of its budget
    assert script.main([str(live), "--every", str(first_game / 2), "--export", str(tmp_path / "copy")]) == 0
    exported = tmp_path / "copy" / "apex/Breakout/coordconv/seed0"
    assert f"copied {live}'s small artefacts to {exported}" in capsys.readouterr().out
    assert sorted(path.name for path in exported.iterdir()) == [
        "config.yaml",
        "episodes.csv",
        "scalars.csv",
        "state.json",
    ]
    assert json.loads((exported / "state.json").read_text())["status"] == "running"
    assert script.main([str(exported), "--every", str(first_game / 2)]) == 0  # the committed copy reads the same
    assert [line for line in capsys.readouterr().out.splitlines() if line.startswith("| Breakout/")] == rows
    frames = [float(row[2].removesuffix("M")) for row in cells]  # a row before the first game showed the last
    learner = [int(row[6].replace(",", "")) for row in cells]
    assert frames == sorted(frames) and learner == sorted(learner) and learner[-1] > 0
    games = [int(cell.split("(")[1].split(")")[0]) for cell in cells[-1][3:6]]  # all, actor 0's, actor 1's
    assert games[0] == min(100, len(loaded.returns))
    assert games[1:] == [min(100, int((loaded.actors == actor).sum())) for actor in (0, 1)]
    a2c = tmp_path / "a2c"
    a2c.mkdir()
    (a2c / "config.yaml").write_text(yaml.safe_dump({"algo": "a2c", "game": "Pong"}))
    assert script.main([str(a2c)]) == 2
    assert "not an Ape-X run" in capsys.readouterr().err


class _CatchPlayer:
    """A stand-in model that reads ball and paddle off the newest frame: toward the ball, or never moves."""

    def __init__(self, moves: bool) -> None:
        self.moves = moves

    def predict(self, obs, deterministic=True):
        frames = obs[:, -1, ::12, ::12]  # one pixel per cell
        ball = frames[:, :-1].max(axis=1).argmax(axis=1)
        paddle = frames[:, -1].argmax(axis=1)
        toward = np.where(ball < paddle, 1, np.where(ball > paddle, 2, 0))  # LEFT, RIGHT, NOOP
        return (toward if self.moves else np.zeros_like(toward)), None


@pytest.mark.parametrize("moves", [True, False])
def test_catch_by_distance_counts_each_games_starting_distance(monkeypatch, capsys, tmp_path, moves):
    catch_by_distance = _script("catch_by_distance")
    monkeypatch.setattr(catch_by_distance, "load_run_model", lambda *a, **k: ({"game": "Catch"}, _CatchPlayer(moves)))
    ball, paddle, caught = catch_by_distance.play(tmp_path, games=700, seed=0).T
    assert caught.tolist() == (np.ones(700) if moves else (ball == paddle)).tolist()
    assert catch_by_distance.main([str(tmp_path / "conv_pool" / "seed0"), "--games", "700"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("| conv_pool (mean of 1) |"))
    expected = "1.00 | 1.00 | 1.00 | 1.00 | 1.00 | 1.00 | 1.00 | 1.00" if moves else "1.00 | 0.00 | 0.00 | 0.00 | 0.00"
    assert row.startswith(f"| conv_pool (mean of 1) | {expected}")
