"""Train and evaluate one toy-task model: Adam, L2 on kernels, metrics, TensorBoard, progress.

Training settings follow the authors' released code (github.com/uber-research/CoordConv; the
paper's S2–S4 give the grids): Adam with β₁ 0.9, β₂ 0.99, ε 1e-8; an L2 penalty ``l2 · Σ w²`` on
convolution and fully connected weights (not on biases or BatchNorm); optional step decay, ×0.1
``lr_drops`` times at evenly spaced epochs (the paper's deconv baselines, S2: 4 drops in 1,000
epochs, one every 200). The data, loss, metrics and default settings are the task's
(:mod:`rl_coordconv.toy_tasks.tasks`); every metric is measured on the whole train or test set,
BatchNorm in inference mode.

Time is counted two ways: ``train_seconds`` covers only optimisation steps (what the paper's
"time to accuracy" means), ``wall_seconds`` includes the periodic test evaluations.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rl_coordconv.runtime import resolve_device
from rl_coordconv.toy_tasks.data import CANVAS, SPLITS, NotSoClevr, Split, make_split, not_so_clevr
from rl_coordconv.toy_tasks.models import REGRESSION_ARCHS, count_parameters, kernel_weights
from rl_coordconv.toy_tasks.tasks import MODELS, TASKS

__all__ = [
    "ToyConfig",
    "ToyResult",
    "config_from_dict",
    "evaluate",
    "format_result",
    "resolve_config",
    "train_toy",
]

_EVAL_BATCH = 128
_TAG_KEYS = ("arch", "fs", "mul", "lr", "l2", "batch_size", "epochs", "lr_drops", "seed")


@dataclass
class ToyConfig:
    """One training run. ``None`` fields take the task's defaults for the arm (:meth:`.ToyTask.arm`)."""

    task: str  # a name in tasks.TASKS: classification | regression | rendering
    split: str  # uniform | quadrant
    model: str  # conv | coordconv
    lr: float | None = None  # Adam learning rate
    l2: float | None = None  # strength of the L2 penalty on kernels
    batch_size: int | None = None
    epochs: int | None = None  # passes over the training set
    lr_drops: int | None = None  # ×0.1 learning-rate drops, evenly spaced over the epochs
    mul: int | None = None  # width multiplier (see models.py)
    fs: int | None = None  # filter size (see models.py)
    arch: str | None = None  # regression baseline: pooled | strided
    seed: int = 0  # initialisation and minibatch order
    split_seed: int = 0  # the uniform split's shuffle
    eval_every: int = 0  # optimisation steps between test evaluations; 0 = 25 log-spaced ones
    stop_at: float | None = None  # stop once the test metric reaches this value
    device: str = "auto"  # auto | cpu | cuda[:N]
    log_dir: str | None = "runs"  # TensorBoard root (runs/toy/<task>/<split>/<model>/<tag>); None = off
    progress: bool | None = None  # progress bar; None = when stderr is a terminal

    def tag(self) -> str:
        """Name of the run's TensorBoard directory, e.g. ``fs4-mul1-lr0.002-l20.001-bs32-e40-drops2-seed0``."""
        short = {"batch_size": "bs", "epochs": "e", "lr_drops": "drops"}
        parts = []
        for key in _TAG_KEYS:
            value = getattr(self, key)
            if value is None or (key == "lr_drops" and value == 0):
                continue
            parts.append(
                f"{short.get(key, key)}{value:g}" if isinstance(value, float) else f"{short.get(key, key)}{value}"
            )
        if self.split == "uniform" and self.split_seed:
            parts.append(f"split{self.split_seed}")
        return "-".join(parts)

    def command(self) -> str:
        """The ``python -m rl_coordconv.toy_tasks`` command that runs this configuration."""
        args = [
            "python -m rl_coordconv.toy_tasks",
            f"--task {self.task}",
            f"--split {self.split}",
            f"--model {self.model}",
        ]
        for key in ("arch", "fs", "mul", "lr", "l2", "batch_size", "epochs", "lr_drops", "seed", "split_seed"):
            value = getattr(self, key)
            if value is not None and not (key in ("split_seed", "lr_drops") and value == 0):
                args.append(
                    f"--{key.replace('_', '-')} {value:g}"
                    if isinstance(value, float)
                    else f"--{key.replace('_', '-')} {value}"
                )
        return " ".join(args)


