"""Ape-X DQN (Horgan et al. 2018) with CoordConv: prioritized replay, many ε-greedy actors, one learner.

Split the way Acme splits agents: :mod:`.config` (hyperparameters and their sources),
:mod:`.replay` (sum tree, frame-deduplicated prioritized replay), :mod:`.actor` (ε-greedy play,
n-step transitions, initial priorities), :mod:`.learner` (the dueling double-Q network as an SB3
DQN, the update), :mod:`.runner` (the loop, with actors in local processes or on Ray).
``python -m rl_coordconv.train --algo apex`` runs it.
"""

from rl_coordconv.agents.apex.actor import ActorOutput, ActorSpec, ApexActor, NStepBuilder, NStepTransition
from rl_coordconv.agents.apex.config import APEX_ENVS_PER_ACTOR, APEX_TIMESTEPS, ApexConfig, actor_epsilon
from rl_coordconv.agents.apex.learner import ApexLearner, DuelingDQNPolicy, DuelingQNetwork, make_apex_model
from rl_coordconv.agents.apex.replay import Chunk, ChunkBuilder, PrioritizedReplay, SampledBatch, SumTree
from rl_coordconv.agents.apex.runner import ApexTrainer, LocalActorPool, RayActorPool, make_actor_pool

__all__ = [
    "APEX_ENVS_PER_ACTOR",
    "APEX_TIMESTEPS",
    "ActorOutput",
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
