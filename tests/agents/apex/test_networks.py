"""The Ape-X network: the paper's dueling head, and a trained model that is an SB3 DQN."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import run_dir

from rl_coordconv.agents import load_model, load_run_model
from rl_coordconv.agents.apex import ApexConfig, DuelingDQNPolicy, make_apex_model
from rl_coordconv.agents.apex.networks import DuelingHead, apex_policy_kwargs, game_spaces


def test_dueling_head_is_value_plus_centred_advantage():
    torch.manual_seed(0)
    head = DuelingHead(16, 4, net_arch=[])
    features = torch.randn(5, 16)
    with torch.no_grad():
        q, value, advantage = head(features), head.value(features), head.advantage(features)
    torch.testing.assert_close(q.mean(dim=1, keepdim=True), value)  # V is the mean Q over actions
    torch.testing.assert_close(q - q[:, :1], advantage - advantage[:, :1])  # A alone orders the actions


def test_a_trained_apex_model_loads_as_an_sb3_dqn_and_predicts(local_run):
    from stable_baselines3 import DQN

    from rl_coordconv.envs import make_atari_vec_env

    path = run_dir(local_run[0], "apex", arm="coordconv") / "final_model.zip"
    model = DQN.load(path, device="cpu")
    assert isinstance(model.policy, DuelingDQNPolicy) and model.num_timesteps == 2000 and model._n_updates > 0
    assert model.policy.q_net.features_extractor.coordconv and model.exploration_rate == 0.001
    env = make_atari_vec_env("Breakout", 2, seed=5, training=False)
    try:
        obs = env.reset()
        actions, _ = model.predict(obs, deterministic=True)
        with torch.no_grad():
            greedy = model.policy.q_net(torch.as_tensor(obs)).argmax(1).numpy()
        np.testing.assert_array_equal(actions, greedy)
        assert load_model("apex", path).predict(obs, deterministic=True)[0].shape == (2,)
    finally:
        env.close()
    # enjoy loads it through the registry (tests/test_learning.py plays whole games with it)
    config, loaded = load_run_model(run_dir(local_run[0], "apex", arm="coordconv"), device="cpu")
    assert config["algo"] == "apex" and isinstance(loaded.policy, DuelingDQNPolicy)


@pytest.mark.parametrize("coordconv", [False, True])
def test_the_network_is_the_papers_dueling_architecture(coordconv):
    """Ape-X's network (Horgan et al. 2018, after Wang et al. 2016): the Nature CNN's conv trunk,
    then value and advantage streams with a 512-unit hidden layer each; CoordConv changes conv 1 only."""
    config = ApexConfig()
    observation_space, action_space = game_spaces("Breakout")
    policy = make_apex_model(observation_space, action_space, config, apex_policy_kwargs(config, coordconv), 0).policy
    shapes = {name: tuple(p.shape) for name, p in policy.q_net.named_parameters()}
    assert shapes == {
        "features_extractor.cnn.0.weight": (32, 4 + 2 * coordconv, 8, 8),
        "features_extractor.cnn.0.bias": (32,),
        "features_extractor.cnn.2.weight": (64, 32, 4, 4),
        "features_extractor.cnn.2.bias": (64,),
        "features_extractor.cnn.4.weight": (64, 64, 3, 3),
        "features_extractor.cnn.4.bias": (64,),
        "q_net.value.0.weight": (512, 3136),
        "q_net.value.0.bias": (512,),
        "q_net.value.2.weight": (1, 512),
        "q_net.value.2.bias": (1,),
        "q_net.advantage.0.weight": (512, 3136),
        "q_net.advantage.0.bias": (512,),
        "q_net.advantage.2.weight": (4, 512),
        "q_net.advantage.2.bias": (4,),
    }


def test_the_gradient_into_the_trunk_is_scaled_by_one_over_root_two():
    torch.manual_seed(0)
    head = DuelingHead(16, 4, net_arch=[8])
    features = torch.randn(5, 16, requires_grad=True)
    q = head(features)
    q.square().sum().backward()
    scaled, features.grad = features.grad, None
    # the same sum without the scaling: Eq. 9 written out
    advantage = head.advantage(features)
    unscaled_q = head.value(features) + advantage - advantage.mean(dim=1, keepdim=True)
    torch.testing.assert_close(q, unscaled_q)  # the values are untouched
    unscaled_q.square().sum().backward()
    torch.testing.assert_close(scaled, features.grad / 2**0.5)


def test_a_model_saved_with_the_earlier_linear_streams_still_loads_and_plays(tmp_path):
    """Ape-X runs before 2026-12-06 (results/atari/runs_apex) saved linear streams over AtariCNN's
    512 features; their zips carry those policy_kwargs and rebuild that network."""
    config = ApexConfig()
    observation_space, action_space = game_spaces("Breakout")
    earlier = apex_policy_kwargs(config, coordconv=True)
    earlier["features_extractor_kwargs"] = dict(earlier["features_extractor_kwargs"], features_dim=512)
    earlier["net_arch"] = []
    model = make_apex_model(observation_space, action_space, config, earlier, 0)
    model.save(tmp_path / "earlier.zip")
    loaded = load_model("apex", tmp_path / "earlier.zip")
    assert tuple(loaded.policy.q_net.q_net.value[0].weight.shape) == (1, 512)
    obs = np.stack([observation_space.sample() for _ in range(3)])
    torch.testing.assert_close(
        loaded.policy.q_net(torch.as_tensor(obs)), model.policy.q_net(torch.as_tensor(obs)), atol=0, rtol=0
    )
