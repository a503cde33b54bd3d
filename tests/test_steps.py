"""Numbers of steps as people write them."""

from __future__ import annotations

import pytest

from rl_coordconv.steps import parse_steps


def test_parse_steps():
    assert parse_steps("1e6") == 1_000_000
    assert parse_steps("10M") == 10_000_000
    assert parse_steps("500k") == 500_000
    assert parse_steps("2_000") == 2000
    assert parse_steps("2.5M") == 2_500_000
    for bad in ("0", "-5", "ten", "1.5", ""):
        with pytest.raises(ValueError):
            parse_steps(bad)
