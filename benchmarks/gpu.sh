#!/usr/bin/env bash
# `gensc bench receiver` on a CUDA GPU in one command; writes the same JSON as the CPU run:
#
#   benchmarks/gpu.sh [OUT.json]     (default benchmarks/results/receiver-sd15shapes-gpu-fp16.json)
#
# Needs a Python with CUDA torch and gensc installed (PYTHON, default .venv/bin/python). The first
# run builds the sd15-shapes random weights under $GENSC_CACHE (~2 GB, a few minutes). Full steps
# (50 x the policy's strength 0.3 at Es/N0 10 dB = 15 denoising steps), fp16, batches of up to 16;
# the fast preset compiles its UNet with inductor before it runs (minutes, not counted in the figures).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
OUT="${1:-benchmarks/results/receiver-sd15shapes-gpu-fp16.json}"
"$PYTHON" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else "no CUDA device visible to torch")'
exec "$PYTHON" -m gensc.app.cli bench receiver --profile sd15-shapes --device cuda --dtype fp16 \
  --steps 50 --snr-db 10 --concurrency 1,4,16 --unbatched 16 --unbatched-presets faithful,fast \
  --items-per-stream 4 --max-batch 16 --max-wait-ms 10 --plain-n 8 --warmup 2 --json-out "$OUT"
