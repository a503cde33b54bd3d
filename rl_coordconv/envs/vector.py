"""SB3 ``VecEnv`` adapters over batched C++ Atari emulators: ALE's ``AtariVectorEnv`` and envpool.

Both emulators already do frame skip, max-pool, resize, grayscale, frame stacking and no-ops in
C++ threads. What they do not do the way SB3's ``AtariWrapper`` + ``VecFrameStack`` do, this
adapter does in a few vectorised numpy lines, identically for both:

- **life loss** ends the training episode but not the game. ALE's own ``episodic_life`` resets
  the whole game on a life loss (measured with ale-py 0.12: lives jump back to 5), which would
  make every logged score a one-life score, so it is off and lives are tracked here;
- **SB3's reset actions**, as forced agent steps. SB3 plays some actions inside ``reset``: after a
  life loss (training only) a NOOP (``EpisodicLifeEnv``), and at every episode start of games
  whose action 1 is FIRE, FIRE then action 2 (``FireResetEnv``). The emulators cannot step one
  env alone, so here these actions replace the agent's on the next steps of that env: the game
  plays SB3's action sequence, and the agent's sampled action is what learners see (ignored by
  the game there, so policy gradients stay unbiased and replayed transitions consistent). As in
  SB3, their training rewards are dropped (the raw score keeps them). Unlike SB3 they count as
  agent steps (3 per life loss, 2 per game; about 7% of early Breakout) and sit inside n-step
  horizons. Rare cases differ too: a life or the game lost during these actions starts them over
  here. The C++ emulators' own FIRE-on-reset presses FIRE for one frame at another moment, so it
  is off. Measured before this was done, with FIRE pressed one step after a life loss: a policy
  that always plays NOOP scored 0.0 in Breakout here and 1.25 on SB3's stack;
- **frame stack**: the frames before an episode's first are zeros, as SB3's ``VecFrameStack``
  gives them, and the episode's first frame is the one after the last forced action, the first
  SB3's agent sees; so the agent's first free choice sees SB3's stack exactly. (ALE's vector env
  zeroes at a game start only, envpool repeats the first frame.)
- **no-ops** at a game start are the emulators' own. envpool plays 1–30 NOOP frames, as SB3's
  ``NoopResetEnv`` does; ALE's vector env draws 0–29 (its source; ``episode_frame_number`` after a
  reset measured 1–29 with ale-py 0.12.1), a shift of one frame at the ends that is left alone;
- **reward clipping** to the sign, for training only; the raw score of each whole game goes to
  ``info["episode"]`` (the key SB3's ``Monitor`` uses), with its length in agent steps;
- **SB3 semantics**: on a done, the returned observation starts the next episode and the last one
  is in ``info["terminal_observation"]``; time-limit cuts set ``info["TimeLimit.truncated"]``.

``step_async`` only hands the actions to the emulator's threads and returns, so a caller can
overlap its own work with emulation before ``step_wait``.
"""

from __future__ import annotations

import functools
import multiprocessing
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvObs, VecEnvStepReturn

from rl_coordconv.envs.atari import (
    ATARI_PROTOCOL,
    action_meanings,
    canonical_game,
    make_ale_env,
    observation_space,
    rom_id,
)
from rl_coordconv.envs.catch import CATCH, CatchVecEnv
from rl_coordconv.runtime import ignore_stop_signals

__all__ = ["BACKENDS", "AtariVecEnv", "make_atari_vec_env"]


class _Emulator(ABC):
    """The few calls the adapter needs from a batched emulator."""

    num_envs: int

    @abstractmethod
    def reset(self, seed: int | None) -> tuple[np.ndarray, np.ndarray]:
        """Start every game; return (observations, lives)."""

    @abstractmethod
    def send(self, actions: np.ndarray) -> None:
        """Start stepping every env with these actions; return at once."""

    @abstractmethod
    def recv(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[int, np.ndarray]]:
        """Wait for the step; return (obs, raw rewards, terminated, truncated, lives, final obs by env).

        For an env whose game ended, ``obs`` and ``lives`` already belong to the next game and
        the last observation of the ended one is in the dict.
        """

    @abstractmethod
    def close(self) -> None: ...


