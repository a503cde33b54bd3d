"""Ape-X's settings: the actors' ε schedule."""

from __future__ import annotations

import pytest

from rl_coordconv.agents.apex import ApexConfig, actor_epsilon


def test_epsilon_schedule():
    assert actor_epsilon(0, 8) == pytest.approx(0.4)
    assert actor_epsilon(7, 8) == pytest.approx(0.4**8)
    assert actor_epsilon(3, 8) == pytest.approx(0.4**4)  # 1 + 7·3/7
    assert actor_epsilon(1, 3) == pytest.approx(0.4**4.5)
    assert actor_epsilon(0, 1) == pytest.approx(0.4)  # one actor: the first of the schedule
    assert ApexConfig(actors=4).epsilons() == pytest.approx([0.4 ** (1 + 7 * i / 3) for i in range(4)])
    with pytest.raises(ValueError):
        actor_epsilon(4, 4)
