"""Run directories: where a training run keeps its config, episode log, checkpoints and state.

A run lives in ``<log_dir>/<algo>/<Game>/<arm>/seed<N>/`` and holds

- ``config.yaml``: the resolved configuration, the command line, package versions, git commit;
- ``episodes.csv`` and TensorBoard event files, what the run logs (:mod:`rl_coordconv.logs`);
- ``checkpoints/``: model + optimizer (an SB3 zip) and a state file (step, RNG states, wall time)
  per checkpoint, for the newest checkpoint a directory of what is too large for the state file
  (Ape-X: its replay), and ``latest.json`` naming the newest complete set;
- ``final_model.zip`` and ``state.json`` (``running`` or ``finished``).

Every file a resume depends on is written atomically (temporary file, fsync, rename), so a run
killed at any instant, even by ``kill -9``, resumes from its last checkpoint.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import platform
import random
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "Checkpoint",
    "RunDir",
    "RunStateError",
    "RunStopped",
    "TrainingFailed",
    "atomic_write_bytes",
    "atomic_write_text",
    "environment_report",
    "fsync_directory",
    "load_checkpoint_state",
    "rng_state",
    "set_rng_state",
]


class RunStateError(ValueError):
    """A run directory is not in the state the caller needs (finished, missing, corrupt)."""


class TrainingFailed(RuntimeError):
    """A run cannot go on (an Ape-X actor that keeps dying); its checkpoints stay for ``--resume``."""


class RunStopped(Exception):
    """A run stopped when asked (Ctrl-C, SIGTERM) at a point where it could checkpoint, its
    checkpoint written; ``--resume`` continues from it.

    :param signal_number: the signal that asked (the exit code is 128 + it, as the shell's)
    """

    def __init__(self, message: str, signal_number: int) -> None:
        super().__init__(message)
        self.signal_number = signal_number


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# The mode ``open()`` gives a new file. ``mkstemp`` makes its files 0600, which would leave run
# directories on shared storage unreadable to the rest of a team.
_NEW_FILE_MODE = 0o666 & ~_umask()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, _NEW_FILE_MODE)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def _git_commit() -> str | None:
    """The commit of the source tree the package runs from, with ``-dirty`` if it has changes."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("-dirty" if dirty else "")


def environment_report() -> dict[str, Any]:
    """Package versions, Python, platform and git commit, for ``config.yaml``."""
    versions: dict[str, str | None] = {}
    for dist in ("rl-coordconv", "torch", "stable-baselines3", "sb3-contrib", "gymnasium", "ale-py", "numpy"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
        "git_commit": _git_commit(),
    }


def rng_state() -> dict[str, Any]:
    """The python, numpy and torch (and CUDA) global RNG states, for a checkpoint.

    Plain tuples, lists, numbers and tensors only, so :func:`load_checkpoint_state` reads them
    without unpickling anything else.
    """
    import numpy as np
    import torch

    name, keys, position, has_gauss, cached = np.random.get_state(legacy=True)
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": (name, torch.from_numpy(np.asarray(keys, dtype=np.int64)), position, has_gauss, cached),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the global RNG states saved by :func:`rng_state`."""
    import numpy as np
    import torch

    random.setstate(state["python"])
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), *rest))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _numpy_array_globals() -> list[Any]:
    """What unpickling a NumPy array needs: checkpoints written before 2026-12-06 hold NumPy's RNG
    state as one."""
    import importlib

    import numpy as np

    multiarray = importlib.import_module("numpy._core.multiarray" if hasattr(np, "_core") else "numpy.core.multiarray")
    return [multiarray._reconstruct, np.ndarray, np.dtype, type(np.dtype(np.uint32))]


