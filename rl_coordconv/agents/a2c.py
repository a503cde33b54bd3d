"""A2C with the OpenAI-baselines Atari defaults: SB3's algorithm, with a faster rollout loop.

:class:`A2C` *is* an SB3 ``A2C`` (same policy, optimizer, loss, logging, save format: it loads
with ``stable_baselines3.A2C.load`` too). For image observations it replaces SB3's
``collect_rollouts`` and ``train`` with a loop that computes the same quantities but

- converts each observation once (uint8 → float / 255, channels-last) into a rollout tensor that
  the update then trains on directly, instead of copying it into a numpy buffer, back into a
  tensor, and re-normalising it;
- with :class:`~rl_coordconv.extractors.AtariCNN`, keeps the activations of the forward passes it
  ran to act and trains from them (:meth:`AtariCNN.backward_cached`): the policy does not change
  during a rollout, so the update's forward pass would recompute exactly these;
- hands actions to the env with ``step_async`` and does its bookkeeping while the emulator's C++
  threads step, before ``step_wait``.

``tests/agents/test_a2c.py`` checks that both loops produce the same parameters update after update.
Anything the fast loop does not cover (separate actor/critic extractors, gSDE, non-image or
non-discrete spaces) goes through SB3's own code.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces
from stable_baselines3 import A2C as SB3A2C
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.preprocessing import is_image_space
from stable_baselines3.common.utils import explained_variance
from stable_baselines3.common.vec_env import VecEnv

from rl_coordconv.extractors import AtariCNN

__all__ = ["A2C", "A2C_DEFAULTS", "A2C_N_ENVS", "A2C_TIMESTEPS"]

# Mnih et al. (2016) ran 16 actor-learner threads; baselines' Atari A2C runs 16 envs.
A2C_N_ENVS = 16
# 10M agent steps = 40M frames, the length of the A2C runs in the CoordConv paper (Fig. 8).
A2C_TIMESTEPS = 10_000_000

A2C_DEFAULTS: dict[str, Any] = {
    "n_steps": 5,  # baselines a2c.learn(nsteps=5)
    "learning_rate": "lin_7e-4",  # baselines lr=7e-4 with lrschedule='linear' (decays to 0)
    "gamma": 0.99,  # baselines gamma=0.99
    "gae_lambda": 1.0,  # baselines: plain n-step returns, no GAE
    "ent_coef": 0.01,  # baselines ent_coef=0.01
    "vf_coef": 0.5,  # baselines vf_coef=0.5 (rl-zoo3 uses 0.25)
    "max_grad_norm": 0.5,  # baselines max_grad_norm=0.5
    "rms_prop_alpha": 0.99,  # baselines alpha=0.99, TensorFlow-style RMSprop (SB3's RMSpropTFLike)
    "rms_prop_eps": 1e-5,  # baselines epsilon=1e-5
    "normalize_advantage": False,  # baselines does not normalise advantages
}


class _Rollout:
    """One rollout, step-major, as tensors on the policy's device."""

    def __init__(self, n_steps: int, n_envs: int, obs_shape: tuple[int, ...], device: torch.device) -> None:
        self.n_steps, self.n_envs = n_steps, n_envs
        fmt = torch.channels_last if len(obs_shape) == 3 else torch.contiguous_format
        self.observations = torch.empty((n_steps * n_envs, *obs_shape), device=device).contiguous(memory_format=fmt)
        self.actions = torch.empty((n_steps, n_envs), dtype=torch.long, device=device)
        self.values = torch.empty((n_steps, n_envs), device=device)
        self.log_probs = torch.empty((n_steps, n_envs), device=device)
        self.features: torch.Tensor | None = None  # AtariCNN outputs and activations, filled lazily
        self.cache: list[torch.Tensor] = []
        self.rewards = np.zeros((n_steps, n_envs), dtype=np.float32)
        self.episode_starts = np.zeros((n_steps, n_envs), dtype=np.float32)
        self.returns = np.zeros((n_steps, n_envs), dtype=np.float32)
        self.advantages = np.zeros((n_steps, n_envs), dtype=np.float32)

    def obs_slot(self, step: int) -> torch.Tensor:
        return self.observations[step * self.n_envs : (step + 1) * self.n_envs]

    def store_activations(self, step: int, features: torch.Tensor, cache: list[torch.Tensor]) -> None:
        if self.features is None:
            total = self.n_steps * self.n_envs
            self.features = features.new_empty((total, *features.shape[1:]))
            self.cache = [
                torch.empty_like(t[:1].expand(total, *t.shape[1:]).contiguous(memory_format=_format(t))) for t in cache
            ]
        rows = slice(step * self.n_envs, (step + 1) * self.n_envs)
        self.features[rows] = features
        for stored, value in zip(self.cache, cache, strict=True):
            stored[rows] = value


