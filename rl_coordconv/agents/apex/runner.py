"""Run Ape-X: one learner and its replay in this process, the actors in a pool.

:class:`ApexTrainer` is the same loop for every pool (Acme's "builder + distributed program",
in one class): it orders work from the actors a chunk at a time, stores what comes back in the
replay, takes learner steps as fast as it can once the replay holds ``learning_starts``
transitions, publishes parameters, logs and checkpoints. Two pools run the actors:

- :class:`LocalActorPool`: one process per actor on this machine (``torch.multiprocessing``,
  from a fork server), a pipe each for orders and chunks, parameters in shared memory;
- :class:`RayActorPool`: one Ray actor per actor, on any node of a Ray cluster, one CPU each
  (an equal share when the cluster has fewer CPUs than actors); parameters go to the object
  store once per version and reach each actor with its next order. Ray is optional: only this
  pool imports it.

Either way, an actor that dies (killed, out of memory, a lost node) is noticed when its pipe or
its pending result fails, started again as a new incarnation with new games, and training goes on;
the steps it had been ordered and never delivered are ordered again.
"""

from __future__ import annotations

import contextlib
import io
import math
import multiprocessing.connection
import time
import uuid
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from rl_coordconv.agents.apex.actor import ActorOutput, ActorSpec, ApexActor
from rl_coordconv.agents.apex.config import ApexConfig
from rl_coordconv.agents.apex.learner import ApexLearner, apex_policy_kwargs, make_apex_model
from rl_coordconv.agents.apex.replay import PrioritizedReplay
from rl_coordconv.envs import ATARI_PROTOCOL, action_meanings
from rl_coordconv.extractors import CoordLayers
from rl_coordconv.runs import RunDir, RunRecorder, TrainingFailed, rng_state
from rl_coordconv.runtime import connect_ray

__all__ = ["BACKENDS", "ActorFailure", "ActorPool", "ApexTrainer", "LocalActorPool", "RayActorPool", "make_actor_pool"]

BACKENDS = ("local", "ray")
# Orders in flight per actor: one to work on, one queued, so an actor never waits for the learner.
_ORDERS_IN_FLIGHT = 2
# An actor slot that dies this many times in a row without delivering anything is a bug, not bad luck.
_MAX_CONSECUTIVE_FAILURES = 3


@dataclass(frozen=True)
class ActorFailure:
    """An actor stopped: its process exited, its pipe broke, or Ray lost it."""

    index: int
    incarnation: int
    reason: str


class ActorPool(ABC):
    """Where the actors run. The trainer starts them, orders steps, and collects outputs and failures."""

    @abstractmethod
    def start(self, spec: ActorSpec) -> None:
        """Start actor ``spec.index`` (replacing a dead one in that slot)."""

    @abstractmethod
    def submit(self, index: int, steps: int) -> None:
        """Order ``steps`` vector steps from actor ``index``; its output comes back through :meth:`poll`."""

    @abstractmethod
    def poll(self, timeout: float) -> list[ActorOutput | ActorFailure]:
        """Outputs and failures that arrived, waiting up to ``timeout`` seconds for the first."""

    @abstractmethod
    def publish(self, learner: ApexLearner) -> None:
        """Make the learner's current parameters available to actors' next pulls."""

    @abstractmethod
    def close(self) -> None:
        """Stop every actor."""


# Local processes --------------------------------------------------------------------------------


class _SharedParameters:
    """The learner's online and target parameters in shared memory, with their versions."""

    def __init__(self, size: int, lock: Any) -> None:
        self.online = torch.zeros(size).share_memory_()
        self.target = torch.zeros(size).share_memory_()
        self.versions = torch.full((2,), -1, dtype=torch.int64).share_memory_()  # (online, target)
        self.lock = lock


