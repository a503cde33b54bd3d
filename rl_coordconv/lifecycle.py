"""One run lifecycle for every algorithm: settle the config, build or restore, train, save.

:func:`train` is what ``python -m rl_coordconv.train`` and every ``sweep`` cell run:

1. hold the run directory's lock; decide from its state whether this starts, resumes or is refused
   (a finished run without ``--overwrite``, nothing to resume, settings that differ);
2. resolve the config (:func:`resolve_config`: defaults, checks, the stored config on a resume);
3. build the algorithm's trainer, or restore it from the latest checkpoint, *before* writing
   anything, so a rejected setting leaves no half-made run;
4. record the config (a new run) or drop what was logged after the checkpoint (a resume);
5. train until the budget while a :class:`~rl_coordconv.agents.trainer.Monitor` logs, reports and
   checkpoints (and, on Ctrl-C or SIGTERM, checkpoints and stops); write the final model and
   ``state.json``; close.
"""

from __future__ import annotations

import shutil
import signal
import time
from dataclasses import asdict
from typing import Any

import numpy as np
import torch

from rl_coordconv import __version__
from rl_coordconv.agents import AlgoSpec, algo_spec, resolve_hyperparams
from rl_coordconv.agents.trainer import Monitor, Trainer
from rl_coordconv.envs import BACKENDS, CATCH, canonical_game, frames_per_step, game_protocol
from rl_coordconv.experiment import (
    ACTOR_PLACEMENTS,
    MAX_SEED,
    TrainConfig,
    identity_mismatch,
    resolve_coord_layers,
)
from rl_coordconv.extractors import HEADS
from rl_coordconv.logs import EpisodeLog, RunRecorder
from rl_coordconv.runs import (
    RunDir,
    RunStateError,
    RunStopped,
    TrainingFailed,
    atomic_write_bytes,
    environment_report,
    load_checkpoint_state,
    set_rng_state,
)
from rl_coordconv.runtime import resolve_device, stop_signals

__all__ = ["check_settings", "protocol_mismatch", "resolve_config", "train"]


def check_settings(config: TrainConfig) -> AlgoSpec:
    """The checks that need no run directory, made before anything is created; return the algorithm's entry.

    :raises ValueError: an unknown algorithm or game, or options that do not go together
    """
    spec = algo_spec(config.algo)
    config.game = canonical_game(config.game)  # `pong` and `ALE/Pong-v5` share runs/<algo>/Pong
    resolve_coord_layers(config.coord_layers)
    if config.head not in HEADS:
        raise ValueError(f"unknown --head {config.head!r}; choose from {', '.join(HEADS)}")
    if config.with_r and not config.coordconv:
        raise ValueError("--with-r needs --coordconv")
    if not spec.has_actors and (config.actors_on != "local" or config.ray_address is not None):
        raise ValueError(
            "--actors-on and --ray-address place the actors of algorithms that have them (apex); "
            "sweep --runs-on ray sends other algorithms' runs to Ray"
        )
    if config.actors_on not in ACTOR_PLACEMENTS:
        raise ValueError(f"unknown --actors-on {config.actors_on!r}; choose from {', '.join(ACTOR_PLACEMENTS)}")
    if config.ray_address is not None and config.actors_on != "ray":
        raise ValueError("--ray-address needs --actors-on ray")
    return spec


def resolve_config(config: TrainConfig, stored: dict[str, Any] | None = None) -> TrainConfig:
    """Fill in defaults and check every setting; on a resume, take unset values from the stored config.

    :param config: the settings as given; unset ``timesteps``/``n_envs``/``hyperparams`` are 0/empty
    :param stored: the ``config.yaml`` of the run being resumed
    :raises ValueError: a bad setting, or one that differs from the stored run's
    """
    spec = check_settings(config)
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
        where = f"the run in {config.run_dir().path}"
        if (mismatch := protocol_mismatch(stored)) is not None:
            raise ValueError(f"{where} {mismatch}; use --overwrite to start it over")
        if (mismatch := identity_mismatch(stored, config)) is not None:
            raise ValueError(f"{where} {mismatch}; resume it with its own settings or use --overwrite")
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


def train(config: TrainConfig, resume: bool = False, overwrite: bool = False, command: str | None = None) -> RunDir:
    """Run (or resume) one training run and return its directory.

    :param config: the run; unset timesteps / n_envs / hyperparams take the algorithm's defaults
    :param resume: continue an interrupted run from its latest checkpoint
    :param overwrite: delete whatever is in the run directory and start over
    :param command: the command line, recorded in ``config.yaml``
    :raises ValueError: bad settings
    :raises RunStateError: a finished run without ``overwrite``, nothing to resume, a corrupt checkpoint
    :raises TrainingFailed: the run cannot go on (Ape-X: an actor died three times in a row)
    :raises RunStopped: Ctrl-C or SIGTERM stopped it, at a checkpoint
    """
    if resume and overwrite:
        raise ValueError("--resume and --overwrite contradict each other; pick one")
    check_settings(config)  # before the lock, which creates the run's parent directories
    run = RunDir(config.run_dir().path)
    with run.lock():
        return _train_locked(run, config, resume, overwrite, command)


