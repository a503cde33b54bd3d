"""Shared test settings: small thread counts so tests behave the same on every machine."""

from __future__ import annotations

import torch

torch.set_num_threads(2)
