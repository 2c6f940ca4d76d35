#!/usr/bin/env bash
# Hand-run benchmark: refine-taxonomy through q2cli on a benchmark folder, timed and scored.
# usage: benchmarks/dev_refine.sh [BENCH_DIR] [LABEL_FILE] [WORK_DIR]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BENCH="$(cd "${1:-$ROOT/../shared/bench/dev}" && pwd)"
LABELS="${2:-mmseqs2_taxonomy.tsv}"
WORK="${3:-$ROOT/bench-output}"
Q="$ROOT/.venv/bin/qiime"
export CONDA_PREFIX="$ROOT/.venv"
mkdir -p "$WORK" && cd "$WORK"
[ -f contigs.qza ] || { zcat "$BENCH/contigs.fna.gz" > contigs.fna
    "$Q" tools import --type 'FeatureData[Sequence]' --input-path contigs.fna --output-path contigs.qza; }
[ -f abundance.qza ] || { biom convert -i "$BENCH/counts.tsv" -o counts.biom --to-hdf5 --table-type="OTU table"
    "$Q" tools import --type 'FeatureTable[Frequency]' --input-path counts.biom --output-path abundance.qza; }
"$Q" tools import --type 'FeatureData[Taxonomy]' --input-path "$BENCH/$LABELS" --output-path "labels-$LABELS.qza"
/usr/bin/time -v "$Q" taxdistill refine-taxonomy --i-contigs contigs.qza --i-taxonomy "labels-$LABELS.qza" \
    --i-abundance abundance.qza --p-teacher composition --o-soft-labels "soft-$LABELS.qza" \
    --o-student "student-$LABELS.qza" --o-corrected-taxonomy "corrected-$LABELS.qza" --verbose \
    2> "time-$LABELS.log"
grep -E "Elapsed|Maximum resident" "time-$LABELS.log"
"$Q" tools export --input-path "corrected-$LABELS.qza" --output-path "corrected-$LABELS"
python3 "$BENCH/../score.py" --truth "$BENCH/truth_taxonomy.tsv" --meta "$BENCH/contig_meta.tsv" \
    "$BENCH/$LABELS" "taxdistill=corrected-$LABELS/taxonomy.tsv"
