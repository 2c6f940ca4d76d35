#!/usr/bin/env bash
# The current-QIIME 2 check (not part of `make test`: it needs source checkouts).
#
#   make test-current Q2_SOURCES=DIR        (or: bash scripts/test-current.sh DIR)
#
# DIR holds source trees of the public repositories qiime2/q2-types, qiime2/q2cli,
# qiime2/q2templates, qiime2/q2galaxy and qiime2/q2-taxa (e.g. `git clone` each into DIR).
# q2-types may come without three test databases whose blobs a mirror lacks; then
# `git archive HEAD | tar -x` stops before setup.py. Leave them out, nothing here reads them:
#   git archive HEAD -- . ':!q2_types/reference_db/tests/data/good_eggnog/eggnog.db' \
#     ':!q2_types/reference_db/tests/data/good_eggnog/eggnog.taxa.db.traverse.pkl' \
#     ':!q2_types/reference_db/tests/data/single_eggnog/eggnog.db' | tar -x -C DIR/q2-types
# Builds a venv (VENV, default .venv-current) with rachis from PyPI (RACHIS, default
# 2026.4.0), those sources, CPU torch and the plugin (editable); then runs the test suite
# (the README tutorial included, through q2cli), templates the Galaxy tools of taxdistill and
# of q2-types with q2galaxy, lints both with planemo (its own venv, VENV-planemo) and fails
# on any finding that q2-types' tools do not also have (scripts/galaxy_lint_compare.py).
# Outputs and logs: OUT (default current-output/). Idempotent: the venvs are reused.
# Workarounds: the sources (2025.4.0.dev0, the newest public) still `import qiime2`, so the
# venv gets recipes/qiime2_alias.py (qiime2.X is rachis.X); click<8.2 for q2cli; the venv
# gets an etc/ (rachis' config) and a conda-meta/ (q2galaxy expects a conda environment).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SRC=${1:-${Q2_SOURCES:-}}
VENV=${VENV:-$ROOT/.venv-current}
OUT=${OUT:-$ROOT/current-output}
RACHIS=${RACHIS:-2026.4.0}
SOURCES="q2-types q2cli q2templates q2galaxy q2-taxa"

if [ -z "$SRC" ]; then
    echo "test-current needs a folder with source checkouts of $SOURCES" >&2
    echo "(the public repositories qiime2/<name>): make test-current Q2_SOURCES=DIR" >&2
    exit 2
fi
SRC=$(cd "$SRC" && pwd)
missing=""
for r in $SOURCES; do
    { [ -f "$SRC/$r/setup.py" ] || [ -f "$SRC/$r/pyproject.toml" ]; } || missing="$missing $r"
done
if [ -n "$missing" ]; then
    echo "test-current: $SRC lacks the source checkout(s) of:$missing" >&2
    echo "  each must be a source tree of the public repository qiime2/<name> (setup.py at" >&2
    echo "  its top), e.g. cloned with git into $SRC/<name>" >&2
    exit 2
fi
# q2-taxa's barplot needs its JavaScript bundle, built from the source tree by npm (the
# conda package ships it built): q2-taxa's own `make viz-barplot`.
if [ ! -d "$SRC/q2-taxa/q2_taxa/assets/barplot/dist" ]; then
    echo ">> building q2-taxa's barplot bundle (npm) in $SRC/q2-taxa"
    make -C "$SRC/q2-taxa" viz-barplot
fi
case "$VENV" in /*) ;; *) VENV=$ROOT/$VENV ;; esac
PY=$VENV/bin/python
export CONDA_PREFIX=$VENV MPLBACKEND=Agg PATH="$VENV/bin:$PATH"

if [ ! -f "$VENV/.current-ready" ]; then
    echo ">> building $VENV: rachis $RACHIS + sources from $SRC"
    python3 -m venv "$VENV"
    "$PY" -m pip install -q "torch==2.13.0"          # the CPU wheel first
    "$PY" -m pip install -q "rachis==$RACHIS"
    for r in $SOURCES; do "$PY" -m pip install -q --no-deps "$SRC/$r"; done
    "$PY" -m pip install -q scikit-bio biom-format scipy h5py ijson pyhmmer matplotlib \
        safetensors faiss-cpu pytest 'click<8.2' jinja2 pyyaml transformers tokenizers
    SP=$("$PY" -c 'import site; print(site.getsitepackages()[0])')
    cp recipes/qiime2_alias.py "$SP/_qiime2_alias.py"
    echo "import _qiime2_alias" > "$SP/zz_qiime2_alias.pth"
    mkdir -p "$VENV/etc" "$VENV/conda-meta"
    touch "$VENV/.current-ready"
fi
if [ ! -x "$VENV-planemo/bin/planemo" ]; then
    echo ">> building $VENV-planemo (planemo for the Galaxy lint)"
    python3 -m venv "$VENV-planemo"
    "$VENV-planemo/bin/pip" install -q planemo
fi
"$PY" -c "import q2_taxa, os, sys; sys.exit(not os.path.isdir(os.path.join(os.path.dirname(q2_taxa.__file__), 'assets/barplot/dist')))" \
    || "$PY" -m pip install -q --no-deps --force-reinstall "$SRC/q2-taxa"
"$PY" -m pip install -q --no-deps --no-build-isolation -e "$ROOT"
"$VENV/bin/qiime" dev refresh-cache >/dev/null
"$PY" - <<'PY'
import rachis, q2_types, q2cli, q2galaxy, numpy, pandas
print(">> rachis", rachis.__version__, "| q2-types", q2_types.__version__, "| q2cli",
      q2cli.__version__, "| q2galaxy", q2galaxy.__version__, "| numpy", numpy.__version__,
      "| pandas", pandas.__version__)
PY

rm -rf "$OUT" && mkdir -p "$OUT/galaxy"
echo ">> test suite (with the README tutorial) on the current stack"
"$PY" -m pytest -q -p no:cacheprovider tests

echo ">> Galaxy tools: q2galaxy template + planemo lint (taxdistill, and q2-types for reference)"
for plugin in taxdistill types; do
    mkdir -p "$OUT/galaxy/$plugin"
    "$VENV/bin/q2galaxy" template plugin "$plugin" "$OUT/galaxy/$plugin" > "$OUT/galaxy/$plugin.template.log"
    # planemo exits 1 on any finding, q2-types' own tools included: compared below instead.
    (cd "$OUT/galaxy/$plugin" && "$VENV-planemo/bin/planemo" lint suite_qiime2__"$plugin" \
        > "$OUT/galaxy/$plugin.lint.txt" 2>&1) || true
    grep -q "^Linting tool" "$OUT/galaxy/$plugin.lint.txt" \
        || { echo "planemo lint did not run, see $OUT/galaxy/$plugin.lint.txt" >&2; exit 1; }
done
"$PY" scripts/galaxy_lint_compare.py "$OUT/galaxy/taxdistill.lint.txt" \
    "$OUT/galaxy/types.lint.txt" "$OUT/galaxy/taxdistill" | tee "$OUT/galaxy/compare.txt"
echo ">> current-QIIME 2 check passed (logs in $OUT)"
