"""Ape-X speed: replay at full size, learner updates, actor throughput locally and on a local Ray cluster.

Four measurements, each short, printed as markdown:

- ``replay``: fill a :class:`PrioritizedReplay` of ``--capacity`` transitions with synthetic frames
  (16 games, as 4 actors × 4 games), then time adding a 200-transition chunk, sampling a batch of
  512 slots with importance weights plus updating their priorities (the sum-tree work; target
  ≤ 2 ms at 1M), and rebuilding that batch's stacked observations from single frames. Reports the
  process's resident memory (target ≤ 8 GiB at 1M).
- ``learner``: learner updates per second at batch 512 (and 32), conv and CoordConv, on synthetic
  batches (no replay, no actors competing for the cores).
- ``actors``: the CPU cost of one actor (in this process: agent steps per CPU-second, which does
  not depend on what else the machine runs), then agent steps (and frames = 4 × steps) per
  second delivered by 1, 2, … local actor processes, with no learner running.
- ``ray``: the same through Ray actors on a local Ray cluster, for each ``--ray-actors`` count.

Usage::

    python benchmarks/apex.py --capacity 1000000 --seconds 20 --actors 1 2 --ray-actors 1 2 4
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the training CLI does, before torch loads

import numpy as np
import torch

from rl_coordconv.agents.apex import ApexConfig, ApexLearner, Chunk, PrioritizedReplay, SampledBatch, make_apex_model
from rl_coordconv.agents.apex.actor import ActorOutput, ActorSpec, ApexActor
from rl_coordconv.agents.apex.networks import apex_policy_kwargs, game_spaces
from rl_coordconv.agents.apex.pools import ActorFailure, ActorPool, LocalActorPool, RayActorPool
from rl_coordconv.runs import fsync_directory
from rl_coordconv.runtime import connect_ray, tune_malloc

GAME = "Pong"


def rss_gib() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 2**20
    return float("nan")


def median_ms(times: list[float]) -> float:
    return 1e3 * statistics.median(times)


def _chunk(rng: np.random.Generator, frames: np.ndarray, streams: int, rows_per_stream: int, start: int) -> Chunk:
    """``rows_per_stream`` new rows in each of ``streams`` streams, each row a transition, random priorities."""
    n = streams * rows_per_stream
    stream_ids = np.repeat(np.arange(streams), rows_per_stream)
    rows = start + np.tile(np.arange(rows_per_stream), streams)
    return Chunk(
        frames=frames[:n],
        frame_streams=stream_ids,
        streams=stream_ids,
        rows=rows,
        next_rows=rows,
        actions=rng.integers(0, 6, n),
        returns=rng.normal(size=n).astype(np.float32),
        discounts=np.zeros(n, dtype=np.float32),
        priorities=rng.random(n),
    )


def bench_replay(capacity: int, iterations: int, save_dir: str | None) -> None:
    rng = np.random.default_rng(0)
    streams = 16
    before = rss_gib()
    replay = PrioritizedReplay(capacity, streams, seed=0)
    per_stream = 1000
    frames = rng.integers(0, 256, (streams * per_stream, 84, 84), dtype=np.uint8)
    start = time.perf_counter()
    written = 0
    while written < replay.rows_per_stream:
        replay.add(_chunk(rng, frames, streams, per_stream, written))
        written += per_stream
    fill = time.perf_counter() - start
    add_times, sample_times, gather_times = [], [], []
    small = frames[: streams * 13]
    for _ in range(iterations):
        t0 = time.perf_counter()
        replay.add(_chunk(rng, small, streams, 13, written))  # ≈ one actor chunk (50 steps × 4 games)
        written += 13
        t1 = time.perf_counter()
        indices, _, _ = replay.sample_indices(512, beta=0.4)
        replay.update_priorities(indices, rng.random(512))
        t2 = time.perf_counter()
        replay.stacks(indices)
        replay.stacks(replay.next_slots(indices))
        t3 = time.perf_counter()
        add_times.append(t1 - t0)
        sample_times.append(t2 - t1)
        gather_times.append(t3 - t2)
    print(f"\n### Replay at capacity {replay.capacity:,} ({streams} games, synthetic frames)\n")
    print("| measurement | value |\n|---|---:|")
    print(f"| fill rate (transitions/s, frames copied once) | {written * streams / fill:,.0f} |")
    print(f"| add one chunk of {13 * streams} transitions (ms, median) | {median_ms(add_times):.2f} |")
    print(f"| sample 512 slots + IS weights + update 512 priorities (ms, median) | {median_ms(sample_times):.2f} |")
    print(f"| rebuild the batch's obs + next obs stacks, 2×512×4 frames (ms, median) | {median_ms(gather_times):.2f} |")
    print(f"| replay arrays (GiB) | {replay.nbytes / 2**30:.2f} |")
    print(f"| process RSS after fill (GiB; {before:.2f} before) | {rss_gib():.2f} |")
    print(f"| sampleable transitions | {replay.size:,} |")
    # As a checkpoint saves it (checkpoint_replay, the default): written, flushed to disk, read back.
    with tempfile.TemporaryDirectory(dir=save_dir) as tmp:
        directory = Path(tmp)
        t0 = time.perf_counter()
        replay.save(directory)
        fsync_directory(directory)
        t1 = time.perf_counter()
        on_disk = sum(path.stat().st_size for path in directory.iterdir())
        del replay.frames  # as in a new process: the loaded frames replace untouched zeros
        replay.frames = np.zeros((replay.capacity, 84, 84), dtype=np.uint8)
        t2 = time.perf_counter()
        replay.load(directory)
        t3 = time.perf_counter()
    print(f"| saved with a checkpoint: size on disk (GiB) | {on_disk / 2**30:.2f} |")
    print(f"| saved with a checkpoint: write + fsync (s) | {t1 - t0:.1f} |")
    print(f"| saved with a checkpoint: read back on --resume (s) | {t3 - t2:.1f} |")


def bench_learner(steps: int) -> None:
    print("\n### Learner updates (synthetic batches, no actors running)\n")
    print(f"torch threads: {torch.get_num_threads()}\n")
    print("| arm | batch | updates/s | ms/update (wall) | CPU ms/update |\n|---|---:|---:|---:|---:|")
    observation_space, action_space = game_spaces(GAME)
    rng = np.random.default_rng(0)
    for coordconv in (False, True):
        for batch_size in (32, 512):
            config = ApexConfig(batch_size=batch_size, replay_capacity=2 * batch_size, learning_starts=batch_size)
            policy_kwargs = apex_policy_kwargs(config, coordconv=coordconv)
            learner = ApexLearner(make_apex_model(observation_space, action_space, config, policy_kwargs, 0), config)
            batch = SampledBatch(
                indices=np.arange(batch_size),
                observations=rng.integers(0, 256, (batch_size, 4, 84, 84), dtype=np.uint8),
                actions=rng.integers(0, int(action_space.n), batch_size),
                returns=rng.normal(size=batch_size).astype(np.float32),
                discounts=np.full(batch_size, 0.99**3, dtype=np.float32),
                next_observations=rng.integers(0, 256, (batch_size, 4, 84, 84), dtype=np.uint8),
                weights=np.ones(batch_size, dtype=np.float32),
            )
            learner.step(batch)  # warm-up
            n = steps if batch_size == 512 else 4 * steps
            times = []
            cpu = time.process_time()
            for _ in range(n):
                t0 = time.perf_counter()
                learner.step(batch)
                times.append(time.perf_counter() - t0)
            cpu_ms = 1e3 * (time.process_time() - cpu) / n
            ms = median_ms(times)
            arm = "coordconv" if coordconv else "conv"
            print(f"| {arm} | {batch_size} | {1e3 / ms:.2f} | {ms:.0f} | {cpu_ms:.0f} |")


def actor_throughput(pool: ActorPool, actors: int, seconds: float, n_envs: int) -> tuple[float, float, float]:
    """Agent steps/s delivered by ``actors`` actors over ``seconds`` after their first output, start-up
    seconds, and bytes of replay data per agent step."""
    config = ApexConfig(actors=actors, batch_size=32, replay_capacity=100_000, learning_starts=32)
    observation_space, action_space = game_spaces(GAME)
    policy_kwargs = apex_policy_kwargs(config, coordconv=True)
    learner = ApexLearner(make_apex_model(observation_space, action_space, config, policy_kwargs, 0), config)
    pool.publish(learner)
    started = time.perf_counter()
    for index in range(actors):
        pool.start(ActorSpec(index, 0, config, GAME, n_envs, "ale", 0, policy_kwargs))
    pending = dict.fromkeys(range(actors), 0)
    first: float | None = None
    steps = 0
    data = 0
    while first is None or time.perf_counter() - first < seconds:
        for index in range(actors):
            while pending[index] < 2:
                pool.submit(index, config.send_period)
                pending[index] += 1
        for event in pool.poll(0.05):
            if isinstance(event, ActorFailure):
                raise RuntimeError(f"actor {event.index} failed: {event.reason}")
            assert isinstance(event, ActorOutput)
            pending[event.index] -= 1
            if first is None:
                first = time.perf_counter()
            else:
                steps += event.steps
                data += sum(np.asarray(v).nbytes for v in vars(event.chunk).values())
    pool.close()
    assert first is not None
    return steps / (time.perf_counter() - first), first - started, data / max(steps, 1)


def actor_cpu_cost(n_envs: int, steps: int = 200) -> tuple[float, float]:
    """Agent steps per wall second and per CPU second of one actor run in this process (1 torch thread)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    config = ApexConfig(actors=1, batch_size=32, replay_capacity=100_000, learning_starts=32)
    actor = ApexActor(ActorSpec(0, 0, config, GAME, n_envs, "ale", 0, apex_policy_kwargs(config, coordconv=True)))
    actor.run(20)  # warm-up
    wall, cpu = time.perf_counter(), time.process_time()  # process time includes the emulator's thread
    actor.run(steps)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    actor.close()
    torch.set_num_threads(threads)
    return steps * n_envs / wall, steps * n_envs / cpu


