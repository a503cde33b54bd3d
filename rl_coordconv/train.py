"""Train an agent on an Atari game (or Catch), conv or CoordConv: ``python -m rl_coordconv.train``.

    python -m rl_coordconv.train --algo a2c --game Pong --coordconv
    python -m rl_coordconv.train --algo a2c --game Breakout --timesteps 2M --seed 1
    python -m rl_coordconv.train --algo a2c --game Pong --coordconv --resume
    python -m rl_coordconv.train --algo apex --game Pong --coordconv --actors 4 [--actors-on ray]

A run writes ``<log-dir>/<algo>/<Game>/<arm>/seed<N>/`` (``--log-dir`` defaults to ``runs``; see
:mod:`rl_coordconv.runs`); ``tensorboard --logdir runs`` shows it while it trains. This module
only reads the command line: the run itself is :func:`rl_coordconv.lifecycle.train`.
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys

from rl_coordconv.cli import HelpFormatter, actor_overrides, add_run_options, exit_code, renamed_option
from rl_coordconv.experiment import TrainConfig
from rl_coordconv.steps import parse_steps

__all__ = ["build_parser", "main"]

_ALGOS = "a2c, ppo, dqn, qrdqn, apex"  # the registry's names, without importing torch for --help


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m rl_coordconv.train",
        description="Train an agent (a2c, ppo, dqn, qrdqn, apex) on an Atari game or Catch, conv or CoordConv.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--algo", default="a2c", help=f"one of {_ALGOS}")
    parser.add_argument(
        "--game",
        default="Pong",
        help="Atari game: Pong, ms_pacman, ALE/Breakout-v5, ...; or Catch, a small NumPy task in the same "
        "observation space (no no-ops, FIRE, lives or frame skip; every --env-backend plays it alike)",
    )
    parser.add_argument("--coordconv", action="store_true", help="CoordConv on the layers --coord-layers names")
    parser.add_argument("--with-r", action="store_true", help="add the radius channel (needs --coordconv)")
    parser.add_argument(
        "--coord-layers", default="first", help="with --coordconv: first, all, or conv indices like 0,2"
    )
    parser.add_argument(
        "--head",
        default="flatten",
        help="flatten (the Nature CNN) or pool (the last conv map averaged over space: position "
        "beyond the last layer's receptive field is lost to a plain conv trunk)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seeds the network, the envs and the run's directory name")
    parser.add_argument("--timesteps", default=None, help="agent steps, e.g. 1e6 or 10M (default: the algo's)")
    parser.add_argument(
        "--n-envs", type=int, default=None, help="parallel envs, per actor for apex (default: the algo's)"
    )
    add_run_options(parser)
    parser.add_argument(
        "--ray-address",
        default=None,
        help="--actors-on ray's cluster: auto (a running one), local (start one here), host:port, ray://…; "
        "default: the running cluster Ray finds, else start one here",
    )
    parser.add_argument("--log-every", default="10k", help="agent steps between fps/loss scalars")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run from its last checkpoint")
    parser.add_argument("--overwrite", action="store_true", help="delete an existing run in the same directory first")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def _config(args: argparse.Namespace) -> TrainConfig:
    if args.n_envs is not None and args.n_envs < 1:
        raise ValueError(f"--n-envs must be at least 1, got {args.n_envs}")
    layers: str | list[int] = args.coord_layers
    if re.fullmatch(r"[0-9](,[0-9])*", args.coord_layers):
        layers = [int(i) for i in args.coord_layers.split(",")]
    return TrainConfig(
        algo=args.algo,
        game=args.game,
        coordconv=args.coordconv,
        with_r=args.with_r,
        coord_layers=layers,
        head=args.head,
        seed=args.seed,
        timesteps=parse_steps(args.timesteps) if args.timesteps is not None else 0,
        n_envs=args.n_envs if args.n_envs is not None else 0,
        env_backend=args.env_backend,
        device=args.device,
        log_dir=args.log_dir,
        hyperparams=actor_overrides(args),
        checkpoint_every=parse_steps(args.checkpoint_every),
        log_every=parse_steps(args.log_every),
        progress=False if args.no_progress else None,
        actors_on=args.actors_on,
        ray_address=args.ray_address,
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(renamed_option(argv, "--backend", "--actors-on"))

    def work() -> None:
        config = _config(args)  # PyTorch loads here (the registry): --help answers at once
        from rl_coordconv.lifecycle import train
        from rl_coordconv.runtime import tune_malloc

        tune_malloc()
        command = shlex.join(["python", "-m", "rl_coordconv.train", *argv])
        train(config, resume=args.resume, overwrite=args.overwrite, command=command)

    return exit_code(work)


if __name__ == "__main__":
    raise SystemExit(main())