class _AleEmulator(_Emulator):
    def __init__(self, game: str, num_envs: int, num_threads: int) -> None:
        from ale_py.vector_env import AtariVectorEnv

        p = ATARI_PROTOCOL
        self.num_envs = num_envs
        self.env = AtariVectorEnv(
            rom_id(game),
            num_envs,
            num_threads=num_threads,
            repeat_action_probability=p.repeat_action_probability,
            max_num_frames_per_episode=p.max_frames_per_game,
            frameskip=p.frame_skip,
            maxpool=True,
            img_height=p.screen_size,
            img_width=p.screen_size,
            grayscale=True,
            stack_num=p.frame_stack,
            noop_max=p.noop_max,
            use_fire_reset=False,  # SB3's FIRE at a reset is played by the adapter: see the module docstring
            episodic_life=False,  # resets the whole game on a life loss: see the module docstring
            reward_clipping=False,
            autoreset_mode="SameStep",
        )

    def reset(self, seed: int | None) -> tuple[np.ndarray, np.ndarray]:
        obs, info = self.env.reset(seed=seed)
        return obs, info["lives"]

    def send(self, actions: np.ndarray) -> None:
        self.env.send(actions)

    def recv(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[int, np.ndarray]]:
        obs, rewards, terminated, truncated, info = self.env.recv()
        ended = np.flatnonzero(terminated | truncated)
        final = {int(i): info["final_obs"][i] for i in ended} if len(ended) else {}
        return obs, rewards, terminated, truncated, info["lives"], final

    def close(self) -> None:
        self.env.close()


class _EnvpoolEmulator(_Emulator):
    def __init__(self, game: str, num_envs: int, num_threads: int, seed: int) -> None:
        try:
            import envpool
        except ImportError as error:
            raise ValueError(
                "--env-backend envpool needs the envpool extra: pip install 'rl-coordconv[envpool]'"
            ) from error
        p = ATARI_PROTOCOL
        self.num_envs = num_envs
        # envpool ignores reset(seed=...): the seed has to go to make().
        self.env = envpool.make(
            f"{game}-v5",
            env_type="gymnasium",
            num_envs=num_envs,
            num_threads=num_threads,
            seed=seed,
            repeat_action_probability=p.repeat_action_probability,
            max_episode_steps=p.max_frames_per_game // p.frame_skip,
            frame_skip=p.frame_skip,
            img_height=p.screen_size,
            img_width=p.screen_size,
            stack_num=p.frame_stack,
            noop_max=p.noop_max,
            use_fire_reset=False,  # SB3's FIRE at a reset is played by the adapter: see the module docstring
            episodic_life=False,
            reward_clip=False,
        )
        self._all = np.arange(num_envs, dtype=np.int32)

    def reset(self, seed: int | None) -> tuple[np.ndarray, np.ndarray]:
        obs, info = self.env.reset()
        return obs, info["lives"]

    def send(self, actions: np.ndarray) -> None:
        self.env.send(actions, self._all)

    def recv(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[int, np.ndarray]]:
        obs, rewards, terminated, truncated, info = self.env.recv()
        lives = info["lives"]
        ended = np.flatnonzero(terminated | truncated)
        final: dict[int, np.ndarray] = {}
        if len(ended):
            # envpool resets on the *next* step; reset now so the caller gets SB3's same-step semantics.
            final = {int(i): obs[i].copy() for i in ended}
            new_obs, new_info = self.env.reset(env_id=ended.astype(np.int32))
            obs, lives = obs.copy(), lives.copy()
            obs[ended], lives[ended] = new_obs, new_info["lives"]
        return obs, rewards, terminated, truncated, lives, final

    def close(self) -> None:
        self.env.close()


