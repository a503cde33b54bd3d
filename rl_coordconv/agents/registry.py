"""The algorithms, in one small registry: name → model class, trainer, default hyperparameters, envs, budget.

Every algorithm here gets :class:`~rl_coordconv.extractors.AtariCNN` (either arm) with the same
explicit ``net_arch`` through :func:`~rl_coordconv.extractors.atari_policy_kwargs`.
Hyperparameters are SB3 constructor arguments; a value ``"lin_X"`` is a schedule that decays
linearly from ``X`` to 0 over the run (rl-zoo3's convention). ``apex`` is the exception: its
hyperparameters are the fields of :class:`~rl_coordconv.agents.apex.ApexConfig`, it trains with
its own actors and learner (:class:`~rl_coordconv.agents.apex.ApexTrainer`), and it saves an SB3
``DQN``. Adding an algorithm is an entry in :data:`ALGOS` (and a trainer class if neither
:class:`~rl_coordconv.agents.sb3.SB3Trainer` nor the Ape-X one fits).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml
from stable_baselines3 import DQN as SB3_DQN
from stable_baselines3 import PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import VecEnv

from rl_coordconv.agents.a2c import A2C, A2C_DEFAULTS, A2C_N_ENVS, A2C_TIMESTEPS
from rl_coordconv.agents.apex.config import APEX_ENVS_PER_ACTOR, APEX_TIMESTEPS, ApexConfig
from rl_coordconv.agents.apex.networks import apex_policy_kwargs, make_apex_model
from rl_coordconv.agents.apex.trainer import ApexTrainer
from rl_coordconv.agents.sb3 import SB3Trainer, make_sb3_model, schedule
from rl_coordconv.agents.trainer import Trainer
from rl_coordconv.agents.zoo import DQN, DQN_DEFAULTS, PPO_DEFAULTS, QRDQN, QRDQN_DEFAULTS
from rl_coordconv.experiment import CoordLayers
from rl_coordconv.runs import RunDir, RunStateError
from rl_coordconv.runtime import resolve_device

__all__ = [
    "ALGOS",
    "AlgoSpec",
    "algo_spec",
    "load_model",
    "load_run_model",
    "make_model",
    "parse_overrides",
    "resolve_hyperparams",
]

_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
# Arguments the registry fills in itself; --set may not touch them.
_RESERVED = {"policy", "env", "policy_kwargs", "seed", "device", "verbose", "tensorboard_log", "_init_setup_model"}


def _make_apex_model(spec: AlgoSpec, env: VecEnv, hyperparams: Mapping[str, Any], **arm: Any) -> BaseAlgorithm:
    """The Ape-X learner's network as an SB3 DQN, for ``env``'s spaces (its trainer builds its own)."""
    config = ApexConfig(**hyperparams)
    seed, device = arm.pop("seed", None), arm.pop("device", "auto")
    policy_kwargs = apex_policy_kwargs(config, **arm)
    return make_apex_model(env.observation_space, env.action_space, config, policy_kwargs, seed, device)


@dataclass(frozen=True)
class AlgoSpec:
    """What the registry knows about one algorithm.

    :param name: the ``--algo`` name
    :param model_class: the SB3 / sb3-contrib class of the saved model (``load_model`` uses it)
    :param hyperparams: default hyperparameters, each commented with its source where defined
    :param n_envs: default number of parallel envs (games per actor for an algorithm with actors)
    :param timesteps: default budget in agent steps (4 frames each on Atari)
    :param trainer: the :class:`~rl_coordconv.agents.trainer.Trainer` that runs it
    :param config_class: a dataclass whose fields are the hyperparameters (and that checks them),
        for an algorithm that is not trained through ``model_class``'s constructor
    :param extra_keys: hyperparameters of ours that :func:`make_sb3_model` turns into SB3 arguments
    :param has_actors: it runs actors that ``--actors``, ``--actors-on`` and ``--ray-address`` place
    :param make: builds the model for an env (``make_model``)
    """

    name: str
    model_class: type[BaseAlgorithm]
    hyperparams: Mapping[str, Any] = field(default_factory=dict)
    n_envs: int = 1
    timesteps: int = 10_000_000
    trainer: type[Trainer] = SB3Trainer
    config_class: type | None = None
    extra_keys: frozenset[str] = frozenset()
    has_actors: bool = False
    make: Callable[..., BaseAlgorithm] = make_sb3_model

    def allowed_keys(self) -> set[str]:
        if self.config_class is not None:
            return {f.name for f in fields(self.config_class)}
        params = set(inspect.signature(self.model_class.__init__).parameters) - {"self"}
        return (params - _RESERVED) | self.extra_keys


ALGOS: dict[str, AlgoSpec] = {
    "a2c": AlgoSpec(
        "a2c",
        A2C,
        A2C_DEFAULTS,
        n_envs=A2C_N_ENVS,
        timesteps=A2C_TIMESTEPS,
        extra_keys=frozenset({"rms_prop_alpha"}),
    ),
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
        trainer=ApexTrainer,
        config_class=ApexConfig,
        has_actors=True,
        make=_make_apex_model,
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
        schedule(key, value)  # fail now, not an hour into a run
    if spec.config_class is not None:
        spec.config_class(**resolved)  # checks the values
    return resolved


def make_model(
    algo: str,
    env: VecEnv,
    hyperparams: Mapping[str, Any],
    coordconv: bool = False,
    with_r: bool = False,
    coord_layers: CoordLayers = "first",
    seed: int | None = None,
    device: str = "auto",
    head: str = "flatten",
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
    :param head: ``flatten`` or ``pool`` (see :class:`AtariCNN`)
    :raises ValueError: a hyperparameter value the algorithm rejects
    """
    spec = algo_spec(algo)
    arm = dict(coordconv=coordconv, with_r=with_r, coord_layers=coord_layers, head=head)
    return spec.make(spec, env, hyperparams, seed=seed, device=device, **arm)


def load_model(algo: str, path: Any, env: VecEnv | None = None, device: str = "auto") -> BaseAlgorithm:
    """Load a model saved by training (a final model or a checkpoint)."""
    return algo_spec(algo).model_class.load(path, env=env, device=device)


def load_run_model(
    run_dir: Path, checkpoint: Path | None = None, device: str = "auto"
) -> tuple[dict[str, Any], BaseAlgorithm]:
    """A run's config and its final model (or ``checkpoint``; the latest checkpoint of an unfinished run).

    :raises RunStateError: not a run directory, no model to load, or a model that will not load
    """
    run = RunDir(run_dir)
    if not run.exists():
        raise RunStateError(f"{run_dir} is not a run directory (no config.yaml)")
    config = run.read_config()
    model_path = checkpoint or run.final_model_path
    if checkpoint is None and not model_path.exists():
        try:
            model_path = run.latest_checkpoint().model
        except RunStateError as error:
            raise RunStateError(f"{run_dir} has no final model and no checkpoint to play") from error
    if not model_path.exists():
        raise RunStateError(f"no model at {model_path}")
    torch_device = resolve_device(device)
    try:
        model = load_model(config["algo"], model_path, device=str(torch_device))
    except Exception as error:  # SB3 raises many kinds on a damaged zip
        raise RunStateError(f"cannot load {model_path}: {error}") from error
    return config, model
