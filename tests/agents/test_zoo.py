"""PPO, DQN and QR-DQN: rl-baselines3-zoo's Atari defaults, and a resumed Q-learner refills its
replay buffer before it learns again."""

from __future__ import annotations

import json

import pytest
from helpers import quadrant_envs, run_dir

from rl_coordconv import train
from rl_coordconv.agents import algo_spec, make_model, resolve_hyperparams


def test_ppo_defaults_are_rl_zoo3_atari():
    assert (algo_spec("ppo").n_envs, algo_spec("ppo").timesteps) == (8, 10_000_000)
    model = make_model("ppo", quadrant_envs(), resolve_hyperparams("ppo"), device="cpu")
    assert (model.n_steps, model.n_epochs, model.batch_size, model.vf_coef, model.ent_coef) == (128, 4, 256, 0.5, 0.01)
    assert model.lr_schedule(1.0) == pytest.approx(2.5e-4) and model.lr_schedule(0.5) == pytest.approx(1.25e-4)
    assert model.clip_range(1.0) == pytest.approx(0.1) and model.clip_range(0.5) == pytest.approx(0.05)


@pytest.mark.parametrize(
    ("algo", "expected"),
    [
        # rl-zoo3 hyperparams/dqn.yml, atari; buffer 100k instead of 1M (see DQN_DEFAULTS)
        ("dqn", (1e-4, 32, 100_000, 10_000, 4, 1, 0.1, 0.1)),
        # sb3-contrib's QRDQN defaults, which rl-zoo3's qrdqn.yml keeps for atari
        ("qrdqn", (5e-5, 32, 100, 10_000, 4, 1, 0.005, 0.01)),
    ],
)
def test_dqn_family_defaults_are_rl_zoo3_atari(algo, expected):
    spec = algo_spec(algo)
    assert spec.hyperparams["buffer_size"] == 100_000 and (spec.n_envs, spec.timesteps) == (1, 10_000_000)
    model = make_model(algo, quadrant_envs(), resolve_hyperparams(algo, {"buffer_size": 100}), device="cpu")
    assert (
        model.lr_schedule(1.0),
        model.batch_size,
        model.learning_starts,
        model.target_update_interval,
        model.train_freq.frequency,
        model.gradient_steps,
        model.exploration_fraction,
        model.exploration_final_eps,
    ) == pytest.approx(expected)
    if algo == "qrdqn":
        assert model.policy.n_quantiles == 200


def test_a_resumed_dqn_refills_its_replay_buffer_before_it_learns_again(tmp_path):
    from stable_baselines3 import DQN

    dqn = ["--algo", "dqn", "--game", "Breakout", "--no-progress", "--timesteps", "400", "--checkpoint-every", "200"]
    dqn += ["--set", "buffer_size=500", "--set", "learning_starts=60", "--set", "train_freq=4"]
    fresh, resumed = tmp_path / "fresh", tmp_path / "resumed"
    assert train.main([*dqn, "--log-dir", str(fresh)]) == 0
    assert train.main([*dqn, "--log-dir", str(resumed)]) == 0
    run = run_dir(resumed, algo="dqn")
    (run / "state.json").write_text(json.dumps({"status": "running", "agent_steps": 200}))  # died after step 200
    assert train.main([*dqn, "--log-dir", str(resumed), "--resume"]) == 0
    whole = DQN.load(run_dir(fresh, algo="dqn") / "final_model.zip")
    again = DQN.load(run / "final_model.zip")
    assert again.learning_starts == 60 and again.learn_from == 200 + 60
    assert again._n_updates == whole._n_updates - 60 // 4  # no gradient step while steps 200-260 refill it
