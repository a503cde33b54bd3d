"""Prioritized replay for Ape-X: a vectorized sum tree, and frames stored once.

**Sampling.** :class:`SumTree` keeps priorities ``p_i^α`` in the leaves of a complete binary tree
whose inner nodes hold the sums of their children. A batch is sampled with one descent from the
root per tree level for the whole batch at once (numpy, no Python loop over the batch), stratified
as in Schaul et al. (2016): the ``k``-th of ``B`` draws falls in the ``k``-th ``B``-quantile of the
total mass. Updates recompute only the ancestors of the changed leaves, again level by level.

**Storage.** An Atari observation is a stack of the last 4 frames, so consecutive observations
share 3 of them. The replay stores each 84×84 frame once, in one ring of *rows* per stream (a
stream is one game of one actor), and rebuilds a stack at sample time: the observation of row
``r`` is rows ``r−3 .. r``. The actor decides the rows with :class:`ChunkBuilder`: an observation
whose first three frames are the last three of the stream's previous observation adds one row (its
newest frame); any other (a new game, an actor's first step) adds four. So a stack is rebuilt
exactly whatever the emulator put into it, across episode boundaries and life losses, and 1M
transitions take ≈ 7 GB instead of the 56 GB of storing ``obs`` and ``next_obs``.

A transition lives on the row of its first observation ``s_t`` and holds the action, the n-step
return, the bootstrap discount (``γ^k``, or 0 if the episode terminated) and the offset of the row
of its bootstrap observation ``s_{t+k}``. It can be sampled from the moment it is complete until
the ring overwrites the oldest frame of its stack.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Chunk", "ChunkBuilder", "PrioritizedReplay", "SampledBatch", "SumTree"]


class SumTree:
    """Sums of non-negative leaf values in a complete binary tree, vectorized over batches.

    Node 1 is the root, node ``i`` has children ``2i`` and ``2i+1``, and leaf ``j`` is node
    ``leaf0 + j`` where ``leaf0`` is the power of two at or above the capacity.

    :param capacity: number of leaves
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"a sum tree needs at least one leaf, got capacity {capacity}")
        self.capacity = capacity
        self.depth = max(0, (capacity - 1).bit_length())
        self.leaf0 = 1 << self.depth
        self._nodes = np.zeros(2 * self.leaf0, dtype=np.float64)

    @property
    def total(self) -> float:
        """Sum of all leaves."""
        return float(self._nodes[1])  # the root (also the only leaf when capacity is 1)

    def __getitem__(self, indices: np.ndarray) -> np.ndarray:
        return self._nodes[self.leaf0 + np.asarray(indices)]

    def update(self, indices: np.ndarray, values: np.ndarray) -> None:
        """Set leaves ``indices`` to ``values`` and refresh their ancestors.

        A repeated index keeps one of its values; the sums stay consistent with the leaves either way.
        """
        values = np.asarray(values, dtype=np.float64)
        if values.size and (not np.all(np.isfinite(values)) or values.min() < 0):
            raise ValueError("sum-tree values must be finite and non-negative")
        tree = self._nodes
        nodes = np.asarray(indices, dtype=np.int64) + self.leaf0
        tree[nodes] = values
        for _ in range(self.depth):
            nodes >>= 1
            left = nodes << 1
            tree[nodes] = tree[left] + tree[left + 1]

    def find(self, targets: np.ndarray) -> np.ndarray:
        """For each target mass ``u`` in ``[0, total)``, the leaf ``j`` with ``Σ_{i<j} v_i <= u < Σ_{i<=j} v_i``.

        The descent never enters a subtree of zero mass, so even a target rounded up to the total
        lands on a leaf with a positive value (when the tree has one).
        """
        tree = self._nodes
        targets = np.array(targets, dtype=np.float64)
        nodes = np.ones(len(targets), dtype=np.int64)
        for _ in range(self.depth):
            nodes <<= 1  # the left child
            left = tree[nodes]
            go_right = targets >= left
            go_right &= tree[nodes + 1] > 0
            np.subtract(targets, left, out=targets, where=go_right)
            nodes += go_right
        return nodes - self.leaf0


@dataclass
class Chunk:
    """What an actor sends to the replay: new frames, and the transitions completed since its last chunk.

    Rows are numbered per stream, from 0 for a writer's first row (see
    :meth:`PrioritizedReplay.reset_stream`); the frames of each stream come in row order.
    """

    frames: np.ndarray  # (k, H, W) uint8, the new rows
    frame_streams: np.ndarray  # (k,) stream of each new row
    streams: np.ndarray  # (m,) stream of each transition
    rows: np.ndarray  # (m,) row of s_t (the newest frame of its stack)
    next_rows: np.ndarray  # (m,) row of the bootstrap observation s_{t+k}; = rows where discount is 0
    actions: np.ndarray  # (m,)
    returns: np.ndarray  # (m,) n-step discounted sum of (clipped) rewards
    discounts: np.ndarray  # (m,) γ^k, or 0 when the episode terminated within the n steps
    priorities: np.ndarray  # (m,) |TD error| computed by the actor

    def __len__(self) -> int:
        return len(self.rows)


