#!/usr/bin/env bash
# `make test-wheel`: the package as it is installed, not as the editable install the tests use.
#  1. copy what git tracks (plus untracked files it does not ignore) to a temporary folder: a
#     clean checkout, no build leftovers, no .venv;
#  2. build the wheel there (`pip wheel --no-deps`) and check it holds every file of
#     q2_taxdistill/ in that copy (modules, assets, example data, citations);
#  3. make a fresh venv that sees Debian's QIIME 2 (--system-site-packages, as recipes/
#     install-debian.sh does), install the project venv's torch build first (pinned to the
#     same version and local label, e.g. 2.13.0+cpu, so pip cannot pick a CUDA build), then the
#     wheel with its dependencies (numpy held at Debian's, as install-debian.sh does for faiss);
#  4. from a folder outside the source tree: the engine's command line starts, and q2cli imports
#     the bundled example (read from the installed package) and runs `qiime taxdistill
#     refine-taxonomy` (a small student: 2 folds, 5 epochs, as the usage example) and
#     `summarize-soft-labels` on it; the corrected taxonomy names every contig.
# KEEP=1 keeps the temporary folder (its path is printed). Needs `make setup` first.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV=${VENV:-.venv}
case "$VENV" in /*) ;; *) VENV="$ROOT/$VENV" ;; esac
PY="$VENV/bin/python"    # the project venv: builds the wheel, names the torch build to install
WORK=$(mktemp -d "${TMPDIR:-/tmp}/taxdistill-wheel.XXXXXX")
if [ "${KEEP:-0}" = 1 ]; then echo ">> keeping $WORK"; else trap 'rm -rf "$WORK"' EXIT; fi
start=$SECONDS
step() { echo ">> [$((SECONDS - start)) s] $*"; }
pip_install() {  # quiet unless it fails (local indexes warn about every missing page)
    "$V" -m pip install -q "$@" >"$WORK/pip.log" 2>&1 || { cat "$WORK/pip.log"; return 1; }
}

step "clean copy of the sources"
mkdir "$WORK/src"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git ls-files -z --cached --others --exclude-standard \
        | while IFS= read -r -d '' f; do [ -f "$f" ] && printf '%s\0' "$f"; done \
        | xargs -0 cp --parents -t "$WORK/src"
else
    tar -c --exclude='./.venv*' --exclude='*/__pycache__' --exclude='*.egg-info' \
        --exclude='./build' --exclude='./dist' . | tar -x -C "$WORK/src"
fi

step "pip wheel --no-deps"
"$PY" -m pip wheel -q --no-deps --no-build-isolation --no-index -w "$WORK/dist" "$WORK/src"
WHEEL=$(ls "$WORK"/dist/*.whl)
"$PY" - "$WHEEL" "$WORK/src" <<'EOF'
import os, sys, zipfile
wheel, src = sys.argv[1:]
held = set(zipfile.ZipFile(wheel).namelist())
files = {os.path.relpath(os.path.join(d, f), src) for d, _, fs in os.walk(os.path.join(src, "q2_taxdistill"))
         if "__pycache__" not in d for f in fs}
missing = sorted(files - held)
if missing:
    sys.exit(f"the wheel leaves out {len(missing)} file(s) of q2_taxdistill/: {missing}")
print(f"   {os.path.basename(wheel)}: {len(held)} files, every one of q2_taxdistill/'s {len(files)}")
EOF

step "fresh venv: torch, then the wheel and its dependencies"
/usr/bin/python3 -m venv --system-site-packages "$WORK/venv"
V="$WORK/venv/bin/python"
TORCH=$("$PY" -c "import torch; print(torch.__version__)")
NUMPY=$("$PY" -c "import numpy; print(numpy.__version__)")
pip_install "torch==$TORCH"
pip_install "$WHEEL" "numpy==$NUMPY"
"$V" -c "import torch; assert torch.__version__ == '$TORCH', torch.__version__"
# pip check, for what this installed: Debian's own packages have unmet metadata of their own
# (biom-format names h5py, which Debian packages separately)
if "$V" -m pip check | grep -iE "^(q2-taxdistill|torch|faiss-cpu|safetensors) "; then exit 1; fi

step "the installed plugin, from outside the source tree"
mkdir "$WORK/run"
cd "$WORK/run"
export CONDA_PREFIX="$WORK/venv" MPLBACKEND=Agg
unset PYTHONPATH
Q() { "$V" -m q2cli.__main__ "$@"; }
"$V" - "$WORK" <<'EOF'
import importlib.resources, sys
import q2_taxdistill, q2_taxdistill.engine.teacher.__main__
work = sys.argv[1]
for module in (q2_taxdistill, q2_taxdistill.engine.teacher.__main__):
    assert module.__file__.startswith(work + "/venv/"), f"{module.__name__} from {module.__file__}"
print("   q2_taxdistill", q2_taxdistill.__version__, "from", q2_taxdistill.__file__)
EOF
"$V" -m q2_taxdistill.engine.teacher --help >/dev/null
DATA=$("$V" -c "import importlib.resources as r; print(r.files('q2_taxdistill') / 'data' / 'example')")
"$V" - "$DATA" <<'EOF'
import sys
import pandas as pd
import qiime2
data = sys.argv[1]
qiime2.Artifact.import_data("FeatureData[Sequence]", f"{data}/contigs.fna").save("contigs.qza")
qiime2.Artifact.import_data("FeatureData[Taxonomy]", f"{data}/taxonomy.tsv").save("taxonomy.qza")
counts = pd.read_csv(f"{data}/counts.tsv", sep="\t", index_col=0)  # contigs x samples
qiime2.Artifact.import_data("FeatureTable[Frequency]", counts.T).save("abundance.qza")
EOF
step "qiime taxdistill refine-taxonomy"
Q taxdistill refine-taxonomy --i-contigs contigs.qza --i-taxonomy taxonomy.qza \
    --i-abundance abundance.qza --p-teacher composition --p-n-folds 2 --p-max-epochs 5 \
    --o-soft-labels soft.qza \
    --o-student student.qza --o-corrected-taxonomy corrected.qza --quiet
Q taxdistill summarize-soft-labels --i-soft-labels soft.qza --i-taxonomy taxonomy.qza \
    --o-visualization soft.qzv --quiet
"$V" - "$DATA" <<'EOF'
import sys
import pandas as pd
import qiime2
data = sys.argv[1]
corrected = qiime2.Artifact.load("corrected.qza").view(pd.DataFrame)
contigs = pd.read_csv(f"{data}/taxonomy.tsv", sep="\t", index_col=0).index
assert set(corrected.index) == set(contigs), "the corrected taxonomy does not name every contig"
print(f"   corrected taxonomy: {len(corrected)} contigs; soft.qzv written")
EOF
step "ok: the wheel installs and runs without the source tree"
