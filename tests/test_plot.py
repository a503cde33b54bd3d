"""plot: tables that match known means, CIs that cover the truth, refusal to mix budgets."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import warnings
import zlib

import numpy as np
import pytest
import yaml

from rl_coordconv import figures, plot
from rl_coordconv.report import make_report
from rl_coordconv.results import Run, binned_curve, export_runs, load_runs
from rl_coordconv.stats import HUMAN_SCORES, aggregate, bootstrap_ci, compare, final_scores, permutation_p

TRUE_MEAN = {
    ("Pong", "conv"): -5.0,
    ("Pong", "coordconv"): 8.0,
    ("Breakout", "conv"): 30.0,
    ("Breakout", "coordconv"): 31.0,
}


def write_run(root, game, arm, seed, timesteps=1000, finished=True, mean=None, games=300, seed_sd=1.0, algo="a2c"):
    path = root / algo / game / arm / f"seed{seed}"
    path.mkdir(parents=True)
    config = {
        "algo": algo, "game": game, "arm": arm, "coordconv": arm != "conv", "seed": seed,
        "timesteps": timesteps, "n_envs": 16, "env_backend": "ale", "hyperparams": {"n_steps": 5},
        "protocol": {"frame_skip": 4},
    }  # fmt: skip
    (path / "config.yaml").write_text(yaml.safe_dump(config))
    rng = np.random.default_rng(zlib.crc32(f"{game}/{arm}/{seed}".encode()))  # not hash(): salted per process
    mu = TRUE_MEAN[(game, arm)] if mean is None else mean
    run_mean = mu + seed_sd * (seed % 5 - 2) / 2  # seeds spread symmetrically around the true mean
    steps = np.sort(rng.integers(1, timesteps + 1, games))
    returns = np.round(run_mean + rng.normal(0, 3, games), 1)
    rows = ["agent_step,frames,wall_time,return,length"]
    rows += [f"{s},{4 * s},{s / 100:.3f},{r:g},{50}" for s, r in zip(steps, returns, strict=True)]
    (path / "episodes.csv").write_text("\n".join(rows) + "\n")
    state = {"status": "finished" if finished else "running", "agent_steps": timesteps if finished else timesteps // 2}
    (path / "state.json").write_text(json.dumps(state))
    return path, returns


def make_grid(root, seeds=range(5)):
    written = {}
    for game, arm in TRUE_MEAN:
        for seed in seeds:
            written[(game, arm, seed)] = write_run(root, game, arm, seed)[1]
    return written


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


def test_mixed_budgets_are_refused_unless_allowed(tmp_path, capsys):
    make_grid(tmp_path / "runs", seeds=range(2))
    write_run(tmp_path / "runs", "Pong", "conv", 7, timesteps=2000)
    assert plot.main([str(tmp_path / "runs"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "runs differ in timesteps" in err and "--allow-mixed" in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()
    assert plot.main([str(tmp_path / "runs"), "--out", str(tmp_path / "out"), "--allow-mixed"]) == 0


@pytest.mark.parametrize(
    ("key", "value"),
    [("protocol", {"frame_skip": 4, "version": 1}), ("hyperparams", {"n_steps": 20}), ("env_backend", "sb3")],
)
def test_runs_made_under_other_settings_are_refused(tmp_path, capsys, key, value):
    make_grid(tmp_path / "runs", seeds=range(2))
    odd, _ = write_run(tmp_path / "runs", "Pong", "coordconv", 7)
    config = yaml.safe_load((odd / "config.yaml").read_text())
    (odd / "config.yaml").write_text(yaml.safe_dump({**config, key: value}))
    assert plot.main([str(tmp_path / "runs"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"runs differ in {key}" in err and str(odd) in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


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


def test_the_planned_grid_lists_runs_not_yet_made(tmp_path, capsys):
    make_grid(tmp_path / "runs", seeds=[0])
    out = tmp_path / "out"
    args = [str(tmp_path / "runs"), "--out", str(out), "--games", "atari9", "--seeds", "0", "1"]
    assert plot.main(args) == 0
    report = (out / "report.md").read_text()
    assert "- missing: Pong/conv/seed1" in report and "- missing: Qbert/coordconv/seed0" in report
    assert "- missing: Pong/conv/seed0" not in report
    assert "| Qbert | – | – | – | – | missing runs |" in report
    assert "single seed" in report  # one seed per game: point estimates, said so
    assert plot.main([str(tmp_path / "runs"), "--out", str(out), "--games", "Pnog"]) == 2
    err = capsys.readouterr().err.strip()
    assert "Pnog" in err and "\n" not in err


def test_binned_curve_means_each_bin_and_carries_over_empty_ones(tmp_path):
    frames = np.array([100, 250, 400, 401, 1000])
    run = Run(tmp_path, "a2c", "Pong", "conv", 0, {}, True, 250, frames, np.array([1.0, 3.0, 5.0, 7.0, 9.0]))
    edges = np.array([0, 400, 600, 800, 1000])  # a game ending on an edge counts in the bin it closes
    np.testing.assert_array_equal(binned_curve(run, edges), [3.0, 7.0, 7.0, 9.0])


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


@pytest.mark.parametrize(
    "setup,args,message",
    [
        ("none", [], "does not exist"),
        ("empty", [], "no runs (directories with config.yaml)"),
        ("grid", ["--last-k", "0"], "must be positive"),
        ("grid", ["--algo", "ppo"], "no ppo runs"),
        ("out is a file", [], "cannot write to"),
    ],
)
def test_bad_input(tmp_path, capsys, setup, args, message):
    root = tmp_path / "runs"
    if setup == "empty":
        root.mkdir()
    elif setup in ("grid", "out is a file"):
        make_grid(root, seeds=range(2))
    if setup == "out is a file":
        (tmp_path / "out").write_text("not a directory")
    assert plot.main([str(root), "--out", str(tmp_path / "out"), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_export_copies_only_small_artefacts_of_finished_runs(tmp_path):
    make_grid(tmp_path / "runs", seeds=range(2))
    (tmp_path / "runs/a2c/Pong/conv/seed0/final_model.zip").write_bytes(b"big")
    (tmp_path / "runs/a2c/Pong/conv/seed1/state.json").write_text(json.dumps({"status": "running", "agent_steps": 1}))
    assert export_runs(tmp_path / "runs", tmp_path / "copy") == 7
    files = sorted(str(p.relative_to(tmp_path / "copy")) for p in (tmp_path / "copy").rglob("*") if p.is_file())
    assert "a2c/Pong/conv/seed0/episodes.csv" in files and not any(f.endswith(".zip") for f in files)
    assert not any(f.endswith("scalars.csv") for f in files)  # these runs have no TensorBoard events
    assert not (tmp_path / "copy/a2c/Pong/conv/seed1").exists()
    # and the copy plots like the original
    assert make_report(tmp_path / "copy", tmp_path / "out").exists()


def test_export_turns_event_files_into_scalars_csv_and_keeps_it_on_export_again(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    make_grid(tmp_path / "runs", seeds=range(1))
    writer = SummaryWriter(str(tmp_path / "runs/a2c/Pong/coordconv/seed0"))
    for step in (10, 20):
        writer.add_scalar("losses/entropy_loss", -1.79, step)
    writer.close()
    export_runs(tmp_path / "runs", tmp_path / "copy")
    copy = tmp_path / "copy/a2c/Pong/coordconv/seed0"
    assert sorted(p.name for p in copy.iterdir()) == ["config.yaml", "episodes.csv", "scalars.csv", "state.json"]
    assert copy.joinpath("scalars.csv").read_text().splitlines() == [
        "tag,step,value",
        "losses/entropy_loss,10,-1.79",
        "losses/entropy_loss,20,-1.79",
    ]
    export_runs(tmp_path / "copy", tmp_path / "again")  # a committed copy has no events: copied as is
    assert (tmp_path / "again/a2c/Pong/coordconv/seed0/scalars.csv").read_text() == (copy / "scalars.csv").read_text()


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


def test_report_titles_spell_the_algorithm_as_its_papers_do(tmp_path):
    for arm in ("conv", "coordconv"):
        write_run(tmp_path / "runs", "Pong", arm, 0, algo="apex")
    report = make_report(tmp_path / "runs", tmp_path / "out").read_text()
    assert report.startswith("# Ape-X on Atari: conv vs CoordConv")
    make_grid(tmp_path / "a2c_runs", seeds=[0])
    assert make_report(tmp_path / "a2c_runs", tmp_path / "a2c_out").read_text().startswith("# A2C on Atari")


def test_budget_label_spells_millions_and_thousands_of_frames():
    assert figures.budget_label(10_000_000) == "10M frames"
    assert figures.budget_label(2_500_000) == "2.5M frames"
    assert figures.budget_label(250_000) == "250k frames"


def test_statistics_and_the_report_load_without_matplotlib():
    code = (
        "import sys, rl_coordconv.plot, rl_coordconv.report, rl_coordconv.stats, rl_coordconv.results; "
        "print('matplotlib' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"
