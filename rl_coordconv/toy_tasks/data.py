"""Not-so-Clevr (Liu et al., 2018, section 2): every 9×9 square on a 64×64 canvas, and its splits.

Axis convention, used everywhere in :mod:`rl_coordconv.toy_tasks`: a centre is ``(x, y)`` with
``x`` the **column** and ``y`` the **row** of the canvas, so pixel ``(x, y)`` is ``image[y, x]``
and its flat index is ``y * 64 + x``. In CoordConv's terms ``y`` runs along ``i`` (rows) and
``x`` along ``j`` (columns). Models see coordinates on the same scale as the coordinate channels
of :func:`rl_coordconv.layers.coordinate_grid`: pixel ``p`` ↦ ``(2p − 63) / 63`` (:func:`to_unit`),
so that column ``x`` of the input equals channel ``j`` at column ``x`` bit for bit.

The square is painted with **binary 0/1 values** (the released code paints grey 128 and trains on
image/255 ≈ 0.5): a rendering target is 1 on the 81 pixels of the square and 0 elsewhere.
Everything is generated in memory, deterministically; nothing is downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = [
    "CANVAS",
    "CENTRE_MAX",
    "CENTRE_MIN",
    "N_EXAMPLES",
    "SPLITS",
    "SQUARE",
    "NotSoClevr",
    "Split",
    "make_split",
    "not_so_clevr",
    "not_so_clevr_centres",
    "quadrant_split",
    "to_pixels",
    "to_unit",
    "uniform_split",
]

CANVAS = 64  # canvas height and width, pixels
SQUARE = 9  # side of the square, pixels
CENTRE_MIN = SQUARE // 2  # 4: the smallest centre that keeps the whole square on the canvas
CENTRE_MAX = CANVAS - 1 - SQUARE // 2  # 59
N_EXAMPLES = (CENTRE_MAX - CENTRE_MIN + 1) ** 2  # 56 × 56 = 3,136
QUADRANT_EDGE = CANVAS // 2  # the quadrant split tests centres with x > 32 and y > 32
SPLITS = ("uniform", "quadrant")


def to_unit(pixels: torch.Tensor) -> torch.Tensor:
    """Pixel coordinates ``0 … 63`` → ``[-1, 1]``, the scale of CoordConv's coordinate channels.

    :param pixels: any tensor of pixel coordinates
    :return: ``(2 · pixels − 63) / 63`` as float32, rounded as the coordinate channels are
    """
    return ((pixels.double() * 2 - (CANVAS - 1)) / (CANVAS - 1)).float()


def to_pixels(unit: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`to_unit`: ``[-1, 1]`` → pixel coordinates (float, not rounded)."""
    return (unit + 1) * ((CANVAS - 1) / 2)


@dataclass(frozen=True)
class NotSoClevr:
    """The 3,136 examples, row-major over centres (``y`` outer, ``x`` inner).

    :param centres: ``(N, 2)`` int64 pixel centres ``(x, y)``, each in ``[4, 59]``
    :param onehots: ``(N, 1, 64, 64)`` float32, 1 at ``[y, x]``, 0 elsewhere
    :param images: ``(N, 1, 64, 64)`` float32, 1 on the 9×9 square centred at ``[y, x]``, 0 elsewhere
    """

    centres: torch.Tensor
    onehots: torch.Tensor
    images: torch.Tensor

    def __len__(self) -> int:
        return self.centres.shape[0]

    @property
    def flat_targets(self) -> torch.Tensor:
        """Index of the centre pixel in a flattened canvas, ``y · 64 + x``, shape ``(N,)``."""
        return self.centres[:, 1] * CANVAS + self.centres[:, 0]

    @property
    def unit_centres(self) -> torch.Tensor:
        """Centres ``(x, y)`` on the ``[-1, 1]`` scale (:func:`to_unit`), shape ``(N, 2)``."""
        return to_unit(self.centres)


def not_so_clevr() -> NotSoClevr:
    """Generate Not-so-Clevr: every centre, its one-hot map and its painted square.

    As the paper notes, an image is its one-hot map convolved with a 9×9 all-ones filter; it is
    painted here as the equivalent mask ``|row − y| ≤ 4 and |column − x| ≤ 4``, which is exact
    and some 100× cheaper on a CPU than that convolution.
    """
    centres = not_so_clevr_centres()
    onehots = torch.zeros(len(centres), CANVAS * CANVAS)
    onehots[torch.arange(len(centres)), centres[:, 1] * CANVAS + centres[:, 0]] = 1.0
    onehots = onehots.view(-1, 1, CANVAS, CANVAS)
    pixels = torch.arange(CANVAS)
    near_row = (pixels[None, :] - centres[:, 1:2]).abs() <= SQUARE // 2  # (N, 64)
    near_col = (pixels[None, :] - centres[:, 0:1]).abs() <= SQUARE // 2
    images = (near_row[:, :, None] & near_col[:, None, :]).float().unsqueeze(1)
    return NotSoClevr(centres=centres, onehots=onehots, images=images)


@dataclass(frozen=True)
class Split:
    """Indices into :func:`not_so_clevr` of the training and test examples.

    :param name: ``uniform`` or ``quadrant``
    :param train: sorted int64 indices of the training examples
    :param test: sorted int64 indices of the test examples
    """

    name: str
    train: torch.Tensor
    test: torch.Tensor


def uniform_split(seed: int = 0, test_fraction: float = 0.2) -> Split:
    """The paper's uniform split: centres shuffled with ``seed``, 20% to test (627 / 2,509).

    :param seed: seed of the shuffle; the same seed gives the same split on every machine
    :param test_fraction: share of the 3,136 examples held out
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    order = torch.randperm(N_EXAMPLES, generator=torch.Generator().manual_seed(seed))
    n_test = round(test_fraction * N_EXAMPLES)
    return Split("uniform", train=order[n_test:].sort().values, test=order[:n_test].sort().values)


def quadrant_split() -> Split:
    """The paper's quadrant split: test = centres with ``x > 32`` and ``y > 32`` (729 / 2,407).

    No test centre, and no centre in the test quadrant, is ever seen in training.
    """
    centres = not_so_clevr_centres()
    in_quadrant = (centres[:, 0] > QUADRANT_EDGE) & (centres[:, 1] > QUADRANT_EDGE)
    return Split("quadrant", train=(~in_quadrant).nonzero().view(-1), test=in_quadrant.nonzero().view(-1))


def not_so_clevr_centres() -> torch.Tensor:
    """The ``(N, 2)`` centres of :func:`not_so_clevr`, without painting anything."""
    ys, xs = torch.meshgrid(
        torch.arange(CENTRE_MIN, CENTRE_MAX + 1), torch.arange(CENTRE_MIN, CENTRE_MAX + 1), indexing="ij"
    )
    return torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=1)


def make_split(name: str, seed: int = 0) -> Split:
    """:func:`uniform_split` (with ``seed``) or :func:`quadrant_split` by name.

    :raises ValueError: an unknown name
    """
    if name == "uniform":
        return uniform_split(seed)
    if name == "quadrant":
        return quadrant_split()
    raise ValueError(f"unknown split {name!r}; choose from {', '.join(SPLITS)}")
