#!/usr/bin/env python3
"""Accuracy with approximate neighbour graphs against exact ones, side by side.

Large inputs (above 20k contigs) get approximate neighbour graphs (faiss IVF, see
`engine/neighbours.py`); the benchmark folders are small enough for exact ones. This runs the
engine's teach -> distill -> correct with refine-taxonomy's defaults twice on one folder laid
out like `../shared/bench/dev`, once with every neighbour graph exact and once with every one
approximate, scores both with the folder's `score.py` and prints per-rank F1 and the
difference:

    .venv/bin/python benchmarks/approximate_accuracy.py ../shared/bench/dev \
        --labels mmseqs2_contiglca_taxonomy.tsv
"""
import argparse
import importlib.util
import sys
import tempfile
import warnings
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from q2_taxdistill.engine import workflow  # noqa: E402
from q2_taxdistill.engine.sequences import Contigs  # noqa: E402

RANKS = ["phylum", "class", "order", "family", "genus", "species"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("bench", type=Path)
    parser.add_argument("--labels", default="mmseqs2_taxonomy.tsv")
    args = parser.parse_args()
    bench = args.bench.resolve()
    spec = importlib.util.spec_from_file_location("score", bench.parent / "score.py")
    scorer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(scorer)
    fasta = next(bench / n for n in ("contigs.fna.gz", "contigs.fna") if (bench / n).exists())
    contigs = Contigs.from_fasta(str(fasta), stream=True)
    taxonomy = pd.read_csv(bench / args.labels, sep="\t", index_col=0, dtype=str,
                           keep_default_na=False, na_values=[""])
    counts = pd.read_csv(bench / "counts.tsv", sep="\t", index_col=0)
    truth = scorer.load_truth(str(bench / "truth_taxonomy.tsv"))
    meta = scorer.load_meta(str(bench / "contig_meta.tsv"))

    def score(path):
        return scorer.evaluate(truth, scorer.load_predictions(str(path))[1], meta=meta)["ranks"]

    results = {"input": score(bench / args.labels)}
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for search in ("exact", "approximate"):
            soft = workflow.teach(contigs, taxonomy, neighbour_search=search)
            student = workflow.distill(contigs, taxonomy, soft, counts)
            corrected = workflow.correct(student, contigs, counts, taxonomy,
                                         neighbour_search=search)
            path = Path(tmp) / f"{search}.tsv"
            corrected.to_csv(path, sep="\t")
            results[search] = score(path)
    print(f"# {bench.name} / {args.labels}: F1 per rank\n")
    print("| rank | input | exact | approximate | approximate - exact |")
    print("|---|---|---|---|---|")
    for rank in RANKS:
        f1 = {name: results[name][rank]["f1"] for name in results}
        print(f"| {rank} | {f1['input']:.3f} | {f1['exact']:.3f} | {f1['approximate']:.3f} | "
              f"{f1['approximate'] - f1['exact']:+.4f} |")


if __name__ == "__main__":
    main()
