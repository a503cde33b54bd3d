"""The Ape-X network: an SB3 ``DQNPolicy`` with the paper's dueling head over ``AtariCNN``, its parameters as vectors.

The network lives in an SB3 :class:`~stable_baselines3.DQN` model, so a trained Ape-X agent *is*
an SB3 DQN zip: ``stable_baselines3.DQN.load`` (or ``rl_coordconv.agents.load_model("apex", …)``)
loads it and ``predict`` acts with it. The zip is for acting and evaluation; SB3's own replay and
``learn`` are not used (its replay buffer is a one-slot placeholder). The actors build the same
network from :func:`apex_policy_kwargs` and take the learner's parameters as flat vectors.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3 import DQN
from stable_baselines3.common.sb2_compat.rmsprop_tf_like import RMSpropTFLike
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, create_mlp
from stable_baselines3.dqn.policies import DQNPolicy, QNetwork
from torch import nn

from rl_coordconv.agents.apex.config import ApexConfig
from rl_coordconv.envs import action_meanings, observation_space
from rl_coordconv.experiment import CoordLayers
from rl_coordconv.extractors import atari_policy_kwargs

__all__ = [
    "DUELING_HIDDEN",
    "TRUNK_GRADIENT_SCALE",
    "DuelingDQNPolicy",
    "DuelingHead",
    "DuelingQNetwork",
    "apex_policy_kwargs",
    "flat_parameters",
    "game_spaces",
    "load_flat_parameters",
    "make_apex_model",
]


# Wang et al. (2016), §4.2: "we rescale the combined gradient entering the last convolutional layer
# by 1/√2", as both streams backpropagate into it.
TRUNK_GRADIENT_SCALE = 2**-0.5


DUELING_HIDDEN = 512  # units of each stream's hidden layer (Wang et al. 2016, as in Ape-X)


class DuelingHead(nn.Module):
    """``Q(s, a) = V(s) + A(s, a) − mean_a' A(s, a')`` over a features vector (Wang et al. 2016, Eq. 9).

    As Ape-X builds it (Horgan et al. 2018, after Wang et al.): the features are the conv trunk's
    flattened output (``AtariCNN`` with ``features_dim=0``), each stream has a 512-unit hidden layer
    of its own (``net_arch=[512]``), and the gradient into the trunk is scaled by 1/√2. Only the
    trunk differs between the conv and CoordConv arms.

    :param features_dim: input features
    :param n_actions: actions
    :param net_arch: hidden layers of each stream (empty: both streams are linear)
    :param activation_fn: activation between hidden layers
    """

    def __init__(
        self, features_dim: int, n_actions: int, net_arch: list[int], activation_fn: type[nn.Module] = nn.ReLU
    ) -> None:
        super().__init__()
        self.value = nn.Sequential(*create_mlp(features_dim, 1, net_arch, activation_fn))
        self.advantage = nn.Sequential(*create_mlp(features_dim, n_actions, net_arch, activation_fn))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if features.requires_grad:  # the same values; the gradient into the trunk × 1/√2
            features = features * TRUNK_GRADIENT_SCALE + features.detach() * (1 - TRUNK_GRADIENT_SCALE)
        advantage = self.advantage(features)
        return self.value(features) + advantage - advantage.mean(dim=1, keepdim=True)


class DuelingQNetwork(QNetwork):
    """SB3's ``QNetwork`` whose head (``q_net``) is a :class:`DuelingHead`."""

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Discrete,
        features_extractor: BaseFeaturesExtractor,
        features_dim: int,
        net_arch: list[int] | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        normalize_images: bool = True,
    ) -> None:
        super().__init__(
            observation_space, action_space, features_extractor, features_dim, net_arch, activation_fn, normalize_images
        )
        # SB3 types q_net as a Sequential; any module mapping features to Q-values works
        self.q_net = DuelingHead(features_dim, int(action_space.n), self.net_arch, activation_fn)  # type: ignore[assignment]


