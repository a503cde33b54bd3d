"""Run a grid of games × arms (× heads) × seeds: ``python -m rl_coordconv.sweep``.

    python -m rl_coordconv.sweep --algo a2c --games atari9 --arms conv coordconv --seeds 0 1 2 --timesteps 500k
    python -m rl_coordconv.sweep --algo a2c --games Catch --arms conv coordconv --head flatten pool --seeds 0 1 2
    python -m rl_coordconv.sweep ... --runs-on ray --ray-address auto     # each run a task on a Ray cluster

Every cell is an ordinary ``train`` run in its usual directory. The sweep skips finished runs,
resumes interrupted ones from their checkpoints and restarts those that died before their first
one, so it can be stopped (Ctrl-C, a reboot, a lost node) and started again at any time. Ctrl-C
or SIGTERM to a local sweep has each run checkpoint where it stands before it stops. It refuses
to mix in an existing run made with other settings.

``--runs-on local`` runs up to ``--workers`` trainings at once as child processes (default: one
per two cores, which is what one A2C run uses); ``--runs-on ray`` submits each run as a Ray task
to a cluster (``--ray-address``; by default the running one Ray finds, else one started here),
with a GPU per run when the cluster has GPUs. The run directories must then be on storage every
node sees. Ray is an optional extra (``pip install 'rl-coordconv[ray]'``). Ape-X runs take
``--actors`` and ``--actors-on`` as ``train`` does; with ``--actors-on ray`` and local runs, their
actors join the cluster at ``--ray-address``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from rl_coordconv.agents import algo_spec
from rl_coordconv.cli import HelpFormatter, actor_overrides, add_run_options, renamed_option
from rl_coordconv.envs import resolve_games
from rl_coordconv.experiment import TrainConfig
from rl_coordconv.grid import ARMS, RUN_PLACEMENTS, plan, run_local, run_ray
from rl_coordconv.runs import RunStateError
from rl_coordconv.runtime import resolve_device
from rl_coordconv.steps import parse_steps

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m rl_coordconv.sweep",
        description="Run games × arms × seeds as train runs; skips finished runs and resumes interrupted ones.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--algo", default="a2c", help="any algo train takes")
    parser.add_argument("--games", nargs="+", default=["atari9"], help="game names and/or atari9")
    parser.add_argument("--arms", nargs="+", default=["conv", "coordconv"], help=f"from {', '.join(ARMS)}")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="one run per seed, game and arm")
    parser.add_argument(
        "--head", nargs="+", default=["flatten"], help="flatten and/or pool: each arm with each head (see train)"
    )
    parser.add_argument("--timesteps", default=None, help="agent steps per run, e.g. 2M (default: the algo's)")
    parser.add_argument("--n-envs", type=int, default=None, help="parallel envs per run (default: the algo's)")
    add_run_options(parser)
    parser.add_argument(
        "--workers",
        type=int,
        default=max(1, (os.cpu_count() or 2) // 2),
        help="local runs at once (default: one per two cores)",
    )
    parser.add_argument(
        "--runs-on", default="local", help=f"where each run goes: {' or '.join(RUN_PLACEMENTS)} (a Ray task)"
    )
    parser.add_argument(
        "--ray-address",
        default=None,
        help="the Ray cluster of --runs-on ray (and of --actors-on ray): auto (a running one), local (start one "
        "here), host:port, ray://…; default: the running cluster Ray finds, else start one here",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the plan and exit")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(renamed_option(sys.argv[1:] if argv is None else argv, "--backend", "--runs-on"))
    try:
        if args.runs_on not in RUN_PLACEMENTS:
            raise ValueError(f"unknown --runs-on {args.runs_on!r}; choose from {', '.join(RUN_PLACEMENTS)}")
        if args.workers < 1:
            raise ValueError(f"--workers must be at least 1, got {args.workers}")
        if args.n_envs is not None and args.n_envs < 1:
            raise ValueError(f"--n-envs must be at least 1, got {args.n_envs}")
        algo_spec(args.algo)
        if args.runs_on == "local":  # a Ray cluster's workers may have the GPU this driver lacks
            resolve_device(args.device)
        base = TrainConfig(
            algo=args.algo,
            timesteps=parse_steps(args.timesteps) if args.timesteps else 0,
            n_envs=args.n_envs or 0,
            env_backend=args.env_backend,
            device=args.device,
            log_dir=str(Path(args.log_dir)),
            hyperparams=actor_overrides(args),
            checkpoint_every=parse_steps(args.checkpoint_every),
            actors_on=args.actors_on,
            # a run on Ray starts its actors in the cluster it runs in
            ray_address=args.ray_address if args.actors_on == "ray" and args.runs_on == "local" else None,
        )
        cells = plan(
            base, resolve_games(args.games), args.arms, sorted(set(args.seeds)), list(dict.fromkeys(args.head))
        )
        todo = {
            action: sum(c.action == action for c in cells) for action in ("start", "resume", "restart", "skip", "busy")
        }
        runs = f"{len(cells)} run" + ("" if len(cells) == 1 else "s")
        print(
            f"sweep of {runs} ({args.algo}, {cells[0].config.timesteps:,} steps each): "
            + ", ".join(f"{n} to {a}" if a not in ("skip", "busy") else f"{n} {a}" for a, n in todo.items() if n)
        )
        if args.dry_run:
            for cell in cells:
                print(f"  {cell.action:8} {cell.run.path}")
            return 0
        if args.runs_on == "ray":
            return run_ray(cells, args.ray_address)
        return run_local(cells, args.workers)
    except (ValueError, RunStateError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
