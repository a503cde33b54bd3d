"""Where the actors run: a killed local or Ray actor is replaced and learning goes on; Ray actors
share a cluster with fewer CPUs than actors; ``--actors-on ray`` joins the cluster Ray finds."""

from __future__ import annotations

import importlib.util
import json
import multiprocessing
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import SMALL_APEX, FakeRay, episode_rows, run_dir, scalars

from rl_coordconv import train
from rl_coordconv.agents.apex import ActorSpec, ApexConfig


def _kill_once_learning(run: Path, kill: Any, at: dict[str, int]) -> threading.Thread:
    """Kill an actor (``kill()``) once the learner has taken a few steps; note that step count in ``at``."""

    def watch() -> None:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            try:
                steps = json.loads((run / "state.json").read_text()).get("learner_steps", 0)
            except (OSError, ValueError):
                steps = 0
            if steps >= 2:
                at["learner_steps"] = steps
                kill()
                return
            time.sleep(0.2)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def _check_continued(run: Path, at: dict[str, int], stdout: str) -> None:
    assert "learner_steps" in at, "the actor was never killed"
    assert "actor 0 died" in stdout and "restarting it" in stdout
    state = json.loads((run / "state.json").read_text())
    assert state["status"] == "finished" and state["learner_steps"] > at["learner_steps"] + 5
    assert scalars(run, "charts/actor_restarts")[-1][1] >= 1


def test_a_killed_local_actor_is_replaced_and_learning_continues(tmp_path, capsys):
    run = run_dir(tmp_path, "apex")

    def kill() -> None:
        for process in multiprocessing.active_children():
            if process.name == "apex-actor-0":
                os.kill(process.pid, signal.SIGKILL)

    at: dict[str, int] = {}
    watcher = _kill_once_learning(run, kill, at)
    args = [*SMALL_APEX, "--actors", "2", "--timesteps", "1600", "--log-every", "100"]
    assert train.main([*args, "--log-dir", str(tmp_path)]) == 0
    watcher.join(timeout=1)
    _check_continued(run, at, capsys.readouterr().out)


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="the ray extra is not installed")
def test_a_run_on_a_local_ray_cluster_survives_a_killed_actor(tmp_path, capsys, monkeypatch):
    import ray

    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    # as connect_ray does for a cluster it starts: Ray's default nice 15 lets the learner (and any
    # other job on the machine) starve the actors
    monkeypatch.setenv("RAY_worker_niceness", "0")
    # Ray workers import the package from sys.path; make sure they see this checkout.
    ray.init(num_cpus=2, include_dashboard=False, runtime_env={"env_vars": {"PYTHONPATH": ":".join(sys.path)}})
    run = run_dir(tmp_path, "apex")

    def kill() -> None:
        for name in ray.util.list_named_actors():
            if name.endswith("-actor0-0"):
                ray.kill(ray.get_actor(name))

    at: dict[str, int] = {}
    try:
        watcher = _kill_once_learning(run, kill, at)
        args = [*SMALL_APEX, "--actors", "2", "--timesteps", "1600", "--log-every", "100", "--checkpoint-every", "800"]
        assert train.main([*args, "--log-dir", str(tmp_path), "--actors-on", "ray", "--ray-address", "auto"]) == 0
        watcher.join(timeout=1)
    finally:
        ray.shutdown()
    _check_continued(run, at, capsys.readouterr().out)
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["actors_on"] == "ray" and config["ray_address"] == "auto"
    assert episode_rows(run / "episodes.csv") and (run / "final_model.zip").exists()
    assert json.loads((run / "checkpoints" / "latest.json").read_text())["step"] >= 800


@pytest.mark.parametrize("cpus,share", [(8.0, 1.0), (4.0, 1.0), (2.0, 0.5), (3.0, 0.75)])
def test_ray_actors_share_a_cluster_with_fewer_cpus_than_actors(cpus, share, capsys):
    from rl_coordconv.agents.apex import RayActorPool

    fake = FakeRay(cpus)
    pool = RayActorPool(fake)  # type: ignore[arg-type]
    config = ApexConfig(actors=4)
    for index in range(4):
        pool.start(ActorSpec(index, 0, config, "Breakout", 2, "ale", 0, {}))
    pool.start(ActorSpec(1, 1, config, "Breakout", 2, "ale", 0, {}))  # a restart replaces the old actor
    assert fake.num_cpus == [share]  # every actor could be placed: none holds orders forever
    assert [spec.index for _, spec in fake.started] == [0, 1, 2, 3, 1]
    assert fake.killed == [pool.actor_name(1, 0)] and fake.started[-1][0] == pool.actor_name(1, 1)
    assert ("each reserves" in capsys.readouterr().out) == (share < 1)


@pytest.mark.parametrize("args,address", [([], None), (["--ray-address", "auto"], "auto")])
def test_actors_on_ray_joins_the_cluster_ray_finds_unless_told(tmp_path, capsys, monkeypatch, args, address):
    from rl_coordconv.agents.apex import pools

    asked = []

    def connect(given, option):
        asked.append(given)
        raise ValueError("no cluster here")

    monkeypatch.setattr(pools, "connect_ray", connect)
    assert train.main([*SMALL_APEX, "--log-dir", str(tmp_path), "--actors-on", "ray", *args]) == 2
    assert asked == [address] and "error: no cluster here" in capsys.readouterr().err
