"""Whole Ape-X runs through the command line: the run directory, resume (with the replay its
checkpoint saved), an actor that keeps dying, and bad input."""

from __future__ import annotations

import importlib.util
import json
import shutil
import signal
import sys
import time
from collections import deque
from pathlib import Path

import numpy as np
import pytest
import yaml
from helpers import SMALL_APEX, episode_rows, one_torch_thread, run_dir, scalars, start_train, stop, wait_for

from rl_coordconv import train
from rl_coordconv.agents.apex import trainer as trainer_module
from rl_coordconv.agents.apex.trainer import ApexTrainer, next_actor
from rl_coordconv.runs import RunDir, load_checkpoint_state


def test_local_run_with_two_actors_trains_and_writes_the_run_directory(local_run):
    log_dir, stdout = local_run
    run = run_dir(log_dir, "apex", arm="coordconv")
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["algo"] == "apex" and config["coordconv"] is True and config["n_envs"] == 2
    assert config["hyperparams"]["actors"] == 2 and config["hyperparams"]["n_step"] == 3
    assert config["hyperparams"]["batch_size"] == 32 and config["hyperparams"]["alpha"] == 0.6
    assert config["actors_on"] == "local" and config["ray_address"] is None
    state = json.loads((run / "state.json").read_text())
    assert state["status"] == "finished" and state["agent_steps"] == 2000 and state["learner_steps"] > 0
    assert state["samples_per_insert"] == pytest.approx(0.8, rel=0.15)  # the default ratio, held
    assert json.loads((run / "checkpoints" / "latest.json").read_text())["step"] >= 800
    assert not [path for path in (run / "checkpoints").iterdir() if path.is_dir()]  # finished: no replay kept
    assert (run / "final_model.zip").exists()
    # each actor did its share: with the limiter holding the actors back, the first used to get it all
    assert sum(state["actor_steps"]) == 2000 and min(state["actor_steps"]) >= 800, state["actor_steps"]
    rows = episode_rows(run / "episodes.csv")
    assert rows, "Breakout games end within 2000 steps"
    for row in rows:
        assert int(row["frames"]) == 4 * int(row["agent_step"]) and float(row["return"]) >= 0
    assert {row["actor"] for row in rows} == {"0", "1"}  # which ε played each game
    steps = [int(r["agent_step"]) for r in rows]
    assert steps == sorted(steps) and steps[-1] <= 2000
    assert [s for s, _ in scalars(run, "charts/episodic_return")] == steps
    tags = ("charts/replay_size", "charts/learner_steps_per_s", "charts/fps", "losses/loss", "losses/q_values")
    assert scalars(run, "charts/learner_steps")[-1][1] == state["learner_steps"]
    tags += ("charts/samples_per_insert", "charts/learner_wait_fraction", "charts/actor_hold_fraction")
    for tag in tags:
        assert scalars(run, tag), tag
    assert scalars(run, "charts/replay_size")[-1][1] > 400
    assert scalars(run, "charts/learner_steps_per_s")[-1][1] > 0
    assert scalars(run, "coordconv/coord_weight_ratio")
    assert "2 actors (local) × 2 envs" in stdout and "finished" in stdout


def test_orders_go_to_each_actor_in_turn_when_the_limiter_lets_one_through_at_a_time():
    orders: list[deque[int]] = [deque(), deque(), deque()]
    delivered = [0, 0, 0]
    for _ in range(300):
        for index, queue in enumerate(orders):  # every actor delivers its oldest order
            if queue:
                delivered[index] += queue.popleft() * 4
        index = next_actor(orders, delivered, n_envs=4)  # the limiter allows one new order
        assert index is not None
        orders[index].append(50)
    assert max(delivered) - min(delivered) <= 50 * 4, delivered
    orders = [deque([50, 50]), deque([50]), deque([50, 50])]
    assert next_actor(orders, [0, 10_000, 0], n_envs=4) == 1  # fewest orders in flight first
    assert next_actor([deque([50, 50])] * 2, [0, 0], n_envs=4) is None  # all busy


