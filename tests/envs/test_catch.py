"""Catch: the small image task every algorithm learns in the learning tests."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import yaml
from helpers import run_dir

from rl_coordconv.envs import ATARI_PROTOCOL, CATCH, CatchVecEnv, canonical_game, make_atari_vec_env
from rl_coordconv.envs.atari import action_meanings, frames_per_step, game_protocol
from rl_coordconv.envs.catch import CATCH_PROTOCOL, RECEPTIVE_FIELD, random_policy_score

CELL = CATCH_PROTOCOL.cell
ROWS, COLUMNS = CATCH_PROTOCOL.rows, CATCH_PROTOCOL.columns


def positions(obs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ball row, ball column, paddle column) of each env, read off the newest frame's pixels."""
    cells = obs[:, -1, ::CELL, ::CELL] > 0  # one pixel per cell
    ball_row, ball_col, paddle = [], [], []
    for grid in cells:
        lit = np.argwhere(grid[:-1])
        bottom = np.flatnonzero(grid[-1])
        if len(lit):  # the ball is above the bottom row
            ball_row.append(lit[0][0])
            ball_col.append(lit[0][1])
            paddle.append(bottom[0])
        else:  # ball and paddle both on the bottom row (the paddle may be under the ball)
            ball_row.append(ROWS - 1)
            ball_col.append(bottom[0])
            paddle.append(bottom[-1])
    return np.array(ball_row), np.array(ball_col), np.array(paddle)


def chase(obs: np.ndarray) -> np.ndarray:
    """The optimal policy: step towards the ball's column (1 = left, 2 = right, 0 = stay)."""
    _, ball, paddle = positions(obs)
    return np.where(ball < paddle, 1, np.where(ball > paddle, 2, 0))


def play(env: CatchVecEnv, policy, games: int) -> tuple[list[float], list[int]]:
    obs = env.reset()
    returns: list[float] = []
    lengths: list[int] = []
    while len(returns) < games:
        obs, _, _, infos = env.step(policy(obs))
        for info in infos:
            if "episode" in info:
                returns.append(info["episode"]["r"])
                lengths.append(info["episode"]["l"])
    return returns, lengths


def test_catch_has_the_atari_observation_space_and_three_actions():
    env = make_atari_vec_env("catch", 3, backend="ale")
    assert isinstance(env, CatchVecEnv)
    assert env.observation_space.shape == (ATARI_PROTOCOL.frame_stack, 84, 84)
    assert env.observation_space.dtype == np.uint8
    assert env.action_space.n == 3 and action_meanings("Catch") == ["NOOP", "LEFT", "RIGHT"]
    obs = env.reset()
    assert obs.shape == (3, 4, 84, 84) and obs.dtype == np.uint8
    assert canonical_game("CATCH") == CATCH and frames_per_step("Catch") == 1 and frames_per_step("Pong") == 4
    assert game_protocol("Catch")["rows"] == ROWS and game_protocol("Pong")["frame_skip"] == 4


def test_a_game_starts_with_ball_on_top_and_zero_older_frames_and_lasts_rows_minus_one_steps():
    env = CatchVecEnv(8, seed=3)
    obs = env.reset()
    assert (obs[:, :-1] == 0).all()  # as SB3's VecFrameStack gives an episode's first observation
    rows, _, _ = positions(obs)
    assert (rows == 0).all()
    frame = obs[0, -1]
    assert set(np.unique(frame)) == {0, 255} and (frame > 0).sum() == 2 * CELL * CELL
    for step in range(1, ROWS - 1):
        obs, rewards, dones, _ = env.step(np.zeros(8, dtype=np.int64))
        assert not dones.any() and (rewards == 0).all()
        assert (positions(obs)[0] == step).all()
        assert (obs[:, -2] > 0).any() and (obs[:, -1] != obs[:, -2]).any()  # the stack shifts
    obs, rewards, dones, infos = env.step(np.zeros(8, dtype=np.int64))
    assert dones.all() and set(rewards) <= {-1.0, 1.0}
    assert all(
        info["episode"]["l"] == ROWS - 1 and info["episode"]["r"] == reward
        for info, reward in zip(infos, rewards, strict=True)
    )
    terminal = infos[0]["terminal_observation"]
    assert terminal.shape == (4, 84, 84) and positions(terminal[None])[0][0] == ROWS - 1
    assert (obs[:, :-1] == 0).all() and (positions(obs)[0] == 0).all()  # the next games start


