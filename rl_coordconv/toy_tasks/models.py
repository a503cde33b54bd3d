"""The paper's models for the three supervised coordinate tasks, conv and CoordConv.

Built from :mod:`rl_coordconv.layers`, the same :class:`~rl_coordconv.layers.CoordConv2d` the
RL agents use. Architectures follow the paper's Figure S1 and Table S1 and the authors' released
code (``model_builders.py``); where the two differ the code wins, since it is how the paper's
numbers were made. Inputs and outputs (axis convention in :mod:`rl_coordconv.toy_tasks.data`):

- classification and rendering take centres ``(x, y)`` on the ``[-1, 1]`` scale, shape
  ``(B, 2)``, and return logits ``(B, 1, 64, 64)`` (a softmax over the 4,096 pixels for
  classification, a per-pixel sigmoid for rendering);
- regression takes one-hot maps ``(B, 1, 64, 64)`` and returns ``(x, y)`` on the ``[-1, 1]`` scale.

The CoordConv models have exactly the paper's 7,553 (classification), 906 (regression) and
9,490 (rendering, ``mul=2, fs=1``) parameters. Weights are he-normal (fan-in), biases zero, as in
the released code; :func:`kernel_weights` lists the tensors the L2 penalty applies to.
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn

from rl_coordconv.layers import CoordConv2d
from rl_coordconv.toy_tasks.data import CANVAS, SQUARE
from rl_coordconv.toy_tasks.tasks import TASKS

__all__ = [
    "REGRESSION_ARCHS",
    "SQUARE_SHARE",
    "ConvRegressor",
    "CoordConvClassifier",
    "CoordConvRegressor",
    "CoordConvRenderer",
    "DeconvPainter",
    "build_model",
    "count_parameters",
    "kernel_weights",
]

REGRESSION_ARCHS = ("pooled", "strided")


# Share of the canvas a rendered square covers: the rendering models' output prior (below).
SQUARE_SHARE = SQUARE * SQUARE / (CANVAS * CANVAS)


def _he_init(module: nn.Module) -> None:
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            # PyTorch's fan-in of a transposed-conv weight (in, out, k, k) is out·k·k, as Keras's is.
            nn.init.kaiming_normal_(layer.weight, mode="fan_in", nonlinearity="relu")
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)


def _batch_norm(channels: int) -> nn.BatchNorm2d:
    # As the released code's TF layer: its momentum 0.9 is PyTorch's 0.1; same epsilon.
    return nn.BatchNorm2d(channels, eps=1e-5, momentum=0.1)


def _output_prior(layer: nn.Conv2d | nn.ConvTranspose2d, share: float) -> None:
    """Start a per-pixel sigmoid output at probability ``share`` (RetinaNet's prior initialisation).

    The released code starts rendering outputs at 0.5 (zero bias). Here the first steps then go
    into lowering every pixel, which also turns the head's response to the sharpened map
    negative, and training settles on an all-background image (loss 0.097, IOU 0) in most seeds.
    Starting at the background rate skips that phase; it changes no parameter count.
    """
    assert layer.bias is not None
    nn.init.constant_(layer.bias, math.log(share / (1 - share)))


def count_parameters(module: nn.Module) -> int:
    """Trainable parameters (BatchNorm's running statistics are buffers, not counted)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def kernel_weights(module: nn.Module) -> list[torch.Tensor]:
    """The convolution and fully connected weights: what the released code's L2 penalty covers.

    Biases and BatchNorm parameters are left out, as ``kernel_regularizer`` leaves them out.
    """
    return [layer.weight for layer in module.modules() if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))]


def _tile(coords: torch.Tensor, size: int) -> torch.Tensor:
    """``(B, 2)`` → ``(B, 2, size, size)``, each map constant; channels-last, as the 1×1 convs like."""
    if coords.dim() != 2 or coords.shape[1] != 2:
        raise ValueError(f"expected centres of shape (batch, 2), got {tuple(coords.shape)}")
    tiled = coords[:, :, None, None].expand(-1, -1, size, size)
    return tiled.contiguous(memory_format=torch.channels_last)


