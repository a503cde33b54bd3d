"""The Ape-X trainer: one learner and its replay in this process, the actors in a pool.

:class:`ApexTrainer` is the same loop for every pool (Acme's "builder + distributed program",
in one class): it orders work from the actors a chunk at a time, stores what comes back in the
replay, takes learner steps once the replay holds ``learning_starts`` transitions, at the pace
``samples_per_insert`` sets (:mod:`.limiter`: neither side waits for the other unless one gets
ahead of that ratio), and publishes parameters. The run's :class:`~rl_coordconv.agents.trainer.Monitor`
logs, reports and checkpoints, as for every algorithm. An actor that dies is started again as a
new incarnation with new games; the steps it had been ordered and never delivered are ordered
again; one that dies three times in a row ends the run.
"""

from __future__ import annotations

import math
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from rl_coordconv.agents.apex.actor import ActorSpec
from rl_coordconv.agents.apex.config import ApexConfig
from rl_coordconv.agents.apex.learner import ApexLearner
from rl_coordconv.agents.apex.limiter import SampleToInsertRatio
from rl_coordconv.agents.apex.networks import apex_policy_kwargs, game_spaces, make_apex_model
from rl_coordconv.agents.apex.pools import ActorFailure, ActorPool, make_actor_pool
from rl_coordconv.agents.apex.replay import PrioritizedReplay
from rl_coordconv.agents.trainer import Monitor, Trainer
from rl_coordconv.envs import make_atari_vec_env
from rl_coordconv.experiment import CoordLayers, TrainConfig
from rl_coordconv.runs import Checkpoint, RunStateError, TrainingFailed

if TYPE_CHECKING:
    from rl_coordconv.agents.registry import AlgoSpec

__all__ = ["ApexTrainer", "next_actor"]

# Orders in flight per actor: one to work on, one queued, so an actor never waits for the learner.
_ORDERS_IN_FLIGHT = 2
# An actor slot that dies this many times in a row without delivering anything is a bug, not bad luck.
_MAX_CONSECUTIVE_FAILURES = 3


def next_actor(orders: list[deque[int]], delivered: list[int], n_envs: int) -> int | None:
    """The actor to order the next chunk from, or None when every actor has its orders in flight.

    The one with the fewest orders in flight, then the fewest agent steps delivered and ordered:
    when the limiter lets one order through at a time, every actor gets its share in turn (taking
    the first actor with room gave it nearly all the work, and so the run nearly all of one ε).

    :param orders: each actor's orders in flight (vector steps)
    :param delivered: agent steps each actor has delivered
    :param n_envs: games per actor (agent steps per vector step)
    """
    open_slots = [index for index, queue in enumerate(orders) if len(queue) < _ORDERS_IN_FLIGHT]
    if not open_slots:
        return None
    return min(open_slots, key=lambda index: (len(orders[index]), delivered[index] + sum(orders[index]) * n_envs))