class AtariVecEnv(VecEnv):
    """Atari through a batched C++ emulator, as an SB3 ``VecEnv`` (see the module docstring).

    :param game: any spelling :func:`canonical_game` accepts
    :param num_envs: parallel games
    :param seed: seed of the first game of env 0; env ``k`` gets ``seed + k``
    :param backend: ``ale`` or ``envpool``
    :param training: end episodes on a life loss and clip rewards (the training protocol);
        false for evaluation, where an episode is a whole game with raw rewards
    :param num_threads: emulator threads (0: one per core)
    """

    def __init__(
        self,
        game: str,
        num_envs: int,
        seed: int = 0,
        backend: str = "ale",
        training: bool = True,
        num_threads: int = 0,
    ) -> None:
        self.game = canonical_game(game)
        self.backend = backend
        self.training = training
        if backend == "ale":
            self.emulator: _Emulator = _AleEmulator(self.game, num_envs, num_threads)
        elif backend == "envpool":
            self.emulator = _EnvpoolEmulator(self.game, num_envs, num_threads, seed)
        else:
            raise ValueError(f"unknown emulator backend {backend!r}; AtariVecEnv knows ale and envpool")
        meanings = action_meanings(self.game)
        # SB3's FireResetEnv: FIRE, then action 2, at every episode start of games whose action 1 is FIRE.
        fire_reset = [1, 2] if len(meanings) >= 3 and meanings[1] == "FIRE" else []
        self.game_start_actions = tuple(fire_reset)
        # SB3's EpisodicLifeEnv plays a NOOP after a life loss, before FireResetEnv's actions.
        self.life_loss_actions = (0, *fire_reset) if training else ()
        super().__init__(num_envs, observation_space(self.game), gym.spaces.Discrete(len(meanings)))
        self._next_seed: int | None = seed
        self._actions = np.zeros(num_envs, dtype=np.int64)
        self._lives = np.zeros(num_envs, dtype=np.int64)
        width = max(len(self.game_start_actions), len(self.life_loss_actions), 1)
        self._forced = np.full((num_envs, width), -1, dtype=np.int64)  # per env, the next actions to force
        self._forcing = np.zeros(num_envs, dtype=bool)  # envs whose step in flight plays a forced action
        self._age = np.zeros(num_envs, dtype=np.int64)  # frames of the current episode in the stack
        self._returns = np.zeros(num_envs, dtype=np.float64)
        self._lengths = np.zeros(num_envs, dtype=np.int64)
        self._start = time.time()

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        if attr_name == "render_mode":
            return [None] * len(list(self._get_indices(indices)))
        raise AttributeError(f"AtariVecEnv has no per-env attribute {attr_name!r}")

    def seed(self, seed: int | None = None) -> Sequence[int | None]:
        """Seed the next :meth:`reset` (ALE); envpool takes its seed when built."""
        self._next_seed = seed
        return [None if seed is None else seed + i for i in range(self.num_envs)]

    def reset(self) -> VecEnvObs:
        obs, lives = self.emulator.reset(self._next_seed)
        self._next_seed = None
        self._lives[:] = lives
        self._queue(np.arange(self.num_envs), self.game_start_actions)
        self._forcing[:] = False
        self._age[:] = 1
        self._returns[:] = 0
        self._lengths[:] = 0
        return _zero_older_frames(obs, self._age)

    def _queue(self, envs: np.ndarray, actions: tuple[int, ...]) -> None:
        """Make ``envs`` play ``actions`` on their next steps, whatever the agent asks for."""
        self._forced[envs] = -1
        self._forced[envs, : len(actions)] = actions

    def step_async(self, actions: np.ndarray) -> None:
        np.copyto(self._actions, np.asarray(actions).reshape(self.num_envs), casting="unsafe")
        forced = self._forced[:, 0]
        np.greater_equal(forced, 0, out=self._forcing)
        if self._forcing.any():
            np.copyto(self._actions, forced, where=self._forcing)
            self._forced[:, :-1] = self._forced[:, 1:]
            self._forced[:, -1] = -1
        self.emulator.send(self._actions)

    def step_wait(self) -> VecEnvStepReturn:
        obs, raw, terminated, truncated, lives, final = self.emulator.recv()
        raw = raw.astype(np.float64, copy=False)
        game_over = terminated | truncated
        life_lost = (lives < self._lives) & (lives > 0) & ~game_over
        self._lives[:] = lives
        self._returns += raw
        self._lengths += 1

        if self.training:
            dones = game_over | life_lost
            rewards = np.sign(raw).astype(np.float32)
            rewards[self._forcing] = 0.0  # SB3's reset discards them (the raw score keeps them)
            self._queue(np.flatnonzero(life_lost), self.life_loss_actions)
        else:
            dones = game_over
            rewards = raw.astype(np.float32)
        self._queue(np.flatnonzero(game_over), self.game_start_actions)
        # This step's frame joins each env's current episode; a done env's next one starts with it,
        # and so it starts again with the frame of each forced action, which SB3's reset hides.
        self._age = np.minimum(self._age + 1, ATARI_PROTOCOL.frame_stack)
        last_age = self._age.copy()
        self._age[dones | self._forcing] = 1
        next_obs = _zero_older_frames(obs, self._age)

        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        for i in np.flatnonzero(dones):
            info = infos[i]
            last = final[int(i)] if game_over[i] else obs[i]
            info["terminal_observation"] = _zero_older_frames(last[None], last_age[i : i + 1])[0]
            if game_over[i]:
                info["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
                info["episode"] = {
                    "r": float(self._returns[i]),
                    "l": int(self._lengths[i]),
                    "t": round(time.time() - self._start, 6),
                }
                self._returns[i] = 0.0
                self._lengths[i] = 0
            else:  # a life lost: the game goes on
                info["TimeLimit.truncated"] = False
        return next_obs, rewards, dones, infos

    def close(self) -> None:
        self.emulator.close()

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        raise AttributeError(f"AtariVecEnv has no per-env attribute {attr_name!r}")

    def env_method(
        self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **kwargs: Any
    ) -> list[Any]:
        raise AttributeError(f"AtariVecEnv's envs live in C++ and have no method {method_name!r}")

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        # Episode statistics are reported as SB3's Monitor reports them.
        from stable_baselines3.common.monitor import Monitor

        return [wrapper_class is Monitor] * len(list(self._get_indices(indices)))

    def get_images(self) -> Sequence[np.ndarray | None]:
        raise NotImplementedError("AtariVecEnv has grayscale 84×84 frames only; record video with the sb3 backend")


def _zero_older_frames(obs: np.ndarray, age: np.ndarray) -> np.ndarray:
    """``obs`` (envs, stack, h, w) with the frames older than each env's ``age`` newest set to 0."""
    stack = obs.shape[1]
    young = np.flatnonzero(age < stack)
    if len(young) == 0:
        return obs
    obs = obs.copy()
    for i in young:
        obs[i, : stack - age[i]] = 0
    return obs


BACKENDS = ("ale", "envpool", "sb3")


def make_atari_vec_env(
    game: str,
    n_envs: int,
    seed: int = 0,
    backend: str = "ale",
    training: bool = True,
    num_threads: int = 0,
    render_mode: str | None = None,
) -> VecEnv:
    """A vectorized Atari env with the project's protocol, as an SB3 ``VecEnv``.

    :param game: any spelling :func:`canonical_game` accepts; ``Catch`` gives
        :class:`~rl_coordconv.envs.catch.CatchVecEnv`, the same on every backend
    :param n_envs: parallel games
    :param seed: env ``k`` is seeded with ``seed + k``
    :param backend: ``ale`` (ALE's C++ vector env, the default), ``envpool``, or ``sb3``
        (SB3's ``make_atari_env`` + ``SubprocVecEnv`` + ``VecFrameStack``, the reference stack)
    :param training: the training protocol (life loss ends an episode, clipped rewards)
    :param num_threads: emulator threads for ``ale``/``envpool`` (0: one per core)
    :param render_mode: ``rgb_array`` for video (``sb3`` backend only)
    :return: the env; observations ``(n_envs, 4, 84, 84)`` uint8
    """
    if n_envs < 1:
        raise ValueError(f"n_envs must be at least 1, got {n_envs}")
    if backend not in BACKENDS:
        raise ValueError(f"unknown env backend {backend!r}; choose from {', '.join(BACKENDS)}")
    game = canonical_game(game)
    if game == CATCH:  # no emulator: NumPy arrays, the same whatever the backend
        return CatchVecEnv(n_envs, seed=seed, render_mode=render_mode)
    if backend in ("ale", "envpool"):
        if render_mode is not None:
            raise ValueError(f"render_mode needs the sb3 backend; the {backend} backend has no RGB frames")
        return AtariVecEnv(game, n_envs, seed=seed, backend=backend, training=training, num_threads=num_threads)

    from stable_baselines3.common.env_util import make_atari_env
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecFrameStack, VecTransposeImage

    p = ATARI_PROTOCOL
    env = make_atari_env(
        functools.partial(_subprocess_env if n_envs > 1 else make_ale_env, game),
        n_envs=n_envs,
        seed=seed,
        env_kwargs=dict(render_mode=render_mode),
        wrapper_kwargs=dict(
            noop_max=p.noop_max,
            frame_skip=p.frame_skip,
            screen_size=p.screen_size,
            terminal_on_life_loss=training,
            clip_reward=training,
        ),
        vec_env_cls=SubprocVecEnv if n_envs > 1 else DummyVecEnv,
    )
    # WarpFrame gives (84, 84, 1); stack on the last axis, then channels first like the other backends.
    return VecTransposeImage(VecFrameStack(env, n_stack=p.frame_stack, channels_order="last"))


def _subprocess_env(game: str, render_mode: str | None = None) -> gym.Env:
    """:func:`make_ale_env` in a ``SubprocVecEnv`` worker process, which leaves Ctrl-C and SIGTERM to
    its parent (a run checkpoints, then closes its envs)."""
    if multiprocessing.parent_process() is not None:  # a worker indeed, not this process
        ignore_stop_signals()
    return make_ale_env(game, render_mode)
