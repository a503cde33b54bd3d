"""CoordConv layers: exact coordinates, equivalence with concat-then-conv, errors."""

from __future__ import annotations

import itertools
import subprocess
import sys

import pytest
import torch
from torch import nn

from rl_coordconv.layers import (
    AddCoords,
    CoordConv2d,
    CoordConvTranspose2d,
    coord_weight_ratio,
    coordinate_grid,
)

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]


def test_coordinates_exact_on_rectangular_input():
    x = torch.zeros(2, 1, 3, 5)
    out = AddCoords()(x)
    assert out.shape == (2, 3, 3, 5)
    i, j = out[0, 1], out[0, 2]
    assert torch.equal(i, torch.tensor([[-1.0] * 5, [0.0] * 5, [1.0] * 5]))
    assert torch.equal(j, torch.tensor([[-1.0, -0.5, 0.0, 0.5, 1.0]] * 3))
    assert torch.equal(out[1], out[0])


@pytest.mark.parametrize("height,width", [(84, 84), (7, 20), (20, 7), (64, 64), (1, 4)])
def test_each_axis_spans_exactly_minus_one_to_one(height, width):
    grid = coordinate_grid(height, width)
    i, j = grid[0, 0], grid[0, 1]
    torch.testing.assert_close(i[:, 0], torch.linspace(-1, 1, height) if height > 1 else torch.zeros(1))
    torch.testing.assert_close(j[0, :], torch.linspace(-1, 1, width))
    assert torch.equal(i, -i.flip(0)) and torch.equal(j, -j.flip(1))  # exactly antisymmetric
    assert (i == i[:, :1]).all() and (j == j[:1, :]).all()  # i constant along a row, j along a column
    if width > 1:
        assert j.min() == -1 and j.max() == 1
    if height > 1:
        assert i.min() == -1 and i.max() == 1


def test_radius_is_centred_on_the_image_centre():
    grid = coordinate_grid(9, 13, with_r=True)
    r = grid[0, 2]
    assert r[4, 6] == 0.0  # the centre pixel
    assert r.argmin() == 4 * 13 + 6
    assert torch.allclose(r.max(), torch.tensor(2.0).sqrt())
    assert torch.allclose(r, (grid[0, 0] ** 2 + grid[0, 1] ** 2).sqrt())
    # symmetric about the centre: a centre at 0.5 of a [0,1] grid would be too; one at 0 would not
    assert torch.equal(r, r.flip(0)) and torch.equal(r, r.flip(1))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
def test_grid_follows_input_dtype_and_device(device, dtype):
    layer = AddCoords(with_r=True)
    x = torch.zeros(1, 2, 6, 4, device=device, dtype=dtype)
    out = layer(x)
    assert out.dtype == dtype and out.device.type == device and out.shape == (1, 5, 6, 4)


def test_grid_is_cached_not_rebuilt():
    layer = AddCoords()
    x = torch.zeros(3, 1, 10, 12)
    first = layer.grid_like(x)
    assert layer.grid_like(torch.ones(5, 1, 10, 12)) is first
    assert layer.grid_like(torch.zeros(1, 1, 12, 10)) is not first
    assert len(layer._grids) == 2


def _concat_then_conv(layer: CoordConv2d, x: torch.Tensor) -> torch.Tensor:
    reference = nn.Conv2d(
        layer.in_channels,
        layer.out_channels,
        layer.kernel_size,
        layer.stride,
        layer.padding,
        layer.dilation,
        bias=layer.bias is not None,
    ).to(x.dtype)
    reference.weight = layer.weight  # the same Parameter: gradients land in the same place
    reference.bias = layer.bias
    return reference(AddCoords(layer.with_r)(x))


CONV_GRID = list(
    itertools.product(
        [1, 3, 4],  # kernel
        [1, 2, 3],  # stride
        [0, 1, 2],  # padding
        [1, 2],  # dilation
        [(2, 3, 11, 11), (3, 2, 9, 14), (1, 1, 16, 7)],  # N, C, H, W
    )
)