class ChunkBuilder:
    """An actor's side of the replay format: numbers observations as rows and collects frames and transitions.

    :param n_streams: streams (games) this actor writes
    :param stack: frames per observation
    """

    def __init__(self, n_streams: int, stack: int = 4) -> None:
        self.n_streams = n_streams
        self.stack = stack
        self._last: list[np.ndarray | None] = [None] * n_streams
        self._next_row = np.zeros(n_streams, dtype=np.int64)
        self._frames: list[np.ndarray] = []
        self._frame_streams: list[np.ndarray] = []
        self._transitions: list[tuple[np.ndarray, ...]] = []

    def observe(self, streams: np.ndarray, observations: np.ndarray) -> np.ndarray:
        """Append one observation per stream; return the row of each.

        :param streams: the streams, each at most once
        :param observations: ``(len(streams), stack, H, W)`` uint8
        :return: the row of each observation (its newest frame)
        """
        rows = np.empty(len(streams), dtype=np.int64)
        for i, stream in enumerate(np.asarray(streams)):
            obs = observations[i]
            last = self._last[stream]
            continues = last is not None and np.array_equal(obs[:-1], last[1:])
            new = obs[-1:] if continues else obs
            self._frames.append(new)
            self._frame_streams.append(np.full(len(new), stream, dtype=np.int64))
            self._next_row[stream] += len(new)
            rows[i] = self._next_row[stream] - 1
            self._last[stream] = obs.copy()
        return rows

    def add(
        self,
        streams: np.ndarray,
        rows: np.ndarray,
        next_rows: np.ndarray,
        actions: np.ndarray,
        returns: np.ndarray,
        discounts: np.ndarray,
        priorities: np.ndarray,
    ) -> None:
        """Queue completed transitions (arrays of equal length) for the next chunk."""
        self._transitions.append(
            tuple(np.asarray(a) for a in (streams, rows, next_rows, actions, returns, discounts, priorities))
        )

    def build(self) -> Chunk:
        """The frames and transitions queued since the last call, as one :class:`Chunk`."""
        frames = np.concatenate(self._frames) if self._frames else np.zeros((0, 0, 0), dtype=np.uint8)
        frame_streams = np.concatenate(self._frame_streams) if self._frame_streams else np.zeros(0, dtype=np.int64)
        columns = (
            [np.concatenate(c) for c in zip(*self._transitions, strict=True)]
            if self._transitions
            else [np.zeros(0)] * 7
        )
        self._frames, self._frame_streams, self._transitions = [], [], []
        streams, rows, next_rows, actions, returns, discounts, priorities = columns
        return Chunk(
            frames=frames,
            frame_streams=frame_streams,
            streams=streams.astype(np.int64),
            rows=rows.astype(np.int64),
            next_rows=next_rows.astype(np.int64),
            actions=actions.astype(np.int64),
            returns=returns.astype(np.float32),
            discounts=discounts.astype(np.float32),
            priorities=priorities.astype(np.float64),
        )


@dataclass
class SampledBatch:
    """A prioritized sample: stacked observations rebuilt from single frames, and IS weights."""

    indices: np.ndarray  # (B,) replay slots, for update_priorities
    observations: np.ndarray  # (B, stack, H, W) uint8
    actions: np.ndarray  # (B,) int64
    returns: np.ndarray  # (B,) float32
    discounts: np.ndarray  # (B,) float32
    next_observations: np.ndarray  # (B, stack, H, W) uint8
    weights: np.ndarray  # (B,) float32, importance-sampling weights, max 1


