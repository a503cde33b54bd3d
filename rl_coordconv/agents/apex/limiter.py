"""How many times the learner samples each transition: a samples-per-insert rate limiter.

Ape-X's learner and actors run at their own speeds. Left alone, the number of times each
transition is replayed falls out of whichever side is faster: on a 2-core machine the actors
outrun a batch-512 learner, and a run ends having replayed each transition about once; with many
Ray actors it falls as 512 / (actors × chunk). :class:`SampleToInsertRatio` makes it a setting,
``samples_per_insert`` (the idea of Reverb's ``SampleToInsertRatio`` and RLlib's
``training_intensity``): once the replay can be sampled, it keeps

    samples ≈ samples_per_insert × inserts

within ``± tolerance`` samples. The learner waits only when a batch would take it more than the
tolerance ahead; actors get no new work only when the learner is more than the tolerance behind,
counting the work they were already given as done (else with many actors the orders in flight
would take it far behind).
Otherwise neither waits for the other. Which machine runs what does not enter: one actor or 64,
local processes or Ray.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TOLERANCE_RATE", "SampleToInsertRatio"]

# The tolerance, as a fraction of the samples the first `learning_starts` inserts are worth: Acme's
# DQN agents use 0.1 (`samples_per_insert_tolerance_rate`), with Reverb's limiter.
TOLERANCE_RATE = 0.1


@dataclass
class SampleToInsertRatio:
    """Keeps ``sampled ≈ samples_per_insert × inserted`` within ``± tolerance``.

    Inserts count from the moment the replay can be sampled (``learning_starts``), so the fill
    before it neither lets the learner race ahead nor holds it back.

    :param samples_per_insert: transitions sampled per transition inserted; 0 turns the limiter off
        (the learner samples whenever it can, actors are never held)
    :param batch_size: samples per learner step
    :param tolerance: how far (in samples) either side may get ahead; at least one batch
    """

    samples_per_insert: float
    batch_size: int
    tolerance: float
    inserted: int = 0  # transitions inserted while the replay could be sampled
    sampled: int = 0  # transitions sampled (learner steps × batch size)

    @classmethod
    def for_config(cls, samples_per_insert: float, batch_size: int, learning_starts: int) -> SampleToInsertRatio:
        """The limiter with Acme's tolerance: ``0.1 × samples_per_insert × learning_starts``, and at
        least one batch, so that neither side can stall the other."""
        tolerance = max(float(batch_size), TOLERANCE_RATE * samples_per_insert * learning_starts)
        return cls(samples_per_insert, batch_size, tolerance)

    @property
    def enabled(self) -> bool:
        return self.samples_per_insert > 0

    def ahead(self) -> float:
        """Samples the learner is ahead of the ratio (negative: behind)."""
        return self.sampled - self.samples_per_insert * self.inserted

    def may_sample(self) -> bool:
        """Whether one more batch keeps the learner within the tolerance."""
        return not self.enabled or self.ahead() + self.batch_size <= self.tolerance

    def may_insert(self, pending: int = 0) -> bool:
        """Whether actors may be given more work: the learner is not behind by more than the tolerance.

        :param pending: transitions already ordered from the actors and not yet inserted; counted as
            inserted, so that work in flight cannot take the learner further behind than one order
        """
        return not self.enabled or self.ahead() - self.samples_per_insert * pending >= -self.tolerance

    def record_insert(self, transitions: int, sampleable: bool) -> None:
        """Count transitions just added to the replay; ``sampleable``: the replay can be sampled now."""
        if sampleable:
            self.inserted += transitions

    def record_sample(self) -> None:
        """Count one learner step's batch."""
        self.sampled += self.batch_size

    def ratio(self) -> float | None:
        """Samples per insert so far, or None before anything was inserted while sampleable."""
        return self.sampled / self.inserted if self.inserted else None
