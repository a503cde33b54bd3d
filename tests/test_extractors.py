"""AtariCNN inside SB3: the same network as NatureCNN in the conv arm, CoordConv in the other."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from sb3_contrib import QRDQN
from stable_baselines3 import A2C, DQN, PPO
from stable_baselines3.common.envs import FakeImageEnv
from stable_baselines3.common.torch_layers import NatureCNN

from rl_coordconv.extractors import AtariCNN, atari_policy_kwargs
from rl_coordconv.layers import CoordConv2d

ATARI_SPACE = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_conv_arm_is_nature_cnn_parameter_for_parameter():
    ours, theirs = AtariCNN(ATARI_SPACE), NatureCNN(ATARI_SPACE)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in theirs.state_dict().items()}
    ours.load_state_dict(theirs.state_dict())
    x = torch.rand(3, 4, 84, 84)
    # same function; channels-last convolution only reorders float sums
    torch.testing.assert_close(ours(x), theirs(x), rtol=1e-5, atol=1e-6)
    assert ours.coord_weight_ratio() is None


def test_coordconv_arm_adds_only_the_coordinate_weights():
    base = n_params(NatureCNN(ATARI_SPACE))
    assert n_params(AtariCNN(ATARI_SPACE, coordconv=True)) == base + 2 * 32 * 8 * 8
    assert n_params(AtariCNN(ATARI_SPACE, coordconv=True, with_r=True)) == base + 3 * 32 * 8 * 8
    extra_all = 2 * (32 * 8 * 8 + 64 * 4 * 4 + 64 * 3 * 3)
    assert n_params(AtariCNN(ATARI_SPACE, coordconv=True, coord_layers="all")) == base + extra_all
    first = AtariCNN(ATARI_SPACE, coordconv=True)
    assert isinstance(first.cnn[0], CoordConv2d) and not isinstance(first.cnn[2], CoordConv2d)
    assert first(torch.rand(2, 4, 84, 84)).shape == (2, 512)


@pytest.mark.parametrize(
    "space",
    [
        gym.spaces.Box(-1.0, 1.0, (4,), np.float32),
        gym.spaces.Box(0, 255, (84, 84), np.uint8),
        gym.spaces.Discrete(3),
    ],
)
def test_non_image_space_is_refused_with_what_was_given(space):
    with pytest.raises(ValueError, match="image observation space") as info:
        AtariCNN(space)
    assert str(space) in str(info.value)


def test_with_r_needs_coordconv():
    with pytest.raises(ValueError, match="with_r=True needs coordconv=True"):
        AtariCNN(ATARI_SPACE, with_r=True)


def test_policy_kwargs_refuses_unknown_algo():
    with pytest.raises(ValueError, match="unknown algo 'sac'"):
        atari_policy_kwargs("sac")


def _small_image_env() -> FakeImageEnv:
    # 36×36 is the smallest input the Nature CNN accepts (8/4 → 8, 4/2 → 3, 3/1 → 1).
    return FakeImageEnv(action_dim=3, screen_height=36, screen_width=36, n_channels=4, channel_first=True)


ALGOS = {
    "a2c": (A2C, dict(n_steps=8)),
    "ppo": (PPO, dict(n_steps=64, batch_size=32, n_epochs=1)),
    "dqn": (DQN, dict(buffer_size=500, learning_starts=50, train_freq=4, batch_size=16)),
    "qrdqn": (QRDQN, dict(buffer_size=500, learning_starts=50, train_freq=4, batch_size=16)),
}


@pytest.mark.parametrize("coordconv", [False, True], ids=["conv", "coordconv"])
@pytest.mark.parametrize("algo", list(ALGOS))
def test_sb3_algorithms_learn_and_round_trip(algo, coordconv, tmp_path):
    cls, kwargs = ALGOS[algo]
    env = _small_image_env()
    model = cls(
        "CnnPolicy",
        env,
        policy_kwargs=atari_policy_kwargs(algo, coordconv=coordconv),
        seed=0,
        device="cpu",
        **kwargs,
    )
    net = (
        model.policy if algo in ("a2c", "ppo") else model.policy.quantile_net if algo == "qrdqn" else model.policy.q_net
    )
    extractor = net.features_extractor
    assert isinstance(extractor, AtariCNN) and extractor.coordconv == coordconv
    before = {k: v.clone() for k, v in model.policy.state_dict().items()}
    layer = extractor.first_coord_layer()
    coord_before = None if layer is None else layer.coord_weight.detach().clone()
    model.learn(total_timesteps=300)
    after = model.policy.state_dict()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert any("cnn.0.weight" in k for k in changed), "the first conv layer did not learn"
    assert (layer is not None) == coordconv
    if layer is not None:
        assert not torch.equal(layer.coord_weight, coord_before), "the coordinate weights did not learn"
        assert (extractor.coord_weight_ratio() or 0) > 0

    obs = np.stack([env.observation_space.sample() for _ in range(8)])
    expected, _ = model.predict(obs, deterministic=True)
    model.save(tmp_path / "model.zip")
    loaded = cls.load(tmp_path / "model.zip", device="cpu")
    got, _ = loaded.predict(obs, deterministic=True)
    np.testing.assert_array_equal(got, expected)
    for key, value in model.policy.state_dict().items():
        assert torch.equal(loaded.policy.state_dict()[key], value), key


@pytest.mark.parametrize("algo", list(ALGOS))
def test_arms_differ_by_the_coordinate_weights_only(algo):
    cls, kwargs = ALGOS[algo]
    sizes = []
    for coordconv in (False, True):
        model = cls(
            "CnnPolicy",
            _small_image_env(),
            policy_kwargs=atari_policy_kwargs(algo, coordconv=coordconv),
            **kwargs,
        )
        sizes.append(n_params(model.policy))
    # one shared extractor in the actor-critics; an online and a target one in the Q-learners
    extractors = 1 if algo in ("a2c", "ppo") else 2
    assert sizes[1] - sizes[0] == extractors * 2 * 32 * 8 * 8


@pytest.mark.parametrize("algo", ["a2c", "ppo"])
def test_actor_critic_heads_sit_directly_on_the_features(algo):
    cls, kwargs = ALGOS[algo]
    stock = cls("CnnPolicy", _small_image_env(), **kwargs)  # SB3 with NatureCNN
    ours = cls("CnnPolicy", _small_image_env(), policy_kwargs=atari_policy_kwargs(algo), **kwargs)
    assert n_params(ours.policy) == n_params(stock.policy)
    assert ours.policy.action_net.in_features == 512 and ours.policy.value_net.in_features == 512


@pytest.mark.parametrize("algo", ["dqn", "qrdqn"])
def test_q_heads_sit_directly_on_the_features(algo):
    cls, kwargs = ALGOS[algo]
    stock = cls("CnnPolicy", _small_image_env(), **kwargs)
    ours = cls("CnnPolicy", _small_image_env(), policy_kwargs=atari_policy_kwargs(algo), **kwargs)
    assert n_params(ours.policy) == n_params(stock.policy)


@pytest.mark.parametrize(
    "options",
    [
        dict(),
        dict(coordconv=True),
        dict(coordconv=True, with_r=True),
        dict(coordconv=True, coord_layers="all"),
        dict(head="pool"),
        dict(coordconv=True, head="pool"),
    ],
    ids=["conv", "coordconv", "coordconv_r", "coordconv_all", "conv_pool", "coordconv_pool"],
)
def test_replayed_backward_equals_autograd(options):
    torch.manual_seed(0)
    model = AtariCNN(ATARI_SPACE, **options).double()
    x = torch.rand(6, 4, 84, 84, dtype=torch.float64)
    grad = torch.randn(6, 512, dtype=torch.float64)
    model(x).backward(grad)
    expected = {name: p.grad.clone() for name, p in model.named_parameters()}
    model.zero_grad(set_to_none=True)
    with torch.no_grad():
        features, cache = model.forward_cached(x)
    torch.testing.assert_close(features, model(x).detach())
    model.backward_cached(x, cache, features, grad)
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.grad, expected[name], rtol=1e-9, atol=1e-10, msg=name)


@pytest.mark.parametrize("algo", ["dqn", "qrdqn"])
@pytest.mark.parametrize("tau", [1.0, 0.5])
def test_a_coordconv_target_network_serves_the_weights_it_was_given(algo, tau):
    """SB3's target update (``polyak_update``, which writes through ``.data``) reaches the CoordConv
    layer: afterwards the target network computes what a new network with its weights computes."""
    from stable_baselines3.common.logger import configure

    cls, kwargs = ALGOS[algo]

    def make():
        env = FakeImageEnv(action_dim=3, screen_height=84, screen_width=84, n_channels=4, channel_first=True)
        policy_kwargs = atari_policy_kwargs(algo, coordconv=True)
        return cls("CnnPolicy", env, policy_kwargs=policy_kwargs, target_update_interval=1, tau=tau, **kwargs)

    def networks(model):
        return (model.q_net, model.q_net_target) if algo == "dqn" else (model.quantile_net, model.quantile_net_target)

    model = make()
    model.set_logger(configure(None, []))
    online, target = networks(model)
    obs = torch.rand(5, 4, 84, 84)
    with torch.no_grad():
        target(obs)  # the target network acts once with its first weights
        for p in online.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    expected = {k: (1 - tau) * v + tau * online.state_dict()[k] for k, v in target.state_dict().items()}
    model._on_step()  # SB3's own target update
    for key, value in target.state_dict().items():
        torch.testing.assert_close(value, expected[key])
    _, fresh = networks(make())
    fresh.load_state_dict(target.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(target(obs), fresh(obs))
        if tau == 1.0:
            torch.testing.assert_close(target(obs), online(obs))


def _shifted_pattern(shift: int) -> torch.Tensor:
    """A random 12 × 12 patch on a zero 84 × 84 frame stack, ``shift`` pixels right of and below (30, 30).

    The last layer's 7 × 7 units see 36-pixel windows 8 pixels apart: units 0–5 of each axis see the
    patch at 30, units 1–6 the patch at 38, so every unit that sees it has a twin after the shift.
    """
    torch.manual_seed(5)
    x = torch.zeros(1, 4, 84, 84, dtype=torch.float64)
    x[..., 30 + shift : 42 + shift, 30 + shift : 42 + shift] = torch.rand(1, 4, 12, 12, dtype=torch.float64)
    return x


def test_the_pooled_head_is_translation_invariant_in_the_conv_arm_only():
    """Shifted by a multiple of the trunk's total stride (4 × 2 × 1 = 8 pixels), with zero borders all
    round, a pattern gives a plain conv trunk the same last-layer activations in other places: after
    the spatial mean the features are equal. CoordConv sees where the pattern went."""
    for coordconv in (False, True):
        torch.manual_seed(0)
        extractor = AtariCNN(ATARI_SPACE, coordconv=coordconv, head="pool").double()
        with torch.no_grad():
            for p in extractor.parameters():  # biases 0, so frames of zeros give exact zeros around the pattern
                if p.dim() == 1:
                    p.zero_()
            base, moved = extractor(_shifted_pattern(0)), extractor(_shifted_pattern(8))
        if coordconv:
            assert not torch.allclose(base, moved, rtol=1e-3, atol=1e-6)
        else:
            torch.testing.assert_close(base, moved, rtol=1e-12, atol=1e-12)
    flatten = AtariCNN(ATARI_SPACE).double()
    with torch.no_grad():
        assert not torch.allclose(flatten(_shifted_pattern(0)), flatten(_shifted_pattern(8)))


def test_the_pooled_head_feeds_the_same_dense_layer_from_the_channel_means():
    pooled, flat = AtariCNN(ATARI_SPACE, head="pool"), AtariCNN(ATARI_SPACE)
    assert pooled.linear[0].in_features == 64 and flat.linear[0].in_features == 3136
    assert pooled.linear[0].out_features == flat.linear[0].out_features == 512
    with pytest.raises(ValueError, match="unknown head 'max'; choose from flatten, pool"):
        AtariCNN(ATARI_SPACE, head="max")
    kwargs = atari_policy_kwargs("ppo", coordconv=True, head="pool")["features_extractor_kwargs"]
    assert kwargs["head"] == "pool"


@pytest.mark.parametrize(("head", "width"), [("flatten", 3136), ("pool", 64)])
def test_features_dim_0_leaves_out_the_dense_layer(head, width):
    trunk, full = AtariCNN(ATARI_SPACE, features_dim=0, head=head), AtariCNN(ATARI_SPACE, head=head)
    trunk.cnn.load_state_dict(full.cnn.state_dict())
    x = torch.as_tensor(ATARI_SPACE.sample()[None]).float()
    with torch.no_grad():
        torch.testing.assert_close(trunk(x), full.cnn(x.contiguous(memory_format=torch.channels_last)))
    assert trunk.features_dim == width and not any(name.startswith("linear") for name, _ in trunk.named_parameters())
    with pytest.raises(ValueError, match="forward_cached needs the dense layer"):
        trunk.forward_cached(x)
    with pytest.raises(ValueError, match=r"features_dim must be 0 \(no dense layer\) or more, got -1"):
        AtariCNN(ATARI_SPACE, features_dim=-1)
