"""Shared test settings and fixtures: small thread counts so tests behave the same on every machine,
and the runs that several test files read."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

import rl_coordconv  # noqa: F401  sets OMP_WAIT_POLICY before PyTorch loads (see its __init__)


def pytest_configure(config) -> None:
    import torch

    torch.set_num_threads(2)


def pytest_collection_modifyitems(config, items) -> None:
    """Tests marked ``cuda`` run where there is a CUDA device, and are skipped elsewhere."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="no CUDA device")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def local_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One short CoordConv Ape-X run with 2 local actors, and what it printed: trained once, read
    by tests/agents/apex and tests/test_scripts.py. Tests that change a run copy it first."""
    from helpers import SMALL_APEX, one_torch_thread

    from rl_coordconv import train

    log_dir = tmp_path_factory.mktemp("apex")
    args = [*SMALL_APEX, "--coordconv", "--actors", "2", "--timesteps", "2000", "--checkpoint-every", "1000"]
    out = io.StringIO()
    with one_torch_thread(), contextlib.redirect_stdout(out):
        assert train.main([*args, "--log-dir", str(log_dir)]) == 0
    return log_dir, out.getvalue()