def resolve_config(config: ToyConfig) -> ToyConfig:
    """Check a configuration and fill its unset fields with its task's defaults for its arm.

    :raises ValueError: an unknown task, split, model or arch, or a non-positive setting; the
        message names the bad value and the allowed ones
    """
    for name, allowed in (("task", TASKS), ("split", SPLITS), ("model", MODELS)):
        value = getattr(config, name)
        if value not in allowed:
            raise ValueError(f"unknown --{name} {value!r}; choose from {', '.join(allowed)}")
    if config.arch is not None and config.arch not in REGRESSION_ARCHS:
        raise ValueError(f"unknown --arch {config.arch!r}; choose from {', '.join(REGRESSION_ARCHS)}")
    task = TASKS[config.task]
    defaults = task.arm(config.model).defaults()
    resolved = replace(config, **{k: v for k, v in defaults.items() if getattr(config, k) is None})
    for name in ("epochs", "batch_size", "mul", "fs"):
        value = getattr(resolved, name)
        if value is not None and value < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be a positive integer, got {value}")
    assert resolved.lr is not None and resolved.l2 is not None and resolved.lr_drops is not None
    if not resolved.lr > 0:
        raise ValueError(f"--lr must be positive, got {resolved.lr}")
    if resolved.l2 < 0:
        raise ValueError(f"--l2 must be non-negative, got {resolved.l2}")
    if resolved.lr_drops < 0 or resolved.eval_every < 0:
        raise ValueError("--lr-drops and --eval-every must be non-negative")
    task.check_options(resolved.model, mul=resolved.mul, fs=resolved.fs, arch=resolved.arch)
    return resolved


@dataclass
class ToyResult:
    """What a run measured. Plain data: :func:`dataclasses.asdict` gives JSON-ready dicts."""

    config: dict[str, Any]  # the resolved ToyConfig
    command: str  # the command that reruns it
    parameters: int
    train: dict[str, float]  # metrics on the whole training set at the end
    test: dict[str, float]  # metrics on the whole test set at the end
    n_train: int
    n_test: int
    train_seconds: float  # optimisation only
    wall_seconds: float  # including periodic test evaluations
    epochs: float  # epochs run (fractional when stopped by stop_at)
    steps: int
    history: list[dict[str, float]] = field(default_factory=list)  # step, epoch, train_seconds, test metrics
    reached: dict[str, float] | None = None  # when the test metric first reached stop_at
    maps: dict[str, list[list[float]]] = field(default_factory=dict)  # "train"/"test" summed prediction maps
    device: str = "cpu"
    threads: int = 1
    torch_version: str = torch.__version__
    log_dir: str | None = None


@torch.inference_mode()
def evaluate(
    task: str,
    model: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    with_map: bool = False,
    batch_size: int = _EVAL_BATCH,
) -> tuple[dict[str, float], torch.Tensor | None]:
    """Metrics of ``model`` on a set, and optionally its summed prediction map.

    :param task: the task's name (:data:`~rl_coordconv.toy_tasks.tasks.TASKS`), which picks the metrics
    :param model: the network; put in eval mode for the call, then restored
    :param inputs: the set's inputs (as the model takes them)
    :param targets: the set's targets (:meth:`.ToyTask.targets`)
    :param with_map: also return the task's 64×64 map of the predictions summed over the set
        (:meth:`.ToyTask.add_to_map`, the paper's Figure 5)
    :param batch_size: examples per forward pass
    :return: ``({metric: value}, map or None)``
    """
    toy = TASKS[task]
    was_training = model.training
    model.eval()
    totals: dict[str, float] = {}
    summed = torch.zeros(CANVAS, CANVAS, device=inputs.device) if with_map else None
    for start in range(0, len(inputs), batch_size):
        output = model(inputs[start : start + batch_size])
        target = targets[start : start + batch_size]
        parts = toy.scores(output, target)
        if summed is not None:
            toy.add_to_map(summed, output)
        for name, values in parts.items():
            totals[name] = totals.get(name, 0.0) + float(values.sum())
    model.train(was_training)
    return {name: total / len(inputs) for name, total in totals.items()}, summed


