"""Where Ape-X's actors run: a pool of local processes or of Ray actors, behind one interface.

- :class:`LocalActorPool`: one process per actor on this machine (``torch.multiprocessing``,
  from a fork server), a pipe each for orders and chunks, parameters in shared memory;
- :class:`RayActorPool`: one Ray actor per actor, on any node of a Ray cluster, one CPU each
  (an equal share when the cluster has fewer CPUs than actors); parameters go to the object
  store once per version and reach each actor with its next order. Ray is optional: only this
  pool imports it.

Either way, an actor that dies (killed, out of memory, a lost node) comes back from :meth:`poll`
as an :class:`ActorFailure`; the trainer starts it again as a new incarnation.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing.connection
import time
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
import torch

from rl_coordconv.agents.apex.actor import ActorOutput, ActorSpec, ApexActor
from rl_coordconv.agents.apex.learner import ApexLearner
from rl_coordconv.experiment import ACTOR_PLACEMENTS
from rl_coordconv.runtime import connect_ray, ignore_stop_signals

__all__ = ["ActorFailure", "ActorPool", "LocalActorPool", "RayActorPool", "make_actor_pool"]


@dataclass(frozen=True)
class ActorFailure:
    """An actor stopped: its process exited, its pipe broke, or Ray lost it."""

    index: int
    incarnation: int
    reason: str


class ActorPool(ABC):
    """Where the actors run. The trainer starts them, orders steps, and collects outputs and failures."""

    placement: str  # an ACTOR_PLACEMENTS name, for the run's header

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
    ignore_stop_signals()  # the trainer checkpoints, then stops its actors
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
    except (EOFError, OSError):
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

    placement = "local"

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
        actor.conn.close()  # a live actor sees the pipe close when it next reads or writes, and exits
        actor.process.join(timeout=10)
        if actor.process.is_alive():  # it ignores SIGTERM (see ignore_stop_signals)
            actor.process.kill()
            actor.process.join()

    def close(self) -> None:
        for actor in self._actors.values():  # every actor is told at once, then each is waited for
            actor.conn.close()
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

    placement = "ray"

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


def make_actor_pool(placement: str = "local", ray_address: str | None = None) -> ActorPool:
    """The pool for ``--actors-on``; ``ray`` connects to the cluster now, so a bad address fails early.

    :param placement: ``local`` or ``ray``
    :param ray_address: for ``ray``: None (the running cluster Ray finds, else a new instance
        here), ``auto`` (a running cluster only), ``local`` (a new instance here), ``host:port``
        or ``ray://host:10001``; see :func:`~rl_coordconv.runtime.connect_ray`
    :raises ValueError: unknown placement, Ray not installed, cluster unreachable
    """
    if placement == "local":
        if ray_address is not None:
            raise ValueError("--ray-address needs --actors-on ray")
        return LocalActorPool()
    if placement == "ray":
        return RayActorPool(connect_ray(ray_address, option="--actors-on ray"))
    raise ValueError(f"unknown --actors-on {placement!r}; choose from {', '.join(ACTOR_PLACEMENTS)}")
