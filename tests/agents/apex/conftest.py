"""Ape-X tests run with one torch thread (see :func:`helpers.one_torch_thread`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from helpers import one_torch_thread


@pytest.fixture(scope="package", autouse=True)
def apex_on_one_torch_thread() -> Iterator[None]:
    with one_torch_thread():
        yield
