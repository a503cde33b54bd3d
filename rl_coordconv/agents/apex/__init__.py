"""Ape-X DQN (Horgan et al. 2018) with CoordConv: prioritized replay, many ε-greedy actors, one learner.

Split the way Acme splits agents: :mod:`.config` (hyperparameters and their sources),
:mod:`.networks` (the dueling double-Q network as an SB3 DQN, parameters as vectors),
:mod:`.replay` (sum tree, frame-deduplicated prioritized replay), :mod:`.actor` (ε-greedy play,
n-step transitions, initial priorities), :mod:`.learner` (the update), :mod:`.limiter` (samples per insert),
:mod:`.pools` (where the actors run: local processes or Ray), :mod:`.trainer` (the loop that wires
them together).
``python -m rl_coordconv.train --algo apex`` runs it.
"""

from rl_coordconv.agents.apex.actor import ActorOutput, ActorSpec, ApexActor, NStepBuilder, NStepTransition
from rl_coordconv.agents.apex.config import APEX_ENVS_PER_ACTOR, APEX_TIMESTEPS, ApexConfig, actor_epsilon
from rl_coordconv.agents.apex.learner import ApexLearner
from rl_coordconv.agents.apex.networks import DuelingDQNPolicy, DuelingQNetwork, make_apex_model
from rl_coordconv.agents.apex.pools import ActorFailure, ActorPool, LocalActorPool, RayActorPool, make_actor_pool
from rl_coordconv.agents.apex.replay import Chunk, ChunkBuilder, PrioritizedReplay, SampledBatch, SumTree
from rl_coordconv.agents.apex.trainer import ApexTrainer

__all__ = [
    "APEX_ENVS_PER_ACTOR",
    "APEX_TIMESTEPS",
    "ActorFailure",
    "ActorOutput",
    "ActorPool",
    "ActorSpec",
    "ApexActor",
    "ApexConfig",
    "ApexLearner",
    "ApexTrainer",
    "Chunk",
    "ChunkBuilder",
    "DuelingDQNPolicy",
    "DuelingQNetwork",
    "LocalActorPool",
    "NStepBuilder",
    "NStepTransition",
    "PrioritizedReplay",
    "RayActorPool",
    "SampledBatch",
    "SumTree",
    "actor_epsilon",
    "make_actor_pool",
    "make_apex_model",
]
