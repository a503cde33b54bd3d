"""The two halves of every training run: a :class:`Trainer` (what one algorithm family does) and a
:class:`Monitor` (what every run does around it).

A run's life (:func:`rl_coordconv.lifecycle.train`) is the same for every algorithm: build a
trainer or restore it from a checkpoint, let it train until a step count while the monitor logs,
reports and checkpoints, write the final model, close. A trainer only knows its algorithm: SB3's
algorithms share :class:`~rl_coordconv.agents.sb3.SB3Trainer`, Ape-X has
:class:`~rl_coordconv.agents.apex.trainer.ApexTrainer`. Adding an algorithm is a registry entry
(:mod:`rl_coordconv.agents.registry`) and, if no trainer fits, a trainer class.
"""

from __future__ import annotations

import io
import signal
import sys
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from rl_coordconv.experiment import TrainConfig
from rl_coordconv.logs import RunRecorder
from rl_coordconv.runs import Checkpoint, RunDir, RunStopped, rng_state

if TYPE_CHECKING:
    from rl_coordconv.agents.registry import AlgoSpec

__all__ = ["Monitor", "Trainer"]


class Trainer(ABC):
    """One algorithm family's side of a run.

    Subclasses are built with :meth:`build` (a new run) or :meth:`restore` (from a checkpoint),
    both before anything is written to the run directory, so a rejected setting leaves no
    half-made run.
    """

    num_timesteps: int  # agent steps so far, across resumes

    @classmethod
    @abstractmethod
    def build(cls, spec: AlgoSpec, config: TrainConfig, device: torch.device) -> Trainer:
        """A new run of ``config`` (resolved) for the registry entry ``spec``."""

    @classmethod
    @abstractmethod
    def restore(
        cls, spec: AlgoSpec, config: TrainConfig, device: torch.device, checkpoint: Checkpoint, state: dict[str, Any]
    ) -> Trainer:
        """The run continued from a checkpoint: its model file, its state (step, RNG states, extras,
        as read from ``checkpoint.state``) and its extra directory, if :meth:`write_checkpoint_extra`
        wrote one."""

    @abstractmethod
    def train(self, until: int, monitor: Monitor) -> None:
        """Train until ``until`` agent steps in all, telling ``monitor`` of games and safe points."""

    @abstractmethod
    def model_bytes(self) -> bytes:
        """The model as the zip ``enjoy`` loads (with the optimizer, for a checkpoint)."""

    @abstractmethod
    def describe(self) -> str:
        """What runs, for the line under the run's header: envs, actors, parameters."""

    def checkpoint_state(self) -> dict[str, Any]:
        """What a checkpoint holds beyond the model, the step, the RNG states and the wall time."""
        return {}

    def write_checkpoint_extra(self, directory: Path) -> bool:
        """Write what is too large for the checkpoint's state file into ``directory`` (new, empty),
        and say whether there was anything (Ape-X: its replay)."""
        return False

    def run_state(self) -> dict[str, Any]:
        """Extra counters for ``state.json`` (e.g. learner steps)."""
        return {}

    def scalars(self, seconds: float) -> dict[str, float]:
        """TensorBoard scalars of the algorithm since the last call, ``seconds`` ago (losses, rates)."""
        return {}

    def progress_note(self) -> str:
        """Words for the progress line between the speed and the recent return."""
        return ""

    @abstractmethod
    def coord_weight_ratio(self) -> float | None:
        """‖W_coord‖/‖W_image‖ of the first CoordConv layer of the acting network, or None."""

    def close(self) -> None:  # noqa: B027 (optional: not every trainer holds envs or actors)
        """Release envs, actors and processes."""


