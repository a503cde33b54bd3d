"""What a run logs while it trains, and reading it back: ``episodes.csv`` and TensorBoard scalars.

- ``episodes.csv``: one row per finished game (agent step, frames, wall time, raw return, length,
  and for Ape-X the actor that played it), flushed row by row;
- TensorBoard event files, indexed by agent step; ``plot --export`` keeps their scalars, less the
  per-game ones that ``episodes.csv`` already holds, as ``scalars.csv`` (tag, step, value).

A resume drops what was logged after its checkpoint from both (:meth:`EpisodeLog.truncate_after`,
:func:`truncate_events`), so nothing is counted twice.
"""

from __future__ import annotations

import csv
import gzip
import io
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from rl_coordconv.runs import RunDir, RunStateError, atomic_write_bytes, atomic_write_text

__all__ = [
    "ACTOR_COLUMN",
    "EPISODE_COLUMNS",
    "SCALARS_FILE",
    "EpisodeLog",
    "RunRecorder",
    "open_episodes",
    "read_episodes",
    "read_scalars",
    "truncate_events",
    "write_scalars",
]

EPISODE_COLUMNS = ("agent_step", "frames", "wall_time", "return", "length")
# The column a run with actors (Ape-X) adds: which actor played the game, and so at which ε.
ACTOR_COLUMN = "actor"
SCALARS_FILE = "scalars.csv"
SCALAR_COLUMNS = ("tag", "step", "value")
# logged once per game: episodes.csv has every game already, so scalars.csv leaves them out
_PER_GAME_TAGS = ("charts/episodic_return", "charts/episodic_length")


class EpisodeLog:
    """Append-only CSV of finished games, flushed row by row.

    :param path: the ``episodes.csv`` file; created with a header if missing
    :param actors: a new file gets the ``actor`` column too (an existing file keeps the columns it
        has, so a run begun without it is resumed without it)
    """

    def __init__(self, path: Path, actors: bool = False) -> None:
        self.path = path
        new = not path.exists() or path.stat().st_size == 0
        self.columns: tuple[str, ...]
        if new:
            self.columns = (*EPISODE_COLUMNS, ACTOR_COLUMN) if actors else EPISODE_COLUMNS
        else:
            self.columns = _header(path)
        self._handle = path.open("a", newline="")
        self._writer = csv.writer(self._handle)
        if new:
            self._writer.writerow(self.columns)
            self._handle.flush()

    def write(
        self,
        agent_step: int,
        frames: int,
        wall_time: float,
        episode_return: float,
        length: int,
        actor: int | None = None,
    ) -> None:
        row: list[object] = [agent_step, frames, f"{wall_time:.3f}", f"{episode_return:g}", length]
        if ACTOR_COLUMN in self.columns:
            row.append("" if actor is None else actor)
        self._writer.writerow(row)
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()

    @staticmethod
    def truncate_after(path: Path, agent_step: int) -> int:
        """Drop the rows logged after ``agent_step`` (work a resume will redo); return rows kept."""
        if not path.exists() or path.stat().st_size == 0:
            return 0  # killed before its header: EpisodeLog writes it anew
        rows = [row for row in read_episodes(path) if int(row["agent_step"]) <= agent_step]
        columns = _header(path)
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([row[column] for column in columns])
        atomic_write_text(path, buffer.getvalue())
        return len(rows)


def _header(path: Path) -> tuple[str, ...]:
    """The columns an ``episodes.csv`` was begun with."""
    with open_episodes(path) as handle:
        return tuple(next(csv.reader(handle), EPISODE_COLUMNS))


def open_episodes(path: Path) -> TextIO:
    """An ``episodes.csv``, or the ``episodes.csv.gz`` that ``plot --export`` writes for a large one, as text."""
    return gzip.open(path, "rt", newline="") if path.suffix == ".gz" else path.open(newline="")


def read_episodes(path: Path) -> Iterator[dict[str, str]]:
    """Rows of an ``episodes.csv`` (or ``.csv.gz``); a torn last line (a kill mid-write) is skipped."""
    with open_episodes(path) as handle:
        for row in csv.DictReader(handle):
            if all(row.get(column) not in (None, "") for column in EPISODE_COLUMNS):
                yield row


def _event_files(run_dir: Path) -> list[Path]:
    return sorted(run_dir.glob("events.out.tfevents.*"))


def _has_events(run_dir: Path) -> bool:
    return bool(_event_files(run_dir))


# Sorts before every file a SummaryWriter names (``events.out.tfevents.<10-digit time>.<host>...``).
_KEPT_EVENTS = "events.out.tfevents.0000000000.kept"