@pytest.mark.parametrize("kernel,stride,padding,dilation,shape", CONV_GRID)
def test_coordconv2d_equals_concat_then_conv(kernel, stride, padding, dilation, shape):
    torch.manual_seed(0)
    n, c, h, w = shape
    for with_r, bias in [(False, True), (True, False)]:
        layer = CoordConv2d(c, 5, kernel, stride, padding, dilation, bias=bias, with_r=with_r).double()
        x = torch.randn(n, c, h, w, dtype=torch.float64, requires_grad=True)
        out = layer(x)
        grads = torch.autograd.grad(out.square().sum(), [x, *layer.parameters()])
        expected = _concat_then_conv(layer, x)
        expected_grads = torch.autograd.grad(expected.square().sum(), [x, *layer.parameters()])
        torch.testing.assert_close(out, expected, rtol=1e-10, atol=1e-10)
        for got, want in zip(grads, expected_grads, strict=True):
            torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(
    "kernel,stride,padding,output_padding,dilation,shape",
    [
        (k, s, p, op, d, shape)
        for k, s, p, op, d, shape in itertools.product(
            [1, 2, 3], [1, 2, 3], [0, 1], [0, 1], [1, 2], [(2, 3, 5, 5), (3, 2, 4, 7)]
        )
        if op < max(s, d)
    ],
)
def test_coordconv_transpose_equals_concat_then_deconv(kernel, stride, padding, output_padding, dilation, shape):
    torch.manual_seed(0)
    n, c, h, w = shape
    for with_r in (False, True):
        layer = CoordConvTranspose2d(c, 4, kernel, stride, padding, output_padding, dilation, with_r=with_r).double()
        reference = nn.ConvTranspose2d(
            layer.in_channels, 4, kernel, stride, padding, output_padding, dilation=dilation
        ).double()
        reference.weight, reference.bias = layer.weight, layer.bias
        x = torch.randn(n, c, h, w, dtype=torch.float64, requires_grad=True)
        out = layer(x)
        expected = reference(AddCoords(with_r)(x))
        torch.testing.assert_close(out, expected, rtol=1e-10, atol=1e-10)
        grads = torch.autograd.grad(out.square().sum(), [x, *layer.parameters()])
        expected_grads = torch.autograd.grad(expected.square().sum(), [x, *layer.parameters()])
        for got, want in zip(grads, expected_grads, strict=True):
            torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


def test_weight_has_the_paper_parameterisation():
    layer = CoordConv2d(4, 32, 8, stride=4)
    assert layer.weight.shape == (32, 6, 8, 8)
    assert CoordConv2d(4, 32, 8, with_r=True).weight.shape == (32, 7, 8, 8)
    assert CoordConvTranspose2d(3, 16, 2).weight.shape == (5, 16, 2, 2)
    assert isinstance(layer, nn.Conv2d)  # initialisers that look for Conv2d treat it like one


@pytest.mark.parametrize("stride,padding,dilation", [(1, 0, 1), (2, 1, 1), (4, 3, 2)])
def test_from_conv_gives_the_same_outputs(stride, padding, dilation):
    torch.manual_seed(1)
    conv = nn.Conv2d(3, 8, 5, stride=stride, padding=padding, dilation=dilation)
    wrapped = CoordConv2d.from_conv(conv)
    x = torch.randn(4, 3, 23, 17)
    # The bias is added after the convolution, not fused into it, so the last float32 bit may
    # differ by CPU (it does on AMD EPYC); zero coordinate weights add exactly nothing else.
    out, expected = wrapped(x), conv(x)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-6 * float(expected.abs().max()))
    assert coord_weight_ratio(wrapped) == 0.0
    assert torch.equal(wrapped.image_weight, conv.weight)
    # and it is trainable: the coordinate weights get a gradient
    wrapped(x).sum().backward()
    assert wrapped.weight.grad is not None and wrapped.weight.grad[:, 3:].abs().sum() > 0


def test_coord_weight_ratio_compares_per_channel_norms():
    layer = CoordConv2d(4, 8, 3)  # 4 image channels, 2 coordinate channels
    with torch.no_grad():
        layer.weight.fill_(1.0)
    assert coord_weight_ratio(layer) == pytest.approx(1.0)  # equal weights per channel, however many channels
    with torch.no_grad():
        layer.image_weight.mul_(2.0)
    assert coord_weight_ratio(layer) == pytest.approx(0.5)
    with torch.no_grad():
        layer.coord_weight[:, 0].zero_()  # one of two coordinate channels off: √(1/2) of its norm
    assert coord_weight_ratio(layer) == pytest.approx(0.5 / 2**0.5)


def test_from_conv_rejects_what_it_cannot_represent():
    with pytest.raises(ValueError, match="groups=2"):
        CoordConv2d.from_conv(nn.Conv2d(4, 8, 3, groups=2))
    with pytest.raises(ValueError, match="reflect"):
        CoordConv2d.from_conv(nn.Conv2d(4, 8, 3, padding=1, padding_mode="reflect"))
    with pytest.raises(TypeError, match="Linear"):
        CoordConv2d.from_conv(nn.Linear(3, 3))  # type: ignore[arg-type]


def _sgd_step(layer: CoordConv2d, x: torch.Tensor) -> None:
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.5)
    layer(x).square().sum().backward()
    optimizer.step()


def _adam_step(layer: CoordConv2d, x: torch.Tensor) -> None:  # foreach kernels
    optimizer = torch.optim.Adam(layer.parameters(), lr=0.1)
    layer(x).square().sum().backward()
    optimizer.step()


def _load_state_dict(layer: CoordConv2d, x: torch.Tensor) -> None:
    layer.load_state_dict({k: torch.randn_like(v) for k, v in layer.state_dict().items()})


def _write_data(layer: CoordConv2d, x: torch.Tensor) -> None:
    layer.weight.data = torch.randn_like(layer.weight)
    layer.bias.data = torch.randn_like(layer.bias)