def test_resume_continues_an_interrupted_run_from_its_checkpoint(local_run, tmp_path, capsys):
    log_dir = tmp_path / "copy"
    shutil.copytree(local_run[0], log_dir)
    run = run_dir(log_dir, "apex", arm="coordconv")
    checkpoint = json.loads((run / "checkpoints" / "latest.json").read_text())["step"]
    learner_steps = _learner_steps_in(run / "checkpoints" / f"step_{checkpoint:012d}.zip")
    (run / "state.json").write_text(json.dumps({"status": "running", "agent_steps": checkpoint}))
    before = [r for r in episode_rows(run / "episodes.csv") if int(r["agent_step"]) <= checkpoint]
    args = [*SMALL_APEX, "--coordconv", "--actors", "2", "--timesteps", "2000", "--checkpoint-every", "1000"]
    assert train.main([*args, "--log-dir", str(log_dir), "--resume"]) == 0
    assert f"resuming {run} at step {checkpoint:,}" in capsys.readouterr().out
    after = episode_rows(run / "episodes.csv")
    assert after[: len(before)] == before
    assert [int(r["agent_step"]) for r in after] == sorted(int(r["agent_step"]) for r in after)
    state = json.loads((run / "state.json").read_text())
    assert state["status"] == "finished" and state["agent_steps"] == 2000
    assert state["learner_steps"] > learner_steps  # the optimizer and step count went on from the checkpoint
    assert train.main([*args, "--log-dir", str(log_dir), "--resume", "--actors", "3"]) == 2  # finished


def test_a_resumed_run_starts_from_the_replay_its_checkpoint_saved(tmp_path, monkeypatch):
    args = [*SMALL_APEX, "--actors", "1", "--timesteps", "1600", "--checkpoint-every", "800"]
    args += ["--log-dir", str(tmp_path)]
    with monkeypatch.context() as patch:  # as if killed after its checkpoint: the replay is still there
        patch.setattr(RunDir, "drop_checkpoint_extras", lambda self: None)
        with one_torch_thread():
            assert train.main(args) == 0
    run = run_dir(tmp_path, "apex")
    latest = json.loads((run / "checkpoints" / "latest.json").read_text())
    saved = run / "checkpoints" / latest["extra"]
    frames, priorities = np.load(saved / "frames.npy"), np.load(saved / "priorities.npy")
    size = json.loads((saved / "replay.json").read_text())["size"]
    assert size > 400 and frames.any()  # past learning_starts: the learner need not wait again
    (run / "state.json").write_text(json.dumps({"status": "running", "agent_steps": latest["step"]}))
    at_start = {}
    resumed_train = ApexTrainer.train

    def train_and_record(self, until, monitor):
        replay = self.replay
        at_start.update(size=replay.size, frames=replay.frames.copy(), priorities=replay.tree._nodes.copy())
        return resumed_train(self, until, monitor)

    monkeypatch.setattr(ApexTrainer, "train", train_and_record)
    with one_torch_thread():
        assert train.main([*args, "--resume"]) == 0
    assert at_start["size"] == size
    np.testing.assert_array_equal(at_start["frames"], frames)
    np.testing.assert_array_equal(at_start["priorities"], priorities)
    # finished now: the replay's GBs are freed
    assert "extra" not in json.loads((run / "checkpoints" / "latest.json").read_text())
    assert not [path for path in (run / "checkpoints").iterdir() if path.is_dir()]


