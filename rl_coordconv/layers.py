"""The CoordConv layer family (Liu et al., 2018) in plain PyTorch.

CoordConv gives a convolution access to its own input coordinates by appending two channels,
``i`` (the row, varying along the height) and ``j`` (the column, varying along the width), each
scaled linearly to exactly ``[-1, 1]`` over its own axis, and optionally ``r = sqrt(i² + j²)``,
the distance from the image centre.

:class:`CoordConv2d` keeps the paper's parameterisation, a single weight of shape
``(out, in + d, k, k)`` (``d`` = 2, or 3 with ``r``), but never builds the concatenated input.
Convolution is linear in its input, so::

    conv(cat(x, coords), W) == conv(x, W[:, :in]) + conv(coords, W[:, in:])

and the second term does not depend on the sample: it is computed once, at batch size 1, as one
small matrix product of the coordinate weights with the grid's receptive-field patches (cut once
per input size), and broadcast over the batch. It is recomputed from the current weights at every
call, so no way of changing a weight (an optimizer, ``load_state_dict``, a write through
``.data``) can leave a stale value behind.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["AddCoords", "CoordConv2d", "CoordConvTranspose2d", "coord_weight_ratio", "coordinate_grid"]


def _check_image_batch(x: torch.Tensor, who: str) -> None:
    if x.dim() != 4:
        raise ValueError(f"{who} expects a 4-D tensor (batch, channels, height, width), got shape {tuple(x.shape)}")


def _axis(n: int, device: torch.device | str | None) -> torch.Tensor:
    """``linspace(-1, 1, n)`` as exact ratios ``(2k - (n - 1)) / (n - 1)`` in float64.

    Unlike a floating-point linspace this is exactly antisymmetric, with an exact 0 at the centre
    of an odd axis; a one-pixel axis is its own centre, 0.
    """
    steps = torch.arange(n, device=device, dtype=torch.float64) * 2 - (n - 1)
    return steps / (n - 1) if n > 1 else steps


def coordinate_grid(
    height: int,
    width: int,
    with_r: bool = False,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Coordinate channels for a ``height × width`` image, shape ``(1, 2 or 3, height, width)``.

    :param height: number of rows; channel ``i`` is ``linspace(-1, 1, height)`` down the rows
        (0 when ``height`` is 1)
    :param width: number of columns; channel ``j`` is ``linspace(-1, 1, width)`` across the columns
    :param with_r: append ``r = sqrt(i² + j²)``, 0 at the image centre and ``√2`` in the corners
    :param device: device of the result
    :param dtype: floating dtype of the result
    :return: the grid, channel order ``i, j, (r)``
    """
    if height < 1 or width < 1:
        raise ValueError(f"coordinate_grid needs a positive height and width, got {height}×{width}")
    i, j = torch.meshgrid(_axis(height, device), _axis(width, device), indexing="ij")
    channels = [i, j]
    if with_r:
        channels.append(torch.sqrt(i * i + j * j))
    return torch.stack(channels).unsqueeze(0).to(dtype)


class _GridCache(nn.Module):
    """Coordinate grids keyed by (height, width, device, dtype); built on first use, never per call."""

    def __init__(self, with_r: bool = False) -> None:
        super().__init__()
        self.with_r = with_r
        self.coord_channels = 3 if with_r else 2
        self._grids: dict[tuple[int, int, torch.device, torch.dtype], torch.Tensor] = {}

    def grid_like(self, x: torch.Tensor) -> torch.Tensor:
        key = (x.shape[-2], x.shape[-1], x.device, x.dtype)
        grid = self._grids.get(key)
        if grid is None:
            # an ordinary tensor even when first asked for under inference_mode: an inference
            # tensor could not take part in a later forward that autograd records
            with torch.inference_mode(False):
                grid = coordinate_grid(x.shape[-2], x.shape[-1], self.with_r, x.device, x.dtype)
            self._grids[key] = grid
        return grid

    def extra_repr(self) -> str:
        return f"with_r={self.with_r}"