def bench_actors(counts: list[int], seconds: float, n_envs: int) -> None:
    wall_rate, cpu_rate = actor_cpu_cost(n_envs)
    print(f"\n### One actor's cost ({GAME}, {n_envs} games, CoordConv, online + target network every step)\n")
    print(f"{cpu_rate:,.0f} agent steps per CPU-second ({4 * cpu_rate:,.0f} frames), {wall_rate:,.0f} per wall second")
    print(f"\n### Local actor processes ({GAME}, {n_envs} games each, CoordConv, no learner)\n")
    print("| actors | agent steps/s | frames/s | start-up (s) |\n|---:|---:|---:|---:|")
    for actors in counts:
        rate, startup, _ = actor_throughput(LocalActorPool(), actors, seconds, n_envs)
        print(f"| {actors} | {rate:,.0f} | {4 * rate:,.0f} | {startup:.1f} |", flush=True)


def bench_ray(counts: list[int], seconds: float, n_envs: int, address: str) -> None:
    import ray

    if address == "local":  # what train --backend ray --ray-address local starts, without the dashboard
        os.environ.setdefault("RAY_worker_niceness", "0")  # as connect_ray does
        ray.init(include_dashboard=False, log_to_driver=False)
    connect_ray(address, option="--ray-actors")
    cpus = ray.cluster_resources().get("CPU", 0)
    print(f"\n### Ray actors ({GAME}, {n_envs} games each, CoordConv, no learner; cluster: {cpus:.0f} CPUs)\n")
    print("| actors | agent steps/s | frames/s | start-up (s) |\n|---:|---:|---:|---:|")
    per_step = 0.0
    for actors in counts:
        rate, startup, per_step = actor_throughput(RayActorPool(ray), actors, seconds, n_envs)
        print(f"| {actors} | {rate:,.0f} | {4 * rate:,.0f} | {startup:.1f} |", flush=True)
    ray.shutdown()
    observation_space, action_space = game_spaces(GAME)
    config = ApexConfig(batch_size=32, replay_capacity=64, learning_starts=32)
    model = make_apex_model(observation_space, action_space, config, apex_policy_kwargs(config, coordconv=True), 0)
    parameters = 4 * sum(p.numel() for p in model.policy.q_net.parameters()) / 2**20
    print(
        f"\nAcross nodes: here all actors share this machine's {os.cpu_count()} cores (with more actors than"
        " the cluster's CPUs, each reserves an equal share), so more actors cannot mean more steps. On a cluster"
        " each actor gets its own core, and steps/s grow"
        " with actors until the driver saturates: each agent step sends"
        f" {per_step / 1024:.1f} KiB of replay data (one 84×84 frame and a transition) to the driver, i.e."
        f" {per_step * 10_000 / 2**20:.0f} MiB/s at 10k steps/s, each chunk to be added to the replay"
        " (the replay section measures that cost)."
        f" Parameters ({parameters:.1f} MiB online, the same again for each new target) enter the object store"
        " once per version and each node fetches them once, at most every parameter_pull_period steps of an actor."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="replay,learner,actors,ray", help="comma-separated sections")
    parser.add_argument("--capacity", type=int, default=1_000_000, help="replay capacity (transitions)")
    parser.add_argument("--iterations", type=int, default=200, help="timed replay iterations")
    parser.add_argument("--save-dir", help="where to time saving the replay (default: the system's temp directory)")
    parser.add_argument("--learner-steps", type=int, default=5, help="timed batch-512 learner steps per arm")
    parser.add_argument("--seconds", type=float, default=20.0, help="measurement time per actor count")
    parser.add_argument("--n-envs", type=int, default=4, help="games per actor")
    parser.add_argument("--actors", type=int, nargs="+", default=[1, 2], help="local actor counts")
    parser.add_argument("--ray-actors", type=int, nargs="+", default=[1, 2, 4], help="Ray actor counts")
    parser.add_argument("--ray-address", default="local", help="local (start a cluster here) or a cluster address")
    args = parser.parse_args(argv)
    tune_malloc()
    sections = set(args.only.split(","))
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"python {' '.join(sys.argv)}\n\n{os.cpu_count()} CPUs, torch {torch.__version__}, load average {load}")
    if "replay" in sections:
        bench_replay(args.capacity, args.iterations, args.save_dir)
    if "learner" in sections:
        bench_learner(args.learner_steps)
    if "actors" in sections:
        bench_actors(args.actors, args.seconds, args.n_envs)
    if "ray" in sections:
        bench_ray(args.ray_actors, args.seconds, args.n_envs, args.ray_address)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