@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM])  # sent to the whole group, as timeout does
def test_ctrl_c_checkpoints_with_the_replay_then_stops_the_actors_and_resume_goes_on(tmp_path, number):
    run = run_dir(tmp_path, "apex")
    args = [*SMALL_APEX, "--actors", "2", "--timesteps", "3000", "--checkpoint-every", "100k"]
    proc = start_train(args, tmp_path)  # the actors and the fork server share its session, as in a terminal
    state = run / "state.json"
    wait_for(proc, lambda: state.exists() and json.loads(state.read_text()).get("learner_steps", 0) > 0, "learning")
    stopped, err = stop(proc, number)
    assert proc.returncode == 128 + number and "Traceback" not in err, err
    latest = json.loads((run / "checkpoints" / "latest.json").read_text())
    assert latest["step"] == stopped and (run / "checkpoints" / latest["extra"] / "frames.npy").exists()
    saved = load_checkpoint_state(run / "checkpoints" / latest["state"])
    assert saved["apex"]["restarts"] == 0, "the actors ignored Ctrl-C and were stopped by the trainer"
    deadline = time.monotonic() + 10
    while _session_alive(proc.pid):  # no actor or fork server outlives the run
        assert time.monotonic() < deadline, "processes of the stopped run are still running"
        time.sleep(0.1)

    with one_torch_thread():
        assert train.main([*args, "--log-dir", str(tmp_path), "--resume"]) == 0
    assert json.loads(state.read_text())["agent_steps"] == 3000


