"""A2C training throughput: our ``train`` against SB3's reference Atari stack, same machine, same run.

Each measurement is a fresh process training A2C on Pong with the same hyperparameters (OpenAI
baselines': 16 envs, 5 steps, TF-style RMSprop) for ``--steps`` agent steps:

- ``reference``: SB3 ``make_atari_env`` + ``SubprocVecEnv`` + ``VecFrameStack`` + ``A2C("CnnPolicy")``;
- ``conv`` / ``coordconv``: ``python -m rl_coordconv.train`` with its default env backend.

The three run in alternation, ``--repeats`` times, so drift on a shared machine hits all alike.
Reported: agent steps per second of each run (learning only, start-up excluded), their medians,
and the median of the per-repeat ratios. Usage::

    python benchmarks/train_throughput.py --steps 100000 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time

VARIANTS = ("reference", "conv", "coordconv")


def run_reference(steps: int, seed: int) -> float:
    import functools

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
        device="cpu",
    )
    start = time.perf_counter()
    model.learn(steps)
    elapsed = time.perf_counter() - start
    env.close()
    return model.num_timesteps / elapsed


def run_ours(variant: str, steps: int, seed: int) -> float:
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
            device="cpu",
            log_dir=log_dir,
            checkpoint_every=10**12,
            progress=False,
        )
        run: RunDir = train(config)
        state = run.read_state()
    return state["agent_steps"] / state["wall_time"]


def measure_in_subprocess(variant: str, steps: int, seed: int) -> float:
    out = subprocess.run(
        [sys.executable, __file__, "--one", variant, "--steps", str(steps), "--seed", str(seed)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return float(json.loads(out.strip().splitlines()[-1])["sps"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=100_000, help="agent steps per run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--one", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.one:
        from rl_coordconv.runtime import tune_malloc

        if args.one != "reference":
            tune_malloc()  # as the train CLI does
        sps = (
            run_reference(args.steps, args.seed)
            if args.one == "reference"
            else run_ours(args.one, args.steps, args.seed)
        )
        print(json.dumps({"variant": args.one, "sps": sps}))
        return 0

    results: dict[str, list[float]] = {v: [] for v in args.variants}
    print(f"A2C on Pong, {args.steps:,} agent steps per run, {args.repeats} alternating repeats")
    for repeat in range(args.repeats):
        for variant in args.variants:
            sps = measure_in_subprocess(variant, args.steps, args.seed)
            results[variant].append(sps)
            print(f"  repeat {repeat + 1}: {variant:<10} {sps:7.0f} steps/s", flush=True)
    print("\n| variant | steps/s per run | median | median ratio to reference |")
    print("|---|---|---:|---:|")
    for variant, values in results.items():
        ratio = ""
        if "reference" in results and variant != "reference":
            ratio = f"{statistics.median(v / r for v, r in zip(values, results['reference'], strict=True)):.2f}×"
        runs = ", ".join(f"{v:.0f}" for v in values)
        print(f"| {variant} | {runs} | {statistics.median(values):.0f} | {ratio} |")
    if "conv" in results and "coordconv" in results:
        paired = statistics.median(c / v for c, v in zip(results["coordconv"], results["conv"], strict=True))
        print(f"\ncoordconv / conv (median of paired ratios): {paired:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
