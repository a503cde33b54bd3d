"""The fast A2C loop: the same updates as SB3's, a stock SB3 zip, and OpenAI baselines' defaults."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import quadrant_envs
from stable_baselines3 import A2C as SB3A2C
from stable_baselines3.common.utils import set_random_seed

from rl_coordconv.agents import algo_spec, make_model, resolve_hyperparams
from rl_coordconv.agents.a2c import A2C
from rl_coordconv.envs import make_atari_vec_env


@pytest.mark.parametrize("optimizer", ["sgd", "rmsprop"])
@pytest.mark.parametrize("coordconv", [False, True], ids=["conv", "coordconv"])
def test_fast_a2c_updates_like_sb3(coordconv, optimizer):
    hyperparams = resolve_hyperparams("a2c")
    models = []
    for cls in (SB3A2C, A2C):
        model = make_model("a2c", quadrant_envs(), hyperparams, coordconv=coordconv, seed=3, device="cpu")
        model.__class__ = cls  # same construction, only the rollout/update code differs
        if optimizer == "sgd":  # linear in the gradients: any difference would show undamped
            model.policy.optimizer = torch.optim.SGD(model.policy.parameters(), lr=1e-2)
        models.append(model)
    stock, fast = models
    assert fast._fast_path()
    for a, b in zip(stock.policy.parameters(), fast.policy.parameters(), strict=True):
        assert torch.equal(a, b)
    initial = [p.detach().clone() for p in stock.policy.parameters()]
    # 4 envs × 5 steps × 12 updates, through terminations and time limits (bootstrapped values)
    for model in models:
        set_random_seed(7)  # the global RNGs drive action sampling: same draws for both
        model.learn(total_timesteps=240)
    assert stock.num_timesteps == fast.num_timesteps == 240
    # Only float summation order differs. RMSprop divides by the root of tiny second moments,
    # which magnifies rounding on near-zero gradients, hence its looser absolute tolerance.
    atol = 1e-7 if optimizer == "sgd" else 2e-5
    moved = 0.0
    for a, b, c in zip(stock.policy.parameters(), fast.policy.parameters(), initial, strict=True):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=atol)
        moved = max(moved, float((a - c).detach().abs().max()))
    assert moved > 1e-4, "the models did not train, so the comparison proves nothing"
    for key in ("train/value_loss", "train/policy_loss", "train/entropy_loss", "train/explained_variance"):
        assert fast.logger.name_to_value[key] == pytest.approx(stock.logger.name_to_value[key], rel=1e-3, abs=1e-6)


@pytest.mark.parametrize(
    "coordconv,head",
    [(False, "flatten"), (True, "flatten"), (True, "pool")],
    ids=["conv", "coordconv", "coordconv_pool"],
)
def test_fast_a2c_updates_like_sb3_on_the_training_env(coordconv, head):
    """The same on what training runs: 84×84 Breakout in ALE's C++ vector env, stepping while the policy works."""
    models = []
    for cls in (SB3A2C, A2C):
        env = make_atari_vec_env("Breakout", 8, seed=0)
        hyperparams = resolve_hyperparams("a2c")
        model = make_model("a2c", env, hyperparams, coordconv=coordconv, head=head, seed=3, device="cpu")
        model.__class__ = cls
        set_random_seed(7)
        model.learn(total_timesteps=8 * 5 * 12)
        env.close()
        models.append(model)
    stock, fast = models
    assert stock.num_timesteps == fast.num_timesteps == 480
    assert fast._fast_path()
    for a, b in zip(stock.policy.parameters(), fast.policy.parameters(), strict=True):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=2e-5)
    value_loss = fast.logger.name_to_value["train/value_loss"]
    assert value_loss > 0, "no update was made, so the comparison proves nothing"
    assert value_loss == pytest.approx(stock.logger.name_to_value["train/value_loss"])


def test_fast_a2c_model_loads_as_a_stock_sb3_model(tmp_path):
    model = make_model("a2c", quadrant_envs(), resolve_hyperparams("a2c"), coordconv=True, seed=0, device="cpu")
    model.learn(40)
    model.save(tmp_path / "m.zip")
    loaded = SB3A2C.load(tmp_path / "m.zip", device="cpu")
    obs = np.stack([quadrant_envs().observation_space.sample() for _ in range(5)])
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0])


def test_a2c_defaults_are_openai_baselines():
    hp = algo_spec("a2c").hyperparams
    assert (hp["n_steps"], hp["gamma"], hp["ent_coef"], hp["vf_coef"], hp["max_grad_norm"]) == (5, 0.99, 0.01, 0.5, 0.5)
    assert hp["learning_rate"] == "lin_7e-4" and hp["rms_prop_eps"] == 1e-5 and hp["rms_prop_alpha"] == 0.99
    assert algo_spec("a2c").n_envs == 16 and algo_spec("a2c").timesteps == 10_000_000
    model = make_model("a2c", quadrant_envs(), resolve_hyperparams("a2c"), device="cpu")
    optimizer = model.policy.optimizer
    assert type(optimizer).__name__ == "RMSpropTFLike"
    assert optimizer.defaults["alpha"] == 0.99 and optimizer.defaults["eps"] == 1e-5
    assert model.lr_schedule(1.0) == pytest.approx(7e-4) and model.lr_schedule(0.5) == pytest.approx(3.5e-4)