class DuelingDQNPolicy(DQNPolicy):
    """SB3's ``DQNPolicy`` with dueling Q-networks (online and target)."""

    def make_q_net(self) -> DuelingQNetwork:
        net_args = self._update_features_extractor(self.net_args, features_extractor=None)
        return DuelingQNetwork(**net_args).to(self.device)


def apex_policy_kwargs(
    config: ApexConfig,
    coordconv: bool = False,
    with_r: bool = False,
    coord_layers: CoordLayers = "first",
    head: str = "flatten",
) -> dict[str, Any]:
    """``policy_kwargs`` of the Ape-X network: ``AtariCNN``'s conv trunk without its dense layer, the
    dueling streams' own 512-unit hidden layers (:class:`DuelingHead`), Ape-X's centered RMSProp.

    (Ape-X runs made before 2026-12-06 have linear streams over ``AtariCNN``'s 512 features; their
    saved ``policy_kwargs`` say so, and their models still load and play.)"""
    kwargs = atari_policy_kwargs(
        "dqn", coordconv=coordconv, with_r=with_r, coord_layers=coord_layers, head=head, features_dim=0
    )
    kwargs["net_arch"] = [DUELING_HIDDEN]
    kwargs["optimizer_class"] = RMSpropTFLike
    kwargs["optimizer_kwargs"] = dict(alpha=config.rmsprop_decay, eps=config.rmsprop_eps, centered=True)
    return kwargs


def make_apex_model(
    observation_space: spaces.Space,
    action_space: spaces.Space,
    config: ApexConfig,
    policy_kwargs: dict[str, Any],
    seed: int | None = None,
    device: torch.device | str = "cpu",
) -> DQN:
    """An SB3 DQN holding the Ape-X network, built from spaces alone (the actors own the envs).

    Its hyperparameters mirror Ape-X's where SB3 has a counterpart, for the record; its
    ``exploration_rate`` is the evaluation ε used by ``predict(deterministic=False)``.
    """
    if not isinstance(action_space, spaces.Discrete):
        raise ValueError(f"Ape-X DQN needs a discrete action space, got {action_space}")
    model = DQN(
        DuelingDQNPolicy,
        env=None,  # type: ignore[arg-type]  # the spaces are set below
        learning_rate=config.learning_rate,
        buffer_size=1,  # SB3's replay is never used: Ape-X has its own
        learning_starts=config.learning_starts,
        batch_size=config.batch_size,
        gamma=config.gamma,
        target_update_interval=config.target_update_interval,
        max_grad_norm=config.max_grad_norm,
        policy_kwargs=policy_kwargs,
        seed=seed,
        device=device,
        _init_setup_model=False,
    )
    model.observation_space = observation_space
    model.action_space = action_space
    model.n_envs = 1
    model._setup_model()
    model.exploration_rate = config.eval_epsilon
    return model


def flat_parameters(module: nn.Module) -> np.ndarray:
    """All parameters of ``module`` as one float32 vector, on the CPU."""
    return torch.nn.utils.parameters_to_vector(module.parameters()).detach().cpu().numpy()


def load_flat_parameters(module: nn.Module, vector: np.ndarray | torch.Tensor) -> None:
    """Copy a vector made by :func:`flat_parameters` into ``module``'s parameters, in place."""
    if isinstance(vector, np.ndarray) and not vector.flags.writeable:
        vector = vector.copy()  # Ray hands out read-only views of its object store; torch warns on those
    source = torch.as_tensor(vector)
    offset = 0
    with torch.no_grad():
        for parameter in module.parameters():
            n = parameter.numel()
            parameter.copy_(source[offset : offset + n].view_as(parameter))
            offset += n
    if offset != source.numel():
        raise ValueError(f"parameter vector has {source.numel()} values, the network {offset}")


def game_spaces(game: str) -> tuple[gym.spaces.Box, gym.spaces.Discrete]:
    """Observation and action spaces of ``game`` under the project's protocol, without an emulator."""
    return observation_space(game), gym.spaces.Discrete(len(action_meanings(game)))