class CoordConvClassifier(nn.Module):
    """Coordinate classification, CoordConv (7,553 parameters): ``(x, y)`` → logits over 4,096 pixels.

    Tile ``(x, y)`` over the canvas, add the ``i, j`` channels, then 1×1 convolutions with 32, 32,
    64, 64 and 1 channels, ReLU between them: a per-pixel MLP of ``(x, y, i, j)``. The first layer
    is a :class:`CoordConv2d` (2 + 2 coordinate input channels).

    :param canvas: output height and width
    """

    def __init__(self, canvas: int = CANVAS) -> None:
        super().__init__()
        self.canvas = canvas
        widths = [32, 32, 64, 64]
        layers: list[nn.Module] = [CoordConv2d(2, widths[0], 1), nn.ReLU()]
        for c_in, c_out in itertools.pairwise(widths):
            layers += [nn.Conv2d(c_in, c_out, 1), nn.ReLU()]
        layers.append(nn.Conv2d(widths[-1], 1, 1))
        self.net = nn.Sequential(*layers)
        _he_init(self)

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        return self.net(_tile(coords, self.canvas)).contiguous()


def _same_conv(c_in: int, c_out: int, fs: int) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, fs, padding="same")


class CoordConvRenderer(nn.Module):
    """Rendering, CoordConv (9,490 parameters with ``mul=2, fs=1``): ``(x, y)`` → 64×64 square logits.

    The released code's ``CoordConvImagePainter``: the 7,553-parameter :class:`CoordConvClassifier`,
    a softmax over the canvas that "sharpens" its logits, then convolutions with 8, 8, 16, 16
    (× ``mul``) and 1 channels, filter size ``fs``, ReLU between. With ``fs=1`` the classifier
    itself must spread the mass over the 81 pixels of the square and the 1×1 head thresholds it.

    One change, which adds no parameter: the softmax is scaled by the canvas area (4,096), to
    mean 1 instead of sum 1. Unscaled, the head sees inputs of about 1/4,096 where its he-normal
    initialisation expects about 1; its output is then a constant, the classifier gets almost no
    gradient, and training at lr 5e-3 stayed on the all-background image (IOU 0) for all of 10
    epochs with seed 0 and for 2 epochs with seed 1. Scaled, both seeds pass test IOU 0.5 within
    2 epochs on the quadrant split. The output starts at the background rate (``_output_prior``).

    :param mul: width multiplier of the head
    :param fs: filter size of the head
    """

    def __init__(self, mul: int = 2, fs: int = 1) -> None:
        super().__init__()
        if mul < 1 or fs < 1:
            raise ValueError(f"mul and fs must be positive, got mul={mul}, fs={fs}")
        self.centre = CoordConvClassifier()
        widths = [8 * mul, 8 * mul, 16 * mul, 16 * mul]
        layers: list[nn.Module] = []
        for c_in, c_out in zip([1, *widths[:-1]], widths, strict=True):
            layers += [_same_conv(c_in, c_out, fs), nn.ReLU()]
        output = _same_conv(widths[-1], 1, fs)
        self.head = nn.Sequential(*layers, output)
        _he_init(self.head)
        _output_prior(output, SQUARE_SHARE)

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        logits = self.centre(coords)
        sharpened = logits.flatten(1).softmax(dim=1).view_as(logits) * (logits.shape[2] * logits.shape[3])
        return self.head(sharpened.contiguous(memory_format=torch.channels_last)).contiguous()


class DeconvPainter(nn.Module):
    """Classification and rendering baseline: ``(x, y)`` as a 1×1 map → six stride-2 deconvolutions.

    Channels 64, 64, 64, 32, 32 (× ``mul``) and 1, filter size ``fs``, "same" padding so each
    layer doubles the size (1 → 2 → … → 64), BatchNorm + ReLU between: the released code's
    ``DeconvPainter``, the family of the paper's Figure S1 (top row).

    :param mul: channel multiplier (the paper sweeps 1, 2, 3)
    :param fs: filter size (the paper sweeps 2, 3, 4)
    :param output_prior: start the per-pixel sigmoid at this probability (rendering: the square's
        share of the canvas, as the CoordConv renderer); None leaves the bias at zero
    """

    def __init__(self, mul: int = 1, fs: int = 3, output_prior: float | None = None) -> None:
        super().__init__()
        if mul < 1 or fs < 1:
            raise ValueError(f"mul and fs must be positive, got mul={mul}, fs={fs}")
        padding = (fs - 1) // 2
        output_padding = 2 + 2 * padding - fs  # out = 2·in for every fs, as TF's "same"
        widths = [64 * mul, 64 * mul, 64 * mul, 32 * mul, 32 * mul, 1]
        layers: list[nn.Module] = []
        c_in = 2
        for index, c_out in enumerate(widths):
            deconv = nn.ConvTranspose2d(c_in, c_out, fs, 2, padding, output_padding)
            layers.append(deconv)
            if index < len(widths) - 1:
                layers += [_batch_norm(c_out), nn.ReLU()]
            c_in = c_out
        self.net = nn.Sequential(*layers)
        _he_init(self)
        if output_prior is not None:
            _output_prior(deconv, output_prior)  # the last deconvolution

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        if coords.dim() != 2 or coords.shape[1] != 2:
            raise ValueError(f"expected centres of shape (batch, 2), got {tuple(coords.shape)}")
        return self.net(coords[:, :, None, None])


