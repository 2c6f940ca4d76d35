#!/usr/bin/env bash
# The one prepared run for a lent GPU (< 10 min on an H100/H200): the README's teacher
# throughput table, the three paths side by side in one process, N = 1 GPU.
#   bash benchmarks/gpu_throughput.sh                  # writes $OUT/throughput.md (OUT default .)
#   CONFIG=small DEVICE=cpu N=4 bash benchmarks/gpu_throughput.sh   # the CPU check the tests run
# Needs python with torch, transformers and numpy only (no QIIME 2, no install of the plugin).
# On the device tool's machine $OUT is already set (the folder that comes back); a work tree
# copied without .git names its commit through TAXDISTILL_COMMIT=$(git rev-parse --short HEAD).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
OUT=${OUT:-.}
CONFIG=${CONFIG:-500m}
DEVICE=${DEVICE:-cuda}
N=${N:-1000}
LIMIT=${LIMIT:-540}
mkdir -p "$OUT"
if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
fi
"$PY" -c "import torch, transformers; print('torch', torch.__version__, 'cuda', torch.version.cuda, \
'transformers', transformers.__version__)"
extra=()
if [ "$DEVICE" = cpu ]; then extra=(--threads 1 --peak-tflops "${PEAK:-0.05}"); fi
timeout "$LIMIT" "$PY" benchmarks/teacher_throughput.py --config "$CONFIG" --device "$DEVICE" \
    --n-contigs "$N" --markdown "$OUT/throughput.md" "${extra[@]}" 2>&1 | tee "$OUT/throughput.log"
