"""Not-so-Clevr: every centre once, one-hots and images that agree with it, its two splits."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from rl_coordconv.layers import coordinate_grid
from rl_coordconv.toy_tasks.data import N_EXAMPLES, make_split, quadrant_split, to_pixels, to_unit, uniform_split


def test_dataset_has_every_centre_once_in_range(data):
    assert len(data) == N_EXAMPLES == 3136
    assert data.centres.min() == 4 and data.centres.max() == 59
    assert len({tuple(c) for c in data.centres.tolist()}) == 3136
    assert data.onehots.shape == data.images.shape == (3136, 1, 64, 64)


def test_onehot_and_image_agree_with_the_centre(data):
    x, y = data.centres[:, 0], data.centres[:, 1]
    # one-hot: a single 1 at row y, column x
    assert torch.equal(data.onehots.flatten(1).sum(1), torch.ones(3136))
    assert torch.equal(data.onehots.flatten(1).argmax(1), y * 64 + x)
    assert torch.equal(data.flat_targets, y * 64 + x)
    # image: the one-hot painted by a 9×9 all-ones filter (the paper's recipe), binary 0/1
    some = slice(None, None, 7)
    painted = F.conv2d(data.onehots[some], torch.ones(1, 1, 9, 9), padding=4)
    assert torch.equal(data.images[some], painted)
    assert set(data.images.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(data.images.flatten(1).sum(1), torch.full((3136,), 81.0))


def test_an_example_by_hand(data):
    index = ((data.centres[:, 0] == 10) & (data.centres[:, 1] == 50)).nonzero().item()
    assert data.onehots[index, 0, 50, 10] == 1  # image[y, x]: row 50, column 10
    image = data.images[index, 0]
    assert image[46:55, 6:15].sum() == 81 and image.sum() == 81


def test_unit_scale_is_the_coordinate_channels_scale(data):
    # column x of the input equals CoordConv's j channel at column x, row y its i channel at row y
    grid = coordinate_grid(64, 64)[0]
    assert torch.equal(to_unit(torch.arange(64)), grid[1, 0])
    assert torch.equal(to_unit(torch.arange(64)), grid[0, :, 0])
    assert torch.allclose(to_pixels(data.unit_centres), data.centres.float(), atol=1e-5)


def test_quadrant_split_sizes_and_no_test_centre_in_training(data):
    split = quadrant_split()
    assert (len(split.train), len(split.test)) == (2407, 729)
    assert torch.equal(torch.cat([split.train, split.test]).sort().values, torch.arange(3136))
    test_centres, train_centres = data.centres[split.test], data.centres[split.train]
    assert ((test_centres[:, 0] > 32) & (test_centres[:, 1] > 32)).all()
    assert not ((train_centres[:, 0] > 32) & (train_centres[:, 1] > 32)).any()
    assert not {tuple(c) for c in test_centres.tolist()} & {tuple(c) for c in train_centres.tolist()}


def test_uniform_split_is_a_seeded_80_20_partition():
    split = uniform_split(seed=0)
    assert (len(split.train), len(split.test)) == (2509, 627)
    assert torch.equal(torch.cat([split.train, split.test]).sort().values, torch.arange(3136))
    assert torch.equal(uniform_split(seed=0).test, split.test)
    assert not torch.equal(uniform_split(seed=1).test, split.test)
    with pytest.raises(ValueError, match="unknown split 'left'; choose from uniform, quadrant"):
        make_split("left")