def test_paddle_moves_one_column_per_step_and_stops_at_the_walls():
    env = CatchVecEnv(1, seed=0)
    obs = env.reset()
    _, _, start = positions(obs)
    obs, *_ = env.step(np.array([2]))
    assert positions(obs)[2][0] == min(start[0] + 1, COLUMNS - 1)
    for _ in range(COLUMNS):
        obs, _, dones, _ = env.step(np.array([1]))
        if dones[0]:
            break
    else:
        pytest.fail("the game did not end")


def test_the_optimal_policy_always_catches_and_the_random_one_scores_as_stated():
    assert random_policy_score() == pytest.approx(2 / 7 - 1)
    best, lengths = play(CatchVecEnv(16, seed=1), chase, 500)
    assert set(best) == {1.0} and set(lengths) == {ROWS - 1}
    rng = np.random.default_rng(0)
    scores, _ = play(CatchVecEnv(64, seed=2), lambda obs: rng.integers(3, size=len(obs)), 20_000)
    # ±1 scores: standard error ≈ 0.005 over 20k games
    assert np.mean(scores) == pytest.approx(random_policy_score(), abs=0.02)


def test_the_paddle_must_move_before_the_ball_is_in_the_last_convs_receptive_field():
    assert RECEPTIVE_FIELD == 36 and ROWS * CELL == 84 and COLUMNS * CELL == 84
    # ball and paddle (one cell each) fit in a 36-pixel window only when this many rows apart
    together = (RECEPTIVE_FIELD - CELL) // CELL
    assert together == 2 and (ROWS - 1) * CELL > RECEPTIVE_FIELD
    # a paddle COLUMNS - 1 cells away needs every step of the game, so it must set off with the
    # ball ROWS - 1 rows away: more than `together`
    assert COLUMNS - 1 == ROWS - 1 > together


def test_the_same_seed_plays_the_same_games():
    a, b, c = CatchVecEnv(4, seed=7), CatchVecEnv(4, seed=7), CatchVecEnv(4, seed=8)
    obs_a, obs_b, obs_c = a.reset(), b.reset(), c.reset()
    assert np.array_equal(obs_a, obs_b) and not np.array_equal(obs_a, obs_c)
    actions = np.array([0, 1, 2, 1])
    for _ in range(30):
        obs_a, ra, _, _ = a.step(actions)
        obs_b, rb, _, _ = b.step(actions)
        assert np.array_equal(obs_a, obs_b) and np.array_equal(ra, rb)


def test_bad_actions_and_sizes_are_clear_errors():
    env = CatchVecEnv(2)
    env.reset()
    with pytest.raises(ValueError, match=r"Catch actions are 0..2, got \[0, 3\]"):
        env.step(np.array([0, 3]))
    with pytest.raises(ValueError, match="n_envs must be at least 1, got 0"):
        CatchVecEnv(0)


def test_render_gives_rgb_frames():
    env = make_atari_vec_env("Catch", 1, render_mode="rgb_array", backend="sb3")
    obs = env.reset()
    image = env.render()
    assert image is not None and image.shape == (84, 84, 3) and image.dtype == np.uint8
    assert (image == obs[0, -1, :, :, None]).all()


def test_sweep_plot_and_enjoy_take_catch_unchanged(tmp_path, capsys):
    from rl_coordconv import enjoy, plot, sweep

    log_dir = tmp_path / "runs"
    args = ["--games", "catch", "--arms", "conv", "coordconv", "--seeds", "0", "--n-envs", "4"]
    assert sweep.main([*args, "--timesteps", "1000", "--log-dir", str(log_dir), "--workers", "2"]) == 0
    assert "sweep: 2 done" in capsys.readouterr().out
    run = run_dir(log_dir, game="Catch", arm="coordconv")
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["game"] == "Catch" and config["protocol"] == game_protocol("Catch")
    rows = (run / "episodes.csv").read_text().splitlines()[1:]
    agent_step, frames = rows[-1].split(",")[:2]
    assert frames == agent_step  # one frame per agent step
    assert plot.main([str(log_dir), "--out", str(tmp_path / "report")]) == 0
    report = (tmp_path / "report" / "report.md").read_text()
    assert "Catch" in report and "1k frames per run" in report
    video = tmp_path / "catch.mp4" if importlib.util.find_spec("imageio") else None  # the video extra
    scores = enjoy.play(run, episodes=3, video=video)
    assert len(scores) == 3 and set(scores) <= {-1.0, 1.0}
    assert video is None or video.stat().st_size > 0
