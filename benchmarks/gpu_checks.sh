#!/usr/bin/env bash
# The one prepared run for a lent GPU (< 8 min on an H200): the CUDA tests of the language-model
# teacher (skipped on CPU, so CI never runs them), then the teacher throughput table
# (benchmarks/gpu_throughput.sh). Needs python with torch, transformers, tokenizers, numpy,
# pandas and pytest; no QIIME 2 and no install of the plugin.
#   bash benchmarks/gpu_checks.sh          # writes $OUT/cuda_tests.log, throughput.md, .log
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
OUT=${OUT:-.}
mkdir -p "$OUT"
PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} timeout "${TEST_LIMIT:-150}" "$PY" -m pytest -q \
    -p no:cacheprovider -rs tests/test_language_model.py 2>&1 | tee "$OUT/cuda_tests.log"
tests=${PIPESTATUS[0]}
bash benchmarks/gpu_throughput.sh
throughput=$?
echo "cuda tests: exit $tests; throughput: exit $throughput"
[ "$tests" -eq 0 ] && [ "$throughput" -eq 0 ]
