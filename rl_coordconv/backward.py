"""A convolution's backward pass without autograd, for a learner that kept the activations of the
forward pass that acted (A2C's fast loop, :meth:`rl_coordconv.extractors.AtariCNN.backward_cached`).

The same kernels autograd calls (``aten.convolution_backward``), and for :class:`CoordConv2d` its
own :meth:`~rl_coordconv.layers.CoordConv2d.coord_term_grads`; ``tests/test_extractors.py`` checks
the result against autograd. Plain PyTorch, like :mod:`rl_coordconv.layers`.
"""

from __future__ import annotations

import torch
from torch import nn

from rl_coordconv.layers import CoordConv2d

__all__ = ["accumulate_grad", "conv2d_backward", "conv_output_shape"]


def conv_output_shape(conv: nn.Conv2d, x: torch.Tensor) -> tuple[int, int, int]:
    """(channels, height, width) of ``conv(x)`` for an unpadded convolution."""
    height = (x.shape[-2] - conv.dilation[0] * (conv.kernel_size[0] - 1) - 1) // conv.stride[0] + 1
    width = (x.shape[-1] - conv.dilation[1] * (conv.kernel_size[1] - 1) - 1) // conv.stride[1] + 1
    return conv.out_channels, height, width


def accumulate_grad(param: torch.Tensor, grad: torch.Tensor) -> None:
    """``param.grad += grad``, as autograd accumulates (creating ``.grad`` on first use)."""
    if param.grad is None:
        param.grad = grad.contiguous()
    else:
        param.grad.add_(grad)


def conv2d_backward(conv: nn.Conv2d, x: torch.Tensor, grad: torch.Tensor, input_grad: bool = True) -> torch.Tensor:
    """Accumulate what ``conv(x).backward(grad)`` would into the parameters' ``.grad``; return the input's gradient.

    :param conv: an unpadded :class:`torch.nn.Conv2d` or :class:`CoordConv2d` with ``groups=1``
    :param x: the input the forward pass saw
    :param grad: the gradient at the output
    :param input_grad: compute the input's gradient (not needed for the first layer)
    :return: the input's gradient, or None when not asked for
    """
    if isinstance(conv.padding, str) or conv.padding != (0, 0) or conv.groups != 1:
        raise NotImplementedError("conv2d_backward supports unpadded convolutions with groups=1 only")
    coord = isinstance(conv, CoordConv2d)
    weight = conv.image_weight if isinstance(conv, CoordConv2d) else conv.weight
    has_bias = conv.bias is not None and not coord  # CoordConv2d's bias sits in its coordinate term
    grad_input, grad_weight, grad_bias = torch.ops.aten.convolution_backward(
        grad,
        x,
        weight,
        [conv.out_channels] if has_bias else None,
        list(conv.stride),
        [0, 0],
        list(conv.dilation),
        False,
        [0, 0],
        1,
        [input_grad, True, has_bias],
    )
    if isinstance(conv, CoordConv2d):
        grad_coord, grad_bias = conv.coord_term_grads(x, grad)
        grad_weight = torch.cat([grad_weight, grad_coord], dim=1)
        if grad_bias is not None:
            assert conv.bias is not None
            accumulate_grad(conv.bias, grad_bias)
    elif grad_bias is not None:
        assert conv.bias is not None
        accumulate_grad(conv.bias, grad_bias)
    accumulate_grad(conv.weight, grad_weight)
    return grad_input
