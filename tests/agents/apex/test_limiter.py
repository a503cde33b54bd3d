"""The samples-per-insert limiter: the ratio holds whichever side is faster, and neither side
waits while the other is within the tolerance."""

from __future__ import annotations

import pytest

from rl_coordconv.agents.apex import ApexConfig
from rl_coordconv.agents.apex.limiter import SampleToInsertRatio


def _race(limiter: SampleToInsertRatio, chunk: int, learner_steps_per_chunk: int, chunks: int) -> tuple[int, int]:
    """Actors offering ``chunk`` transitions and a learner offering ``learner_steps_per_chunk``
    steps per tick, each going only when the limiter lets it; how often each side was held back."""
    held_actors = held_learner = 0
    for _ in range(chunks):
        if limiter.may_insert():
            limiter.record_insert(chunk, sampleable=True)
        else:
            held_actors += 1
        for _ in range(learner_steps_per_chunk):
            if limiter.may_sample():
                limiter.record_sample()
            else:
                held_learner += 1
        if limiter.enabled:
            assert -limiter.tolerance - limiter.samples_per_insert * chunk <= limiter.ahead() <= limiter.tolerance
    return held_actors, held_learner


@pytest.mark.parametrize("learner_steps_per_chunk", [1, 5, 50])  # slower, about as fast as, faster than the ratio
def test_the_ratio_holds_whichever_side_is_faster(learner_steps_per_chunk):
    limiter = SampleToInsertRatio.for_config(samples_per_insert=2.0, batch_size=32, learning_starts=1000)
    assert limiter.tolerance == 200  # 0.1 × 2 × 1000
    held_actors, held_learner = _race(limiter, 80, learner_steps_per_chunk, 5000)
    assert limiter.ratio() == pytest.approx(2.0, rel=0.01)
    # the ratio wants 160 samples per chunk of 80; the learner offers 32, 160 or 1600
    if learner_steps_per_chunk == 1:  # too slow: the actors wait
        assert held_actors > 0 and held_learner == 0
    elif learner_steps_per_chunk == 5:  # at the ratio: neither waits
        assert held_actors == held_learner == 0
    else:  # too fast: the learner waits, actors never do
        assert held_actors == 0 and held_learner > 0


def test_the_fill_before_learning_starts_does_not_count():
    limiter = SampleToInsertRatio.for_config(samples_per_insert=1.0, batch_size=32, learning_starts=1000)
    limiter.record_insert(999, sampleable=False)
    assert limiter.inserted == 0 and limiter.ratio() is None
    assert limiter.may_sample()  # one batch is within the tolerance of 100: learning can begin
    limiter.record_insert(40, sampleable=True)
    assert limiter.inserted == 40


def test_zero_turns_the_limiter_off():
    limiter = SampleToInsertRatio.for_config(samples_per_insert=0, batch_size=32, learning_starts=1000)
    held_actors, held_learner = _race(limiter, 80, 50, 100)
    assert (held_actors, held_learner) == (0, 0) and limiter.sampled == 100 * 50 * 32


def test_the_tolerance_is_at_least_one_batch_so_neither_side_can_stall():
    limiter = SampleToInsertRatio.for_config(samples_per_insert=0.5, batch_size=512, learning_starts=100)
    assert limiter.tolerance == 512
    limiter.record_insert(100, sampleable=True)
    assert limiter.may_sample()  # 512 − 50 ≤ 512


@pytest.mark.parametrize("value", [-1, "fast", True])
def test_samples_per_insert_must_be_a_number_at_least_0(value):
    with pytest.raises(ValueError, match=f"samples_per_insert must be a number >= 0 \\(0: no limit\\), got {value!r}"):
        ApexConfig(samples_per_insert=value)


def test_work_already_ordered_counts_against_new_orders():
    limiter = SampleToInsertRatio.for_config(samples_per_insert=4.0, batch_size=32, learning_starts=2000)
    assert limiter.tolerance == 800
    assert limiter.may_insert(pending=200)  # 800 samples' worth in flight: at the edge
    assert not limiter.may_insert(pending=201)
    limiter.record_insert(200, sampleable=True)  # it arrived: the learner owes 800 samples
    assert limiter.may_insert(pending=0) and not limiter.may_insert(pending=1)
