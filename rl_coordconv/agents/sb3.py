"""The trainer of every SB3 / sb3-contrib algorithm (a2c, ppo, dqn, qrdqn): one ``learn`` with a callback.

SB3 owns the loop (``collect_rollouts`` / ``train``, its template methods); this module builds the
model with :class:`~rl_coordconv.extractors.AtariCNN` in the chosen arm, restores it from a
checkpoint, and hands SB3's callback events to the run's :class:`~rl_coordconv.agents.trainer.Monitor`.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.sb2_compat.rmsprop_tf_like import RMSpropTFLike
from stable_baselines3.common.utils import LinearSchedule
from stable_baselines3.common.vec_env import VecEnv

from rl_coordconv.agents.trainer import Monitor, Trainer
from rl_coordconv.agents.zoo import RefillsAfterResume
from rl_coordconv.envs import make_atari_vec_env
from rl_coordconv.experiment import CoordLayers, TrainConfig
from rl_coordconv.extractors import AtariCNN, atari_policy_kwargs
from rl_coordconv.runs import Checkpoint, RunStateError

if TYPE_CHECKING:
    from rl_coordconv.agents.registry import AlgoSpec

__all__ = ["SB3Trainer", "make_sb3_model", "schedule"]


def schedule(key: str, value: Any) -> Any:
    """``"lin_X"`` → SB3's linear schedule from X to 0 over the run (rl-zoo3's convention); else ``value``.

    :raises ValueError: a ``lin_`` value that is not ``lin_<number>``
    """
    if isinstance(value, str) and value.startswith("lin_"):
        try:
            return LinearSchedule(float(value[4:]), 0.0, 1.0)
        except ValueError as error:
            raise ValueError(f"{key}={value!r}: a linear schedule is lin_<number>, e.g. lin_7e-4") from error
    return value


def make_sb3_model(
    spec: AlgoSpec,
    env: VecEnv,
    hyperparams: Mapping[str, Any],
    coordconv: bool = False,
    with_r: bool = False,
    coord_layers: CoordLayers = "first",
    seed: int | None = None,
    device: str = "auto",
    head: str = "flatten",
) -> BaseAlgorithm:
    """``spec.model_class("CnnPolicy", env, ...)`` with :class:`AtariCNN` in the chosen arm.

    :param spec: the registry entry (:class:`~rl_coordconv.agents.registry.AlgoSpec`)
    :param hyperparams: resolved hyperparameters; ``lin_X`` values become schedules, and A2C's
        ``rms_prop_alpha`` goes to its TF-style RMSprop
    :raises ValueError: a hyperparameter value the algorithm rejects
    """
    kwargs = {key: schedule(key, value) for key, value in hyperparams.items()}
    policy_kwargs = atari_policy_kwargs(
        spec.name, coordconv=coordconv, with_r=with_r, coord_layers=coord_layers, head=head
    )
    if "rms_prop_alpha" in spec.extra_keys:
        alpha = kwargs.pop("rms_prop_alpha", 0.99)
        if kwargs.get("use_rms_prop", True):
            policy_kwargs["optimizer_class"] = RMSpropTFLike
            policy_kwargs["optimizer_kwargs"] = dict(alpha=alpha, eps=kwargs.get("rms_prop_eps", 1e-5), weight_decay=0)
    try:
        return spec.model_class("CnnPolicy", env, policy_kwargs=policy_kwargs, seed=seed, device=device, **kwargs)
    except (TypeError, ValueError, AssertionError) as error:  # SB3 checks some values with assert
        raise ValueError(f"{spec.name} rejected its hyperparameters (check the --set values): {error}") from error


class _MonitorCallback(BaseCallback):
    """SB3's callback events, passed to the run's monitor: games as they end, ticks before rollouts."""

    def __init__(self, monitor: Monitor) -> None:
        super().__init__()
        self.monitor = monitor
        self._lengths = np.zeros(0, dtype=np.int64)

    def _on_training_start(self) -> None:
        self._lengths = np.zeros(self.training_env.num_envs, dtype=np.int64)

    def _on_step(self) -> bool:
        self._lengths += 1
        for index, info in enumerate(self.locals["infos"]):
            episode = info.get("episode")
            if episode is not None:
                self.monitor.episode(self.num_timesteps, float(episode["r"]), int(self._lengths[index]))
                self._lengths[index] = 0
        return True

    def _on_rollout_start(self) -> None:
        # a rollout boundary: the model has trained on every step it counted
        self.monitor.tick()


class SB3Trainer(Trainer):
    """An SB3 model, its env, and whether it continues a run.

    :param model: the algorithm
    :param env: its training env (closed by :meth:`close`)
    :param resumed: the model was loaded from a checkpoint, so ``learn`` keeps its step count
    """

    def __init__(self, model: BaseAlgorithm, env: VecEnv, resumed: bool = False) -> None:
        self.model = model
        self.env = env
        self.resumed = resumed

    @property
    def num_timesteps(self) -> int:  # type: ignore[override]
        return int(self.model.num_timesteps)

    @staticmethod
    def _env(config: TrainConfig, start_step: int) -> VecEnv:
        # a resumed run plays new games, not replays of the old ones
        return make_atari_vec_env(config.game, config.n_envs, seed=config.seed + start_step, backend=config.env_backend)

    @classmethod
    def build(cls, spec: AlgoSpec, config: TrainConfig, device: torch.device) -> SB3Trainer:
        env = cls._env(config, 0)
        try:
            model = spec.make(
                spec,
                env,
                config.hyperparams,
                coordconv=config.coordconv,
                with_r=config.with_r,
                coord_layers=config.coord_layers,
                head=config.head,
                seed=config.seed,
                device=str(device),
            )
        except BaseException:
            env.close()
            raise
        return cls(model, env)

    @classmethod
    def restore(
        cls, spec: AlgoSpec, config: TrainConfig, device: torch.device, checkpoint: Checkpoint, state: dict[str, Any]
    ) -> SB3Trainer:
        env = cls._env(config, int(state["step"]))
        try:
            loaded = spec.model_class.load(checkpoint.model, env=env, device=str(device))
        except Exception as error:  # SB3 raises many kinds on a damaged zip
            env.close()
            raise RunStateError(f"cannot load checkpoint {checkpoint.model}: {error}") from error
        loaded._last_obs = None  # the env is new: make learn() reset it
        if isinstance(loaded, RefillsAfterResume):  # its replay is not checkpointed
            loaded.refill_before_learning(int(state["step"]))
        return cls(loaded, env, resumed=True)

    def train(self, until: int, monitor: Monitor) -> None:
        self.model.learn(
            total_timesteps=until - self.num_timesteps,
            callback=_MonitorCallback(monitor),
            log_interval=None,  # type: ignore[arg-type]  # SB3 accepts None: no stdout dumps
            reset_num_timesteps=not self.resumed,
        )

    def model_bytes(self) -> bytes:
        buffer = io.BytesIO()
        self.model.save(buffer)
        return buffer.getvalue()

    def describe(self) -> str:
        n_params = sum(p.numel() for p in self.model.policy.parameters())
        return f"{self.env.num_envs} envs, {n_params:,} parameters"

    def scalars(self, seconds: float) -> dict[str, float]:
        logger = getattr(self.model, "_logger", None)  # SB3 makes it when learn() starts
        values: dict[str, float] = {}
        for key, value in ({} if logger is None else logger.name_to_value).items():
            if key == "train/learning_rate":
                values["charts/learning_rate"] = value
            elif key.startswith("train/") and key != "train/n_updates":
                values["losses/" + key[len("train/") :]] = value
        return values

    def coord_weight_ratio(self) -> float | None:
        extractor = next((m for m in self.model.policy.modules() if isinstance(m, AtariCNN)), None)
        return None if extractor is None else extractor.coord_weight_ratio()

    def close(self) -> None:
        self.env.close()
