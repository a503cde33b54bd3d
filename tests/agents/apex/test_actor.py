"""The Ape-X actor's n-step returns across episode ends and time-limit cuts."""

from __future__ import annotations

from rl_coordconv.agents.apex import NStepBuilder, NStepTransition


def test_n_step_returns_across_episode_ends():
    builder = NStepBuilder(n=3, gamma=0.5)
    assert builder.step(0, 1, 1.0, 0.1, next_row=1) == []
    assert builder.step(1, 2, 2.0, 0.2, next_row=2) == []
    # the first transition completes after 3 steps: 1 + 0.5·2 + 0.25·4, bootstrapped with 0.5³
    assert builder.step(2, 0, 4.0, 0.3, next_row=3) == [NStepTransition(0, 1, 3.0, 0.125, 3, 0.1)]
    # a termination (a lost life in training, or the end of the game) flushes the rest, unbootstrapped
    assert builder.step(3, 3, 8.0, 0.4, next_row=4, terminated=True) == [
        NStepTransition(1, 2, 2.0 + 0.5 * 4.0 + 0.25 * 8.0, 0.0, 1, 0.2),
        NStepTransition(2, 0, 4.0 + 0.5 * 8.0, 0.0, 2, 0.3),
        NStepTransition(3, 3, 8.0, 0.0, 3, 0.4),
    ]
    # the next episode starts clean; a time-limit cut bootstraps from the last observation (row 10)
    assert builder.step(8, 1, 1.0, 0.5, next_row=9) == []
    assert builder.step(9, 0, -1.0, 0.6, next_row=10, truncated=True) == [
        NStepTransition(8, 1, 1.0 - 0.5, 0.25, 10, 0.5),
        NStepTransition(9, 0, -1.0, 0.5, 10, 0.6),
    ]
    # one-step episodes
    assert builder.step(11, 2, 1.0, 0.7, next_row=12, terminated=True) == [NStepTransition(11, 2, 1.0, 0.0, 11, 0.7)]
