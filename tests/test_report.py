"""report.md: a table that matches known means with CIs that cover the truth, missing and
unfinished runs listed, titles."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from helpers import TRUE_MEAN, make_grid, write_run

from rl_coordconv.report import make_report
from rl_coordconv.stats import permutation_p


def test_report_table_matches_the_data_and_cis_cover_the_truth(tmp_path):
    written = make_grid(tmp_path / "runs")
    report = make_report(tmp_path / "runs", tmp_path / "out", last_k=50).read_text()
    assert (tmp_path / "out" / "curves.png").stat().st_size > 10_000
    assert (tmp_path / "out" / "aggregate.png").exists()
    for (game, arm), truth in TRUE_MEAN.items():
        per_seed = [written[(game, arm, s)][-50:].mean() for s in range(5)]
        row = next(line for line in report.splitlines() if line.startswith(f"| {game} |"))
        cells = row.split(" | ")
        cell = cells[1 if arm == "conv" else 2]
        point, low, high = map(float, re.findall(r"-?\d+\.\d+", cell)[:3])
        assert point == pytest.approx(np.mean(per_seed), abs=0.051) and cell.endswith("(5)")
        assert low <= truth <= high, f"{game}/{arm}: 95% CI [{low}, {high}] misses the true mean {truth}"
    assert "| Pong |" in report and "better" in next(line for line in report.splitlines() if "| Pong |" in line)
    assert "P(coordconv > conv)" in report and "IQM" in report
    pong_row = next(line for line in report.splitlines() if line.startswith("| Pong |")).split(" | ")
    conv, coord = ([written[("Pong", arm, s)][-50:].mean() for s in range(5)] for arm in ("conv", "coordconv"))
    assert float(pong_row[3].split()[0]) == pytest.approx(np.mean(coord) - np.mean(conv), abs=0.051)
    assert pong_row[4] == f"{permutation_p(np.array(coord), np.array(conv)):.2f}" == "0.01"  # 2 of 252 splits
    per_seed = report.split("Each run's final score (seed: score):")[1]
    pong = next(line for line in per_seed.splitlines() if line.startswith("| Pong |")).split(" | ")
    assert pong[1] == ", ".join(f"{s}: {written[('Pong', 'conv', s)][-50:].mean():.1f}" for s in range(5))


def test_missing_and_unfinished_runs_are_listed_not_dropped(tmp_path):
    make_grid(tmp_path / "runs", seeds=range(3))
    import shutil

    shutil.rmtree(tmp_path / "runs/a2c/Breakout/coordconv/seed2")
    (tmp_path / "runs/a2c/Pong/conv/seed1/state.json").write_text(json.dumps({"status": "running", "agent_steps": 500}))
    report = make_report(tmp_path / "runs", tmp_path / "out").read_text()
    assert "- missing: Breakout/coordconv/seed2" in report
    assert "- missing: Pong/conv/seed1" not in report  # it exists: listed as unfinished instead
    assert "unfinished (500 steps), left out:" in report and "Pong/conv/seed1" in report
    assert "## Aggregate over 2 games (" in report
    shutil.rmtree(tmp_path / "runs/a2c/Breakout/coordconv")  # Breakout now lacks an arm: one game left
    report = make_report(tmp_path / "runs", tmp_path / "out").read_text()
    assert "## Aggregate over 1 game (" in report


def test_report_titles_spell_the_algorithm_as_its_papers_do(tmp_path):
    for arm in ("conv", "coordconv"):
        write_run(tmp_path / "runs", "Pong", arm, 0, algo="apex")
    report = make_report(tmp_path / "runs", tmp_path / "out").read_text()
    assert report.startswith("# Ape-X on Atari: conv vs CoordConv")
    make_grid(tmp_path / "a2c_runs", seeds=[0])
    assert make_report(tmp_path / "a2c_runs", tmp_path / "a2c_out").read_text().startswith("# A2C on Atari")


def test_four_arms_compare_each_coordconv_arm_with_the_conv_arm_of_its_head(tmp_path):
    means = {"conv": 10.0, "coordconv": 10.0, "conv_pool": 2.0, "coordconv_pool": 9.0}
    for arm, mean in means.items():
        for seed in range(5):
            write_run(tmp_path / "runs", "Catch", arm, seed, mean=mean, seed_sd=0.2)
    report = make_report(tmp_path / "runs", tmp_path / "out").read_text()
    header = next(line for line in report.splitlines() if line.startswith("| game | conv"))
    arms = ("conv", "coordconv", "conv_pool", "coordconv_pool")  # grouped by head, conv first in each
    assert header.strip(" |").split(" | ")[1:] == [f"{arm} [95% CI] (n)" for arm in arms]
    pool = next(line for line in report.splitlines() if "| coordconv_pool − conv_pool |" in line).split(" | ")
    flat = next(line for line in report.splitlines() if "| coordconv − conv |" in line).split(" | ")
    assert pool[-1] == "better |" and float(pool[2].split()[0]) == pytest.approx(7.0, abs=0.5)
    assert flat[-1].startswith("similar")


def test_a_catch_report_says_catch_and_gives_scores_to_two_decimals(tmp_path):
    for arm in ("conv", "coordconv"):
        for seed in range(3):
            path, _ = write_run(tmp_path / "runs", "Catch", arm, seed, mean=0.0)
            rows = (path / "episodes.csv").read_text().splitlines()
            wins = np.random.default_rng(seed).random(len(rows) - 1) < 0.8  # games end in +1 or −1
            games = zip(rows[1:], wins, strict=True)
            rows[1:] = [",".join([*row.split(",")[:3], "1" if win else "-1", "6"]) for row, win in games]
            (path / "episodes.csv").write_text("\n".join(rows) + "\n")
    report = make_report(tmp_path / "runs", tmp_path / "out").read_text()
    assert report.startswith("# A2C on Catch: conv vs CoordConv")
    row = next(line for line in report.splitlines() if line.startswith("| Catch | 0."))
    assert re.fullmatch(r"\| Catch \| 0\.\d\d \[0\.\d\d, 0\.\d\d\] \(3\) \| .*", row)
