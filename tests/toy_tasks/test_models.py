"""The paper's toy-task models: parameter counts, the baselines' sizes, the regressor's fast path."""

from __future__ import annotations

import pytest
import torch

from rl_coordconv.layers import CoordConv2d
from rl_coordconv.toy_tasks.models import (
    CoordConvRegressor,
    DeconvPainter,
    build_model,
    count_parameters,
    kernel_weights,
)


@pytest.mark.parametrize(("task", "expected"), [("classification", 7553), ("regression", 906), ("rendering", 9490)])
def test_coordconv_models_have_the_papers_parameter_counts(task, expected):
    model = build_model(task, "coordconv")
    assert count_parameters(model) == expected
    assert any(isinstance(layer, CoordConv2d) for layer in model.modules())


def test_baselines_are_plain_convolutions_in_the_papers_size_range():
    sizes = [count_parameters(DeconvPainter(mul, fs)) for mul in (1, 2, 3) for fs in (2, 3, 4)]
    assert min(sizes) == 46_465 and max(sizes) == 1_632_001  # the paper: "50k–1.6M"
    assert count_parameters(build_model("regression", "conv", arch="strided")) == 12_914  # "12k"
    for task in ("classification", "regression", "rendering"):
        assert not any(isinstance(m, CoordConv2d) for m in build_model(task, "conv").modules())


@pytest.mark.parametrize("fs", [1, 2, 3, 4, 5])
def test_deconv_painter_doubles_to_64_for_every_filter_size(fs):
    assert DeconvPainter(1, fs)(torch.zeros(3, 2)).shape == (3, 1, 64, 64)


def test_kernel_weights_leave_out_biases_and_batchnorm():
    model = DeconvPainter(1, 2)
    kernels = kernel_weights(model)
    assert len(kernels) == 6 and all(w.dim() == 4 for w in kernels)
    assert sum(w.numel() for w in kernels) < count_parameters(model)


def test_regressor_impulse_response_path_equals_the_layer_stack(data):
    torch.manual_seed(3)
    model = CoordConvRegressor()
    x = data.onehots[::40] * torch.rand(len(data.onehots[::40]), 1, 1, 1)  # any values, interior pixels
    fast = model(x)
    fast_grads = torch.autograd.grad(fast.square().sum(), list(model.parameters()))
    model.fast = False
    slow = model(x)
    slow_grads = torch.autograd.grad(slow.square().sum(), list(model.parameters()))
    torch.testing.assert_close(fast, slow, rtol=1e-5, atol=1e-5)
    for a, b in zip(fast_grads, slow_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    # a hot pixel on the border is cut by zero padding: the fast path must not be taken
    model.fast = True
    edge = torch.zeros(2, 1, 64, 64)
    edge[:, 0, 0, 5] = 1
    assert model._sparse_maps(edge) is None
    model.fast = False
    torch.testing.assert_close(CoordConvRegressor.forward(model, edge), model.stack(edge).amax(dim=(2, 3)))


def test_build_model_rejects_settings_a_model_does_not_have():
    with pytest.raises(ValueError, match="--fs does not apply to the coordconv regression model"):
        build_model("regression", "coordconv", fs=3)
    with pytest.raises(ValueError, match="unknown task 'paint'"):
        build_model("paint", "conv")