class CoordConvRegressor(nn.Module):
    """Coordinate regression, CoordConv (906 parameters): one-hot map → ``(x, y)``.

    A :class:`CoordConv2d` 1×1 with 8 channels, then 1×1 × 8, 1×1 × 8, 3×3 × 8 and 3×3 × 2
    convolutions, **no ReLU**, and a global max-pool (Table S1 and the released code). A global
    *average* pool collapses to predicting the mean centre; the max-pool picks the hot pixel.

    Without ReLUs the stack before the pool is affine in its input and its receptive field has
    radius 2, so for a sparse input that is zero within 2 pixels of the border (every
    Not-so-Clevr one-hot: centres are ≥ 4 pixels in) it equals, exactly,

        stack(x) = stack(0) + Σ_q x[q] · K(· − q),

    ``stack(0)`` being what the coordinates and biases alone produce and ``K`` the 5×5 impulse
    response of the stack. Both come from running the very same layers on two 64×64 probes, so
    the parameters and their gradients are those of the layer stack, while a batch of one-hots
    costs 25 scattered adds per hot pixel instead of five 8-channel convolutions over the whole
    canvas (≈ 30× faster per step on a CPU). Other inputs go through the stack layer by layer;
    ``fast=False`` always does.

    :param fast: use the impulse-response path where it is exact
    """

    reach = 2  # receptive-field radius of the stack: two 3×3 convolutions

    def __init__(self, fast: bool = True) -> None:
        super().__init__()
        self.fast = fast
        self.stack = nn.Sequential(
            CoordConv2d(1, 8, 1),
            nn.Conv2d(8, 8, 1),
            nn.Conv2d(8, 8, 1),
            nn.Conv2d(8, 8, 3, padding=1),
            nn.Conv2d(8, 2, 3, padding=1),
        )
        _he_init(self)

    def _sparse_maps(self, x: torch.Tensor) -> torch.Tensor | None:
        """``stack(x)`` from the impulse response, or None where that is not exact or not cheaper."""
        batch, channels, height, width = x.shape
        r = self.reach
        if channels != 1 or min(height, width) <= 2 * r + 1:
            return None
        b, _, qy, qx = x.nonzero(as_tuple=True)
        if len(b) > 16 * batch:
            return None  # not sparse: the convolutions are cheaper
        if len(b) and (qy.min() < r or qx.min() < r or qy.max() >= height - r or qx.max() >= width - r):
            return None  # the stack's zero padding would cut the response
        cy, cx = height // 2, width // 2
        probes = x.new_zeros(2, 1, height, width)
        probes[1, 0, cy, cx] = 1.0
        blank, impulse = self.stack(probes)
        response = (impulse - blank)[:, cy - r : cy + r + 1, cx - r : cx + r + 1].reshape(2, -1)
        oy, ox = torch.meshgrid(
            torch.arange(-r, r + 1, device=x.device), torch.arange(-r, r + 1, device=x.device), indexing="ij"
        )
        pixels = (qy[:, None] + oy.reshape(1, -1)) * width + (qx[:, None] + ox.reshape(1, -1))  # (n, 25)
        added = x[b, 0, qy, qx][:, None, None] * response[None]  # (n, 2, 25)
        rows = b[:, None, None].expand_as(added)
        outputs = torch.arange(2, device=x.device)[None, :, None].expand_as(added)
        maps = blank.reshape(1, 2, -1).expand(batch, -1, -1)
        maps = maps.index_put((rows, outputs, pixels[:, None, :].expand_as(added)), added, accumulate=True)
        return maps.view(batch, 2, height, width)

    def forward(self, onehots: torch.Tensor) -> torch.Tensor:
        maps = self._sparse_maps(onehots) if self.fast else None
        if maps is None:
            maps = self.stack(onehots)
        return maps.amax(dim=(2, 3))


