"""The algorithm registry and the fast A2C loop's equivalence with SB3's."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import A2C as SB3A2C
from stable_baselines3.common.utils import set_random_seed
from stable_baselines3.common.vec_env import DummyVecEnv

from rl_coordconv.agents import ALGOS, algo_spec, make_model, parse_overrides, resolve_hyperparams
from rl_coordconv.agents.a2c import A2C
from rl_coordconv.envs import make_atari_vec_env


class QuadrantEnv(gym.Env):
    """4×36×36 uint8 noise with one bright quadrant; reward 1 for naming it (action 0–3).

    Episodes end (terminated) after 3 rewards and are cut (truncated) after 9 steps, so a rollout
    sees both kinds of ending. Everything random comes from the env's own seeded generator.
    """

    observation_space = gym.spaces.Box(0, 255, (4, 36, 36), np.uint8)
    action_space = gym.spaces.Discrete(4)

    def _observe(self) -> np.ndarray:
        self.quadrant = int(self.np_random.integers(4))
        obs = self.np_random.integers(0, 128, (4, 36, 36), dtype=np.uint8)
        row, col = divmod(self.quadrant, 2)
        obs[:, row * 18 : row * 18 + 18, col * 18 : col * 18 + 18] += 127
        return obs

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.steps = self.hits = 0
        return self._observe(), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        reward = float(action == self.quadrant)
        self.steps += 1
        self.hits += int(reward)
        return self._observe(), reward, self.hits >= 3, self.steps >= 9, {}


def _env() -> DummyVecEnv:
    env = DummyVecEnv([QuadrantEnv] * 4)
    env.seed(0)
    return env


@pytest.mark.parametrize("optimizer", ["sgd", "rmsprop"])
@pytest.mark.parametrize("coordconv", [False, True], ids=["conv", "coordconv"])
def test_fast_a2c_updates_like_sb3(coordconv, optimizer):
    hyperparams = resolve_hyperparams("a2c")
    models = []
    for cls in (SB3A2C, A2C):
        model = make_model("a2c", _env(), hyperparams, coordconv=coordconv, seed=3, device="cpu")
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


@pytest.mark.parametrize("coordconv", [False, True], ids=["conv", "coordconv"])
def test_fast_a2c_updates_like_sb3_on_the_training_env(coordconv):
    """The same on what training runs: 84×84 Breakout in ALE's C++ vector env, stepping while the policy works."""
    models = []
    for cls in (SB3A2C, A2C):
        env = make_atari_vec_env("Breakout", 8, seed=0)
        model = make_model("a2c", env, resolve_hyperparams("a2c"), coordconv=coordconv, seed=3, device="cpu")
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
    model = make_model("a2c", _env(), resolve_hyperparams("a2c"), coordconv=True, seed=0, device="cpu")
    model.learn(40)
    model.save(tmp_path / "m.zip")
    loaded = SB3A2C.load(tmp_path / "m.zip", device="cpu")
    obs = np.stack([_env().observation_space.sample() for _ in range(5)])
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0])


def test_a2c_defaults_are_openai_baselines():
    hp = algo_spec("a2c").hyperparams
    assert (hp["n_steps"], hp["gamma"], hp["ent_coef"], hp["vf_coef"], hp["max_grad_norm"]) == (5, 0.99, 0.01, 0.5, 0.5)
    assert hp["learning_rate"] == "lin_7e-4" and hp["rms_prop_eps"] == 1e-5 and hp["rms_prop_alpha"] == 0.99
    assert algo_spec("a2c").n_envs == 16 and algo_spec("a2c").timesteps == 10_000_000
    model = make_model("a2c", _env(), resolve_hyperparams("a2c"), device="cpu")
    optimizer = model.policy.optimizer
    assert type(optimizer).__name__ == "RMSpropTFLike"
    assert optimizer.defaults["alpha"] == 0.99 and optimizer.defaults["eps"] == 1e-5
    assert model.lr_schedule(1.0) == pytest.approx(7e-4) and model.lr_schedule(0.5) == pytest.approx(3.5e-4)


def test_ppo_defaults_are_rl_zoo3_atari():
    assert (algo_spec("ppo").n_envs, algo_spec("ppo").timesteps) == (8, 10_000_000)
    model = make_model("ppo", _env(), resolve_hyperparams("ppo"), device="cpu")
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
    model = make_model(algo, _env(), resolve_hyperparams(algo, {"buffer_size": 100}), device="cpu")
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


def test_overrides_are_parsed_not_evaluated():
    assert parse_overrides(["n_steps=8", "learning_rate=lin_1e-3", "gamma=0.995", "normalize_advantage=true"]) == {
        "n_steps": 8,
        "learning_rate": "lin_1e-3",
        "gamma": 0.995,
        "normalize_advantage": True,
    }
    assert parse_overrides(["ent_coef=__import__('os').system('false')"]) == {
        "ent_coef": "__import__('os').system('false')"
    }
    with pytest.raises(ValueError, match="key=value"):
        parse_overrides(["n_steps"])


def test_unknown_hyperparameter_names_the_allowed_ones():
    with pytest.raises(ValueError, match=r"a2c has no hyperparameter 'n_step'.*n_steps"):
        resolve_hyperparams("a2c", {"n_step": 8})
    with pytest.raises(ValueError, match="lin_<number>"):
        resolve_hyperparams("a2c", {"learning_rate": "lin_fast"})
    with pytest.raises(ValueError, match=r"unknown algo 'a3c'; choose from a2c, ppo, dqn, qrdqn"):
        algo_spec("a3c")


@pytest.mark.parametrize("algo", list(ALGOS))
def test_every_registered_algo_builds_with_atari_cnn(algo):
    overrides = {"buffer_size": 100} if algo in ("dqn", "qrdqn") else {}
    model = make_model(algo, _env(), resolve_hyperparams(algo, overrides), coordconv=True, device="cpu")
    names = [type(m).__name__ for m in model.policy.modules()]
    assert "AtariCNN" in names and "CoordConv2d" in names
