"""The Ape-X network: a dueling head, and a trained model that is an SB3 DQN."""

from __future__ import annotations

import numpy as np
import torch
from helpers import run_dir

from rl_coordconv.agents import load_model, load_run_model
from rl_coordconv.agents.apex import DuelingDQNPolicy
from rl_coordconv.agents.apex.networks import DuelingHead


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
