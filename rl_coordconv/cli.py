"""What the command-line tools share: a ``--help`` that states each option's default once, the
options of a run that ``train`` and ``sweep`` both take, renamed options. Cheap to import."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from rl_coordconv.experiment import ACTOR_PLACEMENTS

__all__ = ["HelpFormatter", "actor_overrides", "add_run_options", "exit_code", "renamed_option"]


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends ``(default: X)`` to an option's help, unless there is no default to state (None, an
    off switch, an empty list) or the help text already says what the default is."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        stated = "(default" in text or "default:" in text
        if action.default is None or action.default is False or action.default == [] or stated:
            return text
        return super()._get_help_string(action)


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """The options of a run that ``sweep`` also takes and passes on to each of its runs."""
    parser.add_argument("--env-backend", default="ale", help="the emulator: ale, envpool or sb3")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--log-dir", default="runs", help="root of the run directories")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a hyperparameter, e.g. --set learning_rate=lin_1e-3 (repeatable)")  # fmt: skip
    parser.add_argument("--checkpoint-every", default="100k", help="agent steps between checkpoints")
    actors = parser.add_argument_group("algorithms with actors (--algo apex)")
    actors.add_argument("--actors", type=int, default=None, help="ε-greedy actors (default: 4), same as --set actors=N")
    actors.add_argument(
        "--actors-on", default="local", help=f"where the actors run: {' or '.join(ACTOR_PLACEMENTS)} (Ray actors)"
    )


def actor_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """``--set`` values, with ``--actors N`` as ``actors=N`` (for an algorithm with actors)."""
    from rl_coordconv.agents import algo_spec, parse_overrides

    overrides = parse_overrides(args.overrides)
    if args.actors is not None:
        if not algo_spec(args.algo).has_actors:
            raise ValueError(f"--actors is for algorithms with actors (apex), not {args.algo}")
        if args.actors < 1:
            raise ValueError(f"--actors must be at least 1, got {args.actors}")
        if overrides.get("actors", args.actors) != args.actors:
            raise ValueError(f"--actors {args.actors} and --set actors={overrides['actors']} disagree")
        overrides["actors"] = args.actors
    return overrides


def renamed_option(argv: list[str], old: str, new: str) -> list[str]:
    """``argv`` with the option ``old`` (``old X`` or ``old=X``) spelled ``new``, and a one-line notice.

    Old command lines keep working after an option gets a clearer name.
    """
    renamed = [new + arg[len(old) :] if arg == old or arg.startswith(old + "=") else arg for arg in argv]
    if renamed != argv:
        print(f"note: {old} is now {new}; the old name still works", file=sys.stderr)
    return renamed


def exit_code(work: Callable[[], object]) -> int:
    """Run a training command's work and map its outcome to an exit code, errors to one line.

    0 done; 2 a bad setting or a run directory in the wrong state; 1 a run that cannot go on (an
    actor that keeps dying) or a disk error; 130 (Ctrl-C) or 143 (SIGTERM) stopped, at a checkpoint
    when the run could write one.
    """
    from rl_coordconv.runs import RunStateError, RunStopped, TrainingFailed

    try:
        work()
    except RunStopped as stopped:
        print(stopped, file=sys.stderr)
        return 128 + stopped.signal_number
    except (ValueError, RunStateError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (TrainingFailed, OSError) as error:  # OSError: e.g. a --log-dir it cannot write to
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # before the run began (during one, Ctrl-C ends in RunStopped)
        print("interrupted", file=sys.stderr)
        return 130
    return 0
