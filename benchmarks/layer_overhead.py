"""Cost of CoordConv in the Nature CNN: forward + backward time, coordconv vs conv, on this machine.

Three trunks with the same weights where they overlap, timed in alternation (conv, coordconv,
naive, conv, ...) so that drift on a shared machine hits all of them alike:

- ``conv``: :class:`rl_coordconv.AtariCNN` with ``coordconv=False`` (= SB3's NatureCNN);
- ``coordconv``: ``coordconv=True`` (our :class:`CoordConv2d`, coordinate term at batch size 1);
- ``naive``: the paper's recipe, concatenate the coordinate channels to the batch, then convolve.

Reports the median time of each and, for the ratios, the median of the per-iteration ratios
(each coordconv or naive step over the conv step next to it) with a 95% bootstrap confidence
interval, which cancels most of the drift. Usage::

    python benchmarks/layer_overhead.py --batch-sizes 80 512 --iters 40
    python benchmarks/layer_overhead.py --acting --batch-sizes 16 --iters 200

``--acting`` times what a rollout does to choose actions instead: the forward pass alone, under
``torch.no_grad``, where the third trunk is ``coordconv, term reused``: the coordinate term
computed once and reused, the best case of the cache that ``CoordConv2d`` no longer keeps.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import cast

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from rl_coordconv.extractors import AtariCNN
from rl_coordconv.layers import AddCoords, CoordConv2d
from rl_coordconv.runtime import tune_malloc


class NaiveCoordCNN(nn.Module):
    """AddCoords then a plain Conv2d(in + 2, ...): what the paper's appendix code does."""

    def __init__(self, reference: AtariCNN) -> None:
        super().__init__()
        self.add_coords = AddCoords()
        first = cast(nn.Conv2d, reference.cnn[0])
        conv = nn.Conv2d(first.in_channels, first.out_channels, first.kernel_size[0], first.stride[0])  # square
        conv.load_state_dict(first.state_dict())
        self.cnn = nn.Sequential(conv, *list(reference.cnn)[1:])
        self.linear = reference.linear

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.cnn(self.add_coords(x)))


def time_step(model: nn.Module, x: torch.Tensor) -> float:
    model.zero_grad(set_to_none=True)
    start = time.perf_counter()
    model(x).sum().backward()
    return time.perf_counter() - start


def time_acting(model: nn.Module, x: torch.Tensor) -> float:
    start = time.perf_counter()
    with torch.no_grad():
        model(x)
    return time.perf_counter() - start


def _with_term_reused(model: AtariCNN) -> AtariCNN:
    """``model`` whose first layer computes its coordinate term once and then reuses it."""
    layer = cast(CoordConv2d, model.cnn[0])
    compute = layer._coord_term
    memo: dict[tuple[int, ...], torch.Tensor] = {}

    def reused(x: torch.Tensor) -> torch.Tensor:
        key = tuple(x.shape[-2:])
        if key not in memo:
            memo[key] = compute(x)
        return memo[key]

    layer._coord_term = reused  # type: ignore[method-assign]
    return model


def measure(batch: int, iters: int, warmup: int, acting: bool = False) -> dict[str, list[float]]:
    space = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    torch.manual_seed(0)
    coord = AtariCNN(space, coordconv=True)
    models: dict[str, nn.Module] = {"conv": AtariCNN(space, coordconv=False), "coordconv": coord}
    if acting:
        reused = AtariCNN(space, coordconv=True)
        reused.load_state_dict(coord.state_dict())
        models["reused"] = _with_term_reused(reused)
    else:
        models["naive"] = NaiveCoordCNN(coord)
    x = torch.rand(batch, 4, 84, 84)
    timer = time_acting if acting else time_step
    times: dict[str, list[float]] = {name: [] for name in models}
    for step in range(warmup + iters):
        for name, model in models.items():
            elapsed = timer(model, x)
            if step >= warmup:
                times[name].append(elapsed)
    return times


def median_ratio(num: list[float], den: list[float], seed: int = 0) -> tuple[float, float, float]:
    """Median of paired ratios and its 95% percentile-bootstrap confidence interval."""
    ratios = np.asarray(num) / np.asarray(den)
    rng = np.random.default_rng(seed)
    boot = np.median(rng.choice(ratios, size=(2000, len(ratios))), axis=1)
    return float(np.median(ratios)), float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[80, 512])
    parser.add_argument("--iters", type=int, default=40, help="timed iterations per trunk (median reported)")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--no-tune-malloc", action="store_true", help="leave glibc's defaults (see runtime.py)")
    parser.add_argument("--acting", action="store_true", help="forward only, under no_grad, as a rollout acts")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    tuned = tune_malloc() if not args.no_tune_malloc else False
    print(
        f"torch {torch.__version__}, {args.threads} threads, malloc tuned: {tuned}, "
        f"median of {args.iters} alternating iterations\n"
    )
    third, label = ("reused", "coordconv, term reused") if args.acting else ("naive", "naive concat")
    print(
        f"| batch | conv (ms) | coordconv (ms) | {label} (ms) | coordconv / conv [95% CI] | {third} / conv [95% CI] |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    for batch in args.batch_sizes:
        t = measure(batch, args.iters, args.warmup, args.acting)
        ms = {name: statistics.median(values) * 1e3 for name, values in t.items()}
        cells = []
        for name in ("coordconv", third):
            mid, low, high = median_ratio(t[name], t["conv"])
            cells.append(f"{mid:.3f} [{low:.3f}, {high:.3f}]")
        print(f"| {batch} | {ms['conv']:.2f} | {ms['coordconv']:.2f} | {ms[third]:.2f} | {cells[0]} | {cells[1]} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
