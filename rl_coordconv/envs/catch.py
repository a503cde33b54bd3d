"""Catch: a tiny image task where position matters, in the Atari observation space, vectorised in NumPy.

A ball appears in a random column of the top row of a ``rows × columns`` grid and falls one row
per agent step; a paddle on the bottom row, starting in its own random column, moves left,
stays, or moves right (stopping at the walls). When the ball reaches the bottom row the game
ends with +1 if it landed on the paddle and −1 if not. On the default 7 × 7 grid of 12-pixel
cells a game is 6 steps and the paddle may need all 6 to reach the ball, so a good policy moves
from the first step, while the ball is 72 pixels above the paddle. ``AtariCNN``'s last
convolution sees 36 × 36 pixels (:data:`RECEPTIVE_FIELD`): ball and paddle fit in one such window
only once the ball is within 2 rows and 2 columns of the paddle, when 2 moves are left.

Why 7 × 7 cells of 12 pixels and not 12 × 12 of 7: both put the start of a game beyond the
receptive field, but on 12 × 12 (11 steps a game, 1 catch in 12 at random) A2C with its
defaults was still at random play after 300k agent steps (−0.84 over the last 200 games), and
learnt only with a 4× larger, constant learning rate; on 7 × 7 it passes 0.8 well within 300k.

What it shares with the Atari envs, so that every algorithm and tool takes it unchanged: the
observation is a ``(4, 84, 84)`` uint8 stack of the last four frames, older frames zero at an
episode start (as SB3's ``VecFrameStack`` gives them), and the env is an SB3 ``VecEnv`` with
Monitor-style ``info["episode"]`` and ``info["terminal_observation"]``. What does not apply:
no-ops, FIRE at a reset, lives, reward clipping (rewards are ±1 already), frame skip (one frame
per agent step) and the emulator backend (every ``--env-backend`` gives this same NumPy env).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvObs, VecEnvStepReturn

__all__ = ["CATCH", "CATCH_ACTIONS", "CATCH_PROTOCOL", "CatchProtocol", "CatchVecEnv", "random_policy_score"]

CATCH = "Catch"
CATCH_ACTIONS = ("NOOP", "LEFT", "RIGHT")
_MOVES = np.array([0, -1, 1], dtype=np.int64)


@dataclass(frozen=True)
class CatchProtocol:
    """The game and its rendering; ``version`` changes whenever the game does, as for Atari."""

    version: int = 1
    rows: int = 7
    columns: int = 7
    cell: int = 12  # pixels per cell side: 7 × 12 = 84, the Atari screen size
    frame_stack: int = 4
    frame_skip: int = 1  # one frame per agent step; here for the frames column of episodes.csv

    @property
    def screen(self) -> tuple[int, int]:
        return self.rows * self.cell, self.columns * self.cell


CATCH_PROTOCOL = CatchProtocol()

# AtariCNN's last convolution sees 36 × 36 input pixels (8 + 4·(4 − 1) + 4·2·(3 − 1)): three
# cells of 12 pixels. At the start of a game, ball and paddle are 6 rows (72 pixels) apart.
RECEPTIVE_FIELD = 8 + 4 * (4 - 1) + 4 * 2 * (3 - 1)


def random_policy_score(columns: int = CATCH_PROTOCOL.columns) -> float:
    """The expected score of the uniformly random policy: ``2 / columns − 1`` (−5/7 ≈ −0.71 on 7 columns).

    A random move (left, stay, right, stopping at the walls) maps the uniform distribution of the
    paddle's column onto itself, so the paddle ends in the ball's column with probability
    ``1 / columns``, whatever the number of rows.
    """
    return 2 / columns - 1


class CatchVecEnv(VecEnv):
    """``num_envs`` games of Catch stepped together, as an SB3 ``VecEnv``.

    :param num_envs: parallel games
    :param seed: seeds the games' random columns (the same seed plays the same games)
    :param protocol: grid size and rendering
    :param render_mode: ``rgb_array`` for :meth:`render` (the newest frame as RGB)
    """

    def __init__(
        self,
        num_envs: int,
        seed: int | None = 0,
        protocol: CatchProtocol = CATCH_PROTOCOL,
        render_mode: str | None = None,
    ) -> None:
        if num_envs < 1:
            raise ValueError(f"n_envs must be at least 1, got {num_envs}")
        if protocol.rows < 2 or protocol.columns < 1:
            raise ValueError(f"Catch needs at least 2 rows and 1 column, got {protocol.rows}×{protocol.columns}")
        self.protocol = protocol
        self._render_mode = render_mode
        height, width = protocol.screen
        obs_space = gym.spaces.Box(0, 255, (protocol.frame_stack, height, width), np.uint8)
        super().__init__(num_envs, obs_space, gym.spaces.Discrete(len(CATCH_ACTIONS)))
        self._rng = np.random.default_rng(seed)
        self._ball_row = np.zeros(num_envs, dtype=np.int64)
        self._ball_col = np.zeros(num_envs, dtype=np.int64)
        self._paddle = np.zeros(num_envs, dtype=np.int64)
        self._stack = np.zeros((num_envs, protocol.frame_stack, height, width), dtype=np.uint8)
        self._returns = np.zeros(num_envs, dtype=np.float64)
        self._lengths = np.zeros(num_envs, dtype=np.int64)
        self._actions = np.zeros(num_envs, dtype=np.int64)
        self._start = time.time()

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        if attr_name == "render_mode":
            return [self._render_mode] * len(list(self._get_indices(indices)))
        raise AttributeError(f"CatchVecEnv has no per-env attribute {attr_name!r}")

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        raise AttributeError(f"CatchVecEnv has no per-env attribute {attr_name!r}")

    def env_method(
        self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **kwargs: Any
    ) -> list[Any]:
        raise AttributeError(f"CatchVecEnv's games are arrays and have no method {method_name!r}")

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        from stable_baselines3.common.monitor import Monitor  # episode statistics are reported as Monitor's

        return [wrapper_class is Monitor] * len(list(self._get_indices(indices)))

    def seed(self, seed: int | None = None) -> Sequence[int | None]:
        self._rng = np.random.default_rng(seed)
        return [seed] * self.num_envs

    def _new_games(self, envs: np.ndarray) -> None:
        self._ball_row[envs] = 0
        self._ball_col[envs] = self._rng.integers(self.protocol.columns, size=len(envs))
        self._paddle[envs] = self._rng.integers(self.protocol.columns, size=len(envs))
        self._stack[envs] = 0
        self._returns[envs] = 0
        self._lengths[envs] = 0

    def _draw(self, envs: np.ndarray) -> None:
        """Push each of ``envs``' current frame onto its stack."""
        stack, cell = self._stack, self.protocol.cell
        stack[envs, :-1] = stack[envs, 1:]
        frames = np.zeros((len(envs), self.protocol.rows, self.protocol.columns), dtype=np.uint8)
        index = np.arange(len(envs))
        frames[index, self._ball_row[envs], self._ball_col[envs]] = 255
        frames[index, self.protocol.rows - 1, self._paddle[envs]] = 255
        stack[envs, -1] = frames.repeat(cell, axis=1).repeat(cell, axis=2)

    def reset(self) -> VecEnvObs:
        everyone = np.arange(self.num_envs)
        self._new_games(everyone)
        self._draw(everyone)
        return self._stack.copy()

    def step_async(self, actions: np.ndarray) -> None:
        np.copyto(self._actions, np.asarray(actions).reshape(self.num_envs), casting="unsafe")

    def step_wait(self) -> VecEnvStepReturn:
        if ((self._actions < 0) | (self._actions >= len(CATCH_ACTIONS))).any():
            raise ValueError(f"Catch actions are 0..{len(CATCH_ACTIONS) - 1}, got {self._actions.tolist()}")
        everyone = np.arange(self.num_envs)
        self._paddle = np.clip(self._paddle + _MOVES[self._actions], 0, self.protocol.columns - 1)
        self._ball_row += 1
        self._draw(everyone)
        landed = self._ball_row == self.protocol.rows - 1
        rewards = np.where(landed, np.where(self._ball_col == self._paddle, 1.0, -1.0), 0.0).astype(np.float32)
        self._returns += rewards
        self._lengths += 1
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        ended = np.flatnonzero(landed)
        for i in ended:
            infos[i] = {
                "terminal_observation": self._stack[i].copy(),
                "TimeLimit.truncated": False,
                "episode": {"r": float(self._returns[i]), "l": int(self._lengths[i]), "t": time.time() - self._start},
            }
        if len(ended):
            self._new_games(ended)
            self._draw(ended)
        return self._stack.copy(), rewards, landed.copy(), infos

    def positions(self) -> dict[str, np.ndarray]:
        """Each game's ``ball_row``, ``ball_col`` and ``paddle`` column now (copies), for analysis."""
        return {"ball_row": self._ball_row.copy(), "ball_col": self._ball_col.copy(), "paddle": self._paddle.copy()}

    def get_images(self) -> Sequence[np.ndarray | None]:
        """Each game's newest frame as an RGB image."""
        return [np.repeat(frame[..., None], 3, axis=2) for frame in self._stack[:, -1]]

    def close(self) -> None:
        pass