def _local_actor_main(spec: ActorSpec, conn: multiprocessing.connection.Connection, shared: _SharedParameters) -> None:
    """An actor process: wait for an order, pull parameters when due, play, send the output."""
    torch.set_num_threads(1)
    actor = ApexActor(spec)
    seen = [-1, -1]
    try:
        while (steps := conn.recv()) is not None:
            if seen[0] < 0 or actor.steps_since_pull >= spec.config.parameter_pull_period:
                with shared.lock:
                    versions = shared.versions.tolist()
                    actor.set_parameters(
                        shared.online if versions[0] != seen[0] else None,
                        shared.target if versions[1] != seen[1] else None,
                    )
                seen = versions
            conn.send(actor.run(steps))
    except (EOFError, OSError, KeyboardInterrupt):
        pass  # the trainer went away or is stopping us
    finally:
        actor.close()


@dataclass
class _LocalActor:
    process: Any
    conn: multiprocessing.connection.Connection
    incarnation: int


class LocalActorPool(ActorPool):
    """Actors as spawned processes on this machine (see the module docstring)."""

    def __init__(self) -> None:
        # A fork server that has imported this module (torch, SB3, ALE) forks each actor in
        # milliseconds; spawning one re-imports all of it (3 s here), and plain fork after torch
        # has started threads is unsafe.
        self._ctx = torch.multiprocessing.get_context("forkserver")
        self._ctx.set_forkserver_preload([__name__])
        self._actors: dict[int, _LocalActor] = {}
        self._shared: _SharedParameters | None = None
        self._published_target = -1

    def publish(self, learner: ApexLearner) -> None:
        online = torch.from_numpy(learner.online_parameters())
        if self._shared is None:
            self._shared = _SharedParameters(online.numel(), self._ctx.Lock())
        shared = self._shared
        with shared.lock:
            shared.online.copy_(online)
            if learner.target_version != self._published_target:
                shared.target.copy_(torch.from_numpy(learner.target_parameters()))
                self._published_target = learner.target_version
            shared.versions[0] = learner.steps
            shared.versions[1] = learner.target_version

    def start(self, spec: ActorSpec) -> None:
        if self._shared is None:
            raise RuntimeError("publish the learner's parameters before starting actors")
        self._stop(spec.index)
        parent, child = self._ctx.Pipe(duplex=True)
        process = self._ctx.Process(
            target=_local_actor_main,
            args=(spec, child, self._shared),
            name=f"apex-actor-{spec.index}",
            # Not a daemon: an actor may start processes of its own (the sb3 env backend's
            # SubprocVecEnv). It still ends with the trainer: its pipe closes, and close() stops it.
            daemon=False,
        )
        process.start()
        child.close()  # so the parent sees EOF when the actor dies
        self._actors[spec.index] = _LocalActor(process, parent, spec.incarnation)

    def submit(self, index: int, steps: int) -> None:
        with contextlib.suppress(OSError, KeyError):  # a dead actor: poll reports it
            self._actors[index].conn.send(steps)

    def poll(self, timeout: float) -> list[ActorOutput | ActorFailure]:
        by_conn = {actor.conn: index for index, actor in self._actors.items()}
        events: list[ActorOutput | ActorFailure] = []
        for conn in multiprocessing.connection.wait(list(by_conn), timeout):
            index = by_conn[conn]  # type: ignore[index]
            actor = self._actors[index]
            try:
                events.append(actor.conn.recv())
            except (EOFError, OSError):
                actor.process.join(timeout=5)
                code = actor.process.exitcode
                events.append(ActorFailure(index, actor.incarnation, f"process exited with code {code}"))
                self._stop(index)
        return events

    def _stop(self, index: int) -> None:
        actor = self._actors.pop(index, None)
        if actor is None:
            return
        actor.conn.close()
        if actor.process.is_alive():
            actor.process.terminate()
        actor.process.join(timeout=10)

    def close(self) -> None:
        for index in list(self._actors):
            self._stop(index)


# Ray --------------------------------------------------------------------------------------------


