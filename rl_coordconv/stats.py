"""Statistics over a few seeds: bootstrap intervals, exact permutation tests, human-normalised aggregates.

The aggregates follow Agarwal et al. (2021): the interquartile mean (IQM) and the mean of
human-normalised scores, and the probability of improvement, each with a 95% stratified-bootstrap
interval. They come from ``scipy.stats`` (``bootstrap``, ``trim_mean``, ``permutation_test``);
rliable does not import with this project's pandas/arch versions.

Scores are keyed by (game, arm) and hold one final score per seed, as :func:`final_scores` makes them.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import stats

if TYPE_CHECKING:
    from rl_coordconv.results import Run

__all__ = [
    "HUMAN_SCORES",
    "MIN_SEEDS_FOR_VERDICT",
    "Scores",
    "aggregate",
    "bootstrap_ci",
    "compare",
    "final_scores",
    "human_normalised",
    "permutation_p",
]

# (random, human) scores, the standard Atari-57 table (Mnih et al. 2015, as used by Wang et al. 2016
# and DeepMind's DQN Zoo, atari_data.py); only the games this project has reference scores for.
HUMAN_SCORES: dict[str, tuple[float, float]] = {
    "Asteroids": (719.1, 47388.7),
    "BankHeist": (14.2, 753.1),
    "BeamRider": (363.9, 16926.5),
    "Breakout": (1.7, 30.5),
    "MsPacman": (307.3, 6951.6),
    "Pong": (-20.7, 14.6),
    "Qbert": (163.9, 13455.0),
    "Seaquest": (68.4, 42054.7),
    "SpaceInvaders": (148.0, 1668.7),
}

# Final scores: (game, arm) → one score per seed, in ascending seed order.
Scores = dict[tuple[str, str], np.ndarray]

MIN_SEEDS_FOR_VERDICT = 3


def bootstrap_ci(
    samples: Sequence[np.ndarray], statistic: Callable[..., Any], seed: int = 0, resamples: int = 5000
) -> tuple[float, float, float]:
    """Point estimate and 95% percentile-bootstrap interval of ``statistic(*samples)``.

    Each sample is resampled on its own (a stratified bootstrap when there are several).

    :param samples: one array of per-seed values per stratum
    :param statistic: takes the samples and an ``axis`` keyword (scipy's vectorised form)
    :param seed: seed of the resampling generator, so that a report is reproducible
    :param resamples: bootstrap resamples
    :return: (point, low, high); with fewer than two values in some sample there is no
        interval: (point, nan, nan)
    """
    point = float(statistic(*samples, axis=-1))
    if min(len(s) for s in samples) < 2:
        return point, float("nan"), float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # degenerate (all-equal) resamples are fine here
        result = stats.bootstrap(
            tuple(np.asarray(s, dtype=float) for s in samples),
            statistic,
            n_resamples=resamples,
            confidence_level=0.95,
            method="percentile",
            vectorized=True,
            paired=False,
            rng=np.random.default_rng(seed),
        )
    return point, float(result.confidence_interval.low), float(result.confidence_interval.high)


def final_scores(runs: list[Run], last_k: int) -> Scores:
    """(game, arm) → per-seed final score: the mean raw return of each run's last ``last_k`` games.

    Seeds come in ascending order; runs without a finished game are left out.
    """
    scores: dict[tuple[str, str], list[float]] = defaultdict(list)
    for run in sorted(runs, key=lambda r: r.seed):
        if len(run.returns):
            scores[(run.game, run.arm)].append(float(run.returns[-last_k:].mean()))
    return {key: np.array(values) for key, values in scores.items()}


def human_normalised(game: str, score: np.ndarray) -> np.ndarray:
    """(score − random) / (human − random), with the reference scores of :data:`HUMAN_SCORES`."""
    random, human = HUMAN_SCORES[game]
    return (score - random) / (human - random)


def _iqm(*samples: np.ndarray, axis: int = -1) -> np.ndarray:
    return stats.trim_mean(np.concatenate(samples, axis=axis), 0.25, axis=axis)


def _mean(*samples: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(np.concatenate(samples, axis=axis), axis=axis)


def _probability_of_improvement(*pairs: np.ndarray, axis: int = -1) -> np.ndarray:
    """Mean over games of P(X > Y) (ties count a half); ``pairs`` alternates X_g, Y_g."""
    values = []
    for x, y in zip(pairs[0::2], pairs[1::2], strict=True):
        x, y = np.moveaxis(x, axis, -1)[..., :, None], np.moveaxis(y, axis, -1)[..., None, :]
        values.append((x > y).mean(axis=(-2, -1)) + 0.5 * (x == y).mean(axis=(-2, -1)))
    return np.mean(values, axis=0)


def aggregate(scores: Scores, arms: list[str], games: list[str]) -> dict[str, Any]:
    """Human-normalised IQM and mean per arm, and P(arms[1] > arms[0]), with 95% stratified-bootstrap CIs.

    :return: ``games`` (those with reference scores and every arm), ``skipped`` (the others), and
        when some game is usable, ``{arm: {"iqm": ci, "mean": ci}}`` and, for two arms,
        ``p_improvement``; each ci is (point, low, high) as :func:`bootstrap_ci` gives it
    """
    usable = [g for g in games if g in HUMAN_SCORES and all((g, a) in scores for a in arms)]
    result: dict[str, Any] = {"games": usable, "skipped": [g for g in games if g not in usable]}
    if not usable:
        return result
    for arm in arms:
        per_game = [human_normalised(g, scores[(g, arm)]) for g in usable]
        result[arm] = {"iqm": bootstrap_ci(per_game, _iqm), "mean": bootstrap_ci(per_game, _mean)}
    if len(arms) == 2:
        pairs = []
        for g in usable:
            pairs += [scores[(g, arms[1])], scores[(g, arms[0])]]
        result["p_improvement"] = bootstrap_ci(pairs, _probability_of_improvement)
    return result


def _difference(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(a, axis=axis) - np.mean(b, axis=axis)


def permutation_p(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided p-value of an exact permutation test of equal means (every split of the pooled seeds).

    With 3 seeds per arm there are 20 splits, so p ≥ 0.1: a per-game difference cannot reach
    p < 0.05 with 3 seeds however the runs fall, which the bootstrap interval alone hides.

    :return: the p-value, nan with fewer than two seeds in an arm
    """
    if min(len(a), len(b)) < 2:
        return float("nan")
    result = stats.permutation_test(
        (np.asarray(a, dtype=float), np.asarray(b, dtype=float)),
        _difference,
        permutation_type="independent",
        alternative="two-sided",
        vectorized=True,
        n_resamples=100_000,  # more than the splits of any grid here: the test is exact
    )
    return float(result.pvalue)


def compare(scores: Scores, game: str, arms: list[str]) -> tuple[str, tuple[float, ...]]:
    """Verdict for arms[1] vs arms[0] on one game from the 95% CI of the difference of seed means.

    Below ``MIN_SEEDS_FOR_VERDICT`` seeds in an arm there is no verdict: with 2 seeds each the
    percentile bootstrap excludes 0 whenever one arm's two runs both beat the other's, which
    happens by chance one time in three.

    :return: the verdict and the difference's (point, low, high)
    """
    a, b = scores[(game, arms[1])], scores[(game, arms[0])]
    diff = bootstrap_ci([a, b], _difference)
    if min(len(a), len(b)) < MIN_SEEDS_FOR_VERDICT:
        return f"cannot tell (fewer than {MIN_SEEDS_FOR_VERDICT} seeds)", diff
    if diff[1] > 0:
        return "better", diff
    if diff[2] < 0:
        return "worse", diff
    return "similar (CI includes 0)", diff