class Monitor:
    """A run's periodic work, the same for every trainer: episodes, scalars, progress, checkpoints.

    The trainer calls :meth:`episode` for each finished game and :meth:`tick` wherever a
    checkpoint may be taken (SB3: before each rollout; Ape-X: each pass of its loop), where every
    step it counted has been trained on. Once a stop is requested (a signal number in
    ``stop_requests``: Ctrl-C, SIGTERM), the next tick writes a checkpoint and raises
    :class:`~rl_coordconv.runs.RunStopped`. A context manager: leaving it closes the progress bar.

    :param config: the run's settings (budget, cadences, progress bar)
    :param run: its directory
    :param recorder: its episode log and TensorBoard writer
    :param trainer: the trainer, built or restored; the run starts from its step count
    :param stop_requests: where requests to stop arrive (the signals that asked, appended by a signal
        handler); read at each tick
    """

    def __init__(
        self,
        config: TrainConfig,
        run: RunDir,
        recorder: RunRecorder,
        trainer: Trainer,
        stop_requests: list[int] | None = None,
    ) -> None:
        self.config = config
        self.run = run
        self.recorder = recorder
        self.trainer = trainer
        self.start_step = start = trainer.num_timesteps
        self.next_log = self._after(start, config.log_every)
        self.next_checkpoint = self._after(start, config.checkpoint_every)
        self._next_report = start
        self._last_log = (start, time.monotonic())
        self._checkpointed = start if start else None  # the last checkpoint's step (a resumed run starts at one)
        self.stop_requests = stop_requests if stop_requests is not None else []
        self._progress: Any = None
        if config.progress if config.progress is not None else sys.stderr.isatty():
            from tqdm import tqdm

            self._progress = tqdm(
                total=config.timesteps, initial=start, unit="step", unit_scale=True, dynamic_ncols=True
            )

    @staticmethod
    def _after(step: int, every: int) -> int:
        return (step // every + 1) * every

    def episode(self, step: int, score: float, length: int, actor: int | None = None) -> None:
        """A game ended at agent step ``step`` with this raw score and length in agent steps (played
        by ``actor``, for an algorithm with actors)."""
        self.recorder.episode(step, score, length, actor)

    def tick(self) -> None:
        """Log, checkpoint and report as their cadences say; stop if asked to.

        :raises RunStopped: once a stop is requested, after its checkpoint
        """
        step = self.trainer.num_timesteps
        if self.stop_requests and step < self.config.timesteps:
            self._stop(step, self.stop_requests[0])
        if step >= self.next_log:
            self.log_scalars()
            self.next_log = self._after(step, self.config.log_every)
        if self.next_checkpoint <= step < self.config.timesteps:
            self.save_checkpoint()
            self.next_checkpoint = self._after(step, self.config.checkpoint_every)
        self._report(step)

    def _stop(self, step: int, signal_number: int) -> None:
        """A checkpoint where the run stands (none at step 0: nothing to keep), then RunStopped."""
        name = "Ctrl-C" if signal_number == signal.SIGINT else signal.Signals(signal_number).name
        if step > 0 and step != self._checkpointed:
            self.note(f"{name}: writing a checkpoint at step {step:,} before stopping (Ctrl-C again: stop now)")
            if step > self._last_log[0]:
                self.log_scalars()
            self.save_checkpoint()
        if self._checkpointed is None:
            raise RunStopped(f"stopped by {name} before any training; --overwrite starts the run over", signal_number)
        raise RunStopped(f"stopped by {name} at step {step:,}; --resume continues from there", signal_number)

    def log_final(self) -> None:
        """The scalars of the last stretch, when the run has gone on since the last log."""
        if self.trainer.num_timesteps > self._last_log[0]:
            self.log_scalars()

    def note(self, text: str) -> None:
        """A line for the user (an actor restarted, ...) that does not break the progress bar."""
        if self._progress is not None:
            self._progress.write(text)
        else:
            print(text, flush=True)

    def __enter__(self) -> Monitor:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.close()

    def log_scalars(self) -> None:
        trainer = self.trainer
        step, now = trainer.num_timesteps, time.monotonic()
        last_step, last_time = self._last_log
        seconds = max(now - last_time, 1e-9)
        values = {"charts/fps": (step - last_step) / seconds} if step > last_step else {}
        values.update(trainer.scalars(seconds))
        ratio = trainer.coord_weight_ratio()
        if ratio is not None:
            values["coordconv/coord_weight_ratio"] = ratio
        self._last_log = (step, now)
        self.recorder.scalars(step, values)
        self.recorder.flush()
        self.run.write_state("running", step, **trainer.run_state())  # live progress for sweep

    def save_checkpoint(self) -> None:
        """Model + optimizer and step, RNG states, wall time and the trainer's extras, atomically."""
        trainer = self.trainer
        self.recorder.flush()  # TensorBoard holds every point up to the checkpoint, as episodes.csv does
        state = {
            "step": trainer.num_timesteps,
            "rng": rng_state(),
            "wall_time": self.recorder.elapsed(),
            **trainer.checkpoint_state(),
        }
        buffer = io.BytesIO()
        torch.save(state, buffer)
        self.run.save_checkpoint(
            trainer.num_timesteps, trainer.model_bytes(), buffer.getvalue(), trainer.write_checkpoint_extra
        )
        self._checkpointed = trainer.num_timesteps
        self.run.write_state("running", trainer.num_timesteps, **trainer.run_state())

    def _report(self, step: int) -> None:
        if self._progress is None and step < self._next_report:
            return
        recent = self.recorder.recent_returns[-10:]
        mean = f"{np.mean(recent):.1f}" if recent else "–"
        note = self.trainer.progress_note()
        if self._progress is not None:
            self._progress.update(step - self._progress.n)
            self._progress.set_postfix_str(f"{note}  return(last 10) {mean}".strip(), refresh=False)
        else:
            done = 100 * step / self.config.timesteps
            rate = (step - self.start_step) / max(self.recorder.elapsed() - self.recorder.wall_offset, 1e-9)
            note = f"  {note}" if note else ""
            print(
                f"  step {step:,}/{self.config.timesteps:,} ({done:.0f}%)  {rate:.0f} steps/s{note}  "
                f"return(last 10) {mean}",
                flush=True,
            )
            self._next_report = step + max(self.config.timesteps // 20, 1)
