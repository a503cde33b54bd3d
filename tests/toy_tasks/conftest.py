"""The toy tasks' data set, made once for every toy-task test file."""

from __future__ import annotations

import pytest

from rl_coordconv.toy_tasks.data import NotSoClevr, not_so_clevr


@pytest.fixture(scope="package")
def data() -> NotSoClevr:
    return not_so_clevr()
