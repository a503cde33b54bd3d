"""python -m rl_coordconv.toy_tasks: bad input in one line, a run's printout, the README command."""

from __future__ import annotations

import pytest

from rl_coordconv.toy_tasks import __main__ as cli


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--task", "paint"], "unknown --task 'paint'; choose from classification, regression, rendering"),
        (["--split", "left"], "unknown --split 'left'; choose from uniform, quadrant"),
        (["--model", "mlp"], "unknown --model 'mlp'; choose from conv, coordconv"),
        (["--epochs", "0"], "--epochs must be a positive integer, got 0"),
        (["--batch-size", "-4"], "--batch-size must be a positive integer, got -4"),
        (["--epochs", "ten"], "expected an integer, got 'ten'"),
        (["--reproduce", "--cells", "a/b/c"], "unknown cell 'a/b/c'"),
        (["--reproduce", "--epochs", "5"], "--epochs does not apply to --reproduce"),
        (["--reproduce", "--seed", "3"], "--seed does not apply to --reproduce"),
        (["--reproduce", "--task", "regression"], "--task does not apply to --reproduce"),
        (["--cells", "classification/quadrant/conv"], "--cells only applies to --reproduce"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(capsys, args, message):
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_cli_run_prints_parameters_metrics_and_time(capsys):
    args = ["--task", "regression", "--split", "uniform", "--model", "coordconv", "--epochs", "2"]
    assert cli.main([*args, "--no-tensorboard", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "regression / uniform split / coordconv: 906 parameters" in out
    assert "train (2,509 examples): mean error" in out and "test  (627 examples): mean error" in out
    assert "2 epochs (20 steps)" in out and "s training" in out


def test_readme_command_is_the_whole_tables_even_for_some_cells():
    args = cli.build_parser().parse_args(["--reproduce", "--cells", "regression/uniform/conv", "--no-progress"])
    assert cli._reproduce_command(args) == "python -m rl_coordconv.toy_tasks --reproduce"
    args = cli.build_parser().parse_args(["--reproduce", "--out", "elsewhere dir", "--threads", "1"])
    expected = "python -m rl_coordconv.toy_tasks --reproduce --out 'elsewhere dir' --threads 1"
    assert cli._reproduce_command(args) == expected


def test_mul_and_fs_of_zero_are_refused_not_replaced_by_the_default(capsys):
    assert cli.main(["--model", "conv", "--mul", "0"]) == 2
    assert capsys.readouterr().err == "error: --mul must be a positive integer, got 0\n"
