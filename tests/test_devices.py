"""The same checks on every device: the CPU here, CUDA where there is one (marked ``cuda``).

``pytest -m cuda`` runs only the CUDA ones (``benchmarks/gpu.sh`` does, on a GPU box); without a
CUDA device they are skipped, and their CPU twins keep the checks themselves honest.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml
from helpers import learner_batch, quadrant_envs, run_dir
from stable_baselines3 import A2C as SB3A2C
from stable_baselines3.common.utils import set_random_seed

from rl_coordconv import train
from rl_coordconv.agents import make_model, resolve_hyperparams
from rl_coordconv.agents.a2c import A2C
from rl_coordconv.agents.apex.config import ApexConfig
from rl_coordconv.agents.apex.learner import ApexLearner
from rl_coordconv.agents.apex.networks import apex_policy_kwargs, game_spaces, make_apex_model
from rl_coordconv.layers import AddCoords, CoordConv2d

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]


@pytest.fixture
def exact_cuda():
    """No TF32 on CUDA while comparing two computations: it rounds matmuls and convolutions to 10 bits."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


@pytest.mark.parametrize("device", DEVICES)
def test_coordconv_equals_concat_then_conv(device, exact_cuda):
    torch.manual_seed(0)
    layer = CoordConv2d(4, 32, 8, stride=4).to(device)
    reference = torch.nn.Conv2d(6, 32, 8, stride=4).to(device)
    reference.load_state_dict(layer.state_dict())
    x = torch.rand(16, 4, 84, 84, device=device, requires_grad=True)
    out, expected = layer(x), reference(AddCoords()(x))
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    grads = torch.autograd.grad(out.square().sum(), [x, *layer.parameters()])
    expected_grads = torch.autograd.grad(expected.square().sum(), [x, *reference.parameters()])
    for got, want in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("device", DEVICES)
def test_fast_a2c_loop_updates_like_sb3s(device, exact_cuda):
    models = []
    for cls in (SB3A2C, A2C):
        model = make_model("a2c", quadrant_envs(), resolve_hyperparams("a2c"), coordconv=True, seed=3, device=device)
        model.__class__ = cls  # same construction, only the rollout/update code differs
        set_random_seed(7)
        model.learn(total_timesteps=240)
        models.append(model)
    stock, fast = models
    assert fast._fast_path() and fast.device.type == device
    for a, b in zip(stock.policy.parameters(), fast.policy.parameters(), strict=True):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4)
    assert fast.logger.name_to_value["train/value_loss"] > 0


@pytest.mark.parametrize("device", DEVICES)
def test_one_ape_x_learner_step(device, exact_cuda):
    config = ApexConfig(batch_size=8, replay_capacity=64, learning_starts=8, target_update_interval=1)
    observation_space, action_space = game_spaces("Breakout")
    policy_kwargs = apex_policy_kwargs(config, coordconv=True)
    learner = ApexLearner(make_apex_model(observation_space, action_space, config, policy_kwargs, 0, device), config)
    batch = learner_batch(discounts=np.full(8, 0.99**3), weights=np.ones(8))
    before = learner.online_parameters().copy()
    priorities, metrics = learner.step(batch)
    assert learner.policy.device.type == device
    assert priorities.shape == (8,) and np.isfinite(priorities).all() and np.isfinite(metrics["loss"])
    assert not np.array_equal(learner.online_parameters(), before)
    np.testing.assert_array_equal(learner.target_parameters(), learner.online_parameters())  # copied every step


@pytest.mark.parametrize("device,steps", [("cpu", 2_000), pytest.param("cuda", 20_000, marks=pytest.mark.cuda)])
def test_a_training_run_writes_its_whole_run_directory(tmp_path, device, steps):
    args = ["--game", "Breakout", "--n-envs", "16", "--timesteps", str(steps), "--checkpoint-every", str(steps // 2)]
    assert train.main([*args, "--device", device, "--log-dir", str(tmp_path), "--no-progress"]) == 0
    run = run_dir(tmp_path)
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["device"] == device and config["timesteps"] == steps
    assert json.loads((run / "state.json").read_text())["status"] == "finished"
    assert (run / "final_model.zip").exists() and (run / "checkpoints" / "latest.json").exists()
    assert list(run.glob("events.out.tfevents.*")) and (run / "episodes.csv").read_text().startswith("agent_step,")
    loaded = SB3A2C.load(run / "final_model.zip", device=device)
    assert loaded.device.type == device
