"""Cost of the Python adapter around ALE's C++ vector env, as a fraction of the emulator's own step.

``AtariVecEnv`` adds life tracking, SB3's reset actions, the frame-stack zero-fill at episode
starts, reward clipping and SB3's info dicts to every step. This records a stretch of real
Breakout play (16 envs, random actions, life losses and game ends as they come), times the real
steps, then replays the recorded emulator outputs through the adapter with a stub emulator, so
the second timing is the adapter alone. The two are measured in alternation, in one process::

    python benchmarks/adapter_overhead.py --steps 2000 --repeats 5
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any, cast

import numpy as np
from gymnasium.spaces import Discrete

from rl_coordconv.envs.vector import AtariVecEnv, _Emulator


class _Replay(_Emulator):
    """A stand-in emulator that returns recorded ``recv`` results in order."""

    def __init__(self, first: tuple[np.ndarray, np.ndarray], steps: list[tuple[Any, ...]]) -> None:
        self.first, self.steps, self.index = first, steps, 0
        self.num_envs = first[0].shape[0]

    def reset(self, seed: int | None) -> tuple[np.ndarray, np.ndarray]:
        self.index = 0
        return self.first

    def send(self, actions: np.ndarray) -> None:
        pass

    def recv(self) -> Any:
        self.index += 1
        return self.steps[self.index - 1]

    def close(self) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=2000, help="vector steps per timing")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--n-envs", type=int, default=16)
    args = parser.parse_args()

    env = AtariVecEnv("Breakout", args.n_envs, seed=0)
    emulator = env.emulator
    actions = np.random.default_rng(0).integers(0, int(cast(Discrete, env.action_space).n), (args.steps, args.n_envs))
    first = emulator.reset(0)
    recorded = []
    for row in actions:
        emulator.send(row)
        recorded.append(emulator.recv())
    replay = _Replay(first, recorded)

    emulator_us, adapter_us = [], []
    for _ in range(args.repeats):
        emulator.reset(0)
        start = time.perf_counter()
        for row in actions:
            emulator.send(row)
            emulator.recv()
        emulator_us.append((time.perf_counter() - start) / args.steps * 1e6)

        env.emulator = replay
        env.reset()
        start = time.perf_counter()
        for row in actions:
            env.step(row)
        adapter_us.append((time.perf_counter() - start) / args.steps * 1e6)
        env.emulator = emulator
    env.close()

    games = sum(int((step[2] | step[3]).sum()) for step in recorded)
    print(f"{args.n_envs} envs, {args.steps} vector steps ({games} game ends), {args.repeats} repeats")
    print(f"emulator step: median {statistics.median(emulator_us):8.1f} µs   {[round(t) for t in emulator_us]}")
    print(f"adapter alone: median {statistics.median(adapter_us):8.1f} µs   {[round(t) for t in adapter_us]}")
    ratios = [a / e for a, e in zip(adapter_us, emulator_us, strict=True)]
    print(f"adapter / emulator, median of paired ratios: {statistics.median(ratios):.3f}")


if __name__ == "__main__":
    main()