def truncate_events(run_dir: Path, step: int) -> int:
    """Keep only the TensorBoard events at or before ``step``: what a resume from there keeps.

    Every event file of the run is rewritten into one (written atomically, named to sort before
    any file a writer makes), then the others are deleted. Unlike a ``purge_step``, the result
    does not depend on the order in which readers take the files, which follows their names:
    ``<seconds>.<host>.<pid>.<n>`` sorts writer 10 before writer 9 of the same second. An event
    that a crash between the two steps left in two files is kept once.

    :return: the events kept
    """
    from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
    from tensorboard.compat.proto import event_pb2
    from tensorboard.summary.writer.record_writer import RecordWriter

    files = _event_files(run_dir)
    if not files:
        return 0
    header: bytes | None = None
    kept: list[tuple[int, bytes]] = []
    seen: set[bytes] = set()
    for path in files:
        for record in RawEventFileLoader(str(path)).Load():
            event = event_pb2.Event.FromString(record)
            if event.HasField("file_version"):
                header = header or record
            elif event.step <= step and record not in seen:
                seen.add(record)
                kept.append((event.step, record))
    kept.sort(key=lambda item: item[0])  # stable: same-step events keep their order
    buffer = io.BytesIO()
    writer = RecordWriter(buffer)
    for record in ([header] if header else []) + [record for _, record in kept]:
        writer.write(record)
    target = run_dir / _KEPT_EVENTS
    atomic_write_bytes(target, buffer.getvalue())
    for path in files:
        if path != target:
            path.unlink()
    return len(kept)


def read_scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every TensorBoard scalar of a run as (step, value) in step order.

    Read from the run's event files, or, where there are none (a committed copy), from the
    ``scalars.csv`` that ``write_scalars`` made of them.
    """
    if _has_events(run_dir):
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
        events.Reload()
        return {tag: sorted((e.step, e.value) for e in events.Scalars(tag)) for tag in events.Tags()["scalars"]}
    path = run_dir / SCALARS_FILE
    if not path.exists():
        raise RunStateError(f"{run_dir} holds no TensorBoard event files (events.out.tfevents.*) and no {SCALARS_FILE}")
    series: dict[str, list[tuple[int, float]]] = defaultdict(list)
    with path.open(newline="") as handle:
        for line, row in enumerate(csv.DictReader(handle), start=2):
            try:
                series[row["tag"]].append((int(row["step"]), float(row["value"])))
            except (KeyError, TypeError, ValueError):
                columns = ", ".join(SCALAR_COLUMNS)
                raise RunStateError(f"{path} line {line} is not a row of ({columns}): {row}") from None
    return {tag: sorted(points) for tag, points in series.items()}


def write_scalars(run_dir: Path, path: Path) -> bool:
    """Write a run's TensorBoard scalars, less the per-game ones, to ``path`` as CSV.

    A few tens of kB for a 10M-frame run where its event files take MBs. Returns False, writing
    nothing, when the run has no event files.
    """
    if not _has_events(run_dir):
        return False
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(SCALAR_COLUMNS)
    for tag, points in sorted(read_scalars(run_dir).items()):
        if tag not in _PER_GAME_TAGS:
            writer.writerows((tag, step, f"{value:.6g}") for step, value in points)
    atomic_write_text(path, buffer.getvalue())
    return True


class RunRecorder:
    """What a run reports while it trains: ``episodes.csv`` rows and TensorBoard scalars.

    TensorBoard tags are few and stable: ``charts/episodic_return`` (raw, whole-game score),
    ``charts/episodic_length`` (agent steps), ``charts/fps`` (agent steps per second), ``losses/*``,
    ``coordconv/coord_weight_ratio``; all indexed by agent step.

    :param run: the run directory
    :param start_step: agent step the run starts (or resumes) from; TensorBoard data after it
        from an interrupted attempt is purged
    :param wall_offset: wall time already spent before a resume, in seconds
    :param frame_skip: frames per agent step, for the ``frames`` column
    :param actors: ``episodes.csv`` names the actor of each game (a new run's file)
    """

    def __init__(
        self, run: RunDir, start_step: int = 0, wall_offset: float = 0.0, frame_skip: int = 4, actors: bool = False
    ) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.run = run
        self.frame_skip = frame_skip
        self.wall_offset = wall_offset
        self._start = time.monotonic()
        self.episodes = EpisodeLog(run.episodes_path, actors=actors)
        # An interrupted attempt's points after the checkpoint go; those at its step stay, as in
        # episodes.csv. The purge step tells a TensorBoard that already read them.
        if start_step > 0:
            truncate_events(run.path, start_step)
        self.writer = SummaryWriter(str(run.path), purge_step=start_step + 1 if start_step > 0 else None)
        self.recent_returns: list[float] = []

    def elapsed(self) -> float:
        """Wall time of the run so far, across resumes."""
        return self.wall_offset + time.monotonic() - self._start

    def episode(self, agent_step: int, episode_return: float, length: int, actor: int | None = None) -> None:
        self.episodes.write(agent_step, agent_step * self.frame_skip, self.elapsed(), episode_return, length, actor)
        self.writer.add_scalar("charts/episodic_return", episode_return, agent_step)
        self.writer.add_scalar("charts/episodic_length", length, agent_step)
        self.recent_returns = [*self.recent_returns[-99:], episode_return]

    def scalars(self, agent_step: int, values: dict[str, float]) -> None:
        for tag, value in values.items():
            self.writer.add_scalar(tag, value, agent_step)

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.episodes.close()
        self.writer.close()
