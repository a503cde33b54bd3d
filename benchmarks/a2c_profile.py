"""Where an A2C rollout's time goes: a per-rollout budget of our training loop, and the cores' use.

Trains A2C on Pong with the project's defaults (16 envs × 5 steps, ALE's vector env) for
``--steps`` agent steps and times, by wrapping them from outside (nothing in the package changes,
and nothing is timed when this script is not running):

- ``emulator: hand over actions`` (``step_async``) and ``emulator: wait`` (``step_wait``: the main
  thread blocked while ALE's threads step the games; their own CPU time is reported separately);
- ``observation conversion`` (uint8 → float / 255 into the rollout tensor);
- ``action forwards: trunk`` and ``action forwards: heads`` (the five batch-16 forwards that act)
  and ``last-value forward``;
- ``returns`` (GAE over the rollout, NumPy);
- ``update: heads forward + loss + backward`` (autograd through the small heads),
  ``update: trunk backward`` (the replayed backward, :meth:`AtariCNN.backward_cached`),
  ``update: clip`` and ``update: optimizer``;
- ``Python and SB3 bookkeeping``: the rest of each rollout (callbacks, info dicts, the loop).

Also the CPU time of the main thread, ALE's emulator threads and PyTorch's OpenMP threads, and
what share of the two cores the process used. Usage::

    python benchmarks/a2c_profile.py --steps 100000 [--coordconv]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the package sets it, before torch loads (BENCHMARKS.md)

import argparse
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from rl_coordconv.agents import make_model, resolve_hyperparams
from rl_coordconv.envs import make_atari_vec_env
from rl_coordconv.runtime import tune_malloc

_TICK = os.sysconf("SC_CLK_TCK")


def _threads() -> dict[int, float]:
    """CPU seconds of each thread of this process, by thread id."""
    times = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            fields = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the thread ended
        times[int(tid)] = (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime
    return times


class Timers:
    """Seconds spent in wrapped calls, by name."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    def wrap(self, name: str | Callable[[], str], function: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[name() if callable(name) else name] += time.perf_counter() - start

        return timed


def profile(steps: int, coordconv: bool, seed: int, ale_threads: int = 0) -> None:
    before_env = set(_threads())
    env: Any = make_atari_vec_env("Pong", 16, seed=seed, num_threads=ale_threads)  # Any: methods wrapped below
    emulator_threads = set(_threads()) - before_env
    model: Any = make_model("a2c", env, resolve_hyperparams("a2c"), coordconv=coordconv, seed=seed, device="cpu")
    timers = Timers()
    phase = {"now": "rollout"}

    def in_phase(label: str) -> Callable[[], str]:
        return lambda: f"{label} ({phase['now']})"

    extractor = model.policy.features_extractor
    env.step_async = timers.wrap("emulator: hand over actions", env.step_async)
    env.step_wait = timers.wrap("emulator: wait", env.step_wait)
    model._scale_into = timers.wrap("observation conversion", model._scale_into)
    extractor.forward_cached = timers.wrap("action forwards: trunk", extractor.forward_cached)
    model._heads_from_features = timers.wrap(in_phase("heads forward"), model._heads_from_features)
    model._heads = timers.wrap("last-value forward", model._heads)
    model._compute_returns = timers.wrap("returns", model._compute_returns)
    extractor.backward_cached = timers.wrap("update: trunk backward", extractor.backward_cached)
    optimizer = model.policy.optimizer
    optimizer.step = timers.wrap("update: optimizer", optimizer.step)
    clip = torch.nn.utils.clip_grad_norm_
    torch.nn.utils.clip_grad_norm_ = timers.wrap("update: clip", clip)
    collect, train = model.collect_rollouts, model.train

    def rollout(*args: Any, **kwargs: Any) -> bool:
        phase["now"] = "rollout"
        return collect(*args, **kwargs)

    def update() -> None:
        phase["now"] = "update"
        train()

    model.collect_rollouts = timers.wrap("rollout", rollout)
    model.train = timers.wrap("update", update)

    cpu_before, start = _threads(), time.perf_counter()
    process_before = time.process_time()
    model.learn(steps)
    wall = time.perf_counter() - start
    process_cpu = time.process_time() - process_before
    cpu_after = _threads()
    torch.nn.utils.clip_grad_norm_ = clip
    env.close()

    rollouts = model.num_timesteps / (16 * 5)
    s = timers.seconds
    parts = {
        "emulator: wait": s["emulator: wait"],
        "emulator: hand over actions": s["emulator: hand over actions"],
        "observation conversion": s["observation conversion"],
        "action forwards: trunk": s["action forwards: trunk"],
        "action forwards: heads": s["heads forward (rollout)"],
        "last-value forward": s["last-value forward"],
        "returns": s["returns"],
        "update: heads forward + loss + backward": s["update"]
        - s["update: trunk backward"]
        - s["update: clip"]
        - s["update: optimizer"],
        "update: trunk backward": s["update: trunk backward"],
        "update: clip": s["update: clip"],
        "update: optimizer": s["update: optimizer"],
    }
    rollout_parts = [k for k in parts if not k.startswith("update") and k != "returns"]
    inside = s["rollout"] - sum(parts[k] for k in rollout_parts) - parts["returns"]
    parts["Python and SB3 bookkeeping"] = inside + (wall - s["rollout"] - s["update"])

    print(f"A2C on Pong, {'coordconv' if coordconv else 'conv'}, {model.num_timesteps:,} agent steps in {wall:.1f} s")
    print(f"= {model.num_timesteps / wall:.0f} agent steps/s, {1e3 * wall / rollouts:.1f} ms per 80-step rollout\n")
    print("| part of a rollout + update | ms per rollout | share |")
    print("|---|---:|---:|")
    for name, seconds in parts.items():
        print(f"| {name} | {1e3 * seconds / rollouts:.2f} | {100 * seconds / wall:.1f}% |")
    print(f"| **total** | **{1e3 * wall / rollouts:.2f}** | 100% |\n")

    used = {tid: cpu_after.get(tid, 0.0) - cpu_before.get(tid, 0.0) for tid in cpu_after}
    main_tid = os.getpid()
    groups = {"main thread": [main_tid], "ALE emulator threads": sorted(emulator_threads & set(used))}
    groups["PyTorch / other threads"] = sorted(set(used) - {main_tid} - emulator_threads)
    print("| threads | count | CPU s | cores busy on average |")
    print("|---|---:|---:|---:|")
    for name, tids in groups.items():
        cpu = sum(used[t] for t in tids)
        print(f"| {name} | {len(tids)} | {cpu:.1f} | {cpu / wall:.2f} |")
    print(f"| **process** | | {process_cpu:.1f} | {process_cpu / wall:.2f} of {os.cpu_count()} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=100_000, help="agent steps")
    parser.add_argument("--coordconv", action="store_true", help="the CoordConv arm")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ale-threads", type=int, default=0, help="emulator threads (0: one per core)")
    parser.add_argument("--torch-threads", type=int, default=torch.get_num_threads(), help="PyTorch intra-op threads")
    args = parser.parse_args(argv)
    tune_malloc()  # as the train CLI does
    torch.set_num_threads(args.torch_threads)
    print(f"{args.torch_threads} PyTorch threads, {args.ale_threads or os.cpu_count()} emulator threads")
    profile(args.steps, args.coordconv, args.seed, args.ale_threads)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
