"""A2C training throughput: our ``train`` against SB3's reference Atari stack, same machine, same run.

Each measurement is a fresh process training A2C on Pong with the same hyperparameters (OpenAI
baselines': 16 envs, 5 steps, TF-style RMSprop) for ``--steps`` agent steps:

- ``reference``: SB3 ``make_atari_env`` + ``SubprocVecEnv`` + ``VecFrameStack`` + ``A2C("CnnPolicy")``;
- ``conv`` / ``coordconv``: our training run (:func:`rl_coordconv.lifecycle.train`, what
  ``python -m rl_coordconv.train`` runs) with its default env backend.

Every variant runs on each of ``--devices``, all in alternation, ``--repeats`` times, so drift on
a shared machine hits all alike. Reported for each run: agent steps per second of the learning
phase (SB3's ``learn``; our run's own clock) and of the whole process (start-up included:
imports, env creation); their medians; and the median and range of the per-repeat ratios to the
reference on the same device. Usage::

    python benchmarks/train_throughput.py --steps 100000 --repeats 3
    python benchmarks/train_throughput.py --steps 30000 --repeats 1 --devices cpu cuda   # on a GPU box
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import subprocess
import sys
import tempfile
import time

VARIANTS = ("reference", "conv", "coordconv")


def run_reference(steps: int, seed: int, device: str) -> float:
    # SB3 (and with it PyTorch's OpenMP) loads before rl_coordconv, whose import would set
    # OMP_WAIT_POLICY: the stock stack runs with OpenMP's own settings, as a user's would.
    from stable_baselines3 import A2C
    from stable_baselines3.common.env_util import make_atari_env
    from stable_baselines3.common.sb2_compat.rmsprop_tf_like import RMSpropTFLike
    from stable_baselines3.common.vec_env import SubprocVecEnv, VecFrameStack

    from rl_coordconv.envs import make_ale_env

    env = VecFrameStack(
        make_atari_env(functools.partial(make_ale_env, "Pong"), n_envs=16, seed=seed, vec_env_cls=SubprocVecEnv),
        n_stack=4,
    )
    model = A2C(
        "CnnPolicy",
        env,
        ent_coef=0.01,
        vf_coef=0.5,
        policy_kwargs=dict(optimizer_class=RMSpropTFLike, optimizer_kwargs=dict(alpha=0.99, eps=1e-5, weight_decay=0)),
        seed=seed,
        device=device,
    )
    start = time.perf_counter()
    model.learn(steps)
    elapsed = time.perf_counter() - start
    env.close()
    return model.num_timesteps / elapsed


def run_ours(variant: str, steps: int, seed: int, device: str) -> float:
    from rl_coordconv.experiment import TrainConfig
    from rl_coordconv.lifecycle import train
    from rl_coordconv.runs import RunDir

    with tempfile.TemporaryDirectory() as log_dir:
        config = TrainConfig(
            algo="a2c",
            game="Pong",
            coordconv=variant == "coordconv",
            seed=seed,
            timesteps=steps,
            device=device,
            log_dir=log_dir,
            checkpoint_every=10**12,
            progress=False,
        )
        run: RunDir = train(config)
        state = run.read_state()
    return state["agent_steps"] / state["wall_time"]


def measure_in_subprocess(variant: str, steps: int, seed: int, device: str) -> tuple[float, float]:
    """(learning-phase steps/s, whole-process steps/s) of one run in a fresh process."""
    command = [sys.executable, __file__, "--one", variant, "--steps", str(steps), "--seed", str(seed)]
    start = time.perf_counter()
    out = subprocess.run([*command, "--devices", device], capture_output=True, text=True, check=True).stdout
    whole = time.perf_counter() - start
    return float(json.loads(out.strip().splitlines()[-1])["sps"]), steps / whole


def _ratio(values: list[float], reference: list[float]) -> str:
    ratios = [v / r for v, r in zip(values, reference, strict=True)]
    spread = f" [{min(ratios):.2f}–{max(ratios):.2f}]" if len(ratios) > 1 else ""
    return f"{statistics.median(ratios):.2f}×{spread}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=100_000, help="agent steps per run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--devices", nargs="+", default=["cpu"], help="cpu and/or cuda")
    parser.add_argument("--one", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.one == "reference":
        print(json.dumps({"variant": args.one, "sps": run_reference(args.steps, args.seed, args.devices[0])}))
        return 0
    if args.one:
        from rl_coordconv.runtime import tune_malloc

        tune_malloc()  # as the train CLI does
        print(json.dumps({"variant": args.one, "sps": run_ours(args.one, args.steps, args.seed, args.devices[0])}))
        return 0

    cells = [(variant, device) for device in args.devices for variant in args.variants]
    learn: dict[tuple[str, str], list[float]] = {cell: [] for cell in cells}
    whole: dict[tuple[str, str], list[float]] = {cell: [] for cell in cells}
    print(f"A2C on Pong, {args.steps:,} agent steps per run, {args.repeats} alternating repeats, fresh processes")
    for repeat in range(args.repeats):
        for variant, device in cells:
            sps, process_sps = measure_in_subprocess(variant, args.steps, args.seed, device)
            learn[(variant, device)].append(sps)
            whole[(variant, device)].append(process_sps)
            print(
                f"  repeat {repeat + 1}: {variant:<10} {device:<5} {sps:7.0f} steps/s learning, "
                f"{process_sps:7.0f} whole process",
                flush=True,
            )
    print("\n| variant | device | learning steps/s per run (median) | ratio to reference | "
          "whole process steps/s per run (median) | ratio to reference |")  # fmt: skip
    print("|---|---|---|---:|---|---:|")
    for variant, device in cells:
        reference = ("reference", device)
        row = [variant, device]
        for table in (learn, whole):
            values = table[(variant, device)]
            row.append(f"{', '.join(f'{v:.0f}' for v in values)} ({statistics.median(values):.0f})")
            row.append(_ratio(values, table[reference]) if reference in table and variant != "reference" else "")
        print("| " + " | ".join(row) + " |")
    for device in args.devices:
        if ("conv", device) in learn and ("coordconv", device) in learn:
            paired = _ratio(learn[("coordconv", device)], learn[("conv", device)])
            print(f"\ncoordconv / conv on {device}, learning phase (median of paired ratios [range]): {paired}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