def _session_alive(group: int) -> bool:
    """Whether a process of this process group still runs (zombies waiting for their reaper do not)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, _, pgrp = stat.read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        if int(pgrp) == group and state != "Z":
            return True
    return False


def test_a_run_begun_with_another_network_is_refused_on_resume_in_one_line(local_run, tmp_path, capsys, monkeypatch):
    log_dir = tmp_path / "copy"
    shutil.copytree(local_run[0], log_dir)
    run = run_dir(log_dir, "apex", arm="coordconv")
    (run / "state.json").write_text(json.dumps({"status": "running", "agent_steps": 1000}))
    earlier = trainer_module.apex_policy_kwargs  # this version builds a network the checkpoint does not hold

    def linear_streams(*args, **kwargs):
        kwargs = earlier(*args, **kwargs)
        return dict(kwargs, net_arch=[])

    monkeypatch.setattr(trainer_module, "apex_policy_kwargs", linear_streams)
    args = [*SMALL_APEX, "--coordconv", "--actors", "2", "--timesteps", "2000", "--checkpoint-every", "1000"]
    assert train.main([*args, "--log-dir", str(log_dir), "--resume"]) == 2
    assert "holds another Ape-X network (net_arch [512]) than this version builds" in capsys.readouterr().err


def test_checkpoint_replay_false_keeps_the_replay_out_of_checkpoints(tmp_path):
    args = [*SMALL_APEX, "--actors", "1", "--timesteps", "800", "--checkpoint-every", "400"]
    with one_torch_thread():
        assert train.main([*args, "--set", "checkpoint_replay=false", "--log-dir", str(tmp_path)]) == 0
    checkpoints = run_dir(tmp_path, "apex") / "checkpoints"
    assert "extra" not in json.loads((checkpoints / "latest.json").read_text())
    assert not [path for path in checkpoints.iterdir() if path.is_dir()]


def _learner_steps_in(path: Path) -> int:
    from stable_baselines3 import DQN

    return int(DQN.load(path, device="cpu")._n_updates)


@pytest.mark.parametrize(
    "args,message",
    [
        (["--actors", "0"], "--actors must be at least 1, got 0"),
        (["--set", "replay_capacity=100"], "replay_capacity (100) must be at least batch_size (512)"),
        (["--set", "replay_capacity=1000", "--set", "learning_starts=100"], "rows for each of the 16 games"),
        (
            ["--set", "replay_capacity=4000", "--set", "learning_starts=2500"],
            "learning_starts (2,500) must be at most half of replay_capacity (4,000)",
        ),
        (["--set", "actors=0"], "actors must be a whole number of at least 1, got 0"),
        (["--set", "priority_eps=0"], "priority_eps must be a number > 0, got 0"),
        (["--set", "checkpoint_replay=maybe"], "checkpoint_replay must be true or false, got 'maybe'"),
        (["--set", "n_steps=3"], "apex has no hyperparameter 'n_steps'"),
        (["--actors-on", "slurm"], "unknown --actors-on 'slurm'; choose from local, ray"),
        (["--ray-address", "auto"], "--ray-address needs --actors-on ray"),
        (["--actors-on", "ray", "NO_RAY"], "--actors-on ray needs the ray extra: pip install 'rl-coordconv[ray]'"),
        (["--actors-on", "ray", "--ray-address", "10.255.255.1:1"], "cannot reach a Ray cluster at '10.255.255.1:1'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch, args, message):
    base = ["--algo", "apex", "--game", "Breakout", "--no-progress", "--log-dir", str(tmp_path)]
    if "NO_RAY" in args:
        args = [a for a in args if a != "NO_RAY"]
        monkeypatch.setitem(sys.modules, "ray", None)  # import ray fails as if not installed
    elif "10.255.255.1:1" in args:  # unreachable
        if importlib.util.find_spec("ray") is None:
            pytest.skip("the ray extra is not installed")
        import ray

        if ray.is_initialized():
            ray.shutdown()
    assert train.main([*base, *args]) == 2
    lines = capsys.readouterr().err.splitlines()
    ours = [line for line in lines if line.startswith("error: ")]
    assert len(ours) == 1 and message in ours[0]
    if "10.255.255.1:1" not in args:  # Ray's C++ client logs its connection retries to stderr itself
        assert lines == ours
    assert not list(tmp_path.rglob("config.yaml")), "a refused run must not write anything"


def test_a_missing_env_backend_is_one_line_not_three_dead_actors(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "envpool", None)  # import envpool fails as if not installed
    args = ["--algo", "apex", "--game", "Pong", "--env-backend", "envpool", "--log-dir", str(tmp_path)]
    assert train.main([*args, "--no-progress"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "error: --env-backend envpool needs the envpool extra: pip install 'rl-coordconv[envpool]'"
    ]
    assert not list(tmp_path.rglob("config.yaml"))


def test_an_actor_that_keeps_dying_stops_the_run_in_one_line(tmp_path, capsys, monkeypatch):
    from rl_coordconv.agents.apex import trainer
    from rl_coordconv.agents.apex.pools import ActorFailure, ActorPool

    class DyingPool(ActorPool):
        """Every actor dies as soon as it starts."""

        placement = "nowhere"

        def __init__(self) -> None:
            self.started: list[tuple[int, int]] = []

        def start(self, spec):
            self.started.append((spec.index, spec.incarnation))

        def submit(self, index, steps):
            pass

        def poll(self, timeout):
            index, incarnation = self.started[-1]
            return [ActorFailure(index, incarnation, "out of memory")]

        def publish(self, learner):
            pass

        def close(self):
            pass

    pool = DyingPool()
    monkeypatch.setattr(trainer, "make_actor_pool", lambda placement, address: pool)
    code = train.main([*SMALL_APEX, "--actors", "1", "--timesteps", "800", "--log-dir", str(tmp_path)])
    assert code == 1 and pool.started == [(0, 0), (0, 1), (0, 2)]
    assert capsys.readouterr().err.splitlines() == [
        "error: actor 0 died 3 times in a row: out of memory; no checkpoint yet: --overwrite starts the run over"
    ]


def test_the_old_backend_option_still_places_the_actors_with_a_notice(tmp_path, capsys, monkeypatch):
    from rl_coordconv.agents.apex import pools

    monkeypatch.setattr(pools, "connect_ray", lambda given, option: (_ for _ in ()).throw(ValueError("asked ray")))
    assert train.main([*SMALL_APEX, "--log-dir", str(tmp_path), "--backend", "ray"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "note: --backend is now --actors-on; the old name still works",
        "error: asked ray",
    ]
