"""Toy tasks: Not-so-Clevr, splits, the paper's models, metrics, a real CoordConv run, report, CLI."""

from __future__ import annotations

import ast
import json
from dataclasses import asdict
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rl_coordconv.layers import CoordConv2d, coordinate_grid
from rl_coordconv.toy_tasks import __main__ as cli
from rl_coordconv.toy_tasks.data import (
    N_EXAMPLES,
    Split,
    make_split,
    not_so_clevr,
    quadrant_split,
    to_pixels,
    to_unit,
    uniform_split,
)
from rl_coordconv.toy_tasks.models import (
    CoordConvRegressor,
    DeconvPainter,
    build_model,
    count_parameters,
    kernel_weights,
)
from rl_coordconv.toy_tasks.report import PAPER, render_readme, time_to_target
from rl_coordconv.toy_tasks.reproduce import SWEEPS, cell_specs, load_cells, reproduce
from rl_coordconv.toy_tasks.tasks import TASKS, Classification
from rl_coordconv.toy_tasks.train import ToyConfig, ToyResult, evaluate, resolve_config, train_toy


@pytest.fixture(scope="module")
def data():
    return not_so_clevr()


# --- Not-so-Clevr ------------------------------------------------------------------------------


def test_dataset_has_every_centre_once_in_range(data):
    assert len(data) == N_EXAMPLES == 3136
    assert data.centres.min() == 4 and data.centres.max() == 59
    assert len({tuple(c) for c in data.centres.tolist()}) == 3136
    assert data.onehots.shape == data.images.shape == (3136, 1, 64, 64)


