#!/usr/bin/env bash
# Create .venv/ and install rl_coordconv into it with its test tools. Safe to run again.
#   EXTRAS=envpool,ray,video bash scripts/setup.sh   adds optional extras
#   TORCH_VERSION=2.x.y bash scripts/setup.sh        picks another torch
#   PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu bash scripts/setup.sh   CPU torch off PyPI
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
pip() { .venv/bin/python -m pip --disable-pip-version-check -q "$@"; }
# torch first and pinned: with no torch installed, a bare `torch` requirement pulls a multi-GB
# CUDA build. 2.13.0 resolves to the CPU wheel on this project's machines and to the CUDA
# wheel from PyPI on a GPU box.
pip install "torch==${TORCH_VERSION:-2.13.0}"
pip install -e ".[dev${EXTRAS:+,$EXTRAS}]"
