"""The Ape-X learner: one step minimises the importance-weighted double-Q n-step error, and the
target network follows the online one."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import learner_batch

from rl_coordconv.agents.apex import ApexConfig, ApexLearner, DuelingDQNPolicy, make_apex_model
from rl_coordconv.agents.apex.networks import apex_policy_kwargs, flat_parameters, game_spaces, load_flat_parameters
from rl_coordconv.extractors import AtariCNN


def test_learner_step_minimises_the_double_q_n_step_error_and_copies_the_target():
    config = ApexConfig(batch_size=8, replay_capacity=64, learning_starts=8, target_update_interval=2)
    observation_space, action_space = game_spaces("Breakout")
    model = make_apex_model(observation_space, action_space, config, apex_policy_kwargs(config, coordconv=True), 0)
    learner = ApexLearner(model, config)
    policy = model.policy
    assert isinstance(policy, DuelingDQNPolicy) and isinstance(policy.q_net.features_extractor, AtariCNN)
    with torch.no_grad():  # the online network prefers action 0, the target network action 2
        policy.q_net.q_net.advantage[-1].bias += torch.tensor([1.0, 0.0, 0.0, 0.0])
        policy.q_net_target.q_net.advantage[-1].bias += torch.tensor([0.0, 0.0, 1.0, 0.0])
    batch = learner_batch(discounts=np.array([0.99**3] * 6 + [0.0, 0.99]), weights=np.linspace(0.2, 1, 8))
    with torch.no_grad():
        next_obs = torch.as_tensor(batch.next_observations)
        online_next, target_next = policy.q_net(next_obs).numpy(), policy.q_net_target(next_obs).numpy()
        q = policy.q_net(torch.as_tensor(batch.observations)).numpy()[np.arange(8), batch.actions]
    double_q = target_next[np.arange(8), online_next.argmax(1)]
    assert not np.allclose(double_q, target_next.max(1))  # so the test tells double Q from max
    expected = np.abs(batch.returns + batch.discounts * double_q - q)
    before = flat_parameters(policy.q_net)
    td_errors, metrics = learner.step(batch)
    np.testing.assert_allclose(td_errors, expected, rtol=1e-4, atol=1e-5)
    assert learner.steps == 1
    assert metrics["loss"] == pytest.approx(np.mean(batch.weights * 0.5 * expected**2), rel=1e-4)  # importance-weighted
    assert not np.array_equal(flat_parameters(policy.q_net), before)
    assert not np.allclose(flat_parameters(policy.q_net_target), flat_parameters(policy.q_net))
    learner.step(batch)  # step 2 = target_update_interval: the target becomes the online network
    np.testing.assert_array_equal(flat_parameters(policy.q_net_target), flat_parameters(policy.q_net))
    assert learner.target_version == 1
    load_flat_parameters(policy.q_net_target, before)  # what actors do with pulled parameters
    np.testing.assert_array_equal(flat_parameters(policy.q_net_target), before)
