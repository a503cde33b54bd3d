"""Ape-X's prioritized replay: the sum tree, sampling by priority, importance weights, and the
frame-deduplicated storage rebuilding every observation a real actor stored."""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from scipy import stats

from rl_coordconv.agents.apex import ActorSpec, ApexActor, ApexConfig, Chunk, PrioritizedReplay, SumTree
from rl_coordconv.agents.apex import actor as actor_module
from rl_coordconv.agents.apex.networks import apex_policy_kwargs

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


def test_large_replay_fits_in_memory_budget():
    replay = PrioritizedReplay(1_000_000, 16)
    assert replay.nbytes < 8 * 2**30 and math.isclose(replay.frames.nbytes / 1e6, 1_000_000 * 84 * 84 / 1e6)


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


# Saved with a checkpoint ----------------------------------------------------------------------------


def test_a_saved_replay_loads_with_the_same_contents_priorities_and_next_samples(tmp_path):
    rng = np.random.default_rng(3)
    replay = _replay_with(rng.exponential(size=40), alpha=0.6, seed=7)
    replay.frames[:] = rng.integers(0, 256, replay.frames.shape, dtype=np.uint8)
    batch = replay.sample(8, beta=0.4)
    replay.update_priorities(batch.indices, rng.exponential(size=8))  # priorities the learner changed
    replay.save(tmp_path)

    loaded = PrioritizedReplay(48, 1, frame_shape=(1, 1), alpha=0.6, priority_eps=0.0, seed=999)
    loaded.load(tmp_path)
    for name in ("frames", "actions", "returns", "discounts", "next_offsets", "valid", "written", "base"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(replay, name), err_msg=name)
    np.testing.assert_array_equal(loaded.tree._nodes, replay.tree._nodes)
    assert loaded.size == replay.size == 40
    for _ in range(3):  # the sampling RNG goes on where it was
        mine, theirs = replay.sample(8, beta=0.4), loaded.sample(8, beta=0.4)
        np.testing.assert_array_equal(mine.indices, theirs.indices)
        np.testing.assert_array_equal(mine.observations, theirs.observations)


def test_a_replay_saved_with_another_layout_is_refused_in_one_line(tmp_path):
    _replay_with(np.ones(40), alpha=0.6).save(tmp_path)
    other = PrioritizedReplay(48, 2, frame_shape=(1, 1), alpha=0.6, priority_eps=0.0)
    with pytest.raises(ValueError, match=r"cannot load the replay in .*: it was saved with \{'capacity': 48, 'n_st"):
        other.load(tmp_path)
    (tmp_path / "priorities.npy").unlink()
    with pytest.raises(ValueError, match=r"cannot load the replay in .*priorities\.npy"):
        PrioritizedReplay(48, 1, frame_shape=(1, 1), alpha=0.6, priority_eps=0.0).load(tmp_path)
