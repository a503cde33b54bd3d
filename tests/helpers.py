"""What several test files share: small run arguments, run-directory readers, fakes and made-up runs.

Fixtures live in the ``conftest.py`` files; this is a plain module (``pyproject.toml`` puts
``tests/`` on the path), imported as ``from helpers import ...``.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import yaml
from stable_baselines3.common.vec_env import DummyVecEnv

from rl_coordconv.toy_tasks.models import build_model, count_parameters
from rl_coordconv.toy_tasks.train import ToyConfig, ToyResult, resolve_config

# Run arguments ------------------------------------------------------------------------------------

# A2C (the default algorithm) on Breakout, small enough for a few hundred steps in seconds.
SMALL_A2C = ["--game", "Breakout", "--n-envs", "4", "--no-progress"]

# Ape-X small enough to run in seconds on 2 cores; the replay still wraps and the learner still learns.
SMALL_APEX = ["--algo", "apex", "--game", "Breakout", "--n-envs", "2", "--no-progress"]
SMALL_APEX += ["--set", "batch_size=32", "--set", "replay_capacity=4000", "--set", "learning_starts=400"]
SMALL_APEX += ["--set", "send_period=20", "--set", "target_update_interval=20", "--log-every", "400"]


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """One torch thread in this process while Ape-X trains: actors run so in theirs, and a learner
    that shares two busy cores with its actors would only lose time to OpenMP threads waiting for each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


# Reading run directories --------------------------------------------------------------------------


def run_dir(log_dir: Path, algo: str = "a2c", game: str = "Breakout", arm: str = "conv", seed: int = 0) -> Path:
    """Where ``train`` puts the run of these settings under ``--log-dir log_dir``."""
    return log_dir / algo / game / arm / f"seed{seed}"


def start_train(args: list[str], log_dir: Path, tool: str = "train") -> subprocess.Popen[str]:
    """``python -m rl_coordconv.<tool> ARGS`` in a session of its own (so a test can signal it, its
    actors, env workers and runs together, as Ctrl-C in a terminal does), stderr piped."""
    command = [sys.executable, "-m", f"rl_coordconv.{tool}", *args, "--log-dir", str(log_dir)]
    return subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=heed_ctrl_c,
    )


def heed_ctrl_c() -> None:
    """Ctrl-C as a terminal's foreground job has it, even when pytest runs as a background job (which
    ignores it, and would pass that on)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@contextlib.contextmanager
def heeding_ctrl_c() -> Iterator[None]:
    """Python's own Ctrl-C handler in this process while inside, even when pytest runs as a
    background job (which ignores Ctrl-C)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def wait_for(process: subprocess.Popen[str], ready: Callable[[], bool], what: str, timeout: float = 300) -> None:
    """Poll ``ready`` until it holds; fail if ``process`` ends first (with its stderr) or on ``timeout``."""
    deadline = time.monotonic() + timeout
    while not ready():
        if process.poll() is not None:
            raise AssertionError(f"the run ended before {what}: {process.stderr.read() if process.stderr else ''}")
        if time.monotonic() > deadline:
            os.killpg(process.pid, signal.SIGKILL)  # no run left behind on a 2-core machine
            process.wait()
            raise AssertionError(f"no {what} within {timeout:.0f} s")
        time.sleep(0.2)


def stop(process: subprocess.Popen[str], number: int = signal.SIGINT, timeout: float = 180) -> tuple[int, str]:
    """Ctrl-C (or ``number``) to the run's whole session, as a terminal sends it; the step its stop
    message names (it fails without one) and its stderr. Killed, with its session, if it has not
    ended by ``timeout``."""
    os.killpg(process.pid, number)
    try:
        _, err = process.communicate(timeout=timeout)
    finally:
        if process.returncode is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    name = "Ctrl-C" if number == signal.SIGINT else signal.Signals(number).name
    found = re.search(rf"stopped by {name} at step ([\d,]+); --resume continues from there", err)
    assert found, f"exit {process.returncode}, no stop message: {err}"
    return int(found.group(1).replace(",", "")), err


