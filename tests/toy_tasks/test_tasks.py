"""The task registry: one comparison decides every "reached", and a new task is one class."""

from __future__ import annotations

import pytest
from helpers import fake_toy_run

from rl_coordconv.toy_tasks import __main__ as cli
from rl_coordconv.toy_tasks.report import PAPER, render_readme, time_to_target
from rl_coordconv.toy_tasks.reproduce import cell_specs
from rl_coordconv.toy_tasks.tasks import TASKS, Classification
from rl_coordconv.toy_tasks.train import ToyConfig, resolve_config


def test_one_comparison_decides_reached_for_stop_at_the_report_and_the_claims():
    """An error reaches its bar by getting under it (the report's "error < 0.5 px"); a score by getting to it."""
    regression, classification = TASKS["regression"], TASKS["classification"]
    assert not regression.metric.reached(0.5, 0.5) and regression.metric.reached(0.4999, 0.5)
    assert classification.metric.reached(1.0, 1.0) and not classification.metric.reached(0.9999, 1.0)
    history = [{"train_seconds": 1.0, "test_error_px": 0.5}, {"train_seconds": 2.0, "test_error_px": 0.4999}]
    assert time_to_target("regression", history) == 2.0
    assert PAPER[("regression", "quadrant", "coordconv")].holds == regression.solved


class _Locating(Classification):
    """A made-up task: how a new task is added (here classification's data and models, renamed)."""

    name = "locating"
    target_text = "every centre found"


def test_a_new_task_is_one_class_in_the_registry(monkeypatch, capsys):
    monkeypatch.setitem(TASKS, "locating", _Locating())
    # the command line offers it, and lists it among the choices of a bad --task
    task_help = next(action.help for action in cli.build_parser()._actions if "--task" in action.option_strings)
    assert task_help == "classification, regression, rendering or locating (default: classification)"
    assert cli.main(["--task", "paint"]) == 2
    assert "choose from classification, regression, rendering, locating" in capsys.readouterr().err
    # its arms' defaults and options come from the class
    config = resolve_config(ToyConfig("locating", "quadrant", "conv"))
    assert (config.lr, config.mul, config.fs, config.arch) == (2e-3, 1, 3, None)
    with pytest.raises(ValueError, match="--arch does not apply to the conv locating model"):
        resolve_config(ToyConfig("locating", "quadrant", "conv", arch="pooled"))
    # --reproduce runs its four cells, and the report shows them once its paper claims are given
    assert len(cell_specs(log_dir=None)) == 16
    for split in ("uniform", "quadrant"):
        for model in ("conv", "coordconv"):
            monkeypatch.setitem(PAPER, ("locating", split, model), PAPER[("classification", split, model)])
    run = fake_toy_run("classification", "quadrant", "coordconv", test=1.0, train=1.0)
    cell = {"task": "locating", "split": "quadrant", "model": "coordconv", "best": run, "runs": [run], "selection": "x"}
    text = render_readme([cell], "cmd")
    row = next(line for line in text.splitlines() if line.startswith("| locating | quadrant | coordconv |"))
    assert "| 100.00% |" in row and "target at 12 s" in row and row.endswith("| yes |")
    assert "locating = test/train accuracy (argmax pixel = centre)" in text and "every centre found)" in text
    assert "Claims that hold: 1; that do not: 0; not run: 15." in text
