"""Train a toy-task model, or reproduce the paper's whole toy table: ``python -m rl_coordconv.toy_tasks``.

    python -m rl_coordconv.toy_tasks --task classification --split quadrant --model coordconv
    python -m rl_coordconv.toy_tasks --task rendering --split uniform --model conv --fs 4 --mul 2
    python -m rl_coordconv.toy_tasks --task classification --split quadrant --model coordconv --stop-at 1
    python -m rl_coordconv.toy_tasks --reproduce                      # writes results/toy_tasks/
    python -m rl_coordconv.toy_tasks --reproduce --cells regression/quadrant/conv

A single run prints its parameters, train and test metrics and time, and logs TensorBoard
scalars to ``runs/toy/<task>/<split>/<model>/<settings>/``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from rl_coordconv.cli import HelpFormatter
from rl_coordconv.toy_tasks.tasks import MODELS, TASKS  # no PyTorch: the options are listed before it loads

__all__ = ["build_parser", "main"]


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad argument is one ``error: ...`` line (exit 2), as the other CLIs do."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(2)


# Options of a single run; --reproduce takes its settings from reproduce.SWEEPS instead. Those
# with a fixed default get it from _SINGLE; the others default to the paper's per task and model.
_SINGLE = {
    "task": "classification",
    "split": "quadrant",
    "model": "coordconv",
    "seed": 0,
    "split_seed": 0,
    "eval_every": 0,
}
_RUN_ONLY = (*_SINGLE, "epochs", "batch_size", "lr", "l2", "lr_drops", "mul", "fs", "arch", "stop_at")


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def _one_of(names: Sequence[str]) -> str:
    """``"a, b or c"``."""
    return f"{', '.join(names[:-1])} or {names[-1]}" if len(names) > 1 else names[0]


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m rl_coordconv.toy_tasks",
        description="The supervised coordinate tasks of Liu et al. (2018), conv vs CoordConv.",
        formatter_class=HelpFormatter,
    )
    # A single run's options default to None here, so that --reproduce can refuse them; _SINGLE fills them in.
    parser.add_argument("--task", help=f"{_one_of(list(TASKS))} (default: {_SINGLE['task']})")
    parser.add_argument("--split", help=f"uniform or quadrant (default: {_SINGLE['split']})")
    parser.add_argument("--model", help=f"{_one_of(MODELS)} (default: {_SINGLE['model']})")
    defaults = "default: the paper's for the task and model"
    parser.add_argument("--epochs", type=_int, help=f"passes over the training set ({defaults})")
    parser.add_argument("--batch-size", type=_int, help=f"minibatch size ({defaults})")
    parser.add_argument("--lr", type=_float, help=f"Adam learning rate ({defaults})")
    parser.add_argument("--l2", type=_float, help=f"L2 penalty on kernels ({defaults})")
    ours = "default: set per task and model"
    parser.add_argument("--lr-drops", type=_int, help=f"×0.1 learning-rate drops, evenly spaced ({ours})")
    parser.add_argument("--mul", type=_int, help=f"width multiplier, conv models and CoordConv rendering ({ours})")
    parser.add_argument("--fs", type=_int, help=f"filter size, deconv models and CoordConv rendering ({ours})")
    parser.add_argument("--arch", help=f"regression conv baseline: pooled or strided ({ours})")
    parser.add_argument("--seed", type=_int, help=f"initialisation and minibatch order (default: {_SINGLE['seed']})")
    parser.add_argument(
        "--split-seed", type=_int, help=f"shuffle of the uniform split (default: {_SINGLE['split_seed']})"
    )
    parser.add_argument(
        "--eval-every",
        type=_int,
        help=f"steps between test evaluations; 0: 25, log-spaced (default: {_SINGLE['eval_every']})",
    )
    parser.add_argument(
        "--stop-at", type=_float, help="stop when the test metric reaches this (e.g. 1 = 100%% accuracy)"
    )
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--threads", type=_int, default=0, help="PyTorch CPU threads (0: PyTorch's default)")
    parser.add_argument("--log-dir", default="runs", help="TensorBoard root; runs go to <log-dir>/toy/...")
    parser.add_argument("--no-tensorboard", action="store_true", help="do not write TensorBoard events")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--reproduce", action="store_true", help="run the whole table and write --out")
    parser.add_argument("--out", default="results/toy_tasks", help="--reproduce: README, figures and cache")
    parser.add_argument("--cells", nargs="+", metavar="TASK/SPLIT/MODEL", help="--reproduce: only these cells")
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:  # --help, or a bad argument already reported on one line
        return stop.code if isinstance(stop.code, int) else 2
    import torch

    from rl_coordconv.runtime import resolve_device, tune_malloc
    from rl_coordconv.toy_tasks.reproduce import parse_cell, reproduce
    from rl_coordconv.toy_tasks.train import ToyConfig, format_result, resolve_config, train_toy

    log_dir = None if args.no_tensorboard else args.log_dir
    progress = False if args.no_progress else None
    try:
        if args.threads < 0:
            raise ValueError(f"--threads must be 0 (PyTorch's default) or positive, got {args.threads}")
        resolve_device(args.device)
        _check_mode(args)
        if args.reproduce:
            for cell in args.cells or []:
                parse_cell(cell)
        else:
            for name, default in _SINGLE.items():
                if getattr(args, name) is None:
                    setattr(args, name, default)
            config = resolve_config(
                ToyConfig(
                    task=args.task,
                    split=args.split,
                    model=args.model,
                    lr=args.lr,
                    l2=args.l2,
                    batch_size=args.batch_size,
                    epochs=args.epochs,
                    lr_drops=args.lr_drops,
                    mul=args.mul,
                    fs=args.fs,
                    arch=args.arch,
                    seed=args.seed,
                    split_seed=args.split_seed,
                    eval_every=args.eval_every,
                    stop_at=args.stop_at,
                    device=args.device,
                    log_dir=log_dir,
                    progress=progress,
                )
            )
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    tune_malloc()
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        if args.reproduce:
            readme = reproduce(Path(args.out), _reproduce_command(args), args.cells, args.device, log_dir, progress)
            print(f"wrote {readme}")
        else:
            print(format_result(train_toy(config)))
    except KeyboardInterrupt:
        print(
            "interrupted" + ("; --reproduce again skips the finished runs" if args.reproduce else ""), file=sys.stderr
        )
        return 130
    return 0


def _check_mode(args: argparse.Namespace) -> None:
    """Reject options that the chosen mode would silently ignore."""
    if args.reproduce:
        given = [name for name in _RUN_ONLY if getattr(args, name) is not None]
        if given:
            flag = "--" + given[0].replace("_", "-")
            raise ValueError(f"{flag} does not apply to --reproduce, which runs the settings in reproduce.SWEEPS")
    elif args.cells is not None:
        raise ValueError("--cells only applies to --reproduce")


def _reproduce_command(args: argparse.Namespace) -> str:
    """The command that makes the whole table with these settings, for the README.

    ``--cells`` (and the display flags) are left out: a run limited to some cells, or resumed
    after an interruption, adds to the same table the full command makes.
    """
    command = ["python", "-m", "rl_coordconv.toy_tasks", "--reproduce"]
    if args.out != build_parser().get_default("out"):
        command += ["--out", args.out]
    if args.device != "auto":
        command += ["--device", args.device]
    if args.threads:
        command += ["--threads", str(args.threads)]
    return shlex.join(command)


if __name__ == "__main__":
    raise SystemExit(main())