class _RayActorHost:
    """The body of a Ray actor: an :class:`ApexActor` that takes parameters with its orders."""

    def __init__(self, spec: ActorSpec) -> None:
        torch.set_num_threads(1)
        self.actor = ApexActor(spec)

    def run(self, steps: int, online: np.ndarray | None, target: np.ndarray | None) -> ActorOutput:
        self.actor.set_parameters(online, target)
        return self.actor.run(steps)


class RayActorPool(ActorPool):
    """Actors as Ray actors, one CPU each, anywhere in the cluster (see the module docstring).

    :param ray: the ``ray`` module, already connected (:func:`~rl_coordconv.runtime.connect_ray`)
    """

    def __init__(self, ray: ModuleType) -> None:
        self.ray = ray
        self._remote: Any = None  # made at the first start, when the number of actors is known
        self._token = uuid.uuid4().hex[:8]  # names actors uniquely in a shared cluster
        self._actors: dict[int, tuple[Any, ActorSpec]] = {}
        self._pending: dict[Any, tuple[int, int]] = {}  # result ref → (index, incarnation)
        self._sent: dict[int, list[int]] = {}  # index → [online version, target version, steps since pull]
        self._learner: ApexLearner | None = None
        self._online: tuple[int, Any] = (-1, None)  # (version, object ref)
        self._target: tuple[int, Any] = (-1, None)

    def actor_name(self, index: int, incarnation: int) -> str:
        return f"apex-{self._token}-actor{index}-{incarnation}"

    def publish(self, learner: ApexLearner) -> None:
        self._learner = learner  # parameters go to the object store only when an actor needs them

    def _parameters(self, index: int, steps: int, period: int) -> tuple[Any, Any]:
        learner = self._learner
        assert learner is not None, "publish before submitting"
        sent = self._sent[index]
        online = target = None
        if sent[0] < 0 or sent[2] >= period:
            if sent[0] != learner.steps:
                if self._online[0] != learner.steps:
                    self._online = (learner.steps, self.ray.put(learner.online_parameters()))
                online, sent[0], sent[2] = self._online[1], learner.steps, 0
            if sent[1] != learner.target_version:
                if self._target[0] != learner.target_version:
                    self._target = (learner.target_version, self.ray.put(learner.target_parameters()))
                target, sent[1] = self._target[1], learner.target_version
        sent[2] += steps
        return online, target

    def _actor_class(self, actors: int) -> Any:
        """The Ray actor class, reserving one CPU per actor, or an equal share of a smaller cluster.

        An actor that cannot be placed would hold its orders forever and the run would never end,
        so on a cluster with fewer CPUs than actors they share, as local processes do.
        """
        if self._remote is None:
            cpus = float(self.ray.cluster_resources().get("CPU", 0.0))
            share = 1.0 if cpus >= actors or cpus <= 0 else math.floor(100 * cpus / actors) / 100
            if share < 1:
                print(f"  the Ray cluster has {cpus:g} CPUs for {actors} actors: each reserves {share:g} CPU")
            self._remote = self.ray.remote(num_cpus=share, max_restarts=0)(_RayActorHost)
        return self._remote

    def start(self, spec: ActorSpec) -> None:
        remote = self._actor_class(spec.config.actors)
        old = self._actors.pop(spec.index, None)
        if old is not None:
            self.ray.kill(old[0])
        name = self.actor_name(spec.index, spec.incarnation)
        self._actors[spec.index] = (remote.options(name=name).remote(spec), spec)
        self._sent[spec.index] = [-1, -1, 0]

    def submit(self, index: int, steps: int) -> None:
        handle, spec = self._actors[index]
        online, target = self._parameters(index, steps, spec.config.parameter_pull_period)
        self._pending[handle.run.remote(steps, online, target)] = (index, spec.incarnation)

    def poll(self, timeout: float) -> list[ActorOutput | ActorFailure]:
        if not self._pending:
            time.sleep(timeout)
            return []
        ready, _ = self.ray.wait(list(self._pending), num_returns=len(self._pending), timeout=timeout)
        events: list[ActorOutput | ActorFailure] = []
        for ref in ready:
            index, incarnation = self._pending.pop(ref)
            try:
                events.append(self.ray.get(ref))
            except self.ray.exceptions.RayError as error:
                reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                events.append(ActorFailure(index, incarnation, reason))
        return events

    def close(self) -> None:
        for handle, _ in self._actors.values():
            self.ray.kill(handle)
        self._actors.clear()
        self._pending.clear()


