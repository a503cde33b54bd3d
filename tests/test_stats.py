"""Statistics over a few seeds: real bootstrap intervals, exact permutation tests, verdicts,
human-normalised aggregates (IQM, probability of improvement)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import make_grid

from rl_coordconv.results import load_runs
from rl_coordconv.stats import HUMAN_SCORES, aggregate, bootstrap_ci, compare, final_scores, permutation_p


def test_bootstrap_ci_is_a_real_interval_and_needs_two_values():
    rng = np.random.default_rng(0)
    covered = 0
    for trial in range(100):
        sample = rng.normal(10.0, 2.0, 20)
        _, low, high = bootstrap_ci([sample], np.mean, seed=trial, resamples=1000)
        covered += low <= 10.0 <= high
    assert 88 <= covered <= 99  # about 95% coverage: a CI, not a ±1 SD band (~68%) nor min–max
    point, low, high = bootstrap_ci([np.array([3.0])], np.mean)
    assert point == 3.0 and np.isnan(low) and np.isnan(high)


def test_permutation_p_is_exact_and_cannot_go_below_a_tenth_with_three_seeds():
    separated = permutation_p(np.array([10.0, 11.0, 12.0]), np.array([1.0, 2.0, 3.0]))
    assert separated == pytest.approx(0.1)  # 2 of the 20 splits are as extreme, one per side
    assert permutation_p(np.array([1.0, 3.0, 2.0]), np.array([2.0, 1.0, 3.0])) == pytest.approx(1.0)
    assert permutation_p(np.arange(5.0) + 100, np.arange(5.0)) == pytest.approx(2 / 252)
    assert np.isnan(permutation_p(np.array([1.0]), np.array([2.0, 3.0])))


def test_no_verdict_below_three_seeds_however_far_apart():
    scores = {("Pong", "conv"): np.array([-20.0, -19.0]), ("Pong", "coordconv"): np.array([15.0, 16.0])}
    verdict, (point, low, high) = compare(scores, "Pong", ["conv", "coordconv"])
    assert high > low
    assert verdict == "cannot tell (fewer than 3 seeds)" and point == 35.0 and low > 0  # the interval is still shown
    scores[("Pong", "conv")] = np.append(scores[("Pong", "conv")], -18.0)
    scores[("Pong", "coordconv")] = np.append(scores[("Pong", "coordconv")], 14.0)
    assert compare(scores, "Pong", ["conv", "coordconv"])[0] == "better"
    assert compare(scores, "Pong", ["coordconv", "conv"])[0] == "worse"


def test_aggregate_is_human_normalised_and_stratified(tmp_path):
    make_grid(tmp_path / "runs")
    scores = final_scores(load_runs(tmp_path / "runs"), last_k=50)
    result = aggregate(scores, ["conv", "coordconv"], ["Breakout", "Pong"])
    random, human = HUMAN_SCORES["Pong"]
    pong = (scores[("Pong", "coordconv")] - random) / (human - random)
    breakout = (scores[("Breakout", "coordconv")] - 1.7) / (30.5 - 1.7)
    assert result["coordconv"]["mean"][0] == pytest.approx(np.concatenate([pong, breakout]).mean())
    point, low, high = result["p_improvement"]
    assert 0.5 < point <= 1.0 and low <= point <= high  # coordconv is much better on Pong, tied on Breakout


def test_iqm_probability_of_improvement_and_similar_on_hand_made_scores():
    assert HUMAN_SCORES["Pong"] == (-20.7, 14.6) and HUMAN_SCORES["Breakout"] == (1.7, 30.5)  # Atari-57 table
    # Breakout 1.7 + 28.8·k normalises to k; Pong -20.7 + 35.3·k too
    scores = {
        ("Breakout", "conv"): 1.7 + 28.8 * np.array([0.0, 0.1, 0.2, 0.9]),
        ("Breakout", "coordconv"): 1.7 + 28.8 * np.array([2.0, 3.0, 3.0, 0.0]),
        ("Pong", "conv"): -20.7 + 35.3 * np.array([0.3, 0.4, 0.5, 5.0]),
        ("Pong", "coordconv"): -20.7 + 35.3 * np.array([1.0, 1.0, 1.0, 1.0]),
    }
    result = aggregate(scores, ["conv", "coordconv"], ["Breakout", "Pong"])
    # IQM: the mean of the middle half of all 8 normalised scores, sorted
    assert result["conv"]["iqm"][0] == pytest.approx(np.mean([0.2, 0.3, 0.4, 0.5]))  # of 0 .1 [.2 .3 .4 .5] .9 5
    assert result["coordconv"]["iqm"][0] == pytest.approx(np.mean([1.0, 1.0, 1.0, 2.0]))  # of 0 1 1 [1 1 1 2] 3 3
    assert result["conv"]["mean"][0] == pytest.approx(7.4 / 8)
    # P(X > Y) per game over all 16 seed pairs, ties a half: Breakout 12.5/16 (2, 3, 3 beat all four;
    # 0 ties 0 and loses to the rest), Pong 12/16 (only 5.0 beats 1.0); then the mean over games
    assert result["p_improvement"][0] == pytest.approx((12.5 / 16 + 12 / 16) / 2)
    overlapping = {("Pong", "conv"): np.array([1.0, 2.0, 3.0]), ("Pong", "coordconv"): np.array([2.0, 3.0, 1.5])}
    verdict, (point, low, high) = compare(overlapping, "Pong", ["conv", "coordconv"])
    assert verdict == "similar (CI includes 0)" and point == pytest.approx(0.5 / 3) and low < 0 < high