class ApexTrainer(Trainer):
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
    :param head: ``flatten`` or ``pool`` (see :class:`~rl_coordconv.extractors.AtariCNN`)
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
        head: str = "flatten",
        device: torch.device | str = "cpu",
    ) -> None:
        observation_space, action_space = game_spaces(game)
        streams = config.actors * n_envs
        needed = 2 * (config.send_period + config.n_step + observation_space.shape[0])
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
        self.observation_space = observation_space
        self.policy_kwargs = apex_policy_kwargs(config, coordconv, with_r, coord_layers, head)
        model = make_apex_model(observation_space, action_space, config, self.policy_kwargs, seed, self.device)
        self.learner = ApexLearner(model, config)
        self.num_timesteps = 0  # agent steps delivered by the actors, across resumes
        self.restarts = 0
        self.actor_steps = [0] * config.actors  # agent steps each actor slot delivered, across resumes
        self.limiter = SampleToInsertRatio.for_config(
            config.samples_per_insert, config.batch_size, max(config.learning_starts, 1)
        )
        self._waited = {"learner": 0.0, "actors": 0.0}  # seconds each side was held by the limiter
        self.replay: PrioritizedReplay | None = None
        self._replay_rng: dict[str, Any] | None = None
        self._metrics: list[dict[str, float]] = []
        self._logged_learner_steps = 0

    # building and restoring ----------------------------------------------------------------------

    @classmethod
    def build(cls, spec: AlgoSpec, config: TrainConfig, device: torch.device) -> ApexTrainer:
        # The actors build their games in their own processes, where a bad --env-backend (or a
        # missing envpool) would kill them three times over; one game here fails first, in one line.
        make_atari_vec_env(config.game, 1, seed=config.seed, backend=config.env_backend).close()
        pool = make_actor_pool(config.actors_on, config.ray_address)  # fails before anything is written
        try:
            return cls(
                ApexConfig(**config.hyperparams),
                game=config.game,
                n_envs=config.n_envs,
                seed=config.seed,
                pool=pool,
                env_backend=config.env_backend,
                coordconv=config.coordconv,
                with_r=config.with_r,
                coord_layers=config.coord_layers,
                head=config.head,
                device=device,
            )
        except BaseException:
            pool.close()
            raise

    @classmethod
    def restore(
        cls, spec: AlgoSpec, config: TrainConfig, device: torch.device, checkpoint: Checkpoint, state: dict[str, Any]
    ) -> ApexTrainer:
        """Continue from a checkpoint: its model and optimizer, step counts, and its replay (contents,
        priorities, sampling RNG) when the checkpoint holds one (``checkpoint_replay``, the default).

        Without it the replay starts empty, and the learner waits for ``learning_starts`` again.
        """
        trainer = cls.build(spec, config, device)
        try:
            trainer.learner = ApexLearner.load(checkpoint.model, trainer.config, trainer.device)
        except Exception as error:  # SB3 raises many kinds on a damaged zip
            trainer.close()
            raise RunStateError(f"cannot load checkpoint {checkpoint.model}: {error!r}") from error
        saved = trainer.learner.model.policy_kwargs
        if (saved.get("net_arch"), saved.get("features_extractor_kwargs")) != (
            trainer.policy_kwargs["net_arch"],
            trainer.policy_kwargs["features_extractor_kwargs"],
        ):  # e.g. a run begun before the paper's dueling head (2026-12-06): its actors would build another network
            trainer.close()
            raise RunStateError(
                f"checkpoint {checkpoint.model} holds another Ape-X network (net_arch {saved.get('net_arch')}) than "
                "this version builds; its final or checkpoint model still plays (enjoy), but the run cannot go on"
            )
        try:
            trainer.num_timesteps = int(state["step"])
            trainer.restarts = int(state["apex"]["restarts"])
            trainer._replay_rng = state["apex"]["replay_rng"]
            actor_steps = state["apex"].get("actor_steps")  # absent before 2026-12-06
            if actor_steps is not None and len(actor_steps) == trainer.config.actors:
                trainer.actor_steps = [int(steps) for steps in actor_steps]
            if checkpoint.extra is not None:
                trainer.replay = trainer._new_replay(trainer.num_timesteps)
                trainer.replay.load(checkpoint.extra)
                # the ratio goes on; without the replay, learning starts over and so does the count
                trainer.limiter.inserted = int(state["apex"].get("inserted", 0))
                trainer.limiter.sampled = int(state["apex"].get("sampled", 0))
        except Exception as error:  # an old state lacks keys; a damaged replay
            trainer.close()
            raise RunStateError(f"cannot load checkpoint {checkpoint.model}: {error!r}") from error
        trainer._logged_learner_steps = trainer.learner.steps
        return trainer

    # what the run records ------------------------------------------------------------------------

    def model_bytes(self) -> bytes:
        """The model as an SB3 DQN zip."""
        return self.learner.save(self.num_timesteps)

    def checkpoint_state(self) -> dict[str, Any]:
        assert self.replay is not None
        apex = {
            "learner_steps": self.learner.steps,
            "restarts": self.restarts,
            "replay_rng": self.replay.rng.bit_generator.state,
            "inserted": self.limiter.inserted,
            "sampled": self.limiter.sampled,
            "actor_steps": self.actor_steps,
        }
        return {"apex": apex}

    def write_checkpoint_extra(self, directory: Path) -> bool:
        if not self.config.checkpoint_replay or self.replay is None:
            return False
        self.replay.save(directory)
        return True

    def run_state(self) -> dict[str, Any]:
        ratio = self.limiter.ratio()
        return {
            "learner_steps": self.learner.steps,
            "samples_per_insert": None if ratio is None else round(ratio, 3),
            "actor_steps": self.actor_steps,
        }

    def describe(self) -> str:
        n_params = sum(p.numel() for p in self.learner.policy.q_net.parameters())
        epsilons = self.config.epsilons()
        return (
            f"{self.config.actors} actors ({self.pool.placement}) × {self.n_envs} envs, "
            f"ε {epsilons[0]:.3g}…{epsilons[-1]:.3g}, {n_params:,} parameters"
        )

    def scalars(self, seconds: float) -> dict[str, float]:
        values = {
            "charts/learner_steps_per_s": (self.learner.steps - self._logged_learner_steps) / seconds,
            "charts/learner_steps": float(self.learner.steps),  # target copies: this // target_update_interval
            "charts/replay_size": float(0 if self.replay is None else self.replay.size),
            "charts/actor_restarts": float(self.restarts),
            # the share of the time since the last log the limiter held each side back
            "charts/learner_wait_fraction": self._waited["learner"] / seconds,
            "charts/actor_hold_fraction": self._waited["actors"] / seconds,
        }
        if (ratio := self.limiter.ratio()) is not None:
            values["charts/samples_per_insert"] = ratio
        self._waited = {"learner": 0.0, "actors": 0.0}
        if self._metrics:
            for key in self._metrics[0]:
                values[f"losses/{key}"] = float(np.mean([m[key] for m in self._metrics]))
        self._metrics = []
        self._logged_learner_steps = self.learner.steps
        return values

    def progress_note(self) -> str:
        size = 0 if self.replay is None else self.replay.size
        return f"{self.learner.steps:,} learner steps  replay {size:,}"

    def coord_weight_ratio(self) -> float | None:
        return self.learner.coord_weight_ratio()

    def close(self) -> None:
        self.pool.close()

    # the loop ------------------------------------------------------------------------------------

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

    def _new_replay(self, start_step: int) -> PrioritizedReplay:
        stack, *frame_shape = self.observation_space.shape
        replay = PrioritizedReplay(
            self.config.replay_capacity,
            self.config.actors * self.n_envs,
            frame_shape=(frame_shape[0], frame_shape[1]),
            stack=stack,
            alpha=self.config.alpha,
            priority_eps=self.config.priority_eps,
            seed=self.seed + start_step,
        )
        if self._replay_rng is not None:
            replay.rng.bit_generator.state = self._replay_rng
        return replay

    def train(self, until: int, monitor: Monitor) -> None:
        """Run until the actors have delivered ``until`` agent steps (rounded up to whole vector steps).

        :raises TrainingFailed: an actor slot died three times in a row
        """
        config, n_envs = self.config, self.n_envs
        start_step = self.num_timesteps
        if self.replay is None:  # a new run, or a resume from a checkpoint without its replay
            self.replay = self._new_replay(start_step)
        replay = self.replay
        learn_from = max(config.learning_starts, 1)  # batches are drawn with replacement
        incarnations = [0] * config.actors
        failures = [0] * config.actors
        orders: list[deque[int]] = [deque() for _ in range(config.actors)]
        issued = start_step
        limiter = self.limiter

        def start(index: int) -> None:
            for env in range(n_envs):
                replay.reset_stream(index * n_envs + env)
            self.pool.start(self._spec(index, incarnations[index], start_step))

        self.pool.publish(self.learner)
        for index in range(config.actors):
            start(index)
        while self.num_timesteps < until:
            started = time.perf_counter()
            actors_held = False
            while issued < until and (chosen := next_actor(orders, self.actor_steps, n_envs)) is not None:
                # the learner is behind, counting the work already ordered: none more for now
                # (never while the replay fills)
                if replay.size >= learn_from and not limiter.may_insert(pending=issued - self.num_timesteps):
                    actors_held = True
                    break
                steps = min(config.send_period, math.ceil((until - issued) / n_envs))
                self.pool.submit(chosen, steps)
                orders[chosen].append(steps)
                issued += steps * n_envs
            can_learn = replay.size >= learn_from and limiter.may_sample()
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
                    monitor.note(f"  actor {index} died ({event.reason}); restarting it")
                    start(index)
                    continue
                failures[index] = 0
                orders[index].popleft()
                added = replay.add(event.chunk, first_stream=index * n_envs)
                # counted from the moment the replay can be sampled: the chunk that crosses it, in part
                limiter.record_insert(min(added, replay.size - learn_from + 1), sampleable=replay.size >= learn_from)
                self.num_timesteps += event.steps
                self.actor_steps[index] += event.steps
                for score, length in event.episodes:
                    monitor.episode(self.num_timesteps, score, length, actor=index)
            learner_held = False
            if replay.size >= learn_from:
                if limiter.may_sample():
                    batch = replay.sample(config.batch_size, config.beta)
                    td_errors, step_metrics = self.learner.step(batch)
                    limiter.record_sample()
                    replay.update_priorities(batch.indices, td_errors)
                    self.pool.publish(self.learner)
                    self._metrics.append(step_metrics)
                else:
                    learner_held = True  # ahead of the ratio: wait for the actors
            elapsed = time.perf_counter() - started
            self._waited["learner"] += elapsed if learner_held else 0.0
            self._waited["actors"] += elapsed if actors_held else 0.0
            monitor.tick()
