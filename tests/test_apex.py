"""Ape-X: sum tree, prioritized sampling, frame-deduplicated replay, n-step returns, learner,
local and Ray runs, a killed actor, resume, the saved model, bad input."""

from __future__ import annotations

import contextlib
import csv
import importlib.util
import io
import json
import math
import multiprocessing
import os
import shutil
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
import yaml
from scipy import stats

from rl_coordconv import enjoy, train
from rl_coordconv.agents import load_model
from rl_coordconv.agents.apex import (
    ActorSpec,
    ApexActor,
    ApexConfig,
    ApexLearner,
    Chunk,
    DuelingDQNPolicy,
    NStepBuilder,
    NStepTransition,
    PrioritizedReplay,
    SampledBatch,
    SumTree,
    actor_epsilon,
    make_apex_model,
)
from rl_coordconv.agents.apex import actor as actor_module
from rl_coordconv.agents.apex.learner import DuelingHead, apex_policy_kwargs, flat_parameters, load_flat_parameters
from rl_coordconv.agents.apex.runner import atari_spaces
from rl_coordconv.extractors import AtariCNN

# Small enough to run in seconds on 2 cores; the replay still wraps and the learner still learns.
SMALL = ["--algo", "apex", "--game", "Breakout", "--n-envs", "2", "--no-progress"]
SMALL += ["--set", "batch_size=32", "--set", "replay_capacity=4000", "--set", "learning_starts=400"]
SMALL += ["--set", "send_period=20", "--set", "target_update_interval=20", "--log-every", "400"]


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """One torch thread in this process: actors run so in theirs, and a learner that shares two
    busy cores with its actors would only lose time to OpenMP threads waiting for each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def run_path(log_dir: Path, arm: str = "coordconv") -> Path:
    return log_dir / "apex" / "Breakout" / arm / "seed0"


def episode_rows(path: Path) -> list[dict[str, str]]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


def scalars(path: Path, tag: str) -> list[tuple[int, float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(path))
    events.Reload()
    return [(e.step, e.value) for e in events.Scalars(tag)] if tag in events.Tags()["scalars"] else []


# Sum tree and prioritized sampling -----------------------------------------------------------------


def test_sum_tree_total_prefix_search_and_updates():
    rng = np.random.default_rng(0)
    tree = SumTree(1000)  # not a power of two
    values = rng.random(1000) * (rng.random(1000) > 0.3)  # some leaves are zero
    tree.update(np.arange(1000), values)
    for _ in range(3):
        assert tree.total == pytest.approx(values.sum(), rel=1e-12)
        np.testing.assert_array_equal(tree[np.arange(1000)], values)
        cumulative = np.cumsum(values)
        targets = rng.random(5000) * tree.total
        found = tree.find(targets)
        np.testing.assert_array_equal(found, np.searchsorted(cumulative, targets, side="right"))
        assert np.all(values[found] > 0)
        # the very top of the range still lands on a leaf with mass, the last one
        assert tree.find(np.array([np.nextafter(tree.total, 0), tree.total]))[0] == np.flatnonzero(values)[-1]
        changed = rng.integers(0, 1000, 300)  # with repeats
        new = rng.random(300) * (rng.random(300) > 0.5)
        tree.update(changed, new)
        values[changed] = tree[changed]  # a repeated index keeps one of its values
        assert set(np.unique(values[changed])) <= set(new)
    one = SumTree(1)
    one.update(np.array([0]), np.array([2.5]))
    assert one.total == 2.5 and one.find(np.array([0.0, 2.4]))[0] == 0
    with pytest.raises(ValueError, match="finite and non-negative"):
        tree.update(np.array([0]), np.array([-1.0]))


def _replay_with(td_errors: np.ndarray, alpha: float, seed: int = 0) -> PrioritizedReplay:
    """A replay holding one transition per td error, in one stream, tiny frames."""
    n = len(td_errors)
    replay = PrioritizedReplay(n + 8, 1, frame_shape=(1, 1), alpha=alpha, priority_eps=0.0, seed=seed)
    rows = np.arange(3, n + 3)  # rows 0-2 are the first stack's older frames
    zeros = np.zeros(n, dtype=np.int64)
    replay.add(
        Chunk(
            frames=np.zeros((n + 3, 1, 1), dtype=np.uint8),
            frame_streams=np.zeros(n + 3, dtype=np.int64),
            streams=zeros,
            rows=rows,
            next_rows=rows,
            actions=zeros,
            returns=np.zeros(n, dtype=np.float32),
            discounts=np.zeros(n, dtype=np.float32),
            priorities=np.asarray(td_errors, dtype=np.float64),
        )
    )
    assert replay.size == n
    return replay


def test_sampling_frequencies_follow_priorities_to_the_alpha():
    td_errors = np.array([0.1, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0])
    replay = _replay_with(td_errors, alpha=0.6, seed=1)
    draws = np.concatenate([replay.sample_indices(50, beta=0.4)[0] for _ in range(400)])
    slots = np.arange(3, 3 + len(td_errors))
    observed = np.array([np.count_nonzero(draws == s) for s in slots])
    assert observed.sum() == len(draws)  # nothing outside the stored transitions
    expected = td_errors**0.6 / np.sum(td_errors**0.6) * len(draws)
    assert stats.chisquare(observed, expected).pvalue > 1e-3
    proportional = td_errors / td_errors.sum() * len(draws)  # α ignored: must be rejected
    assert stats.chisquare(observed, proportional).pvalue < 1e-6


def test_importance_weights_are_normalised_by_their_max():
    td_errors = np.array([1.0, 3.0, 7.0, 15.0])
    replay = _replay_with(td_errors, alpha=1.0, seed=2)
    indices, weights, probabilities = replay.sample_indices(64, beta=0.4)
    p = td_errors[indices - 3] / td_errors.sum()
    np.testing.assert_allclose(probabilities, p)
    raw = (4 * p) ** -0.4
    np.testing.assert_allclose(weights, raw / raw.max(), rtol=1e-6)
    assert weights.max() == 1.0 and weights[indices == 3].min() == 1.0  # the rarest is the heaviest
    replay.update_priorities(np.array([6]), np.array([0.0]))  # drop the most likely one
    assert not np.any(replay.sample_indices(64, beta=0.4)[0] == 6)


# n-step returns and ε -----------------------------------------------------------------------------


def test_n_step_returns_across_episode_ends():
    builder = NStepBuilder(n=3, gamma=0.5)
    assert builder.step(0, 1, 1.0, 0.1, next_row=1) == []
    assert builder.step(1, 2, 2.0, 0.2, next_row=2) == []
    # the first transition completes after 3 steps: 1 + 0.5·2 + 0.25·4, bootstrapped with 0.5³
    assert builder.step(2, 0, 4.0, 0.3, next_row=3) == [NStepTransition(0, 1, 3.0, 0.125, 3, 0.1)]
    # a termination (a lost life in training, or the end of the game) flushes the rest, unbootstrapped
    assert builder.step(3, 3, 8.0, 0.4, next_row=4, terminated=True) == [
        NStepTransition(1, 2, 2.0 + 0.5 * 4.0 + 0.25 * 8.0, 0.0, 1, 0.2),
        NStepTransition(2, 0, 4.0 + 0.5 * 8.0, 0.0, 2, 0.3),
        NStepTransition(3, 3, 8.0, 0.0, 3, 0.4),
    ]
    # the next episode starts clean; a time-limit cut bootstraps from the last observation (row 10)
    assert builder.step(8, 1, 1.0, 0.5, next_row=9) == []
    assert builder.step(9, 0, -1.0, 0.6, next_row=10, truncated=True) == [
        NStepTransition(8, 1, 1.0 - 0.5, 0.25, 10, 0.5),
        NStepTransition(9, 0, -1.0, 0.5, 10, 0.6),
    ]
    # one-step episodes
    assert builder.step(11, 2, 1.0, 0.7, next_row=12, terminated=True) == [NStepTransition(11, 2, 1.0, 0.0, 11, 0.7)]


def test_epsilon_schedule():
    assert actor_epsilon(0, 8) == pytest.approx(0.4)
    assert actor_epsilon(7, 8) == pytest.approx(0.4**8)
    assert actor_epsilon(3, 8) == pytest.approx(0.4**4)  # 1 + 7·3/7
    assert actor_epsilon(1, 3) == pytest.approx(0.4**4.5)
    assert actor_epsilon(0, 1) == pytest.approx(0.4)  # one actor: the first of the schedule
    assert ApexConfig(actors=4).epsilons() == pytest.approx([0.4 ** (1 + 7 * i / 3) for i in range(4)])
    with pytest.raises(ValueError):
        actor_epsilon(4, 4)


# Frame-deduplicated storage, end to end through a real actor --------------------------------------


class _Timeline:
    """Every observation fake envs emitted, by the id stamped in its newest frame, and every step."""

    def __init__(self) -> None:
        self.next_id = 1
        self.observations: dict[int, np.ndarray] = {}
        self.steps: dict[int, dict[str, Any]] = {}  # id of the observation acted on → what followed

    def frame(self, rng: np.random.Generator) -> np.ndarray:
        frame = rng.integers(0, 256, (84, 84), dtype=np.uint8)
        frame[0, :4] = np.frombuffer(np.uint32(self.next_id).tobytes(), dtype=np.uint8)
        self.next_id += 1
        return frame

    @staticmethod
    def id_of(obs: np.ndarray) -> int:
        return int(np.frombuffer(obs[-1, 0, :4].tobytes(), dtype=np.uint32)[0])

    def emit(self, obs: np.ndarray) -> np.ndarray:
        self.observations[self.id_of(obs)] = obs.copy()
        return obs


class _FakeAtari:
    """An SB3 VecEnv shaped like AtariVecEnv in training mode, with life losses, game ends and time
    limits, whose frames carry unique ids; new games start from a stack of zero frames, as in ALE."""

    def __init__(self, n_envs: int, timeline: _Timeline, seed: int) -> None:
        self.num_envs = n_envs
        self.observation_space = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
        self.action_space = gym.spaces.Discrete(4)
        self.timeline = timeline
        self.rng = np.random.default_rng(seed)
        self.stacks = np.zeros((n_envs, 4, 84, 84), dtype=np.uint8)

    def _new_game(self, env: int) -> None:
        self.stacks[env] = 0
        self.stacks[env, -1] = self.timeline.frame(self.rng)

    def reset(self) -> np.ndarray:
        for env in range(self.num_envs):
            self._new_game(env)
            self.timeline.emit(self.stacks[env])
        return self.stacks.copy()

    def step_async(self, actions: np.ndarray) -> None:
        self.actions = actions

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        actions = self.actions
        rewards = self.rng.integers(-1, 2, self.num_envs).astype(np.float32)
        dones = np.zeros(self.num_envs, dtype=bool)
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        for env in range(self.num_envs):
            acted_on = self.timeline.id_of(self.stacks[env])
            self.stacks[env] = np.concatenate([self.stacks[env, 1:], self.timeline.frame(self.rng)[None]])
            event = self.rng.random()
            game_over, cut, life_lost = event < 0.03, 0.03 <= event < 0.05, 0.05 <= event < 0.1
            record = {"action": int(actions[env]), "reward": float(rewards[env]), "next": None}
            record.update(terminated=game_over or life_lost, truncated=cut)
            if game_over or cut:
                dones[env] = True
                infos[env] = {"terminal_observation": self.timeline.emit(self.stacks[env].copy())}
                infos[env]["TimeLimit.truncated"] = cut
                infos[env]["episode"] = {"r": 1.0, "l": 10}
                record["next"] = self.timeline.id_of(self.stacks[env])
                self._new_game(env)
            elif life_lost:  # the game and its frame stack go on
                dones[env] = True
                infos[env] = {"terminal_observation": self.stacks[env].copy(), "TimeLimit.truncated": False}
            self.timeline.emit(self.stacks[env])
            if record["next"] is None:
                record["next"] = self.timeline.id_of(self.stacks[env])
            self.timeline.steps[acted_on] = record
        return self.stacks.copy(), rewards, dones, infos

    def close(self) -> None:
        pass


def _check_replay(
    replay: PrioritizedReplay, timeline: _Timeline, config: ApexConfig, writers: np.ndarray | None = None
) -> int:
    """Every sampleable transition's stacks, action, return and discount against what the envs did;
    with ``writers`` (per slot, the actor that wrote it; networks unchanged since), also its
    priority against that actor's TD error ``|G + γ^k Q_target(s', argmax Q(s')) − Q(s, a)|``."""
    slots = np.flatnonzero(replay.valid)
    observations = replay.stacks(slots)
    next_observations = replay.stacks(replay.next_slots(slots))
    if writers is not None:
        expected = np.zeros(len(slots))
        for actor in set(writers[slots]):
            mine = writers[slots] == actor
            net, target = actor.policy.q_net, actor.policy.q_net_target
            q_values = actor._q_values(net, observations[mine])[np.arange(mine.sum()), replay.actions[slots[mine]]]
            bootstrap = actor._double_q(
                actor._q_values(net, next_observations[mine]), actor._q_values(target, next_observations[mine])
            )
            discounts = replay.discounts[slots[mine]]
            td_errors = replay.returns[slots[mine]] + discounts * np.where(discounts > 0, bootstrap, 0.0) - q_values
            expected[mine] = (np.abs(td_errors) + replay.priority_eps) ** replay.alpha
        np.testing.assert_allclose(replay.tree[slots], expected, rtol=1e-4, atol=1e-6)
    for slot, obs, next_obs in zip(slots, observations, next_observations, strict=True):
        start = timeline.id_of(obs)
        np.testing.assert_array_equal(obs, timeline.observations[start])  # the whole stack, exactly
        ret, discount, step_id = 0.0, 0.0, start
        for k in range(config.n_step):
            step = timeline.steps[step_id]
            ret += config.gamma**k * step["reward"]
            if step["terminated"]:
                break
            if step["truncated"] or k == config.n_step - 1:
                discount = config.gamma ** (k + 1)
                break
            step_id = step["next"]
        assert replay.actions[slot] == timeline.steps[start]["action"]
        assert replay.returns[slot] == pytest.approx(ret)
        assert replay.discounts[slot] == pytest.approx(discount)
        if discount > 0:
            np.testing.assert_array_equal(next_obs, timeline.observations[step["next"]])
    return len(slots)


def test_replay_rebuilds_stacked_observations_exactly_across_episodes_restarts_and_wraparound(monkeypatch):
    timeline = _Timeline()
    envs = iter(range(100))
    fake = lambda game, n_envs, **kwargs: _FakeAtari(n_envs, timeline, seed=next(envs))  # noqa: E731
    monkeypatch.setattr(actor_module, "make_atari_vec_env", fake)
    config = ApexConfig(actors=2, n_step=3, gamma=0.5, batch_size=8, replay_capacity=400, learning_starts=8)
    kwargs = apex_policy_kwargs(config)

    def spec(index: int, incarnation: int) -> ActorSpec:
        return ActorSpec(index, incarnation, config, "Breakout", 2, "ale", 0, kwargs)

    replay = PrioritizedReplay(config.replay_capacity, 4, alpha=config.alpha, seed=0)  # 100 rows per game
    actors = [ApexActor(spec(0, 0)), ApexActor(spec(1, 0))]
    completed = 0
    writers = np.full(replay.capacity, None, dtype=object)
    for round_ in range(30):
        if round_ == 15:  # actor 1 dies and is replaced: its games restart in the same streams
            actors[1] = ApexActor(spec(1, 1))
            replay.reset_stream(2), replay.reset_stream(3)
        for index, actor in enumerate(actors):
            output = actor.run(9)
            completed += len(output.chunk)
            streams = 2 * index + output.chunk.streams
            writers[replay._slots(streams, replay.base[streams] + output.chunk.rows)] = actor
            replay.add(output.chunk, first_stream=2 * index)
        checked = _check_replay(replay, timeline, config, writers)
        assert checked == replay.size
    assert completed > 2 * replay.capacity  # the rings wrapped around more than once
    assert replay.size > 0.5 * replay.capacity  # and still hold most of what fits
    # a batch is rebuilt the same way
    batch = replay.sample(16, beta=0.4)
    np.testing.assert_array_equal(batch.observations, replay.stacks(batch.indices))


# The learner ---------------------------------------------------------------------------------------


def test_learner_step_minimises_the_double_q_n_step_error_and_copies_the_target():
    config = ApexConfig(batch_size=8, replay_capacity=64, learning_starts=8, target_update_interval=2)
    observation_space, action_space = atari_spaces("Breakout")
    model = make_apex_model(observation_space, action_space, config, apex_policy_kwargs(config, coordconv=True), 0)
    learner = ApexLearner(model, config)
    policy = model.policy
    assert isinstance(policy, DuelingDQNPolicy) and isinstance(policy.q_net.features_extractor, AtariCNN)
    with torch.no_grad():  # the online network prefers action 0, the target network action 2
        policy.q_net.q_net.advantage[-1].bias += torch.tensor([1.0, 0.0, 0.0, 0.0])
        policy.q_net_target.q_net.advantage[-1].bias += torch.tensor([0.0, 0.0, 1.0, 0.0])
    rng = np.random.default_rng(0)
    batch = SampledBatch(
        indices=np.arange(8),
        observations=rng.integers(0, 256, (8, 4, 84, 84), dtype=np.uint8),
        actions=rng.integers(0, 4, 8),
        returns=rng.normal(size=8).astype(np.float32),
        discounts=np.array([0.99**3] * 6 + [0.0, 0.99], dtype=np.float32),
        next_observations=rng.integers(0, 256, (8, 4, 84, 84), dtype=np.uint8),
        weights=np.linspace(0.2, 1, 8).astype(np.float32),
    )
    with torch.no_grad():
        next_obs = torch.as_tensor(batch.next_observations)
        online_next, target_next = policy.q_net(next_obs).numpy(), policy.q_net_target(next_obs).numpy()
        q = policy.q_net(torch.as_tensor(batch.observations)).numpy()[np.arange(8), batch.actions]
    double_q = target_next[np.arange(8), online_next.argmax(1)]
    assert not np.allclose(double_q, target_next.max(1))  # so the test tells double Q from max
    expected = np.abs(batch.returns + batch.discounts * double_q - q)
    before = flat_parameters(policy.q_net)
    td_errors, metrics = learner.step(batch)
    np.testing.assert_allclose(td_errors, expected, rtol=1e-4, atol=1e-5)
    assert learner.steps == 1
    assert metrics["loss"] == pytest.approx(np.mean(batch.weights * 0.5 * expected**2), rel=1e-4)  # importance-weighted
    assert not np.array_equal(flat_parameters(policy.q_net), before)
    assert not np.allclose(flat_parameters(policy.q_net_target), flat_parameters(policy.q_net))
    learner.step(batch)  # step 2 = target_update_interval: the target becomes the online network
    np.testing.assert_array_equal(flat_parameters(policy.q_net_target), flat_parameters(policy.q_net))
    assert learner.target_version == 1
    load_flat_parameters(policy.q_net_target, before)  # what actors do with pulled parameters
    np.testing.assert_array_equal(flat_parameters(policy.q_net_target), before)


# Runs ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def local_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One short CoordConv run with 2 local actors, shared by the tests that read it."""
    log_dir = tmp_path_factory.mktemp("apex")
    args = [*SMALL, "--coordconv", "--actors", "2", "--timesteps", "2000", "--checkpoint-every", "1000"]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert train.main([*args, "--log-dir", str(log_dir)]) == 0
    return log_dir, out.getvalue()


def test_local_run_with_two_actors_trains_and_writes_the_run_directory(local_run):
    log_dir, stdout = local_run
    run = run_path(log_dir)
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["algo"] == "apex" and config["coordconv"] is True and config["n_envs"] == 2
    assert config["hyperparams"]["actors"] == 2 and config["hyperparams"]["n_step"] == 3
    assert config["hyperparams"]["batch_size"] == 32 and config["hyperparams"]["alpha"] == 0.6
    assert config["runner"] == {"backend": "local", "address": None}
    state = json.loads((run / "state.json").read_text())
    assert state["status"] == "finished" and state["agent_steps"] == 2000 and state["learner_steps"] > 0
    assert json.loads((run / "checkpoints" / "latest.json").read_text())["step"] >= 800
    assert (run / "final_model.zip").exists()
    rows = episode_rows(run / "episodes.csv")
    assert rows, "Breakout games end within 2000 steps"
    for row in rows:
        assert int(row["frames"]) == 4 * int(row["agent_step"]) and float(row["return"]) >= 0
    steps = [int(r["agent_step"]) for r in rows]
    assert steps == sorted(steps) and steps[-1] <= 2000
    assert [s for s, _ in scalars(run, "charts/episodic_return")] == steps
    for tag in ("charts/replay_size", "charts/learner_steps_per_s", "charts/fps", "losses/loss", "losses/q_values"):
        assert scalars(run, tag), tag
    assert scalars(run, "charts/replay_size")[-1][1] > 400
    assert scalars(run, "charts/learner_steps_per_s")[-1][1] > 0
    assert scalars(run, "coordconv/coord_weight_ratio")
    assert "2 actors (local) × 2 envs" in stdout and "finished" in stdout


def test_a_trained_apex_model_loads_as_an_sb3_dqn_and_predicts(local_run):
    from stable_baselines3 import DQN

    from rl_coordconv.envs import make_atari_vec_env

    path = run_path(local_run[0]) / "final_model.zip"
    model = DQN.load(path, device="cpu")
    assert isinstance(model.policy, DuelingDQNPolicy) and model.num_timesteps == 2000 and model._n_updates > 0
    assert model.policy.q_net.features_extractor.coordconv and model.exploration_rate == 0.001
    env = make_atari_vec_env("Breakout", 2, seed=5, training=False)
    try:
        obs = env.reset()
        actions, _ = model.predict(obs, deterministic=True)
        with torch.no_grad():
            greedy = model.policy.q_net(torch.as_tensor(obs)).argmax(1).numpy()
        np.testing.assert_array_equal(actions, greedy)
        assert load_model("apex", path).predict(obs, deterministic=True)[0].shape == (2,)
    finally:
        env.close()
    # enjoy loads it through the registry (tests/test_learning.py plays whole games with it)
    config, loaded = enjoy.load_run_model(run_path(local_run[0]), device="cpu")
    assert config["algo"] == "apex" and isinstance(loaded.policy, DuelingDQNPolicy)


def test_greedy_actions_script_counts_the_q_networks_argmax(local_run, tmp_path, capsys):
    spec = importlib.util.spec_from_file_location(
        "greedy_actions", Path(__file__).parents[1] / "scripts/greedy_actions.py"
    )
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    run = run_path(local_run[0])
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


def test_resume_continues_an_interrupted_run_from_its_checkpoint(local_run, tmp_path, capsys):
    log_dir = tmp_path / "copy"
    shutil.copytree(local_run[0], log_dir)
    run = run_path(log_dir)
    checkpoint = json.loads((run / "checkpoints" / "latest.json").read_text())["step"]
    learner_steps = _learner_steps_in(run / "checkpoints" / f"step_{checkpoint:012d}.zip")
    (run / "state.json").write_text(json.dumps({"status": "running", "agent_steps": checkpoint}))
    before = [r for r in episode_rows(run / "episodes.csv") if int(r["agent_step"]) <= checkpoint]
    args = [*SMALL, "--coordconv", "--actors", "2", "--timesteps", "2000", "--checkpoint-every", "1000"]
    assert train.main([*args, "--log-dir", str(log_dir), "--resume"]) == 0
    assert f"resuming {run} at step {checkpoint:,}" in capsys.readouterr().out
    after = episode_rows(run / "episodes.csv")
    assert after[: len(before)] == before
    assert [int(r["agent_step"]) for r in after] == sorted(int(r["agent_step"]) for r in after)
    state = json.loads((run / "state.json").read_text())
    assert state["status"] == "finished" and state["agent_steps"] == 2000
    assert state["learner_steps"] > learner_steps  # the optimizer and step count went on from the checkpoint
    assert train.main([*args, "--log-dir", str(log_dir), "--resume", "--actors", "3"]) == 2  # finished


def _learner_steps_in(path: Path) -> int:
    from stable_baselines3 import DQN

    return int(DQN.load(path, device="cpu")._n_updates)


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
    run = run_path(tmp_path, "conv")

    def kill() -> None:
        for process in multiprocessing.active_children():
            if process.name == "apex-actor-0":
                os.kill(process.pid, signal.SIGKILL)

    at: dict[str, int] = {}
    watcher = _kill_once_learning(run, kill, at)
    args = [*SMALL, "--actors", "2", "--timesteps", "1600", "--log-every", "100"]
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
    run = run_path(tmp_path, "conv")

    def kill() -> None:
        for name in ray.util.list_named_actors():
            if name.endswith("-actor0-0"):
                ray.kill(ray.get_actor(name))

    at: dict[str, int] = {}
    try:
        watcher = _kill_once_learning(run, kill, at)
        args = [*SMALL, "--actors", "2", "--timesteps", "1600", "--log-every", "100", "--checkpoint-every", "800"]
        assert train.main([*args, "--log-dir", str(tmp_path), "--backend", "ray", "--ray-address", "auto"]) == 0
        watcher.join(timeout=1)
    finally:
        ray.shutdown()
    _check_continued(run, at, capsys.readouterr().out)
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["runner"] == {"backend": "ray", "address": "auto"}
    assert episode_rows(run / "episodes.csv") and (run / "final_model.zip").exists()
    assert json.loads((run / "checkpoints" / "latest.json").read_text())["step"] >= 800


class _FakeRay:
    """Just enough of the ``ray`` module to see what the pool asks of the cluster."""

    def __init__(self, cpus: float) -> None:
        self.cpus = cpus
        self.num_cpus: list[float] = []
        self.started: list[tuple[str, ActorSpec]] = []
        self.killed: list[Any] = []

    def cluster_resources(self) -> dict[str, float]:
        return {"CPU": self.cpus}

    def remote(self, num_cpus: float, max_restarts: int) -> Any:
        self.num_cpus.append(num_cpus)
        fake = self

        class ActorClass:
            def __init__(self, cls: type) -> None:
                self.name = ""

            def options(self, name: str) -> ActorClass:
                self.name = name
                return self

            def remote(self, spec: ActorSpec) -> str:
                fake.started.append((self.name, spec))
                return self.name

        return ActorClass

    def kill(self, handle: Any) -> None:
        self.killed.append(handle)


@pytest.mark.parametrize("cpus,share", [(8.0, 1.0), (4.0, 1.0), (2.0, 0.5), (3.0, 0.75)])
def test_ray_actors_share_a_cluster_with_fewer_cpus_than_actors(cpus, share, capsys):
    from rl_coordconv.agents.apex import RayActorPool

    fake = _FakeRay(cpus)
    pool = RayActorPool(fake)  # type: ignore[arg-type]
    config = ApexConfig(actors=4)
    for index in range(4):
        pool.start(ActorSpec(index, 0, config, "Breakout", 2, "ale", 0, {}))
    pool.start(ActorSpec(1, 1, config, "Breakout", 2, "ale", 0, {}))  # a restart replaces the old actor
    assert fake.num_cpus == [share]  # every actor could be placed: none holds orders forever
    assert [spec.index for _, spec in fake.started] == [0, 1, 2, 3, 1]
    assert fake.killed == [pool.actor_name(1, 0)] and fake.started[-1][0] == pool.actor_name(1, 1)
    assert ("each reserves" in capsys.readouterr().out) == (share < 1)


# Bad input ----------------------------------------------------------------------------------------


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
        (["--set", "n_steps=3"], "apex has no hyperparameter 'n_steps'"),
        (["--backend", "slurm"], "unknown --backend 'slurm'; choose from local, ray"),
        (["--ray-address", "auto"], "--ray-address needs --backend ray"),
        (["--backend", "ray", "NO_RAY"], "--backend ray needs the ray extra: pip install 'rl-coordconv[ray]'"),
        (["--backend", "ray", "--ray-address", "10.255.255.1:1"], "cannot reach a Ray cluster at '10.255.255.1:1'"),
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


@pytest.mark.parametrize(
    "args,message",
    [
        (["--actors", "2"], "--actors is for --algo apex"),
        (["--backend", "ray"], "--backend and --ray-address are for --algo apex"),
    ],
)
def test_apex_options_are_refused_for_other_algos(tmp_path, capsys, args, message):
    assert train.main(["--algo", "a2c", "--log-dir", str(tmp_path), *args]) == 2
    assert message in capsys.readouterr().err


def test_large_replay_fits_in_memory_budget():
    replay = PrioritizedReplay(1_000_000, 16)
    assert replay.nbytes < 8 * 2**30 and math.isclose(replay.frames.nbytes / 1e6, 1_000_000 * 84 * 84 / 1e6)


def test_an_actor_that_keeps_dying_stops_the_run_in_one_line(tmp_path, capsys, monkeypatch):
    from rl_coordconv.agents import apex
    from rl_coordconv.agents.apex.runner import ActorFailure, ActorPool

    class DyingPool(ActorPool):
        """Every actor dies as soon as it starts."""

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
    monkeypatch.setattr(apex, "make_actor_pool", lambda backend, address: pool)
    code = train.main([*SMALL, "--actors", "1", "--timesteps", "800", "--log-dir", str(tmp_path)])
    assert code == 1 and pool.started == [(0, 0), (0, 1), (0, 2)]
    assert capsys.readouterr().err.splitlines() == [
        "error: actor 0 died 3 times in a row: out of memory; no checkpoint yet: --overwrite starts the run over"
    ]


@pytest.mark.parametrize("args,address", [([], None), (["--ray-address", "auto"], "auto")])
def test_backend_ray_joins_the_cluster_ray_finds_unless_told(tmp_path, capsys, monkeypatch, args, address):
    from rl_coordconv.agents.apex import runner

    asked = []

    def connect(given):
        asked.append(given)
        raise ValueError("no cluster here")

    monkeypatch.setattr(runner, "connect_ray", connect)
    assert train.main([*SMALL, "--log-dir", str(tmp_path), "--backend", "ray", *args]) == 2
    assert asked == [address] and "error: no cluster here" in capsys.readouterr().err


def test_dueling_head_is_value_plus_centred_advantage():
    torch.manual_seed(0)
    head = DuelingHead(16, 4, net_arch=[])
    features = torch.randn(5, 16)
    with torch.no_grad():
        q, value, advantage = head(features), head.value(features), head.advantage(features)
    torch.testing.assert_close(q.mean(dim=1, keepdim=True), value)  # V is the mean Q over actions
    torch.testing.assert_close(q - q[:, :1], advantage - advantage[:, :1])  # A alone orders the actions