def _eval_steps(total_steps: int, every: int) -> set[int]:
    """Steps after which the test set is evaluated; always including the last one."""
    if every:
        return set(range(every, total_steps + 1, every)) | {total_steps}
    # Evenly spaced in log(step): the curves are read against training time on a log axis.
    return {max(1, round(total_steps ** (k / 24))) for k in range(25)}


def _writer(config: ToyConfig) -> Any:
    if config.log_dir is None:
        return None
    from torch.utils.tensorboard import SummaryWriter

    path = Path(config.log_dir) / "toy" / config.task / config.split / config.model / config.tag()
    # A rerun of the same configuration replaces its curves rather than interleaving with them.
    for old in path.glob("events.out.tfevents.*"):
        old.unlink()
    return SummaryWriter(str(path))


def _progress_bar(config: ToyConfig, total: int) -> Any:
    show = config.progress if config.progress is not None else sys.stderr.isatty()
    if not show:
        return None
    from tqdm import tqdm

    desc = f"{config.task}/{config.split}/{config.model}"
    return tqdm(total=total, desc=desc, unit="step", dynamic_ncols=True, leave=False)


def train_toy(config: ToyConfig, data: NotSoClevr | None = None, split: Split | None = None) -> ToyResult:
    """Train one model on one split and measure it.

    Deterministic for a given configuration, device and thread count: ``seed`` fixes the
    initialisation and the minibatch order.

    :param config: the run (unset fields take the task's defaults, :func:`resolve_config`)
    :param data: the dataset, if already generated (:func:`not_so_clevr`)
    :param split: the split, if already made (must match ``config.split``)
    :raises ValueError: a bad configuration (see :func:`resolve_config`)
    """
    config = resolve_config(config)
    assert config.lr is not None and config.l2 is not None and config.lr_drops is not None
    assert config.batch_size is not None and config.epochs is not None
    device = resolve_device(config.device)
    data = data if data is not None else not_so_clevr()
    split = split if split is not None else make_split(config.split, config.split_seed)
    if split.name != config.split:
        raise ValueError(f"split {split.name!r} given for a {config.split!r} run")

    task = TASKS[config.task]
    inputs, targets = task.inputs(data).to(device), task.targets(data).to(device)
    train_idx, test_idx = split.train.to(device), split.test.to(device)
    train_x, train_y = inputs[train_idx], targets[train_idx]
    test_x, test_y = inputs[test_idx], targets[test_idx]

    torch.manual_seed(config.seed)
    model = task.build(config.model, mul=config.mul, fs=config.fs, arch=config.arch).to(device)
    kernels = kernel_weights(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, betas=(0.9, 0.99), eps=1e-8)
    order = torch.Generator().manual_seed(config.seed)

    n_train = len(train_idx)
    steps_per_epoch = math.ceil(n_train / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    eval_steps = _eval_steps(total_steps, config.eval_every)
    drop_every = config.epochs / (config.lr_drops + 1)
    metric = task.metric.name

    writer = _writer(config)
    bar = _progress_bar(config, total_steps)
    history: list[dict[str, float]] = []
    reached: dict[str, float] | None = None
    train_seconds = 0.0
    wall_start = time.perf_counter()
    step = 0
    loss_sum, loss_count = 0.0, 0
    model.train()
    try:
        for epoch in range(config.epochs):
            for group in optimizer.param_groups:
                group["lr"] = config.lr * 0.1 ** math.floor(epoch / drop_every + 1e-9)
            permutation = torch.randperm(n_train, generator=order).to(device)
            for start in range(0, n_train, config.batch_size):
                tick = time.perf_counter()
                batch = permutation[start : start + config.batch_size]
                loss = task.loss(model(train_x[batch]), train_y[batch])
                if config.l2 > 0:
                    loss = loss + config.l2 * sum((w * w).sum() for w in kernels)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                step += 1
                loss_sum += loss.item()
                loss_count += 1
                train_seconds += time.perf_counter() - tick
                if bar is not None:
                    bar.update(1)
                if step in eval_steps:
                    scores, _ = evaluate(config.task, model, test_x, test_y)
                    point = {"step": step, "epoch": step / steps_per_epoch, "train_seconds": train_seconds}
                    point.update({f"test_{k}": v for k, v in scores.items()})
                    point["train_loss"] = loss_sum / loss_count
                    history.append(point)
                    if writer is not None:
                        writer.add_scalar("loss/train", loss_sum / loss_count, step)
                        for name, value in scores.items():
                            writer.add_scalar(f"test/{name}", value, step)
                        writer.add_scalar("charts/train_seconds", train_seconds, step)
                        writer.add_scalar("charts/learning_rate", optimizer.param_groups[0]["lr"], step)
                    if bar is not None:
                        bar.set_postfix_str(f"loss {loss_sum / loss_count:.4f} test {metric} {scores[metric]:.4f}")
                    loss_sum, loss_count = 0.0, 0
                    if config.stop_at is not None and task.metric.reached(scores[metric], config.stop_at):
                        reached = {"train_seconds": train_seconds, "epochs": step / steps_per_epoch, "steps": step}
                        break
            if reached is not None:
                break
        final_train, train_map = evaluate(config.task, model, train_x, train_y, with_map=True)
        final_test, test_map = evaluate(config.task, model, test_x, test_y, with_map=True)
        if writer is not None:
            for name, value in final_train.items():
                writer.add_scalar(f"final/train_{name}", value, step)
            for name, value in final_test.items():
                writer.add_scalar(f"final/test_{name}", value, step)
    finally:
        if bar is not None:
            bar.close()
        if writer is not None:
            writer.close()
    assert train_map is not None and test_map is not None
    return ToyResult(
        config=asdict(config),
        command=config.command(),
        parameters=count_parameters(model),
        train=final_train,
        test=final_test,
        n_train=n_train,
        n_test=len(test_idx),
        train_seconds=train_seconds,
        wall_seconds=time.perf_counter() - wall_start,
        epochs=step / steps_per_epoch,
        steps=step,
        history=history,
        reached=reached,
        maps={"train": _rounded(train_map), "test": _rounded(test_map)},
        device=str(device),
        threads=torch.get_num_threads(),
        log_dir=writer.log_dir if writer is not None else None,
    )


def _rounded(summed: torch.Tensor) -> list[list[float]]:
    return [[float(f"{v:.5g}") for v in row] for row in summed.cpu().tolist()]


def format_result(result: ToyResult) -> str:
    """A few human-readable lines: parameters, train and test metrics, time."""
    config = result.config
    task = TASKS[config["task"]]
    settings = ", ".join(
        f"{key} {config[key]:g}" if isinstance(config[key], float) else f"{key} {config[key]}"
        for key in ("arch", "mul", "fs", "lr", "l2", "batch_size", "seed")
        if config[key] is not None
    )
    lines = [
        f"{config['task']} / {config['split']} split / {config['model']}: "
        f"{result.parameters:,} parameters ({settings})",
        f"  train ({result.n_train:,} examples): {task.format_scores(result.train)}",
        f"  test  ({result.n_test:,} examples): {task.format_scores(result.test)}",
        f"  {result.epochs:g} epochs ({result.steps:,} steps): {result.train_seconds:.1f} s training, "
        f"{result.wall_seconds:.1f} s wall with evaluation, on {result.device} ({result.threads} threads)",
    ]
    if config["stop_at"] is not None:
        metric = task.metric.name
        if result.reached is not None:
            lines.append(
                f"  test {metric} reached {config['stop_at']:g} after {result.reached['train_seconds']:.1f} s "
                f"of training ({result.reached['epochs']:.2f} epochs)"
            )
        else:
            lines.append(f"  test {metric} never reached {config['stop_at']:g}")
    if result.log_dir:
        lines.append(f"  TensorBoard: {result.log_dir}")
    return "\n".join(lines)


def config_from_dict(values: dict[str, Any]) -> ToyConfig:
    """A :class:`ToyConfig` from :func:`dataclasses.asdict` output (unknown keys are an error)."""
    names = {f.name for f in fields(ToyConfig)}
    unknown = set(values) - names
    if unknown:
        raise ValueError(f"unknown ToyConfig fields: {', '.join(sorted(unknown))}")
    return ToyConfig(**values)
