"""The report's figures: trailing-mean smoothing, blank bins before the first game, titles."""

from __future__ import annotations

import warnings

import numpy as np
from helpers import write_run

from rl_coordconv import figures
from rl_coordconv.results import load_runs


def test_smoothing_is_a_trailing_mean():
    assert np.array_equal(figures._smooth(np.array([0.0, 3.0, 6.0]), 1), [0.0, 3.0, 6.0])
    np.testing.assert_allclose(figures._smooth(np.array([0.0, 3.0, 6.0, 9.0]), 3), [0.0, 1.0, 3.0, 6.0])


def test_bins_before_the_first_game_are_left_blank_without_warnings(tmp_path, monkeypatch):
    for seed in range(2):
        path, _ = write_run(tmp_path / "runs", "Pong", "conv", seed)
        rows = (path / "episodes.csv").read_text().splitlines()
        late = [row for row in rows[1:] if int(row.split(",")[0]) > 500]  # no game ends in the first half
        (path / "episodes.csv").write_text("\n".join([rows[0], *late]) + "\n")
    from matplotlib.axes import Axes

    drawn, draw = {}, Axes.plot

    def record(ax, x, y, **kwargs):
        drawn["y"] = y
        return draw(ax, x, y, **kwargs)

    monkeypatch.setattr(Axes, "plot", record)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        figures.plot_curves(load_runs(tmp_path / "runs"), ["Pong"], ["conv"], tmp_path, bins=10, smooth=1, title="t")
    assert np.isnan(drawn["y"][:5]).all() and not np.isnan(drawn["y"][5:]).any()


def test_aggregate_figure_title_states_budget_games_and_seeds():
    scores = {("Pong", "conv"): np.zeros(3), ("Pong", "coordconv"): np.zeros(2), ("Breakout", "conv"): np.zeros(3)}
    scores[("Breakout", "coordconv")] = np.zeros(3)
    result = {"games": ["Breakout", "Pong"]}
    title = figures._aggregate_title("A2C on Atari", result, scores, ["conv", "coordconv"], 10_000_000)
    assert title.startswith("A2C on Atari, 10M frames per run: 2 games × 2–3 seeds per arm")
    one = figures._aggregate_title(
        "T", {"games": ["Pong"]}, {k: v[:1] for k, v in scores.items()}, ["conv", "coordconv"], 4
    )
    assert ": 1 game × 1 seed per arm;" in one


def test_budget_label_spells_millions_and_thousands_of_frames():
    assert figures.budget_label(10_000_000) == "10M frames"
    assert figures.budget_label(2_500_000) == "2.5M frames"
    assert figures.budget_label(250_000) == "250k frames"
