"""The Ape-X learner: prioritized n-step double-Q updates of the network in an SB3 DQN model.

One learner step (Horgan et al. 2018): sample a prioritized batch, compute n-step double-Q targets
``G = R + γ^k Q_target(s', argmax_a Q(s', a))`` (van Hasselt et al. 2016), minimise
``½ w (G − Q(s, a))²`` with importance weights ``w``, clip the gradient norm, and return ``|G − Q|``
as the new priorities. The target network is copied from the online one every
``target_update_interval`` steps.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from stable_baselines3 import DQN

from rl_coordconv.agents.apex.config import ApexConfig
from rl_coordconv.agents.apex.networks import flat_parameters
from rl_coordconv.agents.apex.replay import SampledBatch
from rl_coordconv.extractors import AtariCNN

__all__ = ["ApexLearner"]


class ApexLearner:
    """Trains the Q-network of an SB3 DQN model on prioritized n-step double-Q batches.

    :param model: from :func:`make_apex_model`, or a saved one loaded with ``DQN.load``
    :param config: the Ape-X hyperparameters
    """

    def __init__(self, model: DQN, config: ApexConfig) -> None:
        self.model = model
        self.config = config
        self.policy = model.policy
        self.device = model.device

    @property
    def steps(self) -> int:
        """Learner steps (gradient updates) so far, across resumes."""
        return int(self.model._n_updates)

    @property
    def target_version(self) -> int:
        """How many times the target network has been copied from the online one."""
        return self.steps // self.config.target_update_interval

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(array, device=self.device)

    def step(self, batch: SampledBatch) -> tuple[np.ndarray, dict[str, float]]:
        """One gradient step on ``batch``.

        :return: ``|TD error|`` of each sample (its new priority), and ``loss``, ``q_values``
        """
        policy = self.policy
        policy.set_training_mode(True)
        observations = self._tensor(batch.observations)
        next_observations = self._tensor(batch.next_observations)
        actions = self._tensor(batch.actions)[:, None]
        with torch.no_grad():
            next_actions = policy.q_net(next_observations).argmax(dim=1, keepdim=True)
            next_values = policy.q_net_target(next_observations).gather(1, next_actions).squeeze(1)
            targets = self._tensor(batch.returns) + self._tensor(batch.discounts) * next_values
        q_values = policy.q_net(observations).gather(1, actions).squeeze(1)
        td_errors = targets - q_values
        loss = (self._tensor(batch.weights) * 0.5 * td_errors.pow(2)).mean()
        policy.optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.q_net.parameters(), self.config.max_grad_norm)
        policy.optimizer.step()
        self.model._n_updates += 1
        if self.steps % self.config.target_update_interval == 0:
            policy.q_net_target.load_state_dict(policy.q_net.state_dict())
        metrics = {"loss": float(loss.detach()), "q_values": float(q_values.detach().mean())}
        return td_errors.detach().abs().cpu().numpy(), metrics

    def online_parameters(self) -> np.ndarray:
        return flat_parameters(self.policy.q_net)

    def target_parameters(self) -> np.ndarray:
        return flat_parameters(self.policy.q_net_target)

    def coord_weight_ratio(self) -> float | None:
        """‖W_coord‖/‖W_image‖ of the online network's first CoordConv layer (None in the conv arm)."""
        extractor = self.policy.q_net.features_extractor
        return extractor.coord_weight_ratio() if isinstance(extractor, AtariCNN) else None

    def save(self, agent_steps: int) -> bytes:
        """The model as an SB3 zip (network, target network, optimizer, counters)."""
        self.model.num_timesteps = agent_steps
        buffer = io.BytesIO()
        self.model.save(buffer)
        return buffer.getvalue()

    @classmethod
    def load(cls, path: Path | str, config: ApexConfig, device: torch.device | str = "cpu") -> ApexLearner:
        """A learner resumed from a zip written by :meth:`save`."""
        return cls(DQN.load(path, device=device), config)
