#!/usr/bin/env bash
# Run refine-taxonomy on the bundled synthetic example and score it against the truth.
set -euo pipefail
cd "$(dirname "$0")/.."
QIIME="$PWD/.venv/bin/qiime"
export CONDA_PREFIX="$PWD/.venv"
DATA=q2_taxdistill/data/example
OUT=demo-output
mkdir -p "$OUT"
"$QIIME" tools import --type 'FeatureData[Sequence]' --input-path "$DATA/contigs.fna" \
    --output-path "$OUT/contigs.qza"
"$QIIME" tools import --type 'FeatureData[Taxonomy]' --input-path "$DATA/taxonomy.tsv" \
    --output-path "$OUT/taxonomy.qza"
"$QIIME" tools import --type 'FeatureData[Taxonomy]' --input-path "$DATA/truth.tsv" \
    --output-path "$OUT/truth.qza"
biom convert -i "$DATA/counts.tsv" -o "$OUT/counts.biom" --to-hdf5 --table-type="OTU table"
"$QIIME" tools import --type 'FeatureTable[Frequency]' --input-path "$OUT/counts.biom" \
    --output-path "$OUT/abundance.qza"
"$QIIME" taxdistill refine-taxonomy \
    --i-contigs "$OUT/contigs.qza" --i-taxonomy "$OUT/taxonomy.qza" \
    --i-abundance "$OUT/abundance.qza" --p-teacher composition \
    --o-soft-labels "$OUT/soft-labels.qza" --o-student "$OUT/student.qza" \
    --o-corrected-taxonomy "$OUT/corrected-taxonomy.qza"
"$QIIME" taxdistill evaluate-taxonomy \
    --i-predictions "$OUT/taxonomy.qza" "$OUT/corrected-taxonomy.qza" \
    --p-names input corrected --i-truth "$OUT/truth.qza" \
    --o-visualization "$OUT/evaluation.qzv"
"$QIIME" tools export --input-path "$OUT/evaluation.qzv" --output-path "$OUT/evaluation"
echo
echo "Per-rank scores (input labels vs corrected), from $OUT/evaluation/metrics.tsv:"
cat "$OUT/evaluation/metrics.tsv"
echo
echo "Outputs in $OUT/: corrected-taxonomy.qza, soft-labels.qza, student.qza, evaluation.qzv"
