"""The toy-task README: the table from given metrics, time to target, the paper's claims at their edges."""

from __future__ import annotations

import pytest
from helpers import fake_toy_run

from rl_coordconv.toy_tasks.report import PAPER, render_readme, time_to_target


def test_report_writer_builds_the_table_from_given_metrics():
    coord = fake_toy_run("classification", "quadrant", "coordconv", test=1.0, train=1.0)
    conv_runs = [
        fake_toy_run("classification", "quadrant", "conv", test=0.0123, train=0.95, fs=2),
        fake_toy_run("classification", "quadrant", "conv", test=0.0456, train=0.99, fs=4),
    ]
    cells = [
        {"task": "classification", "split": "quadrant", "model": "coordconv", "best": coord, "runs": [coord],
         "selection": "the paper's setting (1 run)"},
        {"task": "classification", "split": "quadrant", "model": "conv", "best": conv_runs[1], "runs": conv_runs,
         "selection": "best test accuracy of 2 runs"},
        # a made-up uniform conv result at 100% contradicts the paper: the verdict must say so
        {"task": "classification", "split": "uniform", "model": "conv",
         "best": fake_toy_run("classification", "uniform", "conv", test=1.0, train=1.0),
         "runs": [fake_toy_run("classification", "uniform", "conv", test=1.0, train=1.0)], "selection": "x"},
    ]  # fmt: skip
    text = render_readme(cells, "python -m rl_coordconv.toy_tasks --reproduce", {"Maps": "maps_quadrant.png"})
    table = text.split("## Selected configurations")[0]
    rows = {tuple(line.split(" | ")[:3]): line for line in table.splitlines() if line.startswith("| classification")}
    coord_row = rows[("| classification", "quadrant", "coordconv")]
    assert "| 7,553 | 7,553 |" in coord_row and "| 100% | 100.00% |" in coord_row and coord_row.endswith("| yes |")
    assert "12 s train, 20 s wall (1 ep.); target at 12 s" in coord_row
    conv_row = rows[("| classification", "quadrant", "conv")]
    assert "4.56%" in conv_row and "(sweep 46,465–183,553)" in conv_row and conv_row.endswith("| yes |")
    assert rows[("| classification", "uniform", "conv")].endswith("| **no** |")
    assert "| regression | uniform | coordconv |" in text and "not run" in text
    assert "Claims that hold: 2; that do not: 1; not run: 9." in text
    assert "`python -m rl_coordconv.toy_tasks --task classification --split quadrant --model conv --fs 4" in text
    assert "python -m rl_coordconv.toy_tasks --reproduce" in text and "![Maps](maps_quadrant.png)" in text
    # the cell's sweep time and the total, and the protocol's departures with the budgets used
    assert "| 40 s | `python -m rl_coordconv.toy_tasks --task classification --split quadrant --model conv" in text
    assert "In all: 4 runs, 80 s of wall time." in text
    assert "Conv baselines train for 30 epochs and each conv cell sweeps 1–2 settings" in text


def test_time_to_target_reads_the_history():
    history = [{"train_seconds": 1.0, "test_error_px": 3.0}, {"train_seconds": 4.0, "test_error_px": 0.4}]
    assert time_to_target("regression", history) == 4.0
    assert time_to_target("regression", history[:1]) is None


@pytest.mark.parametrize(
    "key,holds,fails",
    [  # the edge of each claim as its criterion text states it
        (("classification", "uniform", "coordconv"), 1.0, 0.9999),
        (("classification", "uniform", "conv"), 0.9999, 1.0),
        (("classification", "quadrant", "conv"), 0.0499, 0.05),
        (("regression", "uniform", "coordconv"), 0.499, 0.5),
        (("regression", "uniform", "conv"), 0.499, 0.5),
        (("regression", "quadrant", "conv"), 1.0, 0.999),
        (("rendering", "quadrant", "coordconv"), 0.99, 0.989),
        (("rendering", "uniform", "conv"), 0.85, 0.851),
        (("rendering", "quadrant", "conv"), 0.499, 0.5),
    ],
)
def test_each_paper_claim_is_checked_at_the_edge_its_text_states(key, holds, fails):
    claim = PAPER[key]
    assert claim.holds(holds) and not claim.holds(fails), claim.criterion
