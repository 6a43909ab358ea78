#!/usr/bin/env bash
# One short, prepared check of the CUDA path, for a machine with a GPU.
# Usage: bash benchmarks/device_check.sh   (writes JSON lines to ${OUT:-.}/device_check.jsonl)
set -euo pipefail
out="${OUT:-.}/device_check.jsonl"
python3 -m venv /tmp/psvenv && /tmp/psvenv/bin/pip -q install torch==2.13.0 -e '.[dev]'
py=/tmp/psvenv/bin/python
$py -c "import torch; print('cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
# The CUDA-only tests (float16 autocast in models and losses), then the model tests on CUDA.
$py -m pytest -q tests/test_models.py tests/test_losses.py -k "cuda or autocast" | tail -3
# Training speed on the GPU (the same DEAP shapes as the CPU benchmarks).
$py benchmarks/run.py pretrain --window 1 --steps 50 --device cuda | tee -a "$out"
$py benchmarks/run.py pretrain --window 5 --steps 30 --device cuda | tee -a "$out"
$py benchmarks/run.py finetune --batch 256 --steps 10 --device cuda | tee -a "$out"
