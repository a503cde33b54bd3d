"""What a training run is: its settings, the name of its arm, and what makes two runs the same experiment.

Plain data, no PyTorch: the run lifecycle (:mod:`rl_coordconv.lifecycle`), the trainers, ``sweep``
and ``plot`` all read it, and so may any script.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rl_coordconv.runs import RunDir

__all__ = [
    "ACTOR_PLACEMENTS",
    "IDENTITY",
    "MAX_SEED",
    "CoordLayers",
    "TrainConfig",
    "arm_name",
    "identity_mismatch",
    "resolve_coord_layers",
]

CoordLayers = str | Sequence[int]

# Seeds reach NumPy (< 2**32) and ALE (a C int) as seed + env index + start step: room for those.
MAX_SEED = 2**30

# Where an algorithm with actors (Ape-X) runs them: processes on this machine, or Ray actors.
ACTOR_PLACEMENTS = ("local", "ray")

# Settings that define an experiment: a resume must not change them, a sweep must not mix them.
IDENTITY = (
    "algo",
    "game",
    "coordconv",
    "with_r",
    "coord_layers",
    "head",
    "seed",
    "timesteps",
    "n_envs",
    "hyperparams",
)


def resolve_coord_layers(coord_layers: CoordLayers) -> tuple[int, ...]:
    """Turn ``"first"``, ``"all"`` or a list of conv indices (0, 1, 2) into a sorted tuple.

    :param coord_layers: which of the Nature CNN's convolutions get coordinate channels
    :return: the conv indices
    """
    if isinstance(coord_layers, str):
        named = {"first": (0,), "all": (0, 1, 2)}
        if coord_layers not in named:
            raise ValueError(f"coord_layers must be 'first', 'all' or conv indices in 0..2, got {coord_layers!r}")
        return named[coord_layers]
    layers = tuple(sorted({int(i) for i in coord_layers}))
    if not layers or any(i not in (0, 1, 2) for i in layers):
        raise ValueError(f"coord_layers must be 'first', 'all' or conv indices in 0..2, got {list(coord_layers)!r}")
    return layers


def arm_name(coordconv: bool, with_r: bool = False, coord_layers: CoordLayers = "first", head: str = "flatten") -> str:
    """Directory name of an arm: ``conv``, ``coordconv``, ``coordconv_r``, ``coordconv_all``, and
    ``conv_pool``, ``coordconv_pool`` … with the pooled head (the Nature CNN's flatten head adds nothing)."""
    pool = "_pool" if head == "pool" else ""
    if not coordconv:
        return "conv" + pool
    layers = resolve_coord_layers(coord_layers)
    name = "coordconv"
    if layers == (0, 1, 2):
        name += "_all"
    elif layers != (0,):
        name += "_layers" + "".join(str(i) for i in layers)
    return name + ("_r" if with_r else "") + pool


@dataclass
class TrainConfig:
    """Everything a training run needs; saved (resolved) as ``config.yaml`` in its run directory."""

    algo: str = "a2c"  # registry name (rl_coordconv.agents.ALGOS)
    game: str = "Pong"  # canonical game name (an Atari game, or Catch)
    coordconv: bool = False  # the CoordConv arm
    with_r: bool = False  # add the radius channel
    coord_layers: str | list[int] = "first"  # which convolutions get coordinates
    head: str = "flatten"  # flatten (the Nature CNN) or pool: the last conv map averaged over space
    seed: int = 0
    timesteps: int = 0  # agent steps (frames = 4 × steps on Atari); 0 = the algorithm's default
    n_envs: int = 0  # 0 = the algorithm's default (games per actor for Ape-X)
    env_backend: str = "ale"  # the emulator: ale | envpool | sb3
    device: str = "auto"  # auto | cpu | cuda[:N]
    log_dir: str = "runs"
    hyperparams: dict[str, Any] = field(default_factory=dict)  # resolved algorithm arguments
    checkpoint_every: int = 100_000  # agent steps between checkpoints
    log_every: int = 10_000  # agent steps between fps / loss / coordconv scalars
    progress: bool | None = None  # progress bar; None = when stderr is a terminal
    actors_on: str = "local"  # algorithms with actors (apex): local processes or ray
    ray_address: str | None = None  # actors_on=ray: the cluster (see rl_coordconv.runtime.connect_ray)

    @property
    def arm(self) -> str:
        return arm_name(self.coordconv, self.with_r, self.coord_layers, self.head)

    def run_dir(self) -> RunDir:
        return RunDir.for_run(Path(self.log_dir), self.algo, self.game, self.arm, self.seed)

    def identity(self) -> dict[str, Any]:
        data = asdict(self)
        return {key: data[key] for key in IDENTITY}


def identity_mismatch(stored: dict[str, Any], config: TrainConfig) -> str | None:
    """How a stored run's ``config.yaml`` differs from ``config`` as an experiment, or None.

    :return: e.g. ``"was made with timesteps=800, not 900"`` (the first setting that differs)
    """
    mine, defaults = config.identity(), TrainConfig().identity()
    for key in IDENTITY:
        theirs = stored.get(key, defaults[key] if key == "head" else None)  # runs before heads were flatten
        if theirs != mine[key]:
            return f"was made with {key}={theirs!r}, not {mine[key]!r}"
    return None
