"""The algorithms, in one small registry: name → class, default hyperparameters, envs, budget.

Every algorithm here gets :class:`~rl_coordconv.extractors.AtariCNN` (either arm) with the same
explicit ``net_arch`` through :func:`~rl_coordconv.extractors.atari_policy_kwargs`.
Hyperparameters are SB3 constructor arguments; a value ``"lin_X"`` is a schedule that decays
linearly from ``X`` to 0 over the run (rl-zoo3's convention). ``apex`` is the exception: its
hyperparameters are the fields of :class:`~rl_coordconv.agents.apex.ApexConfig`, it trains with
its own actors and learner (``rl_coordconv.agents.apex``), and it saves an SB3 ``DQN``.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import yaml
from stable_baselines3 import DQN as SB3_DQN
from stable_baselines3 import PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.sb2_compat.rmsprop_tf_like import RMSpropTFLike
from stable_baselines3.common.utils import LinearSchedule
from stable_baselines3.common.vec_env import VecEnv

from rl_coordconv.agents.a2c import A2C, A2C_DEFAULTS, A2C_N_ENVS, A2C_TIMESTEPS
from rl_coordconv.agents.apex.config import APEX_ENVS_PER_ACTOR, APEX_TIMESTEPS, ApexConfig
from rl_coordconv.agents.apex.learner import apex_policy_kwargs, make_apex_model
from rl_coordconv.agents.zoo import DQN, DQN_DEFAULTS, PPO_DEFAULTS, QRDQN, QRDQN_DEFAULTS
from rl_coordconv.extractors import CoordLayers, atari_policy_kwargs

__all__ = ["ALGOS", "AlgoSpec", "algo_spec", "load_model", "make_model", "parse_overrides", "resolve_hyperparams"]

_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
# Arguments the registry fills in itself; --set may not touch them.
_RESERVED = {"policy", "env", "policy_kwargs", "seed", "device", "verbose", "tensorboard_log", "_init_setup_model"}
# Our own keys, turned into SB3 arguments by make_model.
_EXTRA_KEYS = {"a2c": {"rms_prop_alpha"}}


@dataclass(frozen=True)
class AlgoSpec:
    """What the registry knows about one algorithm.

    :param name: the ``--algo`` name
    :param model_class: the SB3 / sb3-contrib class
    :param hyperparams: default constructor arguments, each commented with its source where defined
    :param n_envs: default number of parallel envs
    :param timesteps: default budget in agent steps (4 frames each)
    :param config_class: a dataclass whose fields are the hyperparameters (and that checks them),
        for an algorithm that is not trained through ``model_class``'s constructor
    """

    name: str
    model_class: type[BaseAlgorithm]
    hyperparams: Mapping[str, Any] = field(default_factory=dict)
    n_envs: int = 1
    timesteps: int = 10_000_000
    config_class: type | None = None

    def allowed_keys(self) -> set[str]:
        if self.config_class is not None:
            return {f.name for f in fields(self.config_class)}
        params = set(inspect.signature(self.model_class.__init__).parameters) - {"self"}
        return (params - _RESERVED) | _EXTRA_KEYS.get(self.name, set())


ALGOS: dict[str, AlgoSpec] = {
    "a2c": AlgoSpec("a2c", A2C, A2C_DEFAULTS, n_envs=A2C_N_ENVS, timesteps=A2C_TIMESTEPS),
    "ppo": AlgoSpec("ppo", PPO, PPO_DEFAULTS, n_envs=8),  # rl-zoo3 atari: 8 envs, 1e7 steps
    "dqn": AlgoSpec("dqn", DQN, DQN_DEFAULTS, n_envs=1),  # rl-zoo3 atari: 1 env, 1e7 steps
    "qrdqn": AlgoSpec("qrdqn", QRDQN, QRDQN_DEFAULTS, n_envs=1),
    # n_envs is games per actor; the saved model is an SB3 DQN with a dueling policy
    "apex": AlgoSpec(
        "apex",
        SB3_DQN,
        asdict(ApexConfig()),
        n_envs=APEX_ENVS_PER_ACTOR,
        timesteps=APEX_TIMESTEPS,
        config_class=ApexConfig,
    ),
}


def algo_spec(name: str) -> AlgoSpec:
    """The registry entry for ``name``.

    :raises ValueError: naming the algorithms that exist
    """
    if name not in ALGOS:
        raise ValueError(f"unknown algo {name!r}; choose from {', '.join(ALGOS)}")
    return ALGOS[name]


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """``["lr=1e-4", "n_steps=8"]`` → ``{"lr": 1e-4, "n_steps": 8}``; values are YAML scalars or lists.

    Values are parsed (``yaml.safe_load``), never evaluated as code.
    """
    overrides: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set expects key=value, got {pair!r}")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise ValueError(f"--set {pair!r}: cannot parse the value ({error.__class__.__name__})") from error
        if isinstance(value, str) and _NUMBER.fullmatch(value):  # YAML 1.1 reads 1e-4 (no dot) as a string
            value = float(value)
        overrides[key.strip()] = value
    return overrides


def resolve_hyperparams(algo: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The defaults of ``algo`` with ``overrides`` applied and checked.

    :raises ValueError: for a key the algorithm does not take, naming the keys it does
    """
    spec = algo_spec(algo)
    resolved = dict(spec.hyperparams)
    allowed = spec.allowed_keys()
    for key, value in (overrides or {}).items():
        if key not in allowed:
            raise ValueError(f"{algo} has no hyperparameter {key!r}; it takes: {', '.join(sorted(allowed))}")
        resolved[key] = value
    for key, value in resolved.items():
        _schedule(key, value)  # fail now, not an hour into a run
    if spec.config_class is not None:
        spec.config_class(**resolved)  # checks the values
    return resolved


