"""Training toy-task models: metrics on oracles, a real CoordConv run that generalises,
determinism, a config's defaults and command line."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from rl_coordconv.toy_tasks.data import Split, quadrant_split, to_pixels, to_unit
from rl_coordconv.toy_tasks.train import ToyConfig, evaluate, resolve_config, train_toy


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
