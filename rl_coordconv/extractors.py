"""CoordConv inside Stable-Baselines3: the Nature-DQN trunk as a features extractor.

:class:`AtariCNN` is SB3's ``NatureCNN`` (Mnih et al., 2015) with CoordConv where asked. With
``coordconv=False`` it has exactly ``NatureCNN``'s parameters, module names and initialisation,
so the two arms of a comparison differ by the coordinate channels and nothing else.

SB3 divides image observations by 255 before the extractor runs; the coordinates are added
inside :meth:`AtariCNN.forward`, after that, in ``[-1, 1]``.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import torch
import torch.nn.functional as F
from gymnasium import spaces
from stable_baselines3.common.preprocessing import is_image_space
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from rl_coordconv.backward import accumulate_grad, conv2d_backward, conv_output_shape
from rl_coordconv.experiment import CoordLayers, resolve_coord_layers
from rl_coordconv.layers import CoordConv2d, coord_weight_ratio

__all__ = ["ALGOS_WITH_EXTRACTOR", "HEADS", "AtariCNN", "atari_policy_kwargs"]

# (out_channels, kernel, stride) of the Nature CNN's three convolutions.
_NATURE_CONVS = ((32, 8, 4), (64, 4, 2), (64, 3, 1))
# What sits between the last convolution and the dense layer (see AtariCNN's head parameter).
HEADS = ("flatten", "pool")


class AtariCNN(BaseFeaturesExtractor):
    """The Nature-DQN CNN (32×8/4, 64×4/2, 64×3/1, FC 512) with optional CoordConv layers.

    :param observation_space: a channels-first image space, e.g. ``Box(0, 255, (4, 84, 84), uint8)``
    :param features_dim: units of the final fully connected layer; 0 for none, the features then
        being the last conv map, flattened or pooled (for heads with hidden layers of their own, such
        as Ape-X's dueling streams)
    :param coordconv: replace the convolutions listed in ``coord_layers`` by :class:`CoordConv2d`
    :param with_r: give those layers the radius channel as well
    :param coord_layers: ``"first"`` (the paper: the first layer of the network), ``"all"``, or
        conv indices in ``0..2``; ignored when ``coordconv`` is false
    :param head: ``"flatten"`` (the Nature CNN: the last conv map, flattened, into the dense layer,
        which gives every screen position its own weights) or ``"pool"`` (the last conv map averaged
        over space first, so a plain conv trunk cannot tell where beyond its 36 × 36-pixel
        receptive field a feature is, while a CoordConv trunk still can)
    :param normalized_image: the observations are already scaled (as in SB3's ``NatureCNN``)
    """

    def __init__(
        self,
        observation_space: gym.Space,
        features_dim: int = 512,
        coordconv: bool = False,
        with_r: bool = False,
        coord_layers: CoordLayers = "first",
        head: str = "flatten",
        normalized_image: bool = False,
    ) -> None:
        if not (
            isinstance(observation_space, spaces.Box)
            and len(observation_space.shape) == 3
            and is_image_space(observation_space, check_channels=False, normalized_image=normalized_image)
        ):
            raise ValueError(
                "AtariCNN needs a channels-first image observation space such as "
                f"Box(0, 255, (4, 84, 84), uint8), got {observation_space}"
            )
        if with_r and not coordconv:
            raise ValueError("with_r=True needs coordconv=True")
        if head not in HEADS:
            raise ValueError(f"unknown head {head!r}; choose from {', '.join(HEADS)}")
        if features_dim < 0:
            raise ValueError(f"features_dim must be 0 (no dense layer) or more, got {features_dim}")
        super().__init__(observation_space, features_dim or 1)  # SB3 wants > 0; set below when 0
        self.head = head
        self.coordconv = coordconv
        self.with_r = with_r
        self.coord_layers = resolve_coord_layers(coord_layers) if coordconv else ()

        layers: list[nn.Module] = []
        in_channels = observation_space.shape[0]
        for index, (out_channels, kernel, stride) in enumerate(_NATURE_CONVS):
            conv: nn.Conv2d
            if index in self.coord_layers:
                conv = CoordConv2d(in_channels, out_channels, kernel, stride=stride, with_r=with_r)
            else:
                conv = nn.Conv2d(in_channels, out_channels, kernel_size=kernel, stride=stride, padding=0)
            layers += [conv, nn.ReLU()]
            in_channels = out_channels
        if head == "pool":
            layers.append(nn.AdaptiveAvgPool2d(1))
        layers.append(nn.Flatten())
        self.cnn = nn.Sequential(*layers)

        with torch.no_grad():
            sample = torch.as_tensor(observation_space.sample()[None]).float()
            n_flatten = self.cnn(sample).shape[1]
        self.linear = nn.Sequential(nn.Linear(n_flatten, features_dim), nn.ReLU()) if features_dim else nn.Identity()
        self._features_dim = features_dim or n_flatten

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        # Channels-last lets oneDNN pick its fast convolution kernels: about a quarter off a
        # training step on a CPU (BENCHMARKS.md). Same values; a no-op if already channels-last.
        return self.linear(self.cnn(observations.contiguous(memory_format=torch.channels_last)))

    def forward_cached(self, observations: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Features, and the activations :meth:`backward_cached` needs; call outside autograd.

        An on-policy learner that already ran this forward to act (same weights) can train from
        these instead of running the forward a second time.

        :return: ``(features, [a1, a2, a3_flat])``: the post-ReLU outputs of the first two
            convolutions and the flattened output of the third; with the pooled head
            ``[a1, a2, a3, pooled]``, the third's output and its spatial mean
        """
        if isinstance(self.linear, nn.Identity):
            raise ValueError("forward_cached needs the dense layer (features_dim > 0)")
        x = observations.contiguous(memory_format=torch.channels_last)
        conv1, conv2, conv3 = self._convs()
        a1 = torch.relu(conv1(x))
        a2 = torch.relu(conv2(a1))
        a3 = torch.relu(conv3(a2))
        if self.head == "pool":
            pooled = F.adaptive_avg_pool2d(a3, 1).flatten(1)  # the op forward() runs
            return self.linear(pooled), [a1, a2, a3, pooled]
        a3_flat = a3.flatten(1)
        return self.linear(a3_flat), [a1, a2, a3_flat]

    def _convs(self) -> tuple[nn.Conv2d, nn.Conv2d, nn.Conv2d]:
        return self.cnn[0], self.cnn[2], self.cnn[4]  # type: ignore[return-value]

    def backward_cached(
        self, observations: torch.Tensor, cache: list[torch.Tensor], features: torch.Tensor, grad: torch.Tensor
    ) -> None:
        """Accumulate into ``.grad`` what ``features.backward(grad)`` would, from a :meth:`forward_cached`.

        The same convolution-backward kernels autograd calls, without a second forward pass.
        """
        x = observations.contiguous(memory_format=torch.channels_last)
        a1, a2, *last = cache
        conv1, conv2, conv3 = self._convs()
        assert isinstance(self.linear, nn.Sequential), "the replayed backward needs the dense layer"
        linear: nn.Linear = self.linear[0]  # type: ignore[assignment]
        g = torch.ops.aten.threshold_backward(grad, features, 0)
        assert linear.bias is not None
        accumulate_grad(linear.weight, g.t() @ last[-1])  # last[-1]: what the dense layer read
        accumulate_grad(linear.bias, g.sum(0))
        g = g @ linear.weight
        if self.head == "pool":  # the mean over H×W spreads each channel's gradient evenly
            a3 = last[0]
            g = (g / (a3.shape[-2] * a3.shape[-1]))[:, :, None, None].expand_as(a3)
            g = torch.ops.aten.threshold_backward(g.contiguous(memory_format=torch.channels_last), a3, 0)
        else:
            g = torch.ops.aten.threshold_backward(g, last[0], 0)
            g = g.view(-1, *conv_output_shape(conv3, a2)).contiguous(memory_format=torch.channels_last)
        g = torch.ops.aten.threshold_backward(conv2d_backward(conv3, a2, g), a2, 0)
        g = torch.ops.aten.threshold_backward(conv2d_backward(conv2, a1, g), a1, 0)
        conv2d_backward(conv1, x, g, input_grad=False)

    def first_coord_layer(self) -> CoordConv2d | None:
        """The first :class:`CoordConv2d` of the trunk, or ``None`` in the conv arm."""
        return next((m for m in self.cnn if isinstance(m, CoordConv2d)), None)

    def coord_weight_ratio(self) -> float | None:
        """‖W_coord‖/‖W_image‖ of the first CoordConv layer (see :func:`coord_weight_ratio`), or None."""
        layer = self.first_coord_layer()
        return None if layer is None else coord_weight_ratio(layer)


ALGOS_WITH_EXTRACTOR = ("a2c", "ppo", "dqn", "qrdqn")


def atari_policy_kwargs(
    algo: str,
    coordconv: bool = False,
    with_r: bool = False,
    coord_layers: CoordLayers = "first",
    features_dim: int = 512,
    head: str = "flatten",
) -> dict[str, Any]:
    """``policy_kwargs`` that put :class:`AtariCNN` into an SB3 / sb3-contrib algorithm.

    ``net_arch`` is always explicit and the same for both arms: empty, i.e. the policy, value and
    Q heads sit directly on the 512 features, as they do on SB3's ``NatureCNN``. Left unset, SB3
    adds hidden layers (``[64, 64]``, or ``pi``/``vf`` ``[64, 64]``) to any other extractor,
    which would make the "conv" arm of a comparison a different network from ``NatureCNN``.

    :param algo: one of ``a2c``, ``ppo``, ``dqn``, ``qrdqn``
    :param coordconv: the CoordConv arm
    :param with_r: add the radius channel
    :param coord_layers: see :class:`AtariCNN`
    :param features_dim: width of the features layer (0: none, see :class:`AtariCNN`)
    :param head: ``flatten`` (Nature CNN) or ``pool`` (see :class:`AtariCNN`)
    :return: a dict to pass as ``policy_kwargs``
    """
    if algo not in ALGOS_WITH_EXTRACTOR:
        raise ValueError(f"unknown algo {algo!r}; atari_policy_kwargs knows {', '.join(ALGOS_WITH_EXTRACTOR)}")
    net_arch: list[int] | dict[str, list[int]] = dict(pi=[], vf=[]) if algo in ("a2c", "ppo") else []
    return dict(
        features_extractor_class=AtariCNN,
        features_extractor_kwargs=dict(
            features_dim=features_dim, coordconv=coordconv, with_r=with_r, coord_layers=coord_layers, head=head
        ),
        net_arch=net_arch,
    )