def _schedule(key: str, value: Any) -> Any:
    if isinstance(value, str) and value.startswith("lin_"):
        try:
            return LinearSchedule(float(value[4:]), 0.0, 1.0)
        except ValueError as error:
            raise ValueError(f"{key}={value!r}: a linear schedule is lin_<number>, e.g. lin_7e-4") from error
    return value


def make_model(
    algo: str,
    env: VecEnv,
    hyperparams: Mapping[str, Any],
    coordconv: bool = False,
    with_r: bool = False,
    coord_layers: CoordLayers = "first",
    seed: int | None = None,
    device: str = "auto",
) -> BaseAlgorithm:
    """Build an algorithm with :class:`AtariCNN` in the chosen arm.

    :param algo: registry name
    :param env: the training env
    :param hyperparams: resolved hyperparameters (see :func:`resolve_hyperparams`)
    :param coordconv: the CoordConv arm
    :param with_r: add the radius channel
    :param coord_layers: which convolutions get coordinates (``first``, ``all`` or indices)
    :param seed: seeds python, numpy and torch (SB3's ``set_random_seed``)
    :param device: torch device
    :raises ValueError: a hyperparameter value the algorithm rejects
    """
    spec = algo_spec(algo)
    if algo == "apex":  # the learner's network, as an SB3 DQN; rl_coordconv.agents.apex trains it
        config = ApexConfig(**hyperparams)
        policy_kwargs = apex_policy_kwargs(config, coordconv=coordconv, with_r=with_r, coord_layers=coord_layers)
        return make_apex_model(env.observation_space, env.action_space, config, policy_kwargs, seed, device)
    kwargs = {key: _schedule(key, value) for key, value in hyperparams.items()}
    policy_kwargs = atari_policy_kwargs(algo, coordconv=coordconv, with_r=with_r, coord_layers=coord_layers)
    if algo == "a2c":
        alpha = kwargs.pop("rms_prop_alpha", 0.99)
        if kwargs.get("use_rms_prop", True):
            policy_kwargs["optimizer_class"] = RMSpropTFLike
            policy_kwargs["optimizer_kwargs"] = dict(alpha=alpha, eps=kwargs.get("rms_prop_eps", 1e-5), weight_decay=0)
    try:
        return spec.model_class("CnnPolicy", env, policy_kwargs=policy_kwargs, seed=seed, device=device, **kwargs)
    except (TypeError, ValueError, AssertionError) as error:  # SB3 checks some values with assert
        raise ValueError(f"{algo} rejected its hyperparameters (check the --set values): {error}") from error


def load_model(algo: str, path: Any, env: VecEnv | None = None, device: str = "auto") -> BaseAlgorithm:
    """Load a model saved by training (a final model or a checkpoint)."""
    return algo_spec(algo).model_class.load(path, env=env, device=device)
