"""The vectorized Atari envs: every backend gives the same spaces and protocol."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from rl_coordconv.envs import ATARI_PROTOCOL, AtariVecEnv, make_atari_vec_env

BACKENDS = ["ale", "sb3"] + (["envpool"] if importlib.util.find_spec("envpool") else [])


def _random_steps(env, steps: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    obs = env.reset()
    for _ in range(steps):
        actions = rng.integers(0, env.action_space.n, env.num_envs)
        new_obs, rewards, dones, infos = env.step(actions)
        yield obs, actions, new_obs, rewards, dones, infos
        obs = new_obs


@pytest.mark.parametrize("backend", BACKENDS)
def test_backends_agree_on_spaces_and_frame_stacking(backend):
    env = make_atari_vec_env("Breakout", 2, seed=0, backend=backend)
    try:
        p = ATARI_PROTOCOL
        assert env.observation_space.shape == (p.frame_stack, p.screen_size, p.screen_size)
        assert env.observation_space.dtype == np.uint8
        assert env.action_space.n == 4  # Breakout's minimal action set
        checked = 0
        for obs, _, new_obs, _, dones, _ in _random_steps(env, 40):
            assert new_obs.shape == (2, 4, 84, 84) and new_obs.dtype == np.uint8
            restarted = ~new_obs[:, :3].any(axis=(1, 2, 3))  # a done, or the frame after a forced reset action
            for i in np.flatnonzero(~dones & ~restarted):
                # newest frame last: the stack shifts by one frame per agent step
                np.testing.assert_array_equal(new_obs[i, :3], obs[i, 1:])
                checked += 1
        assert checked > 40
    finally:
        env.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_training_protocol_life_loss_and_clipping_but_raw_whole_game_scores(backend):
    """SpaceInvaders: 3 lives, aliens worth 5–30 points, so clipping and life loss both show."""
    env = make_atari_vec_env("SpaceInvaders", 4, seed=1, backend=backend, training=True)
    try:
        games, dones_per_game, clipped_sum = [], [], np.zeros(4)
        dones_since = np.zeros(4, dtype=int)
        for _, _, _, rewards, dones, infos in _random_steps(env, 3000):
            assert set(np.unique(rewards)) <= {-1.0, 0.0, 1.0}
            clipped_sum += rewards
            dones_since += dones
            for i, info in enumerate(infos):
                if "episode" in info:
                    games.append(info["episode"]["r"])
                    dones_per_game.append(dones_since[i])
                    dones_since[i] = 0
            if len(games) >= 4:
                break
        assert len(games) >= 4
        # whole games: three lives, each loss a training episode end; scores are raw points
        assert all(d == 3 for d in dones_per_game), dones_per_game
        assert all(g % 5 == 0 and g > 1 for g in games), games
    finally:
        env.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_evaluation_protocol_ends_episodes_only_at_game_over(backend):
    env = make_atari_vec_env("SpaceInvaders", 2, seed=2, backend=backend, training=False)
    try:
        raw_seen = False
        for _, _, _, rewards, dones, infos in _random_steps(env, 1500):
            raw_seen |= bool((rewards > 1).any())
            for i in np.flatnonzero(dones):
                assert "episode" in infos[i]  # every episode end is a game over
        assert raw_seen, "evaluation rewards should be the game's raw points"
    finally:
        env.close()


def test_random_pong_logs_whole_game_integer_scores():
    env = make_atari_vec_env("Pong", 8, seed=0)
    try:
        games = []
        for *_, infos in _random_steps(env, 3000):
            games += [info["episode"] for info in infos if "episode" in info]
            if len(games) >= 4:
                break
        assert len(games) >= 4
        for game in games:
            assert game["r"] == int(game["r"]) and -21 <= game["r"] < -1  # a whole game, not a clipped point
            assert game["l"] > 500  # hundreds of agent steps, not one rally
    finally:
        env.close()


def _sent_actions(env: AtariVecEnv, agent_actions: np.ndarray) -> np.ndarray:
    """Step ``env`` and return the actions the emulator was sent."""
    env.step_async(agent_actions)
    sent = env._actions.copy()
    env.step_wait()
    return sent


@pytest.mark.parametrize("training", [True, False])
def test_sb3_reset_actions_are_played_at_each_episode_start(training):
    """FIRE then action 2 at a game start; in training, NOOP, FIRE, action 2 after a life loss."""
    env = AtariVecEnv("Breakout", 2, seed=0, training=training)
    left = np.full(2, 3)  # the agent asks for LEFT throughout
    try:
        env.reset()
        assert [list(_sent_actions(env, left)) for _ in range(3)] == [[1, 1], [2, 2], [3, 3]]
        rng = np.random.default_rng(0)
        for _ in range(3000):
            lives = env._lives.copy()
            env.step(rng.integers(0, 4, 2))
            lost = np.flatnonzero((env._lives < lives) & (env._lives > 0))
            if len(lost):
                break
        else:
            pytest.fail("no life was lost in 3000 random steps")
        i = lost[0]
        played = [_sent_actions(env, left)[i] for _ in range(4)]
        assert played == ([0, 1, 2, 3] if training else [3, 3, 3, 3])
    finally:
        env.close()
    pacman = AtariVecEnv("MsPacman", 1)
    pacman.close()
    assert pacman.life_loss_actions == (0,) and pacman.game_start_actions == ()  # no FIRE: EpisodicLifeEnv's NOOP


class _ScriptedEmulator:
    """One game whose k-th frame is filled with k; lives and raw rewards follow a script."""

    num_envs = 1

    def __init__(self, lives: dict[int, int], rewards: dict[int, float], cut_at: int | None = None) -> None:
        self.lives_at, self.rewards_at, self.frames, self.sent = lives, rewards, [1], []
        self.cut_at = cut_at  # the time limit ends the game at this frame; the next one starts at frame 1

    def _obs(self) -> np.ndarray:
        ids = [0, 0, 0, *self.frames][-4:]
        return np.array(ids, dtype=np.uint8)[None, :, None, None].repeat(84, 2).repeat(84, 3)

    def reset(self, seed):
        self.frames = [1]
        return self._obs(), np.array([5])

    def send(self, actions):
        self.sent.append(int(actions[0]))

    def recv(self):
        k = len(self.frames) + 1
        self.frames.append(k)
        no, cut = np.zeros(1, dtype=bool), np.array([k == self.cut_at])
        final = {}
        if cut[0]:  # ALE's vector env resets at once and hands back the last frame apart
            final, self.frames = {0: self._obs()[0]}, [1]
        return self._obs(), np.array([self.rewards_at.get(k, 0.0)]), no, cut, np.array([self.lives_at.get(k, 5)]), final

    def close(self):
        pass


def test_reset_actions_rewards_and_frame_stack_on_a_scripted_game():
    """Frames numbered 1, 2, ...: a life is lost at frame 5 (reward 1), a forced NOOP scores at frame 6."""
    env = AtariVecEnv("Breakout", 1)
    env.emulator.close()
    env.emulator = emulator = _ScriptedEmulator(lives={k: 4 for k in range(5, 20)}, rewards={5: 3.0, 6: 2.0})
    stacks = lambda obs: obs[0, :, 0, 0].tolist()  # noqa: E731
    try:
        assert stacks(env.reset()) == [0, 0, 0, 1]
        steps = [env.step(np.array([3])) for _ in range(8)]
        assert emulator.sent == [1, 2, 3, 3, 0, 1, 2, 3]  # FIRE, 2 at the start; NOOP, FIRE, 2 after the life loss
        # the stack starts anew with the frame after the last forced action, the first SB3's agent sees
        assert [stacks(obs) for obs, *_ in steps] == [
            [0, 0, 0, 2], [0, 0, 0, 3], [0, 0, 3, 4], [0, 0, 0, 5],
            [0, 0, 0, 6], [0, 0, 0, 7], [0, 0, 0, 8], [0, 0, 8, 9],
        ]  # fmt: skip
        dones = [bool(done[0]) for _, _, done, _ in steps]
        assert dones == [False, False, False, True, False, False, False, False]
        assert stacks(steps[3][3][0]["terminal_observation"][None]) == [0, 3, 4, 5]  # the ended life's own frames
        assert [float(r[0]) for _, r, *_ in steps] == [0, 0, 0, 1, 0, 0, 0, 0]  # clipped; the forced NOOP's dropped
        assert env._returns[0] == 5.0  # the raw score keeps both
    finally:
        env.close()


@pytest.mark.parametrize("training", [True, False])
def test_a_time_limit_cut_ends_the_game_marked_truncated(training):
    env = AtariVecEnv("Breakout", 1, training=training)
    env.emulator.close()
    env.emulator = emulator = _ScriptedEmulator(lives={}, rewards={3: 2.0, 4: 1.0}, cut_at=4)
    stacks = lambda obs: obs[0, :, 0, 0].tolist()  # noqa: E731
    try:
        env.reset()
        steps = [env.step(np.array([3])) for _ in range(4)]
        assert [bool(done[0]) for _, _, done, _ in steps] == [False, False, True, False]
        info = steps[2][3][0]
        assert info["TimeLimit.truncated"] is True and info["episode"]["r"] == 3.0 and info["episode"]["l"] == 3
        assert stacks(info["terminal_observation"][None]) == [0, 0, 3, 4]
        assert stacks(steps[2][0]) == [0, 0, 0, 1]  # the next game's first frame
        assert emulator.sent == [1, 2, 3, 1]  # and it starts with FIRE again
        assert env._returns[0] == 0.0
    finally:
        env.close()


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b != "sb3"])
def test_frames_before_an_episode_start_are_zeros_as_in_sb3(backend):
    env = make_atari_vec_env("SpaceInvaders", 2, seed=1, backend=backend, training=True)
    try:
        obs = env.reset()
        assert not obs[:, :3].any() and obs[:, 3].any()
        for _, _, new_obs, _, dones, infos in _random_steps(env, 3000):
            if dones.any():
                i = np.flatnonzero(dones)[0]
                assert not new_obs[i, :3].any() and new_obs[i, 3].any()  # the next episode's first frame only
                assert infos[i]["terminal_observation"][:3].any()  # the ended one keeps its history
                while env._forced[i, 0] >= 0:  # SB3's reset actions: SB3's agent does not see these frames
                    new_obs = env.step(np.zeros(2, dtype=np.int64))[0]
                    assert not new_obs[i, :3].any()
                following = env.step(np.zeros(2, dtype=np.int64))[0]
                assert not following[i, :2].any() and following[i, 2:].any(axis=(1, 2)).all()
                np.testing.assert_array_equal(following[i, 2], new_obs[i, 3])
                break
        else:
            pytest.fail("no episode ended in 3000 random steps")
    finally:
        env.close()


def test_a_fixed_policy_scores_alike_on_every_backend():
    """The same game under every backend: Breakout played with NOOP only (the reset actions serve the ball).

    Before SB3's reset actions were replayed, this policy scored 0.0 in all of 392 games on the ale
    backend and 1.25 on SB3's stack.
    """
    scores = {}
    for backend in BACKENDS:
        n_envs = 4  # the same on every backend: which games end first depends on it
        env = make_atari_vec_env("Breakout", n_envs, seed=0, backend=backend, training=True)
        try:
            env.reset()
            games: list[float] = []
            while len(games) < 40:
                infos = env.step(np.zeros(n_envs, dtype=np.int64))[3]
                games += [info["episode"]["r"] for info in infos if "episode" in info]
            scores[backend] = np.array(games)
        finally:
            env.close()
    means = {backend: round(float(s.mean()), 2) for backend, s in scores.items()}
    reference = scores["sb3"]
    for s in scores.values():
        assert s.mean() > 0 and s.std() > 0, means
        standard_error = np.hypot(s.std(ddof=1) / np.sqrt(len(s)), reference.std(ddof=1) / np.sqrt(len(reference)))
        assert abs(s.mean() - reference.mean()) < 3 * standard_error, means


def test_same_seed_same_games():
    runs = []
    for _ in range(2):
        env = make_atari_vec_env("Breakout", 2, seed=7)
        runs.append([new_obs.copy() for _, _, new_obs, *_ in _random_steps(env, 30, seed=3)])
        env.close()
    for a, b in zip(*runs, strict=True):
        np.testing.assert_array_equal(a, b)


def test_bad_env_arguments():
    with pytest.raises(ValueError, match="n_envs must be at least 1, got 0"):
        make_atari_vec_env("Pong", 0)
    with pytest.raises(ValueError, match="unknown env backend 'gym'; choose from ale, envpool, sb3"):
        make_atari_vec_env("Pong", 1, backend="gym")


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_action_shows_in_the_observation_its_step_returns(backend):
    """No off-by-one between actions and frames: RIGHT moves Breakout's paddle in the same step's newest frame."""

    def paddle_x(obs: np.ndarray) -> float:
        rows = obs[0, -1, 74:79, 4:80]  # the paddle's rows, inside the walls
        return float(np.flatnonzero(rows.max(axis=0) > 50).mean())

    env = make_atari_vec_env("Breakout", 1, seed=0, backend=backend)
    try:
        env.reset()
        for _ in range(2):  # the sb3 stack's reset ends with RIGHT, and the paddle coasts one more step
            env.step(np.array([0]))
        before = env.step(np.array([0]))[0]  # NOOP: now the paddle stays put ...
        obs = env.step(np.array([0]))[0]
        assert paddle_x(obs) == paddle_x(before)
        new_obs = env.step(np.array([2]))[0]  # ... until RIGHT, which shows in that very step's frame
        assert paddle_x(new_obs) > paddle_x(obs) + 1
    finally:
        env.close()


def test_ale_games_start_after_a_random_number_of_noop_frames():
    """The vector env's own no-ops (0–29 frames per ale-py's source; SB3 plays 1–30): spread, never past 30."""
    from rl_coordconv.envs.vector import _AleEmulator

    emulator = _AleEmulator("Pong", 32, num_threads=1)
    try:
        starts = np.concatenate([emulator.env.reset(seed=seed)[1]["episode_frame_number"] for seed in (0, 100, 200)])
    finally:
        emulator.close()
    assert starts.min() >= 0 and starts.max() <= ATARI_PROTOCOL.noop_max
    assert len(np.unique(starts)) >= 15  # 96 resets, uniform over 30 values: ~28 distinct