def make_actor_pool(backend: str = "local", ray_address: str | None = None) -> ActorPool:
    """The pool for ``--backend``; ``ray`` connects to the cluster now, so a bad address fails early.

    :param backend: ``local`` or ``ray``
    :param ray_address: for ``ray``: None (the running cluster Ray finds, else a new instance
        here), ``auto`` (a running cluster only), ``local`` (a new instance here), ``host:port``
        or ``ray://host:10001``; see :func:`~rl_coordconv.runtime.connect_ray`
    :raises ValueError: unknown backend, Ray not installed, cluster unreachable
    """
    if backend == "local":
        if ray_address is not None:
            raise ValueError("--ray-address needs --backend ray")
        return LocalActorPool()
    if backend == "ray":
        return RayActorPool(connect_ray(ray_address))
    raise ValueError(f"unknown --backend {backend!r}; choose from {', '.join(BACKENDS)}")


# The trainer ------------------------------------------------------------------------------------


def atari_spaces(game: str) -> tuple[gym.spaces.Box, gym.spaces.Discrete]:
    """Observation and action spaces of ``game`` under the project's protocol, without starting an env."""
    p = ATARI_PROTOCOL
    observation_space = gym.spaces.Box(0, 255, (p.frame_stack, p.screen_size, p.screen_size), np.uint8)
    return observation_space, gym.spaces.Discrete(len(action_meanings(game)))