def episode_rows(path: Path) -> list[dict[str, str]]:
    """Every row of an ``episodes.csv``, as written (no torn-line handling: tests want to see them)."""
    with path.open() as handle:
        return list(csv.DictReader(handle))


def scalars(path: Path, tag: str) -> list[tuple[int, float]]:
    """(step, value) of every point of ``tag`` in the TensorBoard event files under ``path``; [] without it."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(path))
    events.Reload()
    return [(e.step, e.value) for e in events.Scalars(tag)] if tag in events.Tags()["scalars"] else []


# Fakes --------------------------------------------------------------------------------------------


class FakeRay:
    """Just enough of the ``ray`` module to see what a pool or a sweep asks of the cluster.

    ``remote(**options)`` decorates a class (an actor class: ``.options(name=...).remote(spec)``
    records the start) or a function (a task: ``.remote(...)`` returns a fresh object reference);
    tasks never finish, and waiting for one is interrupted as by Ctrl-C.
    """

    def __init__(self, cpus: float = 2.0) -> None:
        self.cpus = cpus
        self.address: str | None = "unset"  # what a fake connect_ray was asked for
        self.num_cpus: list[float] = []  # of each remote(...)
        self.started: list[tuple[str, Any]] = []  # (actor name, spec) of each actor started
        self.killed: list[Any] = []
        self.cancelled: list[object] = []

    def cluster_resources(self) -> dict[str, float]:
        return {"CPU": self.cpus}

    def remote(self, **options: Any) -> Any:
        self.num_cpus.append(options["num_cpus"])
        fake = self

        class ActorClass:
            def __init__(self) -> None:
                self.name = ""

            def options(self, name: str) -> ActorClass:
                self.name = name
                return self

            def remote(self, spec: Any) -> str:
                fake.started.append((self.name, spec))
                return self.name

        class Task:
            @staticmethod
            def remote(*args: Any) -> object:
                return object()

        return lambda target: ActorClass() if isinstance(target, type) else Task()

    def wait(self, refs: list[object], num_returns: int, timeout: float | None = None) -> tuple[list, list]:
        raise KeyboardInterrupt

    def cancel(self, ref: object, force: bool) -> None:
        self.cancelled.append(ref)

    def kill(self, handle: Any) -> None:
        self.killed.append(handle)


class QuadrantEnv(gym.Env):
    """4×36×36 uint8 noise with one bright quadrant; reward 1 for naming it (action 0–3).

    Episodes end (terminated) after 3 rewards and are cut (truncated) after 9 steps, so a rollout
    sees both kinds of ending. Everything random comes from the env's own seeded generator.
    """

    observation_space = gym.spaces.Box(0, 255, (4, 36, 36), np.uint8)
    action_space = gym.spaces.Discrete(4)

    def _observe(self) -> np.ndarray:
        self.quadrant = int(self.np_random.integers(4))
        obs = self.np_random.integers(0, 128, (4, 36, 36), dtype=np.uint8)
        row, col = divmod(self.quadrant, 2)
        obs[:, row * 18 : row * 18 + 18, col * 18 : col * 18 + 18] += 127
        return obs

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.steps = self.hits = 0
        return self._observe(), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        reward = float(action == self.quadrant)
        self.steps += 1
        self.hits += int(reward)
        return self._observe(), reward, self.hits >= 3, self.steps >= 9, {}


def quadrant_envs() -> DummyVecEnv:
    """Four :class:`QuadrantEnv` in an SB3 ``DummyVecEnv``, seeded."""
    env = DummyVecEnv([QuadrantEnv] * 4)
    env.seed(0)
    return env


# Made-up Atari runs, for plot and its modules -----------------------------------------------------

TRUE_MEAN = {
    ("Pong", "conv"): -5.0,
    ("Pong", "coordconv"): 8.0,
    ("Breakout", "conv"): 30.0,
    ("Breakout", "coordconv"): 31.0,
}


def learner_batch(discounts: np.ndarray, weights: np.ndarray, seed: int = 0) -> Any:
    """An Ape-X learner batch of Breakout-sized random screens (one per discount)."""
    from rl_coordconv.agents.apex import SampledBatch

    rng, size = np.random.default_rng(seed), len(discounts)
    return SampledBatch(
        indices=np.arange(size),
        observations=rng.integers(0, 256, (size, 4, 84, 84), dtype=np.uint8),
        actions=rng.integers(0, 4, size),
        returns=rng.normal(size=size).astype(np.float32),
        discounts=np.asarray(discounts, dtype=np.float32),
        next_observations=rng.integers(0, 256, (size, 4, 84, 84), dtype=np.uint8),
        weights=np.asarray(weights, dtype=np.float32),
    )


def write_run(root, game, arm, seed, timesteps=1000, finished=True, mean=None, games=300, seed_sd=1.0, algo="a2c"):
    """A run directory as ``train`` leaves it, whose games score around ``TRUE_MEAN`` (or ``mean``)."""
    path = run_dir(root, algo, game, arm, seed)
    path.mkdir(parents=True)
    config = {
        "algo": algo, "game": game, "arm": arm, "coordconv": arm != "conv", "seed": seed,
        "timesteps": timesteps, "n_envs": 16, "env_backend": "ale", "hyperparams": {"n_steps": 5},
        "protocol": {"frame_skip": 4},
    }  # fmt: skip
    (path / "config.yaml").write_text(yaml.safe_dump(config))
    rng = np.random.default_rng(zlib.crc32(f"{game}/{arm}/{seed}".encode()))  # not hash(): salted per process
    mu = TRUE_MEAN[(game, arm)] if mean is None else mean
    run_mean = mu + seed_sd * (seed % 5 - 2) / 2  # seeds spread symmetrically around the true mean
    steps = np.sort(rng.integers(1, timesteps + 1, games))
    returns = np.round(run_mean + rng.normal(0, 3, games), 1)
    rows = ["agent_step,frames,wall_time,return,length"]
    rows += [f"{s},{4 * s},{s / 100:.3f},{r:g},{50}" for s, r in zip(steps, returns, strict=True)]
    (path / "episodes.csv").write_text("\n".join(rows) + "\n")
    state = {"status": "finished" if finished else "running", "agent_steps": timesteps if finished else timesteps // 2}
    (path / "state.json").write_text(json.dumps(state))
    return path, returns


def make_grid(root, seeds=range(5)):
    """:func:`write_run` for every game × arm of ``TRUE_MEAN`` and seed; the returns written, by (game, arm, seed)."""
    written = {}
    for game, arm in TRUE_MEAN:
        for seed in seeds:
            written[(game, arm, seed)] = write_run(root, game, arm, seed)[1]
    return written


# Made-up toy-task runs ----------------------------------------------------------------------------


def fake_toy_run(task: str, split: str, model: str, test: float, train: float, **config) -> dict:
    """A toy-task result as ``--reproduce`` caches it, with the given test and train metric."""
    metric = {"classification": "accuracy", "regression": "error_px", "rendering": "iou"}[task]
    resolved = resolve_config(ToyConfig(task, split, model, log_dir=None, **config))
    history = [
        {"step": 1, "epoch": 0.1, "train_seconds": 1.5, f"test_{metric}": test / 2},
        {"step": 9, "epoch": 1.0, "train_seconds": 12.0, f"test_{metric}": test},
    ]
    result = ToyResult(
        config=asdict(resolved),
        command=resolved.command(),
        parameters=count_parameters(build_model(task, model, resolved.mul, resolved.fs, resolved.arch)),
        train={metric: train},
        test={metric: test},
        n_train=2407,
        n_test=729,
        train_seconds=12.0,
        wall_seconds=20.0,
        epochs=1.0,
        steps=9,
        history=history,
        maps={"train": [[0.0] * 64 for _ in range(64)], "test": [[1.0] * 64 for _ in range(64)]},
    )
    return asdict(result)