def load_checkpoint_state(path: Path) -> dict[str, Any]:
    """A checkpoint's state file (step, RNG states, wall time), read without running code from it.

    ``torch.load(weights_only=True)`` takes tensors, plain containers and numbers, and here NumPy
    arrays (older checkpoints hold one); anything else in the pickle, such as the call a crafted
    file would make on loading, is refused.

    :raises RunStateError: a file that is not such a state, in one line
    """
    import pickle

    import torch

    try:
        with torch.serialization.safe_globals(_numpy_array_globals()):
            state = torch.load(path, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError) as error:
        blocked = re.search(r"unsupported GLOBAL (\S+)", str(error))
        reason = (
            f"it would call {blocked.group(1)}, which a checkpoint never holds" if blocked else "not a checkpoint state"
        )
        raise RunStateError(f"refusing to load {path}: {reason}") from None
    if not isinstance(state, dict) or "step" not in state:
        raise RunStateError(f"refusing to load {path}: not a checkpoint state")
    return state


@dataclass(frozen=True)
class Checkpoint:
    step: int
    model: Path
    state: Path
    extra: Path | None = None  # a directory the trainer wrote (Ape-X: its replay), if any


def fsync_directory(path: Path) -> None:
    """Flush every file in ``path`` and the directory itself to disk."""
    for child in path.iterdir():
        if child.is_file():
            with open(child, "rb") as handle:
                os.fsync(handle.fileno())
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class RunDir:
    """Paths and state of one run directory.

    :param path: ``<log_dir>/<algo>/<Game>/<arm>/seed<N>``
    """

    KEEP_CHECKPOINTS = 2

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @classmethod
    def for_run(cls, log_dir: Path, algo: str, game: str, arm: str, seed: int) -> RunDir:
        return cls(Path(log_dir) / algo / game / arm / f"seed{seed}")

    config_path = property(lambda self: self.path / "config.yaml")
    episodes_path = property(lambda self: self.path / "episodes.csv")
    state_path = property(lambda self: self.path / "state.json")
    final_model_path = property(lambda self: self.path / "final_model.zip")
    checkpoint_dir = property(lambda self: self.path / "checkpoints")

    def exists(self) -> bool:
        return self.config_path.exists()

    @property
    def lock_path(self) -> Path:
        # beside the directory, not in it: --overwrite deletes the directory while holding the lock
        return self.path.parent / f".{self.path.name}.lock"

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the run for this process; a second process gets a :class:`RunStateError`.

        An OS file lock: it is released when the process ends, however it ends.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.lock_path.open("a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as error:
                raise RunStateError(f"{self.path} is in use by another training process") from error
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def in_use(self) -> bool:
        """Whether another process holds :meth:`lock` now."""
        try:
            with self.lock():
                return False
        except RunStateError:
            return True

    def status(self) -> str | None:
        """``finished``, ``running`` (or interrupted), or None if no run was started here."""
        if not self.state_path.exists():
            return "running" if self.exists() else None
        try:
            return str(json.loads(self.state_path.read_text())["status"])
        except (ValueError, KeyError) as error:
            raise RunStateError(f"{self.state_path} is corrupt: {error}") from error

    def read_state(self) -> dict[str, Any]:
        return json.loads(self.state_path.read_text()) if self.state_path.exists() else {}

    def write_state(self, status: str, agent_steps: int, **extra: Any) -> None:
        state = {"status": status, "agent_steps": agent_steps, "updated": time.strftime("%Y-%m-%dT%H:%M:%S")}
        state.update(extra)
        atomic_write_text(self.state_path, json.dumps(state, indent=2) + "\n")

    def read_config(self) -> dict[str, Any]:
        try:
            config = yaml.safe_load(self.config_path.read_text())
        except (OSError, yaml.YAMLError) as error:
            raise RunStateError(f"cannot read {self.config_path}: {error}") from error
        if not isinstance(config, dict):
            raise RunStateError(f"{self.config_path} is not a mapping")
        return config

    def write_config(self, config: dict[str, Any]) -> None:
        atomic_write_text(self.config_path, yaml.safe_dump(config, sort_keys=False, default_flow_style=False))

    # Checkpoints -------------------------------------------------------------------------------

    def save_checkpoint(
        self, step: int, model_bytes: bytes, state: bytes, write_extra: Callable[[Path], bool] | None = None
    ) -> Checkpoint:
        """Write a checkpoint, then point ``latest.json`` at it, then prune old ones.

        :param write_extra: fills a new, empty directory with what the trainer keeps outside the
            state file (Ape-X: its replay) and says whether it wrote anything; the directory is
            renamed into place only once complete, and only the newest checkpoint keeps one (they
            are large)
        """
        name = f"step_{step:012d}"
        extra = self.checkpoint_dir / f"{name}.extra"
        checkpoint = Checkpoint(step, self.checkpoint_dir / f"{name}.zip", self.checkpoint_dir / f"{name}.state.pt")
        atomic_write_bytes(checkpoint.model, model_bytes)
        atomic_write_bytes(checkpoint.state, state)
        if write_extra is not None:
            for left in self.checkpoint_dir.glob(".step_*.extra.tmp"):  # by a run killed while writing one
                shutil.rmtree(left, ignore_errors=True)
            partial = self.checkpoint_dir / f".{name}.extra.tmp"
            partial.mkdir()
            try:
                wrote = write_extra(partial)
                if wrote:
                    fsync_directory(partial)
                    shutil.rmtree(extra, ignore_errors=True)
                    os.replace(partial, extra)
                    checkpoint = Checkpoint(step, checkpoint.model, checkpoint.state, extra)
            finally:
                shutil.rmtree(partial, ignore_errors=True)  # unless renamed: a failed or empty write
        latest = {"step": step, "model": checkpoint.model.name, "state": checkpoint.state.name}
        if checkpoint.extra is not None:
            latest["extra"] = checkpoint.extra.name
        atomic_write_text(self.checkpoint_dir / "latest.json", json.dumps(latest) + "\n")
        for old in self._checkpoint_names()[: -self.KEEP_CHECKPOINTS]:
            for suffix in (".zip", ".state.pt"):
                (self.checkpoint_dir / f"{old}{suffix}").unlink(missing_ok=True)
        for old_extra in self.checkpoint_dir.glob("step_*.extra"):
            if old_extra != checkpoint.extra:
                shutil.rmtree(old_extra, ignore_errors=True)
        return checkpoint

    def drop_checkpoint_extras(self) -> None:
        """Delete the checkpoints' extra directories (Ape-X: GBs of replay): a finished run is not resumed."""
        latest = self.checkpoint_dir / "latest.json"
        if latest.exists():
            entry = json.loads(latest.read_text())
            if entry.pop("extra", None) is not None:
                atomic_write_text(latest, json.dumps(entry) + "\n")
        for extra in self.checkpoint_dir.glob("step_*.extra"):
            shutil.rmtree(extra, ignore_errors=True)

    def _checkpoint_names(self) -> list[str]:
        return sorted(p.name[: -len(".zip")] for p in self.checkpoint_dir.glob("step_*.zip"))

    def latest_checkpoint(self) -> Checkpoint:
        """The newest complete checkpoint.

        :raises RunStateError: when there is none or its files are missing
        """
        latest = self.checkpoint_dir / "latest.json"
        if not latest.exists():
            raise RunStateError(f"no checkpoint in {self.checkpoint_dir} (latest.json is missing)")
        try:
            entry = json.loads(latest.read_text())
            extra = self.checkpoint_dir / entry["extra"] if "extra" in entry else None
            checkpoint = Checkpoint(
                int(entry["step"]), self.checkpoint_dir / entry["model"], self.checkpoint_dir / entry["state"], extra
            )
        except (ValueError, KeyError, TypeError) as error:
            raise RunStateError(f"{latest} is corrupt: {error}") from error
        for path in (checkpoint.model, checkpoint.state, *([extra] if extra else [])):
            if not path.exists():
                raise RunStateError(f"checkpoint file {path} named by {latest} is missing")
        return checkpoint
