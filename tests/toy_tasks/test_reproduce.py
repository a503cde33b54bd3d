"""--reproduce: writes the report, skips finished runs, keeps each cell's best run, covers the table."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest
from helpers import fake_toy_run

from rl_coordconv.toy_tasks.reproduce import SWEEPS, cell_specs, load_cells, reproduce
from rl_coordconv.toy_tasks.tasks import TASKS
from rl_coordconv.toy_tasks.train import ToyResult


def test_reproduce_writes_report_and_skips_finished_runs(tmp_path):
    only = ["classification/quadrant/coordconv", "classification/quadrant/conv"]
    calls: list[str] = []

    def runner(config, data, split):
        calls.append(config.tag())
        assert split.name == config.split
        run = fake_toy_run(config.task, config.split, config.model, test=0.5, train=0.9)
        run["config"] = asdict(config)
        return ToyResult(**run)

    lines: list[str] = []
    readme = reproduce(tmp_path, "cmd", only, log_dir=None, runner=runner, echo=lines.append)
    expected = 1 + len(SWEEPS[("classification", "conv")])
    assert len(calls) == expected and readme == tmp_path / "README.md"
    assert len(list((tmp_path / "cache").glob("*.json"))) == expected
    assert {p.name for p in tmp_path.glob("*.png")} == {"maps_quadrant.png", "curves_classification.png"}
    assert "| classification | quadrant | coordconv |" in readme.read_text()

    def must_not_run(config, data, split):
        raise AssertionError(f"{config.tag()} was cached")

    reproduce(tmp_path, "cmd", only, log_dir=None, runner=must_not_run, echo=lines.append)
    assert sum("cached, skipped" in line for line in lines) == expected

    # a damaged cache file (say, from a crash in an older version) is redone, and only it
    victim = next((tmp_path / "cache").glob("classification-quadrant-conv--*.json"))
    victim.write_text("{not json")
    calls.clear()
    reproduce(tmp_path, "cmd", only, log_dir=None, runner=runner, echo=lines.append)
    assert len(calls) == 1 and json.loads(victim.read_text())["test"]["accuracy"] == 0.5


@pytest.mark.parametrize(
    ("cell", "scores"), [("regression/uniform/conv", (9.4, 2.5)), ("classification/uniform/conv", (0.4, 0.9, 0.6))]
)
def test_each_cell_keeps_its_best_run_lower_error_or_higher_accuracy(tmp_path, cell, scores):
    task, split, model = cell.split("/")
    by_tag = {}

    def runner(config, data, split_):
        by_tag[config.tag()] = score = scores[len(by_tag)]
        run = fake_toy_run(task, split, model, test=score, train=score)
        run["config"] = asdict(config)
        return ToyResult(**run)

    reproduce(tmp_path, "cmd", [cell], log_dir=None, runner=runner, echo=lambda line: None)
    (loaded,) = load_cells(tmp_path, cell_specs([cell], log_dir=None))
    best = min(scores) if task == "regression" else max(scores)
    assert loaded["best"]["test"][TASKS[task].metric.name] == best
    assert loaded["best"]["config"] == loaded["runs"][scores.index(best)]["config"]


def test_the_table_has_every_cell():
    specs = cell_specs(log_dir=None)
    assert len(specs) == 12
    assert {(s.task, s.split, s.model) for s in specs} == {
        (t, s, m) for t in ("classification", "regression", "rendering") for s in ("uniform", "quadrant")
        for m in ("conv", "coordconv")
    }  # fmt: skip