class AddCoords(_GridCache):
    """Append coordinate channels ``i, j`` (and ``r`` if ``with_r``) to a batch of images.

    :param with_r: also append the distance from the image centre
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_image_batch(x, "AddCoords")
        grid = self.grid_like(x)
        return torch.cat([x, grid.expand(x.shape[0], -1, -1, -1)], dim=1)


def _as_pair(value: int | tuple[int, ...]) -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    if len(value) != 2:
        raise ValueError(f"expected an int or a pair, got {value!r}")
    return (int(value[0]), int(value[1]))


def _sum_over_batch(grad: torch.Tensor) -> torch.Tensor:
    """``grad.sum(0, keepdim=True)``, fast for channels-last tensors too.

    PyTorch 2.13 reduces a channels-last tensor over its batch dimension some 50× slower than the
    same sum written as column sums of its (N, H·W·C) memory (8.8 ms vs 0.17 ms for the first
    Nature-CNN layer at batch 80).
    """
    if grad.dim() == 4 and not grad.is_contiguous() and grad.is_contiguous(memory_format=torch.channels_last):
        n, c, h, w = grad.shape
        return grad.permute(0, 2, 3, 1).reshape(n, -1).sum(0).view(1, h, w, c).permute(0, 3, 1, 2).contiguous()
    return grad.sum(0, keepdim=True)


class _AddBatchInvariant(torch.autograd.Function):
    """``out += term`` where ``term`` has batch size 1 and is broadcast over ``out``'s batch."""

    @staticmethod
    def forward(ctx: Any, out: torch.Tensor, term: torch.Tensor) -> torch.Tensor:
        ctx.mark_dirty(out)
        return out.add_(term)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return grad, _sum_over_batch(grad)


def _add_batch_invariant(out: torch.Tensor, term: torch.Tensor) -> torch.Tensor:
    if out.dim() == 4 and not out.is_contiguous() and out.is_contiguous(memory_format=torch.channels_last):
        # A broadcast add between mismatched layouts takes a slow, unvectorised path (5× here).
        term = term.contiguous(memory_format=torch.channels_last)
    if torch.is_grad_enabled() and (out.requires_grad or term.requires_grad):
        return _AddBatchInvariant.apply(out, term)
    return out.add_(term)