def test_onehot_and_image_agree_with_the_centre(data):
    x, y = data.centres[:, 0], data.centres[:, 1]
    # one-hot: a single 1 at row y, column x
    assert torch.equal(data.onehots.flatten(1).sum(1), torch.ones(3136))
    assert torch.equal(data.onehots.flatten(1).argmax(1), y * 64 + x)
    assert torch.equal(data.flat_targets, y * 64 + x)
    # image: the one-hot painted by a 9×9 all-ones filter (the paper's recipe), binary 0/1
    some = slice(None, None, 7)
    painted = F.conv2d(data.onehots[some], torch.ones(1, 1, 9, 9), padding=4)
    assert torch.equal(data.images[some], painted)
    assert set(data.images.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(data.images.flatten(1).sum(1), torch.full((3136,), 81.0))


def test_an_example_by_hand(data):
    index = ((data.centres[:, 0] == 10) & (data.centres[:, 1] == 50)).nonzero().item()
    assert data.onehots[index, 0, 50, 10] == 1  # image[y, x]: row 50, column 10
    image = data.images[index, 0]
    assert image[46:55, 6:15].sum() == 81 and image.sum() == 81


def test_unit_scale_is_the_coordinate_channels_scale(data):
    # column x of the input equals CoordConv's j channel at column x, row y its i channel at row y
    grid = coordinate_grid(64, 64)[0]
    assert torch.equal(to_unit(torch.arange(64)), grid[1, 0])
    assert torch.equal(to_unit(torch.arange(64)), grid[0, :, 0])
    assert torch.allclose(to_pixels(data.unit_centres), data.centres.float(), atol=1e-5)


def test_quadrant_split_sizes_and_no_test_centre_in_training(data):
    split = quadrant_split()
    assert (len(split.train), len(split.test)) == (2407, 729)
    assert torch.equal(torch.cat([split.train, split.test]).sort().values, torch.arange(3136))
    test_centres, train_centres = data.centres[split.test], data.centres[split.train]
    assert ((test_centres[:, 0] > 32) & (test_centres[:, 1] > 32)).all()
    assert not ((train_centres[:, 0] > 32) & (train_centres[:, 1] > 32)).any()
    assert not {tuple(c) for c in test_centres.tolist()} & {tuple(c) for c in train_centres.tolist()}


def test_uniform_split_is_a_seeded_80_20_partition():
    split = uniform_split(seed=0)
    assert (len(split.train), len(split.test)) == (2509, 627)
    assert torch.equal(torch.cat([split.train, split.test]).sort().values, torch.arange(3136))
    assert torch.equal(uniform_split(seed=0).test, split.test)
    assert not torch.equal(uniform_split(seed=1).test, split.test)
    with pytest.raises(ValueError, match="unknown split 'left'; choose from uniform, quadrant"):
        make_split("left")


# --- models ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("task", "expected"), [("classification", 7553), ("regression", 906), ("rendering", 9490)])
def test_coordconv_models_have_the_papers_parameter_counts(task, expected):
    model = build_model(task, "coordconv")
    assert count_parameters(model) == expected
    assert any(isinstance(layer, CoordConv2d) for layer in model.modules())


def test_baselines_are_plain_convolutions_in_the_papers_size_range():
    sizes = [count_parameters(DeconvPainter(mul, fs)) for mul in (1, 2, 3) for fs in (2, 3, 4)]
    assert min(sizes) == 46_465 and max(sizes) == 1_632_001  # the paper: "50k–1.6M"
    assert count_parameters(build_model("regression", "conv", arch="strided")) == 12_914  # "12k"
    for task in ("classification", "regression", "rendering"):
        assert not any(isinstance(m, CoordConv2d) for m in build_model(task, "conv").modules())


@pytest.mark.parametrize("fs", [1, 2, 3, 4, 5])
def test_deconv_painter_doubles_to_64_for_every_filter_size(fs):
    assert DeconvPainter(1, fs)(torch.zeros(3, 2)).shape == (3, 1, 64, 64)


def test_kernel_weights_leave_out_biases_and_batchnorm():
    model = DeconvPainter(1, 2)
    kernels = kernel_weights(model)
    assert len(kernels) == 6 and all(w.dim() == 4 for w in kernels)
    assert sum(w.numel() for w in kernels) < count_parameters(model)


def test_regressor_impulse_response_path_equals_the_layer_stack(data):
    torch.manual_seed(3)
    model = CoordConvRegressor()
    x = data.onehots[::40] * torch.rand(len(data.onehots[::40]), 1, 1, 1)  # any values, interior pixels
    fast = model(x)
    fast_grads = torch.autograd.grad(fast.square().sum(), list(model.parameters()))
    model.fast = False
    slow = model(x)
    slow_grads = torch.autograd.grad(slow.square().sum(), list(model.parameters()))
    torch.testing.assert_close(fast, slow, rtol=1e-5, atol=1e-5)
    for a, b in zip(fast_grads, slow_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    # a hot pixel on the border is cut by zero padding: the fast path must not be taken
    model.fast = True
    edge = torch.zeros(2, 1, 64, 64)
    edge[:, 0, 0, 5] = 1
    assert model._sparse_maps(edge) is None
    model.fast = False
    torch.testing.assert_close(CoordConvRegressor.forward(model, edge), model.stack(edge).amax(dim=(2, 3)))


def test_build_model_rejects_settings_a_model_does_not_have():
    with pytest.raises(ValueError, match="--fs does not apply to the coordconv regression model"):
        build_model("regression", "coordconv", fs=3)
    with pytest.raises(ValueError, match="unknown task 'paint'"):
        build_model("paint", "conv")


# --- metrics -----------------------------------------------------------------------------------


class _Shifted(nn.Module):
    """An oracle that answers ``shift`` columns to the right of the truth."""

    def __init__(self, task: str, data, shift: int) -> None:
        super().__init__()
        self.task, self.shift = task, shift
        self.lookup = {tuple(c): i for i, c in enumerate(data.centres.tolist())}
        self.data = data

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if self.task == "regression":
            xy = to_pixels(torch.stack([self._centre_of(m) for m in inputs]))
            return to_unit(xy + torch.tensor([self.shift, 0.0]))
        centres = to_pixels(inputs).round().long()
        out = torch.full((len(inputs), 1, 64, 64), -10.0)
        for row, (x, y) in enumerate(centres.tolist()):
            if self.task == "classification":
                out[row, 0, y, x + self.shift] = 10.0
            else:
                out[row, 0, y - 4 : y + 5, x - 4 + self.shift : x + 5 + self.shift] = 10.0
        return out

    def _centre_of(self, onehot: torch.Tensor) -> torch.Tensor:
        flat = int(onehot.flatten().argmax())
        return to_unit(torch.tensor([flat % 64, flat // 64]))


@pytest.mark.parametrize(
    ("task", "shift", "expected"),
    [
        ("classification", 0, {"accuracy": 1.0, "pixel_distance": 0.0}),
        ("classification", 3, {"accuracy": 0.0, "pixel_distance": 3.0}),
        ("regression", 0, {"error_px": 0.0}),
        ("regression", 2, {"error_px": 2.0}),
        ("rendering", 0, {"iou": 1.0}),
        ("rendering", -1, {"iou": 72 / 90}),  # a 9×9 square one column off: 72 shared of 90 pixels
    ],
)
def test_metrics_on_oracles(data, task, shift, expected):
    subset = torch.arange(0, 3136, 97)
    subset = subset[(data.centres[subset, 0] >= 8) & (data.centres[subset, 0] <= 55)]  # shifts stay on the canvas
    inputs = {"regression": data.onehots}.get(task, data.unit_centres)[subset]
    targets = {"classification": data.flat_targets, "regression": data.unit_centres, "rendering": data.images}[task]
    scores, summed = evaluate(task, _Shifted(task, data, shift), inputs, targets[subset], with_map=True)
    assert scores == pytest.approx(expected, abs=1e-5)
    assert summed is not None and summed.shape == (64, 64)


# --- training ----------------------------------------------------------------------------------


def test_coordconv_classification_generalises_to_the_unseen_quadrant(tmp_path):
    """The paper's headline: 100% test accuracy on a quadrant never seen in training, in seconds."""
    config = ToyConfig(
        "classification",
        "quadrant",
        "coordconv",
        seed=0,
        epochs=1,
        lr_drops=0,  # the default's drops are spaced over 10 epochs, not this one
        eval_every=12,
        stop_at=1.0,
        log_dir=str(tmp_path),
        progress=False,
    )
    result = train_toy(config)
    assert result.reached is not None, f"test accuracy only reached {result.history[-1]['test_accuracy']:.3f}"
    assert result.test["accuracy"] == 1.0 and result.test["pixel_distance"] == 0.0
    assert result.reached["epochs"] < 1 and result.parameters == 7553
    assert (result.n_train, result.n_test) == (2407, 729)
    assert list(Path(result.log_dir).glob("events.out.tfevents.*"))
    assert Path(result.log_dir).relative_to(tmp_path).parts[:4] == ("toy", "classification", "quadrant", "coordconv")


def test_coordconv_renderer_leaves_the_all_background_image(data):
    """Unscaled, the sharpened map (≈ 1/4,096 a pixel) left the head constant: IOU 0 forever."""
    quadrant = quadrant_split()
    small = Split("quadrant", train=quadrant.train[::6], test=quadrant.test[::8])  # 402 / 92 examples
    config = ToyConfig(
        "rendering", "quadrant", "coordconv", l2=0.0, epochs=2, eval_every=26, log_dir=None, progress=False
    )
    result = train_toy(config, data, small)
    background_only = 0.0972  # cross-entropy of predicting the square's share everywhere
    assert result.history[-1]["train_loss"] < 0.8 * background_only, result.history


def test_training_is_deterministic_for_a_seed(data):
    split = quadrant_split()
    config = ToyConfig("regression", "quadrant", "coordconv", epochs=3, log_dir=None, progress=False)
    first, second = train_toy(config, data, split), train_toy(config, data, split)
    assert first.test == second.test and first.train == second.train
    assert [p["train_loss"] for p in first.history] == [p["train_loss"] for p in second.history]
    other = train_toy(ToyConfig("regression", "quadrant", "coordconv", epochs=3, seed=1, log_dir=None), data, split)
    assert other.test != first.test


def test_defaults_and_command_line_of_a_config():
    config = resolve_config(ToyConfig("rendering", "uniform", "coordconv"))
    assert (config.lr, config.batch_size, config.mul, config.fs) == (5e-3, 16, 2, 1)
    assert config.command().startswith("python -m rl_coordconv.toy_tasks --task rendering --split uniform")
    assert "--fs 1" in config.command() and "--lr 0.005" in config.command()
    baseline = resolve_config(ToyConfig("regression", "quadrant", "conv", arch="strided"))
    assert baseline.arch == "strided" and baseline.fs is None


# --- report and reproduce ----------------------------------------------------------------------


def _fake_run(task: str, split: str, model: str, test: float, train: float, **config) -> dict:
    metric = {"classification": "accuracy", "regression": "error_px", "rendering": "iou"}[task]
    resolved = resolve_config(ToyConfig(task, split, model, log_dir=None, **config))
    history = [
        {"step": 1, "epoch": 0.1, "train_seconds": 1.5, f"test_{metric}": test / 2},
        {"step": 9, "epoch": 1.0, "train_seconds": 12.0, f"test_{metric}": test},
    ]
    result = ToyResult(
        config=asdict(resolved),
        command=resolved.command(),
        parameters=count_parameters(build_model(task, model, resolved.mul, resolved.fs, resolved.arch)),
        train={metric: train},
        test={metric: test},
        n_train=2407,
        n_test=729,
        train_seconds=12.0,
        wall_seconds=20.0,
        epochs=1.0,
        steps=9,
        history=history,
        maps={"train": [[0.0] * 64 for _ in range(64)], "test": [[1.0] * 64 for _ in range(64)]},
    )
    return asdict(result)


def test_report_writer_builds_the_table_from_given_metrics():
    coord = _fake_run("classification", "quadrant", "coordconv", test=1.0, train=1.0)
    conv_runs = [
        _fake_run("classification", "quadrant", "conv", test=0.0123, train=0.95, fs=2),
        _fake_run("classification", "quadrant", "conv", test=0.0456, train=0.99, fs=4),
    ]
    cells = [
        {"task": "classification", "split": "quadrant", "model": "coordconv", "best": coord, "runs": [coord],
         "selection": "the paper's setting (1 run)"},
        {"task": "classification", "split": "quadrant", "model": "conv", "best": conv_runs[1], "runs": conv_runs,
         "selection": "best test accuracy of 2 runs"},
        # a made-up uniform conv result at 100% contradicts the paper: the verdict must say so
        {"task": "classification", "split": "uniform", "model": "conv",
         "best": _fake_run("classification", "uniform", "conv", test=1.0, train=1.0),
         "runs": [_fake_run("classification", "uniform", "conv", test=1.0, train=1.0)], "selection": "x"},
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


def test_reproduce_writes_report_and_skips_finished_runs(tmp_path):
    only = ["classification/quadrant/coordconv", "classification/quadrant/conv"]
    calls: list[str] = []

    def runner(config, data, split):
        calls.append(config.tag())
        assert split.name == config.split
        run = _fake_run(config.task, config.split, config.model, test=0.5, train=0.9)
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
        run = _fake_run(task, split, model, test=score, train=score)
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


# --- command line ------------------------------------------------------------------------------


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


def test_toy_tasks_import_nothing_above_the_layers():
    """DESIGN.md: layers ← extractors ← agents/envs ← CLIs; the toy tasks sit beside the agents."""
    allowed = {"rl_coordconv.layers", "rl_coordconv.runtime", "rl_coordconv.runs"}
    allowed.add("rl_coordconv.cli")  # the CLIs' help formatter; it imports nothing of the package
    package = Path(cli.__file__).parent
    for source in package.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            names += [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            for name in names:
                if name.startswith("rl_coordconv") and not name.startswith("rl_coordconv.toy_tasks"):
                    assert name in allowed, f"{source.name} imports {name}"


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


def test_mul_and_fs_of_zero_are_refused_not_replaced_by_the_default(capsys):
    assert cli.main(["--model", "conv", "--mul", "0"]) == 2
    assert capsys.readouterr().err == "error: --mul must be a positive integer, got 0\n"


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
    run = _fake_run("classification", "quadrant", "coordconv", test=1.0, train=1.0)
    cell = {"task": "locating", "split": "quadrant", "model": "coordconv", "best": run, "runs": [run], "selection": "x"}
    text = render_readme([cell], "cmd")
    row = next(line for line in text.splitlines() if line.startswith("| locating | quadrant | coordconv |"))
    assert "| 100.00% |" in row and "target at 12 s" in row and row.endswith("| yes |")
    assert "locating = test/train accuracy (argmax pixel = centre)" in text and "every centre found)" in text
    assert "Claims that hold: 1; that do not: 0; not run: 15." in text
