"""A run's TensorBoard scalars as a table: the first logged value at or after each multiple of ``--every``,
and the lowest and highest of every logged value (from ``--from`` on).

For reading a finished run without starting TensorBoard, e.g. whether the policy's entropy ever left
its uniform value. Reads the run's event files or, in a committed copy (``plot --export``), its
``scalars.csv``. Usage::

    python scripts/tb_scalars.py runs/a2c/Pong/conv/seed0 --tags losses/entropy_loss --every 500k
    python scripts/tb_scalars.py runs/a2c/Pong/conv/seed0 --tags losses/explained_variance --from 1M
    python scripts/tb_scalars.py results/atari/runs_10M/a2c/Breakout/conv/seed2     # every losses/ tag
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rl_coordconv.logs import read_scalars
from rl_coordconv.steps import parse_steps


def scalars_of(run_dir: Path, tags: list[str] | None) -> dict[str, list[tuple[int, float]]]:
    """(step, value) of each tag of a run (default: its ``losses/`` tags), in step order; a tag the run
    lacks is a ValueError."""
    known = read_scalars(run_dir)
    if tags is None:
        tags = sorted(tag for tag in known if tag.startswith("losses/"))
        if not tags:
            raise ValueError(
                f"{run_dir} has no losses/ scalars; name some with --tags: it has {', '.join(sorted(known))}"
            )
    missing = [tag for tag in tags if tag not in known]
    if missing:
        raise ValueError(f"{run_dir} has no scalar {', '.join(missing)}; it has {', '.join(sorted(known))}")
    return {tag: known[tag] for tag in tags}


def sampled(series: list[tuple[int, float]], every: int) -> list[tuple[int, float]]:
    """The first logged point, the first at or after each multiple of ``every``, and the last."""
    points, target = [], 0
    for step, value in series:
        if step >= target:
            points.append((step, value))
            target = (step // every + 1) * every
    if series and (not points or points[-1] != series[-1]):
        points.append(series[-1])
    return points


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dir", type=Path, help="a run directory (events.out.tfevents.* or scalars.csv)")
    parser.add_argument("--tags", nargs="+", help="scalar tags (default: the run's losses/ tags)")
    parser.add_argument("--every", default="500k", help="agent steps between samples, e.g. 1M (default: 500k)")
    parser.add_argument("--from", dest="start", help="leave out points before this agent step, e.g. 1M (default: none)")
    args = parser.parse_args(argv)
    try:
        every = parse_steps(args.every)
        start = 0 if args.start is None or args.start.strip() == "0" else parse_steps(args.start)
        scalars = scalars_of(args.run_dir, args.tags)
        scalars = {tag: [(step, value) for step, value in series if step >= start] for tag, series in scalars.items()}
        empty = [tag for tag, series in scalars.items() if not series]
        if empty:
            raise ValueError(f"{args.run_dir} logged no {', '.join(empty)} at or after step {start:,}")
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print("| tag | agent step: value | lowest | highest |")
    print("|---|---|---|---|")
    for tag, series in scalars.items():
        samples = ", ".join(f"{step:,}: {value:.3f}" for step, value in sampled(series, every))
        low, high = min(series, key=lambda point: point[1]), max(series, key=lambda point: point[1])
        print(f"| {tag} | {samples} | {low[1]:.3f} at {low[0]:,} | {high[1]:.3f} at {high[0]:,} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
