"""Train an agent on an Atari game, conv or CoordConv: ``python -m rl_coordconv.train``.

    python -m rl_coordconv.train --algo a2c --game Pong --coordconv
    python -m rl_coordconv.train --algo a2c --game Breakout --timesteps 2M --seed 1
    python -m rl_coordconv.train --algo a2c --game Pong --coordconv --resume
    python -m rl_coordconv.train --algo apex --game Pong --coordconv --actors 4 [--backend ray]

A run writes ``runs/<algo>/<Game>/<conv|coordconv>/seed<N>/`` (see :mod:`rl_coordconv.runs`);
``tensorboard --logdir runs`` shows it while it trains.
"""

from __future__ import annotations

import os

# Before PyTorch loads OpenMP: idle OpenMP threads sleep instead of spinning, which otherwise
# steals the cores the emulator's threads step on between two network calls (BENCHMARKS.md).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import io
import re
import shlex
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm

from rl_coordconv import __version__
from rl_coordconv.agents import ALGOS, algo_spec, load_model, make_model, parse_overrides, resolve_hyperparams
from rl_coordconv.cli import HelpFormatter
from rl_coordconv.envs import BACKENDS, CATCH, canonical_game, frames_per_step, game_protocol, make_atari_vec_env
from rl_coordconv.extractors import AtariCNN, resolve_coord_layers
from rl_coordconv.runs import (
    Checkpoint,
    EpisodeLog,
    RunDir,
    RunRecorder,
    RunStateError,
    TrainingFailed,
    atomic_write_bytes,
    environment_report,
    load_checkpoint_state,
    rng_state,
    set_rng_state,
)
from rl_coordconv.runtime import resolve_device, tune_malloc

__all__ = ["TrainConfig", "arm_name", "main", "parse_steps", "resolve_config", "train"]

# Seeds reach NumPy (< 2**32) and ALE (a C int) as seed + env index + start step: room for those.
MAX_SEED = 2**30

# Settings that define an experiment: a resume must not change them.
_IDENTITY = ("algo", "game", "coordconv", "with_r", "coord_layers", "seed", "timesteps", "n_envs", "hyperparams")


def parse_steps(text: str) -> int:
    """``"1e6"``, ``"10M"``, ``"500k"``, ``"2_000_000"`` → an int number of agent steps (> 0)."""
    match = re.fullmatch(r"\s*([0-9][0-9_]*(?:\.[0-9]+)?(?:e[0-9]+)?)\s*([kKmMgG]?)\s*", text)
    if not match:
        raise ValueError(f"cannot read {text!r} as a number of steps; use e.g. 100000, 1e6, 500k or 10M")
    value = float(match.group(1).replace("_", "")) * {"": 1, "k": 1e3, "m": 1e6, "g": 1e9}[match.group(2).lower()]
    if value <= 0 or value != int(value):
        raise ValueError(f"the number of steps must be a positive whole number, got {text!r}")
    return int(value)


def arm_name(coordconv: bool, with_r: bool = False, coord_layers: Any = "first") -> str:
    """Directory name of an arm: ``conv``, ``coordconv``, ``coordconv_r``, ``coordconv_all`` …"""
    if not coordconv:
        return "conv"
    layers = resolve_coord_layers(coord_layers)
    name = "coordconv"
    if layers == (0, 1, 2):
        name += "_all"
    elif layers != (0,):
        name += "_layers" + "".join(str(i) for i in layers)
    return name + ("_r" if with_r else "")


@dataclass
class TrainConfig:
    """Everything a training run needs; saved (resolved) as ``config.yaml`` in its run directory."""

    algo: str = "a2c"  # registry name (rl_coordconv.agents.ALGOS)
    game: str = "Pong"  # canonical Atari game name
    coordconv: bool = False  # the CoordConv arm
    with_r: bool = False  # add the radius channel
    coord_layers: str | list[int] = "first"  # which convolutions get coordinates
    seed: int = 0
    timesteps: int = 0  # agent steps (frames = 4 × steps); 0 = the algorithm's default
    n_envs: int = 0  # 0 = the algorithm's default
    env_backend: str = "ale"  # ale | envpool | sb3
    device: str = "auto"  # auto | cpu | cuda[:N]
    log_dir: str = "runs"
    hyperparams: dict[str, Any] = field(default_factory=dict)  # resolved SB3 arguments
    checkpoint_every: int = 100_000  # agent steps between checkpoints
    log_every: int = 10_000  # agent steps between fps / loss / coordconv scalars
    progress: bool | None = None  # progress bar; None = when stderr is a terminal

    @property
    def arm(self) -> str:
        return arm_name(self.coordconv, self.with_r, self.coord_layers)

    def run_dir(self) -> RunDir:
        return RunDir.for_run(Path(self.log_dir), self.algo, self.game, self.arm, self.seed)

    def identity(self) -> dict[str, Any]:
        data = asdict(self)
        return {key: data[key] for key in _IDENTITY}


