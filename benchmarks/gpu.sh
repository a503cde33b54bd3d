#!/usr/bin/env bash
# On a machine with an NVIDIA GPU, from a fresh clone, in about 5 minutes: install, run the tests
# marked `cuda` (CoordConv against concat, the fast A2C loop against SB3's, an Ape-X learner step,
# a 20k-step training run), then A2C throughput on cuda and cpu against SB3's stock stack.
#   bash benchmarks/gpu.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device: this check needs a GPU')"
.venv/bin/python -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0))"
.venv/bin/python -m pytest -m cuda -v
.venv/bin/python benchmarks/train_throughput.py --steps 30000 --repeats 1 --devices cuda cpu