class PrioritizedReplay:
    """Proportional prioritized replay (Schaul et al. 2016) over frame-deduplicated streams.

    The capacity is split evenly between the streams (one ring per game of each actor, so each
    ring holds frames of one game in order); ``capacity // n_streams`` rows each. A slot is one
    row; each row is a sampleable transition once the actor has completed it.

    :param capacity: rows in total (≈ transitions: a row is a transition except for the three
        extra frames at the start of every game)
    :param n_streams: streams (actors × games per actor)
    :param frame_shape: ``(H, W)`` of a frame
    :param stack: frames per observation
    :param alpha: priority exponent
    :param priority_eps: added to every priority
    :param seed: seed of the sampling generator
    """

    def __init__(
        self,
        capacity: int,
        n_streams: int,
        frame_shape: tuple[int, int] = (84, 84),
        stack: int = 4,
        alpha: float = 0.6,
        priority_eps: float = 1e-6,
        seed: int | None = None,
    ) -> None:
        if n_streams < 1 or capacity // n_streams < 2 * stack:
            raise ValueError(
                f"a replay of capacity {capacity:,} split over {n_streams} streams leaves "
                f"{capacity // max(n_streams, 1)} rows per stream; each needs at least {2 * stack}"
            )
        self.n_streams = n_streams
        self.rows_per_stream = capacity // n_streams
        self.capacity = self.rows_per_stream * n_streams
        self.stack = stack
        self.alpha = alpha
        self.priority_eps = priority_eps
        self.rng = np.random.default_rng(seed)
        self.tree = SumTree(self.capacity)
        self.frames = np.zeros((self.capacity, *frame_shape), dtype=np.uint8)
        self.actions = np.zeros(self.capacity, dtype=np.uint8)
        self.returns = np.zeros(self.capacity, dtype=np.float32)
        self.discounts = np.zeros(self.capacity, dtype=np.float32)
        self.next_offsets = np.zeros(self.capacity, dtype=np.int32)
        self.valid = np.zeros(self.capacity, dtype=bool)
        self.size = 0  # sampleable transitions
        self.written = np.zeros(n_streams, dtype=np.int64)  # rows ever written per stream
        self.base = np.zeros(n_streams, dtype=np.int64)  # the current writer's row 0, per stream
        self._stack_offsets = np.arange(1 - stack, 1, dtype=np.int64)

    def reset_stream(self, stream: int) -> None:
        """A new writer (a new or restarted actor) starts on ``stream``: its row 0 is the next row.

        What the previous writer completed stays sampleable; its unfinished rows never become so.
        """
        self.base[stream] = self.written[stream]

    def _slots(self, streams: np.ndarray | int, rows: np.ndarray) -> np.ndarray:
        return streams * self.rows_per_stream + rows % self.rows_per_stream

    def _invalidate(self, slots: np.ndarray) -> None:
        slots = slots[self.valid[slots]]
        if len(slots):
            self.valid[slots] = False
            self.size -= len(slots)
            self.tree.update(slots, np.zeros(len(slots)))

    def add(self, chunk: Chunk, first_stream: int = 0) -> int:
        """Store a chunk's frames, then its transitions with priorities ``(p + eps)^α``.

        :param chunk: from an actor's :class:`ChunkBuilder`
        :param first_stream: the chunk's stream ``s`` is the replay's stream ``first_stream + s``
            (an actor numbers its own games from 0)
        :return: how many transitions became sampleable
        """
        stale = []
        for local in np.unique(chunk.frame_streams):
            stream = first_stream + int(local)
            mine = chunk.frame_streams == local
            frames = chunk.frames[mine][-self.rows_per_stream :]
            start = self.written[stream] + np.count_nonzero(mine) - len(frames)
            self.frames[self._slots(stream, start + np.arange(len(frames)))] = frames
            self.written[stream] = start + len(frames)
            # Overwritten rows, and the rows whose stacks reach back into them, stop being sampleable.
            stale.append(self._slots(stream, start + np.arange(len(frames) + self.stack - 1)))
        if stale:
            self._invalidate(np.unique(np.concatenate(stale)))
        if not len(chunk):
            return 0
        streams = first_stream + chunk.streams
        rows = self.base[streams] + chunk.rows
        next_rows = self.base[streams] + chunk.next_rows
        written = self.written[streams]
        if np.any(next_rows >= written) or np.any(next_rows < rows):
            raise ValueError("a transition refers to a row that was never written")
        # Only transitions whose whole stack is still in the ring are stored.
        keep = rows - (self.stack - 1) >= written - self.rows_per_stream
        slots = self._slots(streams[keep], rows[keep])
        self.actions[slots] = chunk.actions[keep]
        self.returns[slots] = chunk.returns[keep]
        self.discounts[slots] = chunk.discounts[keep]
        self.next_offsets[slots] = (next_rows - rows)[keep]
        self.size += int(np.count_nonzero(~self.valid[slots]))
        self.valid[slots] = True
        self.tree.update(slots, self._priority(chunk.priorities[keep]))
        return len(slots)

    def _priority(self, td_errors: np.ndarray) -> np.ndarray:
        return (np.abs(td_errors) + self.priority_eps) ** self.alpha

    def sample_indices(self, batch_size: int, beta: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Draw slots ∝ priority (stratified) with their importance-sampling weights.

        Weights are ``(N·P(i))^−β`` divided by their maximum in the batch (Schaul et al. 2016,
        Algorithm 1), ``N`` the number of sampleable transitions.

        :return: slots, weights (float32), probabilities
        """
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay")
        total = self.tree.total
        targets = (np.arange(batch_size) + self.rng.random(batch_size)) * (total / batch_size)
        indices = self.tree.find(np.minimum(targets, np.nextafter(total, 0)))
        probabilities = self.tree[indices] / total
        weights = (self.size * probabilities) ** -beta
        return indices, (weights / weights.max()).astype(np.float32), probabilities

    def stacks(self, slots: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """The observations whose newest frame is at ``slots``: ``(len(slots), stack, H, W)``."""
        stream_start = slots - slots % self.rows_per_stream
        frame_slots = stream_start[:, None] + (slots[:, None] + self._stack_offsets) % self.rows_per_stream
        return np.take(self.frames, frame_slots, axis=0, out=out)

    def next_slots(self, slots: np.ndarray) -> np.ndarray:
        """The slots of the bootstrap observations of the transitions at ``slots``."""
        stream_start = slots - slots % self.rows_per_stream
        return stream_start + (slots + self.next_offsets[slots]) % self.rows_per_stream

    def sample(self, batch_size: int, beta: float) -> SampledBatch:
        """A prioritized batch with its stacked observations and bootstrap observations."""
        indices, weights, _ = self.sample_indices(batch_size, beta)
        return SampledBatch(
            indices=indices,
            observations=self.stacks(indices),
            actions=self.actions[indices].astype(np.int64),
            returns=self.returns[indices],
            discounts=self.discounts[indices],
            next_observations=self.stacks(self.next_slots(indices)),
            weights=weights,
        )

    def update_priorities(self, indices: np.ndarray, td_errors: np.ndarray) -> None:
        """Set the priorities of sampled slots from their new TD errors.

        Call it before the next :meth:`add`: a slot the ring reused in between would take the
        priority meant for the transition it replaced. Slots no longer sampleable are skipped.
        """
        keep = self.valid[indices]
        self.tree.update(indices[keep], self._priority(np.asarray(td_errors)[keep]))

    # checkpoints -----------------------------------------------------------------------------------

    _ARRAYS = ("frames", "actions", "returns", "discounts", "next_offsets", "valid", "written", "base")

    def _layout(self) -> dict[str, Any]:
        return {
            "capacity": self.capacity,
            "n_streams": self.n_streams,
            "frame_shape": list(self.frames.shape[1:]),
            "stack": self.stack,
            "alpha": self.alpha,
            "priority_eps": self.priority_eps,
        }

    def save(self, directory: Path) -> None:
        """Write the whole replay into ``directory`` (which exists): one ``.npy`` per array, each
        frame once, as in memory (≈ ``nbytes``), and ``replay.json`` with its layout, size and
        sampling RNG. Flushing to disk and renaming into place are the caller's (see
        :meth:`rl_coordconv.runs.RunDir.save_checkpoint`)."""
        for name in self._ARRAYS:
            np.save(directory / f"{name}.npy", getattr(self, name))
        np.save(directory / "priorities.npy", self.tree._nodes)
        meta = {**self._layout(), "size": self.size, "rng": self.rng.bit_generator.state}
        (directory / "replay.json").write_text(json.dumps(meta) + "\n")

    def load(self, directory: Path) -> None:
        """Take the contents, priorities and sampling RNG saved by :meth:`save` into this replay.

        :raises ValueError: the saved replay has another layout (capacity, streams, frame shape …)
            or a file is missing or damaged
        """
        try:
            meta = json.loads((directory / "replay.json").read_text())
            theirs = {key: meta[key] for key in self._layout()}
            if theirs != self._layout():
                raise ValueError(f"it was saved with {theirs}, this run's replay is {self._layout()}")
            arrays = {name: np.load(directory / f"{name}.npy") for name in (*self._ARRAYS, "priorities")}
        except (OSError, KeyError, ValueError) as error:
            raise ValueError(f"cannot load the replay in {directory}: {error}") from error
        for name, array in arrays.items():
            mine = self.tree._nodes if name == "priorities" else getattr(self, name)
            if array.shape != mine.shape or array.dtype != mine.dtype:
                raise ValueError(f"cannot load the replay in {directory}: {name}.npy is {array.dtype}{array.shape}")
        for name in self._ARRAYS:
            setattr(self, name, arrays[name])
        self.tree._nodes = arrays["priorities"]
        self.size = int(meta["size"])
        self.rng.bit_generator.state = meta["rng"]

    @property
    def nbytes(self) -> int:
        """Memory held by the replay's arrays."""
        arrays = (self.frames, self.actions, self.returns, self.discounts, self.next_offsets, self.valid)
        return sum(a.nbytes for a in arrays) + self.tree._nodes.nbytes
