"""The training CLI and the run lifecycle: run directory, checkpoints, kill -9 and resume, bad input, enjoy."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers import SMALL_A2C, episode_rows, run_dir, start_train, stop, wait_for

from rl_coordconv import enjoy, train
from rl_coordconv.agents.trainer import Monitor
from rl_coordconv.experiment import TrainConfig
from rl_coordconv.logs import RunRecorder
from rl_coordconv.runs import RunDir, RunStateError, RunStopped


def test_cli_run_writes_the_whole_run_directory_and_enjoy_plays_it(tmp_path, capsys):
    args = [*SMALL_A2C, "--coordconv", "--timesteps", "3000", "--checkpoint-every", "1000", "--log-every", "500"]
    assert train.main([*args, "--log-dir", str(tmp_path)]) == 0
    run = run_dir(tmp_path, arm="coordconv")
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["algo"] == "a2c" and config["game"] == "Breakout" and config["coordconv"] is True
    assert config["timesteps"] == 3000 and config["n_envs"] == 4 and config["hyperparams"]["n_steps"] == 5
    assert config["command"].startswith("python -m rl_coordconv.train")
    assert config["versions"]["torch"] and config["versions"]["stable-baselines3"]
    assert "git_commit" in config and config["protocol"]["frame_skip"] == 4
    assert json.loads((run / "state.json").read_text())["status"] == "finished"
    assert (run / "final_model.zip").exists()
    latest = json.loads((run / "checkpoints" / "latest.json").read_text())
    assert latest["step"] >= 2000
    assert list(run.glob("events.out.tfevents.*"))
    rows = episode_rows(run / "episodes.csv")
    assert rows, "random Breakout finishes games within 3000 steps"
    for row in rows:
        assert int(row["frames"]) == 4 * int(row["agent_step"]) and float(row["return"]) >= 0
        assert 0 < int(row["length"]) <= int(row["agent_step"])
    assert [int(r["agent_step"]) for r in rows] == sorted(int(r["agent_step"]) for r in rows)

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"charts/episodic_return", "charts/episodic_length", "charts/fps", "coordconv/coord_weight_ratio"} <= tags
    assert {"losses/policy_loss", "losses/value_loss", "losses/entropy_loss"} <= tags
    assert [e.step for e in events.Scalars("charts/episodic_return")] == [int(r["agent_step"]) for r in rows]

    capsys.readouterr()
    scores = enjoy.play(run, episodes=2)
    assert len(scores) == 2 and all(s >= 0 for s in scores)
    assert "over 2 games" in capsys.readouterr().out
    if importlib.util.find_spec("imageio_ffmpeg") is not None:  # the video extra
        import imageio.v2 as imageio

        assert len(enjoy.play(run, episodes=1, video=tmp_path / "game.mp4")) == 1
        frames = imageio.mimread(tmp_path / "game.mp4", memtest=False)
        assert len(frames) > 10 and frames[0].shape == (210, 160, 3)  # whole RGB screens, not 84×84
    assert enjoy.main([str(run), "--device", "tpu"]) == 2
    assert capsys.readouterr().err == "error: unknown device 'tpu'; use auto, cpu or cuda[:N]\n"
    damaged = tmp_path / "damaged.zip"
    damaged.write_bytes(b"not a zip")
    assert enjoy.main([str(run), "--checkpoint", str(damaged)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot load {damaged}: ") and err.count("\n") == 1


def _cli(*args: str, log_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rl_coordconv.train", *SMALL_A2C, "--log-dir", str(log_dir), *args],
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_kill_9_then_resume_loses_and_duplicates_nothing(tmp_path):
    run = run_dir(tmp_path)
    args = ["--timesteps", "8000", "--checkpoint-every", "1000", "--log-every", "1000"]
    proc = start_train([*SMALL_A2C, *args], tmp_path)
    latest = run / "checkpoints" / "latest.json"

    def games_after_a_checkpoint() -> bool:
        if not (latest.exists() and (run / "episodes.csv").exists()):
            return False
        step = json.loads(latest.read_text())["step"]
        return step >= 2000 and any(int(r["agent_step"]) > step for r in episode_rows(run / "episodes.csv"))

    try:
        wait_for(proc, games_after_a_checkpoint, "checkpoint followed by logged games")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    checkpoint_step = json.loads(latest.read_text())["step"]
    before = episode_rows(run / "episodes.csv")
    kept = [r for r in before if int(r["agent_step"]) <= checkpoint_step]
    assert len(kept) < len(before), "the killed attempt logged games after its last checkpoint"

    refused = _cli(*args, log_dir=tmp_path)  # no --resume: an interrupted run is not restarted silently
    assert refused.returncode == 2 and "--resume" in refused.stderr

    resumed = _cli("--resume", log_dir=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming {run} at step {checkpoint_step:,}" in resumed.stdout
    after = episode_rows(run / "episodes.csv")
    assert after[: len(kept)] == kept  # work before the checkpoint is kept as it was
    steps = [int(r["agent_step"]) for r in after]
    assert steps == sorted(steps) and steps[-1] <= 8000  # nothing from the killed attempt survives past it
    wall = [float(r["wall_time"]) for r in after]
    assert wall == sorted(wall), "the resumed run's wall clock goes on from the checkpoint's"
    assert len(list((run / "checkpoints").glob("step_*.zip"))) == 2, "only the last two of 7+ checkpoints are kept"
    state = json.loads((run / "state.json").read_text())
    assert state["status"] == "finished" and state["agent_steps"] == 8000

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run))
    events.Reload()
    assert [e.step for e in events.Scalars("charts/episodic_return")] == steps  # TensorBoard purged them too


@pytest.mark.parametrize(
    ("backend", "number"),  # sb3: SubprocVecEnv workers, which must outlive the signal
    [("ale", signal.SIGINT), ("sb3", signal.SIGINT), ("sb3", signal.SIGTERM)],
)
def test_ctrl_c_checkpoints_where_the_run_stopped_and_resume_goes_on_from_there(tmp_path, backend, number):
    run = run_dir(tmp_path)
    args = [*SMALL_A2C, "--env-backend", backend, "--timesteps", "10000", "--checkpoint-every", "100k"]
    proc = start_train(args, tmp_path)  # no checkpoint on the way: the one there is, the stop wrote
    wait_for(proc, lambda: (run / "episodes.csv").exists() and len(episode_rows(run / "episodes.csv")) >= 2, "games")
    stopped, err = stop(proc, number)
    assert proc.returncode == 128 + number and "Traceback" not in err, err
    assert 0 < stopped < 10000 and json.loads((run / "checkpoints" / "latest.json").read_text())["step"] == stopped
    state = json.loads((run / "state.json").read_text())
    assert state["status"] == "running" and state["agent_steps"] == stopped
    before = episode_rows(run / "episodes.csv")
    assert int(before[-1]["agent_step"]) <= stopped  # every game up to the stop is logged, none after it

    resumed = _cli("--env-backend", backend, "--resume", log_dir=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming {run} at step {stopped:,}" in resumed.stdout
    assert episode_rows(run / "episodes.csv")[: len(before)] == before
    assert json.loads((run / "state.json").read_text())["status"] == "finished"


class _StandingTrainer:
    """A trainer at a given step that trains no further: enough for the monitor to checkpoint it."""

    def __init__(self, step: int) -> None:
        self.num_timesteps = step

    def model_bytes(self) -> bytes:
        return b"model"

    def checkpoint_state(self) -> dict:
        return {}

    def write_checkpoint_extra(self, directory: Path) -> bool:
        return False

    def run_state(self) -> dict:
        return {}

    def scalars(self, seconds: float) -> dict:
        return {}

    def coord_weight_ratio(self) -> None:
        return None

    def progress_note(self) -> str:
        return ""


def test_a_stop_checkpoints_once_where_the_run_stands_and_not_before_it_has_trained(tmp_path):
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    config = TrainConfig(timesteps=1000, checkpoint_every=100_000, progress=False)
    recorder, trainer = RunRecorder(run), _StandingTrainer(0)
    with Monitor(config, run, recorder, trainer, [signal.SIGINT]) as monitor:  # type: ignore[arg-type]
        with pytest.raises(RunStopped, match="by Ctrl-C before any training; --overwrite starts the run over"):
            monitor.tick()  # at step 0 there is nothing to keep
        with pytest.raises(RunStateError):
            run.latest_checkpoint()
        trainer.num_timesteps = 40
        with pytest.raises(RunStopped, match="by Ctrl-C at step 40; --resume continues from there") as stopped:
            monitor.tick()
        assert stopped.value.signal_number == signal.SIGINT
        written = run.latest_checkpoint()
        assert written.step == 40
        before = written.model.stat().st_mtime_ns
        with pytest.raises(RunStopped, match="at step 40"):
            monitor.tick()  # asked again where it already checkpointed: no second write
        assert run.latest_checkpoint().model.stat().st_mtime_ns == before
    recorder.close()


@pytest.mark.parametrize(
    "args,message",
    [
        (["--game", "Pnog"], "unknown game 'Pnog'; did you mean Pong?"),
        (["--algo", "a3c"], "unknown algo 'a3c'; choose from a2c, ppo, dqn, qrdqn"),
        (["--timesteps", "0"], "the number of steps must be a positive whole number, got '0'"),
        (["--timesteps", "-10"], "cannot read '-10' as a number of steps"),
        (["--n-envs", "0"], "--n-envs must be at least 1, got 0"),
        (["--device", "cuda"], "--device cuda asked for CUDA"),
        (["--env-backend", "gym"], "unknown --env-backend 'gym'; choose from ale, envpool, sb3"),
        (["--set", "n_step=3"], "a2c has no hyperparameter 'n_step'"),
        (["--set", "learning_rate=fast"], "a2c rejected its hyperparameters (check the --set values): The learning"),
        (["--with-r"], "--with-r needs --coordconv"),
        (["--resume"], "nothing to resume"),
        (["--seed", "-1"], "--seed must be a whole number from 0 to 1073741824, got -1"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, args, message):
    if args == ["--device", "cuda"]:
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has CUDA")
    code = train.main([*SMALL_A2C, "--timesteps", "80", "--log-dir", str(tmp_path), *args])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and err.startswith("error: ") and err.count("\n") == 1
    assert not list(tmp_path.rglob("*.zip")) and not list(tmp_path.rglob("config.yaml")), "a refused run writes nothing"
    if args[0] in ("--game", "--algo", "--with-r"):  # refused before the run directory is looked at
        assert not list(tmp_path.iterdir()), "a setting refused on its own makes no directory"


def test_every_spelling_of_a_game_names_the_same_run(tmp_path, capsys):
    args = ["--n-envs", "4", "--no-progress", "--timesteps", "80", "--log-dir", str(tmp_path)]
    assert train.main(["--game", "ALE/Breakout-v5", *args]) == 0
    assert yaml.safe_load((run_dir(tmp_path) / "config.yaml").read_text())["game"] == "Breakout"
    assert train.main(["--game", "breakout", *args]) == 2
    assert "holds a finished run" in capsys.readouterr().err
    assert [path.name for path in (tmp_path / "a2c").iterdir()] == ["Breakout"]


def test_a_log_dir_it_cannot_write_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert train.main([*SMALL_A2C, "--timesteps", "80", "--log-dir", str(blocker / "runs")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(blocker) in err and err.count("\n") == 1


def test_finished_run_is_never_overwritten_without_asking(tmp_path, capsys):
    args = [*SMALL_A2C, "--timesteps", "400", "--log-dir", str(tmp_path)]
    assert train.main(args) == 0
    run = run_dir(tmp_path)
    model = (run / "final_model.zip").read_bytes()
    assert train.main(args) == 2
    assert "holds a finished run; --overwrite deletes it" in capsys.readouterr().err
    assert train.main([*args, "--resume"]) == 2
    assert "already finished" in capsys.readouterr().err
    assert (run / "final_model.zip").read_bytes() == model
    assert train.main([*args, "--overwrite", "--seed", "0"]) == 0  # asked: starts over


def test_resume_refuses_a_missing_or_corrupt_checkpoint_and_changed_settings(tmp_path, capsys):
    args = [*SMALL_A2C, "--timesteps", "800", "--checkpoint-every", "400", "--log-dir", str(tmp_path)]
    assert train.main(args) == 0
    run = run_dir(tmp_path)
    # make it look interrupted
    (run / "state.json").write_text(json.dumps({"status": "running", "agent_steps": 400}))
    assert train.main([*args, "--resume", "--timesteps", "900"]) == 2
    assert (
        "was made with timesteps=800, not 900; resume it with its own settings or use --overwrite"
        in capsys.readouterr().err
    )
    (run / "checkpoints" / "latest.json").write_text("{not json")
    assert train.main([*args, "--resume"]) == 2
    assert "cannot resume" in capsys.readouterr().err
    (run / "checkpoints" / "latest.json").unlink()
    assert train.main([*args, "--resume"]) == 2
    assert "no checkpoint" in capsys.readouterr().err
    assert (run / "final_model.zip").exists()


@pytest.mark.parametrize(
    "args,message",
    [
        (["--actors", "2"], "--actors is for algorithms with actors (apex), not a2c"),
        (["--actors-on", "ray"], "--actors-on and --ray-address place the actors of algorithms that have them"),
    ],
)
def test_apex_options_are_refused_for_other_algos(tmp_path, capsys, args, message):
    assert train.main(["--algo", "a2c", "--log-dir", str(tmp_path), *args]) == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.iterdir()), "refused before the run directory is looked at"


def test_a_run_in_use_by_another_process_is_refused(tmp_path, capsys):
    from rl_coordconv.runs import RunDir

    with RunDir(run_dir(tmp_path)).lock():
        assert train.main([*SMALL_A2C, "--timesteps", "80", "--log-dir", str(tmp_path)]) == 2
    assert "in use by another training process" in capsys.readouterr().err
    assert not RunDir(run_dir(tmp_path)).in_use()