class ConvRegressor(nn.Module):
    """Coordinate regression baselines of Table S1, width 16 × ``mul``: one-hot map → ``(x, y)``.

    - ``pooled`` (the paper's best on the uniform split): four 3×3 convolutions with ReLU and a
      2×2 max-pool after each of the first three, FC 64 + ReLU, FC 2.
    - ``strided`` (the paper's best on the quadrant split, 12k parameters): 5×5/2, 1×1, BN, 3×3,
      3×3/2, 3×3/2, BN, 3×3/2, 1×1, 3×3/2 (ReLU after each), a 3×3 convolution to 2 channels and a
      global average pool. The released code puts a ReLU before that pool because its targets are
      in ``[0, 1]``; ours are in ``[-1, 1]``, so there is none.

    :param arch: ``pooled`` or ``strided``
    :param mul: width multiplier
    """

    def __init__(self, arch: str = "pooled", mul: int = 1) -> None:
        super().__init__()
        if mul < 1:
            raise ValueError(f"mul must be positive, got {mul}")
        c = 16 * mul
        layers: list[nn.Module]
        if arch == "pooled":
            layers = []
            for index in range(4):
                layers += [nn.Conv2d(1 if index == 0 else c, c, 3, padding=1), nn.ReLU()]
                if index < 3:
                    layers.append(nn.MaxPool2d(2))
            side = CANVAS // 8
            layers += [nn.Flatten(), nn.Linear(c * side * side, 64), nn.ReLU(), nn.Linear(64, 2)]
        elif arch == "strided":
            layers = [
                *(nn.Conv2d(1, c, 5, stride=2, padding=2), nn.ReLU()),
                *(nn.Conv2d(c, c, 1), nn.ReLU()),
                _batch_norm(c),
                *(nn.Conv2d(c, c, 3, padding=1), nn.ReLU()),
                *(nn.Conv2d(c, c, 3, stride=2, padding=1), nn.ReLU()),
                nn.Conv2d(c, c, 3, stride=2, padding=1),
                _batch_norm(c),
                nn.ReLU(),
                *(nn.Conv2d(c, c, 3, stride=2, padding=1), nn.ReLU()),
                *(nn.Conv2d(c, c, 1), nn.ReLU()),
                *(nn.Conv2d(c, c, 3, stride=2, padding=1), nn.ReLU()),
                nn.Conv2d(c, 2, 3, padding=1),
                nn.AdaptiveAvgPool2d(1),
                nn.Flatten(),
            ]
        else:
            raise ValueError(f"unknown regression arch {arch!r}; choose from {', '.join(REGRESSION_ARCHS)}")
        self.arch = arch
        self.net = nn.Sequential(*layers)
        _he_init(self)

    def forward(self, onehots: torch.Tensor) -> torch.Tensor:
        return self.net(onehots)


def build_model(
    task: str, model: str, mul: int | None = None, fs: int | None = None, arch: str | None = None
) -> nn.Module:
    """The network for one task and arm, as the task builds it (:meth:`.ToyTask.build`).

    :param task: a name in :data:`~rl_coordconv.toy_tasks.tasks.TASKS`
    :param model: ``conv`` (the baseline family) or ``coordconv`` (the paper's CoordConv model)
    :param mul: width multiplier: of the deconv painter, of the CoordConv renderer's head, of the
        regression baseline; the CoordConv classifier and regressor have none
    :param fs: filter size: of the deconv painter, of the CoordConv renderer's head; the
        regression models have none
    :param arch: the regression baseline, ``pooled`` or ``strided``
    :raises ValueError: an unknown task or model, or a setting the model does not have
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose from {', '.join(TASKS)}")
    return TASKS[task].build(model, mul=mul, fs=fs, arch=arch)