class CoordConv2d(nn.Conv2d):
    """A 2-D convolution that also sees the pixel coordinates of its input.

    Equal, to float tolerance, to ``nn.Conv2d(in + d, out, ...)`` applied to
    ``AddCoords(with_r)(x)`` with the same weight, for every stride, padding, dilation and
    rectangular input; but the coordinate part is computed once per weight, not once per sample.
    It subclasses :class:`torch.nn.Conv2d`, so code that initialises or inspects convolutions
    (SB3's orthogonal init, for one) treats both arms of a comparison alike.

    :param in_channels: image channels (without the coordinate channels)
    :param out_channels: output channels
    :param kernel_size: as in :class:`torch.nn.Conv2d`
    :param stride: as in :class:`torch.nn.Conv2d`
    :param padding: as in :class:`torch.nn.Conv2d` (zero padding; the coordinates are zero-padded too)
    :param dilation: as in :class:`torch.nn.Conv2d`
    :param bias: add a learnable bias
    :param with_r: add the radius channel
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] | str = 0,
        dilation: int | tuple[int, int] = 1,
        bias: bool = True,
        with_r: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        if in_channels < 1:
            raise ValueError(f"CoordConv2d needs in_channels >= 1, got {in_channels}")
        coord_channels = 3 if with_r else 2
        super().__init__(
            in_channels + coord_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            bias=bias,
            device=device,
            dtype=dtype,
        )
        self.image_channels = in_channels
        self.coord_channels = coord_channels
        self.coords = _GridCache(with_r)
        self._patches: dict[tuple[int, int, torch.device, torch.dtype], torch.Tensor] = {}
        self._out_size: dict[tuple[int, int, torch.device, torch.dtype], tuple[int, int]] = {}

    @property
    def with_r(self) -> bool:
        return self.coords.with_r

    @property
    def image_weight(self) -> torch.Tensor:
        """The slice of the weight applied to the image channels, ``(out, in, k, k)``."""
        return self.weight[:, : self.image_channels]

    @property
    def coord_weight(self) -> torch.Tensor:
        """The slice of the weight applied to the coordinate channels, ``(out, d, k, k)``."""
        return self.weight[:, self.image_channels :]

    @classmethod
    def from_conv(cls, conv: nn.Conv2d, with_r: bool = False) -> CoordConv2d:
        """Wrap a (trained) convolution with zero coordinate weights: same outputs, ready to fine-tune.

        The outputs agree to float rounding: the bias is added after the convolution, not inside it.

        :param conv: a plain :class:`torch.nn.Conv2d` with ``groups=1`` and zero padding
        :param with_r: add the radius channel too
        :return: a :class:`CoordConv2d` whose image weights and bias are copies of ``conv``'s
        """
        if isinstance(conv, CoordConv2d) or not isinstance(conv, nn.Conv2d):
            raise TypeError(f"from_conv expects a plain torch.nn.Conv2d, got {type(conv).__name__}")
        if conv.groups != 1:
            raise ValueError(f"from_conv supports groups=1 only, got groups={conv.groups}")
        if conv.padding_mode != "zeros":
            raise ValueError(f"from_conv supports padding_mode='zeros' only, got {conv.padding_mode!r}")
        new = cls(
            conv.in_channels,
            conv.out_channels,
            _as_pair(conv.kernel_size),
            stride=_as_pair(conv.stride),
            padding=conv.padding if isinstance(conv.padding, str) else _as_pair(conv.padding),
            dilation=_as_pair(conv.dilation),
            bias=conv.bias is not None,
            with_r=with_r,
            device=conv.weight.device,
            dtype=conv.weight.dtype,
        )
        with torch.no_grad():
            new.weight.zero_()
            new.weight[:, : conv.in_channels].copy_(conv.weight)
            if conv.bias is not None:
                assert new.bias is not None
                new.bias.copy_(conv.bias)
        return new

    def _conv(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        return F.conv2d(x, weight, bias, self.stride, self.padding, self.dilation)

    def _coord_patches(self, x: torch.Tensor) -> torch.Tensor:
        """The coordinate grid cut into this layer's receptive fields, ``(d·kh·kw, H'·W')``.

        Built once per input size by convolving the grid with one-hot kernels (exact, and it honours
        every stride, padding and dilation ``conv2d`` does), so the coordinate term is a single
        small matrix product per call rather than a convolution.
        """
        key = (x.shape[-2], x.shape[-1], x.device, x.dtype)
        patches = self._patches.get(key)
        if patches is None:
            taps = self.coord_channels * self.kernel_size[0] * self.kernel_size[1]
            with torch.inference_mode(False), torch.no_grad():  # see _GridCache.grid_like
                one_hot = torch.eye(taps, device=x.device, dtype=x.dtype)
                patches = self._conv(
                    self.coords.grid_like(x), one_hot.view(taps, self.coord_channels, *self.kernel_size), None
                )
            self._out_size[key] = (patches.shape[-2], patches.shape[-1])
            patches = patches.reshape(taps, -1)
            self._patches[key] = patches
        return patches

    def _coord_term(self, x: torch.Tensor) -> torch.Tensor:
        """``conv(coords, W_coord) + bias`` at batch size 1, shape ``(1, out, H', W')``.

        Computed from the weights of the moment at every call, never cached: a cache keyed on the
        weight's version counter served stale values after writes through ``.data`` (SB3's
        ``polyak_update``), and recomputing costs ≈ 0.08 ms a call, nothing measurable in training
        (BENCHMARKS.md).
        """
        patches = self._coord_patches(x)
        weight = self.coord_weight.reshape(self.out_channels, -1)
        term = weight @ patches if self.bias is None else torch.addmm(self.bias[:, None], weight, patches)
        height, width = self._out_size[(x.shape[-2], x.shape[-1], x.device, x.dtype)]
        return term.view(1, self.out_channels, height, width)

    def coord_term_grads(self, x: torch.Tensor, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The gradients of the coordinate weights and the bias for ``grad`` at the output of ``self(x)``.

        What autograd computes for the batch-size-1 term ``conv(coords, W_coord) + bias``, for a
        caller that replays the backward pass itself (:func:`rl_coordconv.backward.conv2d_backward`).

        :return: ``(grad of coord_weight, grad of bias or None)``
        """
        summed = _sum_over_batch(grad).reshape(self.out_channels, -1)
        grad_coord = (summed @ self._coord_patches(x).t()).view_as(self.coord_weight)
        return grad_coord, None if self.bias is None else summed.sum(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_image_batch(x, "CoordConv2d")
        if x.shape[1] != self.image_channels:
            raise ValueError(
                f"CoordConv2d expects {self.image_channels} image channels, got input of shape {tuple(x.shape)}"
            )
        return _add_batch_invariant(self._conv(x, self.image_weight, None), self._coord_term(x))

    def extra_repr(self) -> str:
        return f"{self.image_channels} (+{self.coord_channels} coords), " + super().extra_repr().split(", ", 1)[1]


class CoordConvTranspose2d(nn.ConvTranspose2d):
    """A 2-D transposed convolution (deconvolution) that also sees its input's coordinates.

    Equal to ``nn.ConvTranspose2d(in + d, out, ...)`` on ``AddCoords(with_r)(x)`` with the same
    weight of shape ``(in + d, out, k, k)``; the coordinate term is computed at batch size 1.

    :param in_channels: image channels (without the coordinate channels)
    :param out_channels: output channels
    :param kernel_size: as in :class:`torch.nn.ConvTranspose2d`
    :param stride: as in :class:`torch.nn.ConvTranspose2d`
    :param padding: as in :class:`torch.nn.ConvTranspose2d`
    :param output_padding: as in :class:`torch.nn.ConvTranspose2d`
    :param dilation: as in :class:`torch.nn.ConvTranspose2d`
    :param bias: add a learnable bias
    :param with_r: add the radius channel
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        output_padding: int | tuple[int, int] = 0,
        dilation: int | tuple[int, int] = 1,
        bias: bool = True,
        with_r: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        if in_channels < 1:
            raise ValueError(f"CoordConvTranspose2d needs in_channels >= 1, got {in_channels}")
        coord_channels = 3 if with_r else 2
        super().__init__(
            in_channels + coord_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=padding,
            output_padding=output_padding,
            dilation=dilation,
            bias=bias,
            device=device,
            dtype=dtype,
        )
        self.image_channels = in_channels
        self.coord_channels = coord_channels
        self.coords = _GridCache(with_r)

    @property
    def with_r(self) -> bool:
        return self.coords.with_r

    def _deconv(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        return F.conv_transpose2d(
            x,
            weight,
            bias,
            self.stride,
            self.padding,  # type: ignore[arg-type]
            self.output_padding,
            1,
            self.dilation,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        _check_image_batch(x, "CoordConvTranspose2d")
        if x.shape[1] != self.image_channels:
            raise ValueError(
                f"CoordConvTranspose2d expects {self.image_channels} image channels, "
                f"got input of shape {tuple(x.shape)}"
            )
        grid = self.coords.grid_like(x)
        image = self._deconv(x, self.weight[: self.image_channels], None)
        return _add_batch_invariant(image, self._deconv(grid, self.weight[self.image_channels :], self.bias))

    def extra_repr(self) -> str:
        return f"{self.image_channels} (+{self.coord_channels} coords), " + super().extra_repr().split(", ", 1)[1]


def coord_weight_ratio(layer: CoordConv2d) -> float:
    """‖W_coord‖ / ‖W_image‖ of a CoordConv layer: how strongly its output depends on position.

    The norms are per input channel (root-mean-square over each slice), so the ratio does not
    grow with the number of image channels.

    :param layer: the layer to inspect
    :return: the ratio (0 for a layer built by :meth:`CoordConv2d.from_conv`)
    """
    with torch.no_grad():
        coord = layer.coord_weight.norm() / math.sqrt(layer.coord_channels)
        image = layer.image_weight.norm() / math.sqrt(layer.image_channels)
        return float(coord / image) if float(image) > 0 else float("inf")
