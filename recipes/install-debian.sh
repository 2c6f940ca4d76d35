#!/usr/bin/env bash
# Set up q2-taxdistill on Debian bookworm as root: QIIME 2 from Debian, a venv at .venv
# that sees it, CPU torch first (so nothing pulls a CUDA build), then the plugin.
# Idempotent: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
# kraken2 and mmseqs2: tests/test_real_tools.py runs them on tiny databases (skipped without them);
# python3-pytest-xdist: `make test` runs the suite in two processes
DEBS="qiime q2cli q2-types q2-feature-table q2-taxa python3-venv python3-pytest python3-pytest-xdist python3-biom-format kraken2 mmseqs2"

missing=""
for p in $DEBS; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"; done
if [ -n "$missing" ]; then
    echo ">> installing Debian packages:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends $missing
fi

if [ ! -x "$VENV/bin/python" ]; then
    echo ">> creating $VENV"
    /usr/bin/python3 -m venv --system-site-packages "$VENV"
fi
PY="$VENV/bin/python"
if ! "$PY" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '2.13.0')" 2>/dev/null; then
    echo ">> installing torch 2.13.0 (CPU)"
    "$PY" -m pip install -q "torch==2.13.0"
fi
if ! "$PY" -c "import transformers, tokenizers, safetensors" 2>/dev/null; then
    echo ">> installing transformers"
    "$PY" -m pip install -q "torch==2.13.0" transformers tokenizers safetensors
fi
# faiss builds the approximate neighbour graphs of large inputs (engine/neighbours.py). Newer
# faiss-cpu wheels need numpy >= 1.25, which would replace the numpy that Debian's QIIME 2
# (pandas, scipy, biom) was built with: pip picks the newest faiss-cpu for the numpy we have.
if ! "$PY" -c "import faiss" 2>/dev/null; then
    echo ">> installing faiss-cpu"
    NUMPY=$("$PY" -c "import numpy; print(numpy.__version__)")
    "$PY" -m pip install -q faiss-cpu "numpy==$NUMPY"
fi
# parsl runs the sharded embedding on many nodes (engine/teacher/parsl_embedding.py); its tests run a
# 2-worker local executor. Pure Python, a few small dependencies (the `cluster` extra).
if ! "$PY" -c "import parsl" 2>/dev/null; then
    echo ">> installing parsl"
    "$PY" -m pip install -q parsl
fi
# huggingface_hub pulls a click >= 8.2, which breaks the q2cli of QIIME 2 2022.11 (it sets
# Option.is_bool_flag); only huggingface_hub's own CLI needs the newer click, we never use it.
if "$PY" -c "import click, sys; sys.exit(tuple(map(int, click.__version__.split('.')[:2])) < (8, 2))" 2>/dev/null \
        && "$PY" -c "import q2cli" 2>/dev/null && [ ! -d /usr/lib/python3/dist-packages/rachis ]; then
    echo ">> pinning click < 8.2 for q2cli 2022.x"
    "$PY" -m pip install -q "click>=8.1,<8.2" 2>&1 | grep -v "dependency conflicts\|huggingface-hub\|resolver does not" || true
fi
if ! "$PY" -c "import q2_taxdistill" 2>/dev/null || [ setup.py -nt "$VENV/.plugin-installed" ]; then
    echo ">> installing q2-taxdistill (editable)"
    "$PY" -m pip install -q --no-deps --no-build-isolation -e .
    touch "$VENV/.plugin-installed"
fi

# q2cli for the venv: /usr/bin/qiime runs the system python, which cannot see venv plugins.
cat > "$VENV/bin/qiime" <<WRAP
#!/usr/bin/env bash
export CONDA_PREFIX="$(pwd)/$VENV"
exec "$(pwd)/$VENV/bin/python" -m q2cli.__main__ "\$@"
WRAP
chmod +x "$VENV/bin/qiime"
# q2cli caches the plugins' signatures: refresh it when the package's code changed since.
if [ ! -f "$VENV/.q2cache-ok" ] || [ setup.py -nt "$VENV/.q2cache-ok" ] \
        || [ -n "$(find q2_taxdistill -name '*.py' -newer "$VENV/.q2cache-ok" -print -quit)" ]; then
    CONDA_PREFIX="$(pwd)/$VENV" "$VENV/bin/qiime" dev refresh-cache >/dev/null
    touch "$VENV/.q2cache-ok"
fi
echo ">> ready: $VENV/bin/qiime taxdistill --help"
