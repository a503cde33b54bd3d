"""Ape-X's samples-per-insert limiter over whole runs: is the ratio held with 1, 2 and 4 actors?

Each measurement is a fresh ``python -m rl_coordconv.train --algo apex`` run on Breakout (small
replay and batch so that a run takes about a minute) with ``--set samples_per_insert=R``. A ratio
above what this machine's learner can serve holds the actors back; one below it holds the learner.
Reported per run, from its ``state.json`` and ``scalars`` (TensorBoard): the ratio at the end
(cumulative, since learning started), its worst deviation from the target over the second half of
the run's log points, learner steps and agent steps per second, the share of time each side
was held, and the smallest actor's share of the agent steps (1/actors when each gets its turn).
Usage::

    python benchmarks/apex_limiter.py --actors 1 2 4 --ratios 0.25 4 --steps 20000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rl_coordconv.logs import read_scalars

SMALL = ["--set", "batch_size=32", "--set", "replay_capacity=20000", "--set", "learning_starts=2000"]
SMALL += ["--set", "target_update_interval=500", "--n-envs", "4", "--log-every", "1000", "--no-progress"]


def measure(actors: int, ratio: float, steps: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as log_dir:
        command = [sys.executable, "-m", "rl_coordconv.train", "--algo", "apex", "--game", "Breakout"]
        command += [*SMALL, "--actors", str(actors), "--timesteps", str(steps), "--log-dir", log_dir]
        command += ["--set", f"samples_per_insert={ratio}"]
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - start
        run = Path(log_dir) / "apex" / "Breakout" / "conv" / "seed0"
        state = json.loads((run / "state.json").read_text())
        scalars = read_scalars(run)
    ratios = [value for _, value in scalars["charts/samples_per_insert"]]
    late = ratios[len(ratios) // 2 :]

    def mean(tag: str) -> float:
        values = [value for _, value in scalars[tag]]
        return sum(values) / len(values)

    return {
        "final": float(state["samples_per_insert"]),
        "worst": max(abs(r / ratio - 1) for r in late),
        "learner": mean("charts/learner_steps_per_s"),
        "actors": mean("charts/fps"),
        "learner_held": mean("charts/learner_wait_fraction"),
        "actors_held": mean("charts/actor_hold_fraction"),
        "wall": wall,
        "smallest_share": min(state["actor_steps"]) / sum(state["actor_steps"]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--actors", type=int, nargs="+", default=[1, 2, 4], help="actor counts")
    parser.add_argument("--ratios", type=float, nargs="+", default=[0.25, 4.0], help="samples_per_insert values")
    parser.add_argument("--steps", type=int, default=20_000, help="agent steps per run")
    args = parser.parse_args(argv)
    print(f"python {' '.join(sys.argv)}\n")
    print(
        "| actors | samples_per_insert | at the end | worst deviation, 2nd half | learner steps/s "
        "| agent steps/s | learner held | actors held | smallest actor's share | wall (s) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for ratio in args.ratios:
        for actors in args.actors:
            m = measure(actors, ratio, args.steps)
            print(
                f"| {actors} | {ratio:g} | {m['final']:.3f} | {100 * m['worst']:.1f}% | {m['learner']:.1f} "
                f"| {m['actors']:.0f} | {100 * m['learner_held']:.0f}% | {100 * m['actors_held']:.0f}% "
                f"| {100 * m['smallest_share']:.0f}% | {m['wall']:.0f} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