def _stored_config(run: RunDir, resume: bool, overwrite: bool) -> dict[str, Any] | None:
    """The config of the run to resume, or None for a new one; refuses what is not allowed."""
    status = run.status()
    if resume:
        if status is None:
            raise RunStateError(f"nothing to resume: no run in {run.path}")
        if status == "finished":
            raise RunStateError(f"the run in {run.path} is already finished; --overwrite starts it over")
        return run.read_config()
    if status is not None and not overwrite:
        what = "a finished run" if status == "finished" else "an interrupted run (--resume continues it)"
        raise RunStateError(f"{run.path} holds {what}; --overwrite deletes it and starts over")
    return None


def _open_trainer(config: TrainConfig, device: torch.device, resume: bool) -> tuple[Trainer, dict[str, Any] | None]:
    """The trainer built for a new run, or restored from the latest checkpoint with its state."""
    spec = algo_spec(config.algo)
    if not resume:
        return spec.trainer.build(spec, config, device), None
    try:
        checkpoint = config.run_dir().latest_checkpoint()
    except RunStateError as error:
        raise RunStateError(f"cannot resume: {error}; --overwrite starts the run over") from error
    state = load_checkpoint_state(checkpoint.state)
    return spec.trainer.restore(spec, config, device, checkpoint, state), state


def _record_start(run: RunDir, config: TrainConfig, overwrite: bool, command: str | None) -> None:
    """Clear the directory for ``--overwrite``; write the config and state of a run that starts."""
    if overwrite and run.path.exists():
        shutil.rmtree(run.path)
    run.path.mkdir(parents=True, exist_ok=True)
    record = asdict(config)
    if not algo_spec(config.algo).has_actors:  # where actors run means nothing without actors
        del record["actors_on"], record["ray_address"]
    record.update(arm=config.arm, protocol=game_protocol(config.game))
    record.update(command=command, package_version=__version__, created=time.strftime("%Y-%m-%dT%H:%M:%S"))
    record.update(environment_report())
    run.write_config(record)
    run.write_state("running", 0)


def _restart_hint(run: RunDir) -> str:
    try:
        return f"--resume continues from the checkpoint at step {run.latest_checkpoint().step:,}"
    except RunStateError:
        return "no checkpoint yet: --overwrite starts the run over"


def _train_locked(run: RunDir, config: TrainConfig, resume: bool, overwrite: bool, command: str | None) -> RunDir:
    config = resolve_config(config, _stored_config(run, resume, overwrite))
    device = resolve_device(config.device)
    asked: list[int] = []  # Ctrl-C or SIGTERM: noted here, acted on at the monitor's next tick
    try:
        with stop_signals(asked.append):  # to the end: the final writes and the closing are not cut short
            trainer, state = _open_trainer(config, device, resume)
            try:
                if state is None:
                    _record_start(run, config, overwrite, command)
                    what = f"{config.algo} on {config.game} ({config.arm}, seed {config.seed})"
                    print(f"training {what} on {device}: {run.path}")
                    print(f"  {config.timesteps:,} agent steps, {trainer.describe()}")
                else:
                    print(f"resuming {run.path} at step {trainer.num_timesteps:,}")
                recorder = _train(run, config, trainer, state, asked)
            finally:
                trainer.close()
    except KeyboardInterrupt:  # a second Ctrl-C: stopped at once
        raise RunStopped(f"stopped by Ctrl-C; {_restart_hint(run)}", signal.SIGINT) from None
    recent = recorder.recent_returns[-10:]
    summary = f"mean return of the last {len(recent)} games {np.mean(recent):.1f}" if recent else "no game finished"
    print(f"finished {run.path}: {trainer.num_timesteps:,} steps in {recorder.elapsed() / 60:.1f} min, {summary}")
    return run


def _train(
    run: RunDir, config: TrainConfig, trainer: Trainer, state: dict[str, Any] | None, stop_requests: list[int]
) -> RunRecorder:
    """Train a started or restored run to its budget and write its end; return its recorder, closed.

    :raises RunStopped: a stop was requested (``stop_requests``), and the run checkpointed
    """
    wall_offset = 0.0
    if state is not None:
        set_rng_state(state["rng"])
        EpisodeLog.truncate_after(run.episodes_path, trainer.num_timesteps)  # games the resume replays
        wall_offset = float(state["wall_time"])
    recorder = RunRecorder(
        run,
        start_step=trainer.num_timesteps,
        wall_offset=wall_offset,
        frame_skip=frames_per_step(config.game),
        actors=algo_spec(config.algo).has_actors,  # episodes.csv: which actor (which ε) played each game
    )
    try:
        with Monitor(config, run, recorder, trainer, stop_requests) as monitor:
            trainer.train(config.timesteps, monitor)  # a stop request: a checkpoint, then RunStopped
            monitor.log_final()
        atomic_write_bytes(run.final_model_path, trainer.model_bytes())
        run.write_state(
            "finished", trainer.num_timesteps, **trainer.run_state(), wall_time=round(recorder.elapsed(), 1)
        )
        run.drop_checkpoint_extras()  # a finished run is not resumed: free the replay's GBs
    except TrainingFailed as error:
        raise TrainingFailed(f"{error}; {_restart_hint(run)}") from error
    finally:
        recorder.close()
    return recorder