class TrainingCallback(BaseCallback):
    """Episode log, TensorBoard scalars, periodic checkpoints and progress for an SB3 ``learn``.

    Checkpoints are taken at rollout boundaries, where the model has trained on every step it counted.
    """

    def __init__(self, config: TrainConfig, run: RunDir, recorder: RunRecorder, start_step: int) -> None:
        super().__init__()
        self.config = config
        self.run = run
        self.recorder = recorder
        self.start_step = start_step
        self.next_checkpoint = (start_step // config.checkpoint_every + 1) * config.checkpoint_every
        self.next_log = (start_step // config.log_every + 1) * config.log_every
        self._lengths = np.zeros(0, dtype=np.int64)
        self._last_log = (start_step, time.monotonic())
        self._progress: Any = None
        self._next_report = start_step

    def _on_training_start(self) -> None:
        self._lengths = np.zeros(self.training_env.num_envs, dtype=np.int64)
        show = self.config.progress if self.config.progress is not None else sys.stderr.isatty()
        if show:
            from tqdm import tqdm

            self._progress = tqdm(
                total=self.config.timesteps, initial=self.start_step, unit="step", unit_scale=True, dynamic_ncols=True
            )

    def _on_step(self) -> bool:
        self._lengths += 1
        for index, info in enumerate(self.locals["infos"]):
            episode = info.get("episode")
            if episode is not None:
                self.recorder.episode(self.num_timesteps, float(episode["r"]), int(self._lengths[index]))
                self._lengths[index] = 0
        return True

    def _on_rollout_start(self) -> None:
        step = self.num_timesteps
        if step >= self.next_log:
            self._log_scalars(step)
            self.next_log = (step // self.config.log_every + 1) * self.config.log_every
        if step >= self.next_checkpoint:
            save_checkpoint(self.model, self.run, self.recorder)
            self.next_checkpoint = (step // self.config.checkpoint_every + 1) * self.config.checkpoint_every
        self._report(step)

    def _on_training_end(self) -> None:
        self._log_scalars(self.num_timesteps)
        if self._progress is not None:
            self._progress.close()

    def _log_scalars(self, step: int) -> None:
        last_step, last_time = self._last_log
        now = time.monotonic()
        values = {"charts/fps": (step - last_step) / max(now - last_time, 1e-9)} if step > last_step else {}
        self._last_log = (step, now)
        for key, value in self.model.logger.name_to_value.items():
            if key == "train/learning_rate":
                values["charts/learning_rate"] = value
            elif key.startswith("train/") and key != "train/n_updates":
                values["losses/" + key[len("train/") :]] = value
        ratio = _coord_weight_ratio(self.model)
        if ratio is not None:
            values["coordconv/coord_weight_ratio"] = ratio
        self.recorder.scalars(step, values)
        self.recorder.flush()
        self.run.write_state("running", step)  # live progress for sweep

    def _report(self, step: int) -> None:
        recent = self.recorder.recent_returns[-10:]
        mean = f"{np.mean(recent):.1f}" if recent else "–"
        if self._progress is not None:
            self._progress.update(step - self._progress.n)
            self._progress.set_postfix_str(f"return(last 10) {mean}", refresh=False)
        elif step >= self._next_report:
            done = 100 * step / self.config.timesteps
            rate = (step - self.start_step) / max(self.recorder.elapsed() - self.recorder.wall_offset, 1e-9)
            print(
                f"  step {step:,}/{self.config.timesteps:,} ({done:.0f}%)  {rate:.0f} steps/s  return(last 10) {mean}"
            )
            self._next_report = step + max(self.config.timesteps // 20, 1)


def _coord_weight_ratio(model: BaseAlgorithm) -> float | None:
    extractor = next((m for m in model.policy.modules() if isinstance(m, AtariCNN)), None)
    return None if extractor is None else extractor.coord_weight_ratio()


def save_checkpoint(model: BaseAlgorithm, run: RunDir, recorder: RunRecorder) -> None:
    """Model + optimizer (SB3 zip) and step, RNG states and wall time, atomically."""
    recorder.flush()  # TensorBoard holds every point up to the checkpoint, as episodes.csv does
    buffer = io.BytesIO()
    model.save(buffer)
    state = io.BytesIO()
    torch.save({"step": model.num_timesteps, "rng": rng_state(), "wall_time": recorder.elapsed()}, state)
    run.save_checkpoint(model.num_timesteps, buffer.getvalue(), state.getvalue())
    run.write_state("running", model.num_timesteps)


def resolve_config(config: TrainConfig, stored: dict[str, Any] | None = None) -> TrainConfig:
    """Fill in defaults; on a resume, take unset values from the stored config and check the rest."""
    spec = algo_spec(config.algo)
    config.game = canonical_game(config.game)
    resolve_coord_layers(config.coord_layers)
    if config.with_r and not config.coordconv:
        raise ValueError("--with-r needs --coordconv")
    if stored is not None:
        for key in ("timesteps", "n_envs"):
            if not getattr(config, key):
                setattr(config, key, stored[key])
        if not config.hyperparams:
            config.hyperparams = dict(stored["hyperparams"])
    config.timesteps = config.timesteps or spec.timesteps
    config.n_envs = config.n_envs or spec.n_envs
    if config.n_envs < 1:
        raise ValueError(f"--n-envs must be at least 1, got {config.n_envs}")
    if not 0 <= config.seed <= MAX_SEED:
        raise ValueError(f"--seed must be a whole number from 0 to {MAX_SEED}, got {config.seed}")
    if config.timesteps < 1:
        raise ValueError(f"--timesteps must be positive, got {config.timesteps}")
    if config.env_backend not in BACKENDS:
        raise ValueError(f"unknown --env-backend {config.env_backend!r}; choose from {', '.join(BACKENDS)}")
    for key, value in (("checkpoint_every", config.checkpoint_every), ("log_every", config.log_every)):
        if value < 1:
            raise ValueError(f"--{key.replace('_', '-')} must be positive, got {value}")
    config.hyperparams = resolve_hyperparams(config.algo, config.hyperparams)
    if stored is not None:
        if (mismatch := protocol_mismatch(stored)) is not None:
            raise ValueError(f"the run in {config.run_dir().path} {mismatch}; use --overwrite to start it over")
        current = config.identity()
        changed = [key for key in _IDENTITY if stored.get(key) != current[key]]
        if changed:
            key = changed[0]
            raise ValueError(
                f"the run in {config.run_dir().path} was started with {key}={stored.get(key)!r}, "
                f"not {current[key]!r}; resume it with its own settings or use --overwrite"
            )
    return config


def protocol_mismatch(stored: dict[str, Any]) -> str | None:
    """Why a stored run's game protocol is not this version's, or None if it is the same."""
    game = canonical_game(str(stored.get("game", "")))
    theirs, mine = stored.get("protocol") or {}, game_protocol(game)
    if theirs == mine:
        return None
    what = "Atari protocol" if game != CATCH else f"{game} protocol"
    if theirs.get("version", 1) != mine["version"]:
        return f"was made under {what} version {theirs.get('version', 1)}, this version plays {mine['version']}"
    key = next(key for key in mine if theirs.get(key) != mine[key])
    return f"was made with {what} {key}={theirs.get(key)!r}, this version uses {mine[key]!r}"


def train(
    config: TrainConfig,
    resume: bool = False,
    overwrite: bool = False,
    command: str | None = None,
    backend: str = "local",
    ray_address: str | None = None,
) -> RunDir:
    """Run (or resume) one training run and return its directory.

    :param config: the run; unset timesteps / n_envs / hyperparams take the algorithm's defaults
    :param resume: continue an interrupted run from its latest checkpoint
    :param overwrite: delete whatever is in the run directory and start over
    :param command: the command line, recorded in ``config.yaml``
    :param backend: where Ape-X's actors run: ``local`` processes or ``ray``
    :param ray_address: the Ray cluster for ``backend="ray"`` (None: the running cluster Ray finds,
        else a new instance here; see :func:`~rl_coordconv.runtime.connect_ray`)
    :raises ValueError: bad settings
    :raises RunStateError: a finished run without ``overwrite``, nothing to resume, a corrupt checkpoint
    :raises TrainingFailed: the run cannot go on (Ape-X: an actor died three times in a row)
    """
    if resume and overwrite:
        raise ValueError("--resume and --overwrite contradict each other; pick one")
    if config.algo != "apex" and (backend != "local" or ray_address is not None):
        raise ValueError("--backend and --ray-address are for --algo apex; sweep --backend ray runs other algos on Ray")
    config.game = canonical_game(config.game)  # `pong` and `ALE/Pong-v5` share runs/<algo>/Pong
    run = RunDir(config.run_dir().path)
    with run.lock():
        return _train_locked(run, config, resume, overwrite, command, backend, ray_address)


def _prepare_run_dir(
    run: RunDir,
    config: TrainConfig,
    checkpoint: Checkpoint | None,
    overwrite: bool,
    command: str | None,
    **extra: Any,
) -> None:
    """Clear the directory for ``--overwrite``; record the config of a run that starts (not resumes)."""
    if overwrite and run.path.exists():
        shutil.rmtree(run.path)
    run.path.mkdir(parents=True, exist_ok=True)
    if checkpoint is None:
        record = {**asdict(config), "arm": config.arm, "protocol": game_protocol(config.game), **extra}
        record.update(command=command, package_version=__version__, created=time.strftime("%Y-%m-%dT%H:%M:%S"))
        record.update(environment_report())
        run.write_config(record)
        run.write_state("running", 0)


def _resume_from(run: RunDir, checkpoint: Checkpoint, state: dict[str, Any]) -> float:
    """Restore the RNGs of a loaded checkpoint and drop the games logged after it; return its wall time."""
    set_rng_state(state["rng"])
    EpisodeLog.truncate_after(run.episodes_path, checkpoint.step)
    print(f"resuming {run.path} at step {checkpoint.step:,}")
    return float(state["wall_time"])


def _restart_hint(run: RunDir) -> str:
    try:
        return f"--resume continues from the checkpoint at step {run.latest_checkpoint().step:,}"
    except RunStateError:
        return "no checkpoint yet: --overwrite starts the run over"


def _summary(run: RunDir, steps: int, recorder: RunRecorder) -> None:
    recent = recorder.recent_returns[-10:]
    summary = f"mean return of the last {len(recent)} games {np.mean(recent):.1f}" if recent else "no game finished"
    print(f"finished {run.path}: {steps:,} steps in {recorder.elapsed() / 60:.1f} min, {summary}")


def _train_locked(
    run: RunDir,
    config: TrainConfig,
    resume: bool,
    overwrite: bool,
    command: str | None,
    backend: str,
    ray_address: str | None,
) -> RunDir:
    status = run.status()
    stored = None
    if resume:
        if status is None:
            raise RunStateError(f"nothing to resume: no run in {run.path}")
        if status == "finished":
            raise RunStateError(f"the run in {run.path} is already finished; --overwrite starts it over")
        stored = run.read_config()
    elif status is not None and not overwrite:
        what = "a finished run" if status == "finished" else "an interrupted run (--resume continues it)"
        raise RunStateError(f"{run.path} holds {what}; --overwrite deletes it and starts over")
    config = resolve_config(config, stored)
    device = resolve_device(config.device)

    checkpoint = None
    if resume:
        try:
            checkpoint = run.latest_checkpoint()
        except RunStateError as error:
            raise RunStateError(f"cannot resume: {error}; --overwrite starts the run over") from error
    if config.algo == "apex":  # actors and a learner of its own instead of an SB3 learn()
        return _train_apex(run, config, checkpoint, device, overwrite, command, backend, ray_address)
    start_step = checkpoint.step if checkpoint else 0
    env_seed = config.seed + start_step  # a resumed run plays new games, not replays of the old ones
    env = make_atari_vec_env(config.game, config.n_envs, seed=env_seed, backend=config.env_backend)
    try:
        if checkpoint is not None:
            state = load_checkpoint_state(checkpoint.state)
            try:
                model = load_model(config.algo, checkpoint.model, env=env, device=str(device))
            except Exception as error:  # SB3 raises many kinds on a damaged zip
                raise RunStateError(f"cannot load checkpoint {checkpoint.model}: {error}") from error
            model._last_obs = None  # the env is new: make learn() reset it
            if isinstance(model, OffPolicyAlgorithm):  # its replay is not checkpointed: refill it first
                model.learn_from = checkpoint.step + model.learning_starts  # type: ignore[attr-defined]
            _prepare_run_dir(run, config, checkpoint, overwrite, command)
            wall_offset = _resume_from(run, checkpoint, state)
        else:
            model = make_model(  # before anything is written: a rejected value leaves no half-made run
                config.algo,
                env,
                config.hyperparams,
                coordconv=config.coordconv,
                with_r=config.with_r,
                coord_layers=config.coord_layers,
                seed=config.seed,
                device=str(device),
            )
            _prepare_run_dir(run, config, checkpoint, overwrite, command)
            wall_offset = 0.0
            n_params = sum(p.numel() for p in model.policy.parameters())
            print(f"training {config.algo} on {config.game} ({config.arm}, seed {config.seed}) on {device}: {run.path}")
            print(f"  {config.timesteps:,} agent steps, {config.n_envs} envs, {n_params:,} parameters")
        recorder = RunRecorder(
            run, start_step=start_step, wall_offset=wall_offset, frame_skip=frames_per_step(config.game)
        )
        callback = TrainingCallback(config, run, recorder, start_step)
        try:
            model.learn(
                total_timesteps=config.timesteps - start_step,
                callback=callback,
                log_interval=None,  # type: ignore[arg-type]  # SB3 accepts None: no stdout dumps
                reset_num_timesteps=checkpoint is None,
            )
            buffer = io.BytesIO()
            model.save(buffer)
            atomic_write_bytes(run.final_model_path, buffer.getvalue())
            run.write_state("finished", model.num_timesteps, wall_time=round(recorder.elapsed(), 1))
        finally:
            recorder.close()
    finally:
        env.close()
    _summary(run, model.num_timesteps, recorder)
    return run


def _train_apex(
    run: RunDir,
    config: TrainConfig,
    checkpoint: Checkpoint | None,
    device: torch.device,
    overwrite: bool,
    command: str | None,
    backend: str,
    ray_address: str | None,
) -> RunDir:
    """Ape-X (rl_coordconv.agents.apex): the same run directory life cycle around its own trainer."""
    from rl_coordconv.agents.apex import ApexConfig, ApexTrainer, make_actor_pool

    # The actors build their games in their own processes, where a bad --env-backend (or a missing
    # envpool) would kill them three times over; one game here fails first, in one line.
    make_atari_vec_env(config.game, 1, seed=config.seed, backend=config.env_backend).close()
    pool = make_actor_pool(backend, ray_address)  # a missing extra or unreachable cluster fails before any write
    try:
        apex = ApexConfig(**config.hyperparams)
        trainer = ApexTrainer(
            apex,
            game=config.game,
            n_envs=config.n_envs,
            seed=config.seed,
            pool=pool,
            env_backend=config.env_backend,
            coordconv=config.coordconv,
            with_r=config.with_r,
            coord_layers=config.coord_layers,
            device=device,
        )
        _prepare_run_dir(
            run, config, checkpoint, overwrite, command, runner={"backend": backend, "address": ray_address}
        )
        wall_offset = 0.0
        if checkpoint is not None:
            state = load_checkpoint_state(checkpoint.state)
            try:
                trainer.restore(checkpoint.model, state)
            except Exception as error:  # SB3 raises many kinds on a damaged zip
                raise RunStateError(f"cannot load checkpoint {checkpoint.model}: {error}") from error
            wall_offset = _resume_from(run, checkpoint, state)
        else:
            n_params = sum(p.numel() for p in trainer.learner.policy.q_net.parameters())
            print(f"training apex on {config.game} ({config.arm}, seed {config.seed}) on {device}: {run.path}")
            print(
                f"  {config.timesteps:,} agent steps, {apex.actors} actors ({backend}) × {config.n_envs} envs, "
                f"ε {apex.epsilons()[0]:.3g}…{apex.epsilons()[-1]:.3g}, {n_params:,} parameters"
            )
        recorder = RunRecorder(
            run, start_step=trainer.num_timesteps, wall_offset=wall_offset, frame_skip=frames_per_step(config.game)
        )
        try:
            trainer.train(config.timesteps, run, recorder, config.checkpoint_every, config.log_every)
            atomic_write_bytes(run.final_model_path, trainer.model_bytes())
            run.write_state(
                "finished",
                trainer.num_timesteps,
                learner_steps=trainer.learner.steps,
                wall_time=round(recorder.elapsed(), 1),
            )
        except TrainingFailed as error:
            raise TrainingFailed(f"{error}; {_restart_hint(run)}") from error
        finally:
            recorder.close()
    finally:
        pool.close()
    _summary(run, trainer.num_timesteps, recorder)
    return run


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """The options of a run that ``sweep`` also takes and passes on to each of its runs."""
    parser.add_argument("--env-backend", default="ale", help=f"one of {', '.join(BACKENDS)}")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--log-dir", default="runs", help="root of the run directories")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a hyperparameter, e.g. --set learning_rate=lin_1e-3 (repeatable)")  # fmt: skip
    parser.add_argument("--checkpoint-every", default="100k", help="agent steps between checkpoints")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m rl_coordconv.train",
        description="Train an SB3 agent on an Atari game with a Nature CNN, conv or CoordConv.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--algo", default="a2c", help=f"one of {', '.join(ALGOS)}")
    parser.add_argument(
        "--game",
        default="Pong",
        help="Atari game: Pong, ms_pacman, ALE/Breakout-v5, ...; or Catch, a small NumPy task in the same "
        "observation space (no no-ops, FIRE, lives or frame skip; every --env-backend plays it alike)",
    )
    parser.add_argument("--coordconv", action="store_true", help="CoordConv on the layers --coord-layers names")
    parser.add_argument("--with-r", action="store_true", help="add the radius channel (needs --coordconv)")
    parser.add_argument(
        "--coord-layers", default="first", help="with --coordconv: first, all, or conv indices like 0,2"
    )
    parser.add_argument("--seed", type=int, default=0, help="seeds the network, the envs and the run's directory name")
    parser.add_argument("--timesteps", default=None, help="agent steps, e.g. 1e6 or 10M (default: the algo's)")
    parser.add_argument(
        "--n-envs", type=int, default=None, help="parallel envs, per actor for apex (default: the algo's)"
    )
    add_run_options(parser)
    parser.add_argument("--log-every", default="10k", help="agent steps between fps/loss scalars")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run from its last checkpoint")
    parser.add_argument("--overwrite", action="store_true", help="delete an existing run in the same directory first")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    apex = parser.add_argument_group("Ape-X (--algo apex)")
    apex.add_argument("--actors", type=int, default=None, help="ε-greedy actors (default: 4), same as --set actors=N")
    apex.add_argument("--backend", default="local", help="where the actors run: local (processes) or ray (Ray actors)")
    apex.add_argument(
        "--ray-address",
        default=None,
        help="--backend ray's cluster: auto (a running one), local (start one here), host:port, ray://…; "
        "default: the running cluster Ray finds, else start one here",
    )
    return parser


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    """``--set`` values, with ``--actors`` as ``actors`` (Ape-X only)."""
    overrides = parse_overrides(args.overrides)
    if args.actors is not None:
        if args.algo != "apex":
            raise ValueError("--actors is for --algo apex")
        if args.actors < 1:
            raise ValueError(f"--actors must be at least 1, got {args.actors}")
        if overrides.get("actors", args.actors) != args.actors:
            raise ValueError(f"--actors {args.actors} and --set actors={overrides['actors']} disagree")
        overrides["actors"] = args.actors
    return overrides


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        layers: str | list[int] = args.coord_layers
        if re.fullmatch(r"[0-9](,[0-9])*", args.coord_layers):
            layers = [int(i) for i in args.coord_layers.split(",")]
        config = TrainConfig(
            algo=args.algo,
            game=args.game,
            coordconv=args.coordconv,
            with_r=args.with_r,
            coord_layers=layers,
            seed=args.seed,
            timesteps=parse_steps(args.timesteps) if args.timesteps is not None else 0,
            n_envs=args.n_envs if args.n_envs is not None else 0,
            env_backend=args.env_backend,
            device=args.device,
            log_dir=args.log_dir,
            hyperparams=_overrides(args),
            checkpoint_every=parse_steps(args.checkpoint_every),
            log_every=parse_steps(args.log_every),
            progress=False if args.no_progress else None,
        )
        if args.n_envs is not None and args.n_envs < 1:
            raise ValueError(f"--n-envs must be at least 1, got {args.n_envs}")
        algo_spec(config.algo)
        tune_malloc()
        command = shlex.join(["python", "-m", "rl_coordconv.train", *(sys.argv[1:] if argv is None else argv)])
        train(
            config,
            resume=args.resume,
            overwrite=args.overwrite,
            command=command,
            backend=args.backend,
            ray_address=args.ray_address,
        )
    except (ValueError, RunStateError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (TrainingFailed, OSError) as error:  # OSError: e.g. a --log-dir it cannot write to
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; --resume continues from the last checkpoint", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
