"""The sweep: plans the grid, starts, skips and resumes runs, refuses mixed settings."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import subprocess
import sys

import pytest
from helpers import FakeRay, episode_rows, heed_ctrl_c, start_train, wait_for

from rl_coordconv import grid, sweep
from rl_coordconv.cli import actor_overrides
from rl_coordconv.experiment import TrainConfig
from rl_coordconv.runs import RunDir
from rl_coordconv.train import build_parser

TINY = ["--games", "Pong", "Breakout", "--arms", "conv", "coordconv", "--seeds", "0", "--n-envs", "2"]


def _runs(log_dir) -> dict[str, str]:
    return {
        str(p.parent.relative_to(log_dir)): json.loads(p.read_text())["status"]
        for p in sorted(log_dir.glob("a2c/*/*/seed*/state.json"))
    }


def test_sweep_creates_skips_and_resumes_runs(tmp_path, capsys):
    args = [*TINY, "--timesteps", "1200", "--checkpoint-every", "400", "--log-dir", str(tmp_path), "--workers", "2"]
    assert sweep.main(args) == 0
    out = capsys.readouterr().out
    assert "sweep of 4 runs (a2c, 1,200 steps each): 4 to start" in out and "sweep: 4 done" in out
    assert _runs(tmp_path) == {
        "a2c/Breakout/conv/seed0": "finished",
        "a2c/Breakout/coordconv/seed0": "finished",
        "a2c/Pong/conv/seed0": "finished",
        "a2c/Pong/coordconv/seed0": "finished",
    }
    assert all((tmp_path / run / "train.log").exists() for run in _runs(tmp_path))

    # make one run look interrupted after its first checkpoint, and one dead before any checkpoint
    interrupted = RunDir(tmp_path / "a2c/Pong/conv/seed0")
    interrupted.write_state("running", 400)
    (interrupted.final_model_path).unlink()
    early = RunDir(tmp_path / "a2c/Breakout/coordconv/seed0")
    early.write_state("running", 0)
    for path in early.checkpoint_dir.iterdir():
        path.unlink()
    assert sweep.main([*args, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "1 to resume, 1 to restart, 2 skip" in out
    assert sweep.main(args) == 0
    out = capsys.readouterr().out
    assert "sweep: 2 done, 2 skipped" in out
    assert set(_runs(tmp_path).values()) == {"finished"}
    assert "resuming" in (interrupted.path / "train.log").read_text()


def test_sweep_refuses_runs_made_with_other_settings(tmp_path, capsys):
    args = ["--games", "Pong", "--arms", "conv", "--seeds", "0", "--n-envs", "2", "--log-dir", str(tmp_path)]
    assert sweep.main([*args, "--timesteps", "200"]) == 0
    model = (tmp_path / "a2c/Pong/conv/seed0/final_model.zip").read_bytes()
    assert "sweep of 1 run (a2c, 200 steps each): 1 to start" in capsys.readouterr().out
    assert sweep.main([*args, "--timesteps", "400"]) == 2
    assert "was made with timesteps=200, not 400; use another --log-dir or delete that run" in capsys.readouterr().err
    assert sweep.main([*args, "--timesteps", "200", "--set", "ent_coef=0.02"]) == 2
    assert "hyperparams" in capsys.readouterr().err
    assert (tmp_path / "a2c/Pong/conv/seed0/final_model.zip").read_bytes() == model

    # a run of an older Atari protocol is neither skipped as done nor resumed
    run = RunDir(tmp_path / "a2c/Pong/conv/seed0")
    config = run.read_config()
    del config["protocol"]["version"]
    run.write_config(config)
    assert sweep.main([*args, "--timesteps", "200"]) == 2
    assert "was made under Atari protocol version 1, this version plays 2" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args,message",
    [
        (["--games", "Pnog"], "unknown game 'Pnog'"),
        (["--arms", "coord"], "unknown arm 'coord'; choose from conv, coordconv"),
        (["--workers", "0"], "--workers must be at least 1, got 0"),
        (["--algo", "sac"], "unknown algo 'sac'"),
        (["--device", "tpu"], "unknown device 'tpu'; use auto, cpu or cuda[:N]"),
    ],
)
def test_sweep_bad_input(tmp_path, capsys, args, message):
    assert sweep.main([*args, "--log-dir", str(tmp_path), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not any(tmp_path.iterdir())


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="the ray extra is not installed")
def test_sweep_on_a_local_ray_cluster(tmp_path, capsys, monkeypatch):
    import ray

    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    # Ray workers import the package from sys.path; make sure they see this checkout.
    ray.init(num_cpus=2, include_dashboard=False, runtime_env={"env_vars": {"PYTHONPATH": ":".join(sys.path)}})
    try:
        args = [*TINY, "--timesteps", "160", "--log-dir", str(tmp_path), "--runs-on", "ray", "--ray-address", "auto"]
        assert sweep.main(args) == 0
    finally:
        ray.shutdown()
    assert "sweep: 4 done" in capsys.readouterr().out
    assert set(_runs(tmp_path).values()) == {"finished"}


def test_ray_backend_without_a_cluster_is_a_clear_error(tmp_path, capsys):
    if importlib.util.find_spec("ray") is None:
        code = sweep.main(["--games", "Pong", "--log-dir", str(tmp_path), "--runs-on", "ray"])
        assert code == 2 and "pip install 'rl-coordconv[ray]'" in capsys.readouterr().err
        return
    import ray

    if ray.is_initialized():
        ray.shutdown()
    code = sweep.main(
        ["--games", "Pong", "--log-dir", str(tmp_path), "--runs-on", "ray", "--ray-address", "10.255.255.1:1"]
    )
    assert code == 2 and "cannot reach a Ray cluster at '10.255.255.1:1'" in capsys.readouterr().err


def test_ray_sweep_joins_rays_default_cluster_and_stops_cleanly_on_ctrl_c(tmp_path, capsys, monkeypatch):
    fake = FakeRay()

    def connect(address, option):
        fake.address = address
        return fake

    monkeypatch.setattr(grid, "connect_ray", connect)
    code = sweep.main([*TINY, "--timesteps", "160", "--log-dir", str(tmp_path), "--runs-on", "ray"])
    assert fake.address is None  # Ray's own default: the running cluster it finds, else a new one here
    assert code == 130 and len(fake.cancelled) == 4
    assert "run the same command again to continue" in capsys.readouterr().err


def test_a_failed_run_points_at_its_log(tmp_path, capsys):
    cell = grid.Cell(TrainConfig(game="Pong", log_dir=str(tmp_path)), {}, "start", status="failed", returncode=1)
    assert grid._summary([cell]) == 1
    log = tmp_path / "a2c/Pong/conv/seed0/train.log"
    assert f"failed: Pong/conv/seed0 (exit 1); log: {log}" in capsys.readouterr().out


def test_a_sweep_passes_ape_x_actor_placement_to_its_runs(tmp_path):
    args = ["--algo", "apex", "--actors", "2", "--actors-on", "ray", "--ray-address", "auto", "--dry-run"]
    parsed = sweep.build_parser().parse_args([*args, "--log-dir", str(tmp_path), "--games", "Pong", "--seeds", "0"])
    base = TrainConfig(
        algo="apex", log_dir=str(tmp_path), hyperparams=actor_overrides(parsed), actors_on="ray", ray_address="auto"
    )
    (cell,) = grid.plan(base, ["Pong"], ["conv"], [0])
    launched = grid.launch(cell.config, cell.overrides)
    assert launched is not None
    assert " ".join(launched).count("--actors-on ray --ray-address auto") == 1 and "actors=2" in launched


@pytest.mark.parametrize("arm", list(grid.ARMS))
def test_each_arm_is_launched_as_the_train_run_of_that_arm(tmp_path, arm):
    base = TrainConfig(timesteps=100, log_dir=str(tmp_path))
    (cell,) = grid.plan(base, ["Pong"], [arm], [3])
    args = build_parser().parse_args(grid.launch(cell.config, {}))
    relaunched = TrainConfig(
        game=args.game, coordconv=args.coordconv, with_r=args.with_r, coord_layers=args.coord_layers, seed=args.seed
    )
    assert relaunched.arm == arm and relaunched.seed == 3 and args.log_dir == str(tmp_path)


def test_a_sweep_crosses_its_arms_with_each_head(tmp_path, capsys):
    args = ["--games", "Catch", "--arms", "conv", "coordconv", "--head", "flatten", "pool", "--seeds", "0"]
    assert sweep.main([*args, "--timesteps", "100", "--log-dir", str(tmp_path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "sweep of 4 runs" in out
    for arm in ("conv", "coordconv", "conv_pool", "coordconv_pool"):
        assert str(tmp_path / "a2c/Catch" / arm / "seed0") in out
    base = TrainConfig(algo="a2c", timesteps=100, log_dir=str(tmp_path))
    cells = grid.plan(base, ["Catch"], ["coordconv"], [0], ["pool"])
    launched = grid.launch(cells[0].config, {})
    assert launched is not None and launched[launched.index("--head") + 1] == "pool"


def test_a_run_another_process_trains_is_left_alone(tmp_path, capsys):
    args = ["--games", "Pong", "--arms", "conv", "--seeds", "0", "--timesteps", "100", "--log-dir", str(tmp_path)]
    run = RunDir(tmp_path / "a2c/Pong/conv/seed0")
    run.path.mkdir(parents=True)
    run.write_state("running", 0)
    config = TrainConfig(game="Pong", timesteps=100, log_dir=str(tmp_path))
    with run.lock():
        assert sweep.main([*args, "--dry-run"]) == 0
        assert "1 busy" in capsys.readouterr().out
        assert grid.launch(config, {}) is None  # a Ray retry does not start a second copy either
    assert not run.in_use()


@pytest.mark.parametrize("how", ["Ctrl-C", "SIGTERM"])
def test_a_stopped_sweep_stops_its_runs_at_a_checkpoint_each_and_the_same_command_goes_on(tmp_path, how):
    args = ["--games", "Breakout", "--arms", "conv", "--seeds", "0", "--n-envs", "4", "--timesteps", "10000"]
    args += ["--checkpoint-every", "100k", "--workers", "1"]
    proc = start_train(args, tmp_path, tool="sweep")
    run = RunDir(tmp_path / "a2c/Breakout/conv/seed0")
    wait_for(proc, lambda: run.episodes_path.exists() and len(episode_rows(run.episodes_path)) >= 2, "games")
    try:
        if how == "Ctrl-C":
            os.killpg(proc.pid, signal.SIGINT)  # as a terminal does: to the sweep and its run
        else:
            proc.terminate()  # `kill <sweep>`: the sweep alone, which must pass it on to its run
        _, err = proc.communicate(timeout=180)
    finally:  # nothing left running, even when the sweep died without stopping its run
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == (130 if how == "Ctrl-C" else 143), err
    if how == "SIGTERM":  # the run heard of it from the sweep alone (a terminal's Ctrl-C reaches it directly)
        assert "stopping 1 run, each at a checkpoint" in err
    assert f"sweep stopped by {how}; run the same command again" in err
    stopped = run.read_state()["agent_steps"]
    assert run.status() == "running" and 0 < stopped < 10000
    assert run.latest_checkpoint().step == stopped  # --checkpoint-every 100k: the stop wrote it
    assert f"stopped by {how} at step {stopped:,}" in (run.path / "train.log").read_text()
    assert sweep.main([*args, "--log-dir", str(tmp_path)]) == 0
    assert run.status() == "finished"
    assert f"resuming {run.path} at step {stopped:,}" in (run.path / "train.log").read_text()


# A run that heeds stop requests as train does, busy in C code (as in a torch update: a signal waits
# until the call returns) and slow to checkpoint (as Ape-X with its replay).
_SLOW_TO_STOP = """
import sys
from rl_coordconv.runtime import stop_signals
asked = []
try:
    with stop_signals(asked.append):
        print("ready", flush=True)
        while not asked:
            sum(range(10**7))
        print(f"checkpointing, asked by {asked[0]}", flush=True)
        while True:
            sum(range(10**7))
except KeyboardInterrupt:
    print("stopped at once", flush=True)
    sys.exit(130)
"""


def test_a_second_ctrl_c_stops_a_sweeps_runs_at_once(tmp_path):
    command = [sys.executable, "-c", _SLOW_TO_STOP]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, preexec_fn=heed_ctrl_c)
    try:
        assert child.stdout.readline() == "ready\n"
        cell = grid.Cell(TrainConfig(game="Pong", log_dir=str(tmp_path)), {}, "start", "running", process=child)
        grid._stop_now([cell])  # SIGTERM and SIGINT sent together would be seen SIGINT first: a first request
        assert child.stdout.read() == f"checkpointing, asked by {signal.SIGTERM.value}\nstopped at once\n"
        assert (cell.status, cell.returncode) == ("interrupted", 130)
    finally:
        child.kill()
        child.wait()


def test_a_run_stopped_by_a_signal_is_interrupted_not_failed():
    assert [grid._status(code) for code in (0, 130, 143, -2, -15, 1, 2, -9)] == [
        "done", *["interrupted"] * 4, *["failed"] * 3,
    ]  # fmt: skip