class ApexTrainer:
    """Replay, learner and a pool of actors, wired together (see the module docstring).

    :param config: Ape-X hyperparameters
    :param game: canonical game name
    :param n_envs: games per actor
    :param seed: the run's seed (network initialisation; actors and replay derive theirs from it)
    :param pool: where the actors run
    :param env_backend: emulator backend of the actors
    :param coordconv: the CoordConv arm
    :param with_r: add the radius channel
    :param coord_layers: which convolutions get coordinates
    :param device: the learner's torch device (actors run on their CPU)
    """

    def __init__(
        self,
        config: ApexConfig,
        *,
        game: str,
        n_envs: int,
        seed: int,
        pool: ActorPool,
        env_backend: str = "ale",
        coordconv: bool = False,
        with_r: bool = False,
        coord_layers: CoordLayers = "first",
        device: torch.device | str = "cpu",
    ) -> None:
        streams = config.actors * n_envs
        needed = 2 * (config.send_period + config.n_step + ATARI_PROTOCOL.frame_stack)
        if config.replay_capacity // streams < needed:
            raise ValueError(
                f"replay_capacity {config.replay_capacity:,} leaves {config.replay_capacity // streams:,} rows for "
                f"each of the {streams} games ({config.actors} actors × {n_envs}); each needs at least {needed}"
            )
        self.config = config
        self.game = game
        self.n_envs = n_envs
        self.seed = seed
        self.pool = pool
        self.env_backend = env_backend
        self.device = torch.device(device)
        self.policy_kwargs = apex_policy_kwargs(config, coordconv, with_r, coord_layers)
        observation_space, action_space = atari_spaces(game)
        model = make_apex_model(observation_space, action_space, config, self.policy_kwargs, seed, self.device)
        self.learner = ApexLearner(model, config)
        self.num_timesteps = 0  # agent steps delivered by the actors, across resumes
        self.restarts = 0
        self.replay: PrioritizedReplay | None = None
        self._replay_rng: dict[str, Any] | None = None

    # state ---------------------------------------------------------------------------------------

    def restore(self, model_path: Any, state: dict[str, Any]) -> None:
        """Continue from a checkpoint: its model and optimizer, step counts and replay sampling RNG.

        The replay itself is not in checkpoints (7 GB at full size): a resumed run refills it and
        the learner waits for ``learning_starts`` transitions again.
        """
        self.learner = ApexLearner.load(model_path, self.config, self.device)
        self.num_timesteps = int(state["step"])
        self.restarts = int(state["apex"]["restarts"])
        self._replay_rng = state["apex"]["replay_rng"]

    def model_bytes(self) -> bytes:
        """The model as an SB3 DQN zip."""
        return self.learner.save(self.num_timesteps)

    def _checkpoint_state(self, wall_time: float) -> dict[str, Any]:
        assert self.replay is not None
        apex = {
            "learner_steps": self.learner.steps,
            "restarts": self.restarts,
            "replay_rng": self.replay.rng.bit_generator.state,
        }
        return {"step": self.num_timesteps, "rng": rng_state(), "wall_time": wall_time, "apex": apex}

    def save_checkpoint(self, run: RunDir, wall_time: float) -> None:
        """Model + optimizer (SB3 zip) and step counts, RNG states and wall time, atomically."""
        state = io.BytesIO()
        torch.save(self._checkpoint_state(wall_time), state)
        run.save_checkpoint(self.num_timesteps, self.model_bytes(), state.getvalue())
        run.write_state("running", self.num_timesteps, learner_steps=self.learner.steps)

    # the loop -----------------------------------------------------------------------------------

    def _spec(self, index: int, incarnation: int, start_step: int) -> ActorSpec:
        return ActorSpec(
            index=index,
            incarnation=incarnation,
            config=self.config,
            game=self.game,
            n_envs=self.n_envs,
            env_backend=self.env_backend,
            seed=self.seed + start_step,  # a resumed run plays new games
            policy_kwargs=self.policy_kwargs,
        )

    def train(
        self,
        timesteps: int,
        run: RunDir,
        recorder: RunRecorder,
        checkpoint_every: int,
        log_every: int,
    ) -> None:
        """Run until the actors have delivered ``timesteps`` agent steps (rounded up to whole vector steps).

        :param timesteps: total agent steps of the run, including those before a resume
        :param run: where checkpoints go
        :param recorder: episodes and TensorBoard scalars
        :param checkpoint_every: agent steps between checkpoints
        :param log_every: agent steps between scalar logs (and progress lines)
        """
        config, n_envs = self.config, self.n_envs
        start_step = self.num_timesteps
        replay = PrioritizedReplay(
            config.replay_capacity,
            config.actors * n_envs,
            frame_shape=(ATARI_PROTOCOL.screen_size, ATARI_PROTOCOL.screen_size),
            stack=ATARI_PROTOCOL.frame_stack,
            alpha=config.alpha,
            priority_eps=config.priority_eps,
            seed=self.seed + start_step,
        )
        if self._replay_rng is not None:
            replay.rng.bit_generator.state = self._replay_rng
        self.replay = replay
        learn_from = max(config.learning_starts, 1)  # batches are drawn with replacement
        incarnations = [0] * config.actors
        failures = [0] * config.actors
        orders: list[deque[int]] = [deque() for _ in range(config.actors)]
        issued = start_step
        metrics: list[dict[str, float]] = []
        next_log = (start_step // log_every + 1) * log_every
        next_checkpoint = (start_step // checkpoint_every + 1) * checkpoint_every
        next_report = start_step
        last_log = (start_step, self.learner.steps, time.monotonic())

        def start(index: int) -> None:
            for env in range(n_envs):
                replay.reset_stream(index * n_envs + env)
            self.pool.start(self._spec(index, incarnations[index], start_step))

        self.pool.publish(self.learner)
        for index in range(config.actors):
            start(index)
        while self.num_timesteps < timesteps:
            for index in range(config.actors):
                while len(orders[index]) < _ORDERS_IN_FLIGHT and issued < timesteps:
                    steps = min(config.send_period, math.ceil((timesteps - issued) / n_envs))
                    self.pool.submit(index, steps)
                    orders[index].append(steps)
                    issued += steps * n_envs
            can_learn = replay.size >= learn_from
            for event in self.pool.poll(timeout=0.0 if can_learn else 0.05):
                if event.incarnation != incarnations[event.index]:
                    continue  # from an actor already replaced
                index = event.index
                if isinstance(event, ActorFailure):
                    failures[index] += 1
                    if failures[index] >= _MAX_CONSECUTIVE_FAILURES:
                        raise TrainingFailed(f"actor {index} died {failures[index]} times in a row: {event.reason}")
                    issued -= sum(orders[index]) * n_envs
                    orders[index].clear()
                    incarnations[index] += 1
                    self.restarts += 1
                    print(f"  actor {index} died ({event.reason}); restarting it", flush=True)
                    start(index)
                    continue
                failures[index] = 0
                orders[index].popleft()
                replay.add(event.chunk, first_stream=index * n_envs)
                self.num_timesteps += event.steps
                for score, length in event.episodes:
                    recorder.episode(self.num_timesteps, score, length)
            if replay.size >= learn_from:
                batch = replay.sample(config.batch_size, config.beta)
                td_errors, step_metrics = self.learner.step(batch)
                replay.update_priorities(batch.indices, td_errors)
                self.pool.publish(self.learner)
                metrics.append(step_metrics)
            step = self.num_timesteps
            if step >= next_log or step >= timesteps:
                last_log = self._log(run, recorder, metrics, last_log)
                metrics = []
                next_log = (step // log_every + 1) * log_every
            if step >= next_report:
                self._report(recorder, timesteps, start_step)
                next_report = step + max(timesteps // 20, 1)
            if step >= next_checkpoint and step < timesteps:
                recorder.flush()  # TensorBoard holds every point up to the checkpoint, as episodes.csv does
                self.save_checkpoint(run, recorder.elapsed())
                next_checkpoint = (step // checkpoint_every + 1) * checkpoint_every

    def _log(
        self,
        run: RunDir,
        recorder: RunRecorder,
        metrics: list[dict[str, float]],
        last: tuple[int, int, float],
    ) -> tuple[int, int, float]:
        assert self.replay is not None
        step, learner_steps, now = self.num_timesteps, self.learner.steps, time.monotonic()
        elapsed = max(now - last[2], 1e-9)
        values = {
            "charts/fps": (step - last[0]) / elapsed,
            "charts/learner_steps_per_s": (learner_steps - last[1]) / elapsed,
            "charts/replay_size": float(self.replay.size),
            "charts/actor_restarts": float(self.restarts),
        }
        if metrics:
            for key in metrics[0]:
                values[f"losses/{key}"] = float(np.mean([m[key] for m in metrics]))
        ratio = self.learner.coord_weight_ratio()
        if ratio is not None:
            values["coordconv/coord_weight_ratio"] = ratio
        recorder.scalars(step, values)
        recorder.flush()
        run.write_state("running", step, learner_steps=learner_steps)  # live progress for sweep
        return step, learner_steps, now

    def _report(self, recorder: RunRecorder, timesteps: int, start_step: int) -> None:
        assert self.replay is not None
        recent = recorder.recent_returns[-10:]
        mean = f"{np.mean(recent):.1f}" if recent else "–"
        seconds = max(recorder.elapsed() - recorder.wall_offset, 1e-9)
        print(
            f"  step {self.num_timesteps:,}/{timesteps:,} ({100 * self.num_timesteps / timesteps:.0f}%)  "
            f"{(self.num_timesteps - start_step) / seconds:.0f} steps/s  {self.learner.steps:,} learner steps  "
            f"replay {self.replay.size:,}  return(last 10) {mean}",
            flush=True,
        )

    def close(self) -> None:
        self.pool.close()