def _format(t: torch.Tensor) -> torch.memory_format:
    if t.dim() == 4 and not t.is_contiguous() and t.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


class A2C(SB3A2C):
    """SB3's A2C; the rollout and update for image observations are faster, not different."""

    _rollout: _Rollout | None = None

    def _fast_path(self) -> bool:
        return (
            self.policy.share_features_extractor
            and not self.use_sde
            and isinstance(self.action_space, spaces.Discrete)
            and isinstance(self.observation_space, spaces.Box)
            and is_image_space(self.observation_space, check_channels=False)
            and self.policy.normalize_images
        )

    def _heads(self, observations: torch.Tensor) -> tuple[Any, torch.Tensor]:
        """Action distribution and values for observations already scaled to [0, 1]."""
        return self._heads_from_features(self.policy.features_extractor(observations))

    def _heads_from_features(self, features: torch.Tensor) -> tuple[Any, torch.Tensor]:
        policy = self.policy
        latent_pi, latent_vf = policy.mlp_extractor(features)
        return policy._get_action_dist_from_latent(latent_pi), policy.value_net(latent_vf).flatten()

    def _replays_activations(self) -> bool:
        return isinstance(self.policy.features_extractor, AtariCNN)

    @staticmethod
    def _scale_into(slot: torch.Tensor, obs: np.ndarray) -> torch.Tensor:
        """``obs / 255`` written into ``slot`` (SB3's preprocessing, in one place, no temporaries)."""
        slot.copy_(torch.as_tensor(obs, device=slot.device))
        return slot.div_(255.0)

    def collect_rollouts(
        self, env: VecEnv, callback: BaseCallback, rollout_buffer: RolloutBuffer, n_rollout_steps: int
    ) -> bool:
        if not self._fast_path():
            return super().collect_rollouts(env, callback, rollout_buffer, n_rollout_steps)
        assert self._last_obs is not None, "No previous observation was provided"
        self.policy.set_training_mode(False)
        obs_shape: tuple[int, ...] = self.observation_space.shape  # type: ignore[assignment]
        if self._rollout is None or self._rollout.n_steps != n_rollout_steps:
            self._rollout = _Rollout(n_rollout_steps, env.num_envs, obs_shape, self.device)
        rollout = self._rollout
        callback.on_rollout_start()
        for step in range(n_rollout_steps):
            slot = self._scale_into(rollout.obs_slot(step), self._last_obs)  # type: ignore[arg-type]
            with torch.no_grad():
                extractor = self.policy.features_extractor
                if self._replays_activations():
                    assert isinstance(extractor, AtariCNN)
                    features, cache = extractor.forward_cached(slot)
                    rollout.store_activations(step, features, cache)
                    distribution, values = self._heads_from_features(features)
                else:
                    distribution, values = self._heads(slot)
                actions = distribution.get_actions()
                log_probs = distribution.log_prob(actions)
            env.step_async(actions.cpu().numpy())
            # the emulator steps in its own threads meanwhile
            rollout.actions[step] = actions
            rollout.values[step] = values
            rollout.log_probs[step] = log_probs
            rollout.episode_starts[step] = self._last_episode_starts
            new_obs, rewards, dones, infos = env.step_wait()
            self.num_timesteps += env.num_envs
            callback.update_locals(locals())
            if not callback.on_step():
                return False
            self._update_info_buffer(infos, dones)
            # Time limits are not terminal: bootstrap with the value of the last observation (SB3 #633).
            for index in np.flatnonzero(dones):
                info = infos[index]
                if info.get("terminal_observation") is not None and info.get("TimeLimit.truncated", False):
                    terminal = torch.empty((1, *obs_shape), device=self.device)
                    with torch.no_grad():
                        terminal_value = self._heads(self._scale_into(terminal, info["terminal_observation"][None]))[1]
                    rewards[index] += self.gamma * float(terminal_value[0])
            rollout.rewards[step] = rewards
            self._last_obs = new_obs  # type: ignore[assignment]
            self._last_episode_starts = dones
        with torch.no_grad():
            last = torch.empty((env.num_envs, *obs_shape), device=self.device)
            last_values = self._heads(self._scale_into(last, new_obs))[1].cpu().numpy()  # type: ignore[arg-type]
        self._compute_returns(rollout, last_values, dones)
        callback.update_locals(locals())
        callback.on_rollout_end()
        return True

    def _compute_returns(self, rollout: _Rollout, last_values: np.ndarray, dones: np.ndarray) -> None:
        """GAE(λ) advantages and λ-returns, exactly as SB3's ``RolloutBuffer.compute_returns_and_advantage``."""
        values = rollout.values.cpu().numpy()
        last_gae = np.zeros_like(last_values)
        for step in reversed(range(rollout.n_steps)):
            if step == rollout.n_steps - 1:
                next_non_terminal = 1.0 - dones.astype(np.float32)
                next_values = last_values
            else:
                next_non_terminal = 1.0 - rollout.episode_starts[step + 1]
                next_values = values[step + 1]
            delta = rollout.rewards[step] + self.gamma * next_values * next_non_terminal - values[step]
            last_gae = delta + self.gamma * self.gae_lambda * next_non_terminal * last_gae
            rollout.advantages[step] = last_gae
        rollout.returns[:] = rollout.advantages + values

    def train(self) -> None:
        if not self._fast_path() or self._rollout is None:
            return super().train()
        rollout = self._rollout
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        features = None
        if self._replays_activations() and rollout.features is not None:
            # the forward pass that acted, with these very weights: train from its activations
            features = rollout.features.detach().requires_grad_(True)
            distribution, values = self._heads_from_features(features)
        else:
            distribution, values = self._heads(rollout.observations)
        actions = rollout.actions.flatten()
        log_prob = distribution.log_prob(actions)
        entropy = distribution.entropy()
        advantages = torch.as_tensor(rollout.advantages, device=self.device).flatten()
        returns = torch.as_tensor(rollout.returns, device=self.device).flatten()
        if self.normalize_advantage:
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        policy_loss = -(advantages * log_prob).mean()
        value_loss = F.mse_loss(returns, values)
        entropy_loss = -torch.mean(entropy)
        loss = policy_loss + self.ent_coef * entropy_loss + self.vf_coef * value_loss
        self.policy.optimizer.zero_grad()
        loss.backward()
        if features is not None:
            extractor = self.policy.features_extractor
            assert isinstance(extractor, AtariCNN) and features.grad is not None and rollout.features is not None
            extractor.backward_cached(rollout.observations, rollout.cache, rollout.features, features.grad)
        torch.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
        self.policy.optimizer.step()

        self._n_updates += 1
        explained_var = explained_variance(rollout.values.cpu().numpy().flatten(), rollout.returns.flatten())
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/explained_variance", explained_var)
        self.logger.record("train/entropy_loss", entropy_loss.item())
        self.logger.record("train/policy_loss", policy_loss.item())
        self.logger.record("train/value_loss", value_loss.item())

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "_rollout"]
