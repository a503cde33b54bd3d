"""Shared test settings: small thread counts so tests behave the same on every machine."""

from __future__ import annotations

import os

# Before torch loads OpenMP: idle OpenMP threads sleep instead of spinning. On the shared 2-core
# machine, spinning made the toy-task tests about 5× slower (170 s against 35 s for two tests).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch

torch.set_num_threads(2)