def _write_through_data(layer: CoordConv2d, x: torch.Tensor) -> None:
    layer.weight.data.mul_(-2.0)
    layer.bias.data.add_(1.0)


def _copy_under_no_grad(layer: CoordConv2d, x: torch.Tensor) -> None:
    with torch.no_grad():
        layer.weight.copy_(torch.randn_like(layer.weight))
        layer.bias.mul_(3.0)


def _polyak(tau: float):
    def update(layer: CoordConv2d, x: torch.Tensor) -> None:
        from stable_baselines3.common.utils import polyak_update

        source = CoordConv2d(layer.image_channels, layer.out_channels, layer.kernel_size, layer.stride)
        polyak_update(source.parameters(), layer.parameters(), tau)

    return update


def _to_dtype_and_back(layer: CoordConv2d, x: torch.Tensor) -> None:
    layer.double()
    with torch.no_grad():
        layer.weight.mul_(0.5)
    layer.float()  # new storage, version counter back at 0


def _vector_to_parameters(layer: CoordConv2d, x: torch.Tensor) -> None:
    vector = torch.nn.utils.parameters_to_vector(layer.parameters())
    torch.nn.utils.vector_to_parameters(torch.randn_like(vector), layer.parameters())


@pytest.mark.parametrize(
    "change",
    [
        _sgd_step,
        _adam_step,
        _load_state_dict,
        _write_data,
        _write_through_data,
        _copy_under_no_grad,
        _polyak(1.0),
        _polyak(0.3),
        _to_dtype_and_back,
        _vector_to_parameters,
    ],
    ids=[
        "sgd",
        "adam",
        "load_state_dict",
        "assign_data",
        "inplace_on_data",
        "copy_mul_no_grad",
        "polyak_tau1",
        "polyak_tau0.3",
        "to_dtype",
        "vector_to_parameters",
    ],
)
@pytest.mark.parametrize("mode", ["no_grad", "inference_mode"])
def test_no_weight_change_serves_a_stale_coordinate_term(change, mode):
    """Whatever changes the weights, the next forward outside autograd sees them (DQN's target net)."""
    torch.manual_seed(2)
    layer = CoordConv2d(4, 8, 8, stride=4)
    x = torch.rand(3, 4, 84, 84)
    context = torch.no_grad if mode == "no_grad" else torch.inference_mode
    with context():
        before = layer(x)
        assert torch.equal(layer(x), before)
    change(layer, x)
    with context():
        after = layer(x)
    expected = _concat_then_conv(layer, x).detach()
    assert not torch.allclose(after, before)
    # float32 sums in another order: a tolerance on the outputs' scale, far below a stale term's error
    torch.testing.assert_close(after, expected, rtol=0, atol=1e-5 * float(expected.abs().max()))


@pytest.mark.cuda
def test_coordinate_term_follows_a_move_to_the_device(device="cuda"):
    torch.manual_seed(2)
    layer = CoordConv2d(4, 8, 8, stride=4)
    x = torch.rand(3, 4, 84, 84)
    with torch.no_grad():
        layer(x)
        layer.to(device)
        layer.weight.data.mul_(-1.0)
        got = layer(x.to(device))
        torch.testing.assert_close(got, _concat_then_conv(layer, x.to(device)))


@pytest.mark.parametrize("cls", [CoordConv2d, CoordConvTranspose2d])
def test_bad_input_names_the_shape(cls):
    layer = cls(3, 4, 3)
    with pytest.raises(ValueError, match=r"4-D tensor.*got shape \(3, 9, 9\)"):
        layer(torch.zeros(3, 9, 9))
    with pytest.raises(ValueError, match=r"expects 3 image channels.*\(1, 5, 9, 9\)"):
        layer(torch.zeros(1, 5, 9, 9))
    with pytest.raises(ValueError, match=r"4-D tensor.*got shape \(2, 1, 3, 9, 9\)"):
        AddCoords()(torch.zeros(2, 1, 3, 9, 9))


def test_layers_module_does_not_import_stable_baselines():
    code = "import sys, rl_coordconv.layers, rl_coordconv; print('stable_baselines3' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize("with_r", [False, True])
def test_channels_last_input_gives_the_same_values_and_gradients(with_r):
    torch.manual_seed(3)
    layer = CoordConv2d(4, 8, 8, stride=4, with_r=with_r).double()
    x = torch.randn(5, 4, 36, 44, dtype=torch.float64)
    grads = []
    outs = []
    for memory_format in (torch.contiguous_format, torch.channels_last):
        layer.zero_grad()
        out = layer(x.contiguous(memory_format=memory_format))
        (out * torch.arange(out.numel(), dtype=out.dtype).view_as(out)).sum().backward()
        outs.append(out)
        grads.append([p.grad.clone() for p in layer.parameters()])
    torch.testing.assert_close(outs[1], outs[0], rtol=1e-10, atol=1e-10)
    for got, want in zip(grads[1], grads[0], strict=True):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(outs[0], _concat_then_conv(layer, x).detach(), rtol=1e-10, atol=1e-10)
