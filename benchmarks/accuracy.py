#!/usr/bin/env python3
"""Accuracy, time and memory of refine-taxonomy (through q2cli), side by side with Taxometer.

Run by hand on a benchmark folder laid out like `../shared/bench/dev` (contigs.fna.gz,
counts.tsv, abundance.tsv, the label file, truth_taxonomy.tsv, contig_meta.tsv, optionally
oracle_taxonomy.tsv; the scorer `score.py` one folder up):

    .venv/bin/python benchmarks/accuracy.py ../shared/bench/dev --labels mmseqs2_taxonomy.tsv \
        --taxometer-venv /path/to/taxometer-venv

Both tools run as child processes one after the other (never together), each timed by the
wall clock with its peak resident memory read from the kernel (wait4 ru_maxrss), so the
ratios in the last table come from one run on one machine. Taxometer (vamb taxometer) is
only run when `--taxometer-venv` names a venv holding `bin/vamb`; it is never a dependency.
Importing the inputs into QIIME 2 artifacts is timed separately from refine-taxonomy.
"""
import argparse
import csv
import gzip
import json
import importlib.util
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RANKS = ["phylum", "class", "order", "family", "genus", "species"]


def run(cmd, log, env=None):
    """Run `cmd`; return (wall seconds, peak RSS in MB). Output goes to `log`."""
    with open(log, "w") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.exit(f"command failed ({code}), see {log}: {' '.join(map(str, cmd))}")
    return wall, usage.ru_maxrss / 1024.0


def load_scorer(bench):
    path = bench.parent / "score.py"
    if not path.exists():
        sys.exit(f"no scorer at {path}")
    spec = importlib.util.spec_from_file_location("bench_score", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def contigs_fasta(bench):
    """contigs.fna.gz, or contigs.fna (subsets made by subsample_bench.py)."""
    for name in ("contigs.fna.gz", "contigs.fna"):
        if (bench / name).exists():
            return bench / name
    sys.exit(f"no contigs.fna(.gz) in {bench}")


def to_taxometer_labels(qiime_tsv, out):
    """QIIME Taxon column -> Taxometer's `contigs`/`predictions` table (no spaces)."""
    with open(qiime_tsv) as src, open(out, "w", newline="") as dst:
        rows = csv.reader(src, delimiter="\t")
        next(rows)
        writer = csv.writer(dst, delimiter="\t", lineterminator="\n")
        writer.writerow(["contigs", "predictions"])
        for row in rows:
            taxon = row[1].strip() if len(row) > 1 else ""
            if taxon.lower() in ("", "unassigned"):
                taxon = ""
            writer.writerow([row[0], ";".join(p.strip() for p in taxon.split(";") if p.strip())])


def ours(bench, labels, work, qiime, hits=None, reference=None):
    env = dict(os.environ, CONDA_PREFIX=str(ROOT / ".venv"))
    timings = {}
    steps = []
    if not (work / "contigs.qza").exists():
        source = contigs_fasta(bench)
        opener = gzip.open if source.suffix == ".gz" else open
        with opener(source, "rb") as src, open(work / "contigs.fna", "wb") as dst:
            shutil.copyfileobj(src, dst)
        steps.append([qiime, "tools", "import", "--type", "FeatureData[Sequence]",
                      "--input-path", work / "contigs.fna", "--output-path", work / "contigs.qza"])
    if not (work / "abundance.qza").exists():
        steps.append(["biom", "convert", "-i", bench / "counts.tsv", "-o", work / "counts.biom",
                      "--to-hdf5", "--table-type=OTU table"])
        steps.append([qiime, "tools", "import", "--type", "FeatureTable[Frequency]",
                      "--input-path", work / "counts.biom", "--output-path", work / "abundance.qza"])
    steps.append([qiime, "tools", "import", "--type", "FeatureData[Taxonomy]",
                  "--input-path", bench / labels, "--output-path", work / "labels.qza"])
    if hits:
        steps.append([qiime, "tools", "import", "--type", "FeatureData[BLAST6]", "--input-format",
                      "BLAST6Format", "--input-path", bench / hits, "--output-path",
                      work / "hits.qza"])
    if reference:
        steps.append([qiime, "tools", "import", "--type", "FeatureData[Taxonomy]",
                      "--input-path", bench / reference, "--output-path",
                      work / "reference.qza"])
    wall = 0.0
    for i, cmd in enumerate(steps):
        wall += run(cmd, work / f"import-{i}.log", env)[0]
    timings["import"] = (wall, None)
    timings["refine-taxonomy"] = run(
        [qiime, "taxdistill", "refine-taxonomy", "--i-contigs", work / "contigs.qza",
         "--i-taxonomy", work / "labels.qza", "--i-abundance", work / "abundance.qza",
         "--p-teacher", "composition", "--o-soft-labels", work / "soft-labels.qza",
         "--o-student", work / "student.qza", "--o-corrected-taxonomy", work / "corrected.qza",
         "--verbose"] + (["--i-hits", work / "hits.qza"] if hits else [])
        + (["--i-reference-taxonomy", work / "reference.qza"] if reference else []),
        work / "refine-taxonomy.log", env)
    shutil.rmtree(work / "corrected", ignore_errors=True)
    run([qiime, "tools", "export", "--input-path", work / "corrected.qza", "--output-path",
         work / "corrected"], work / "export.log", env)
    return work / "corrected" / "taxonomy.tsv", timings


def taxometer(bench, labels, work, venv, reuse=False):
    """Taxometer's results and (wall s, peak MB); with `reuse`, those of an earlier run in
    `work` when it finished (its figures are then from that run, not this one)."""
    out = work / "taxometer"
    record = work / "taxometer-time.json"
    if reuse and record.exists() and (out / "results_taxometer.tsv").exists():
        return out / "results_taxometer.tsv", tuple(json.loads(record.read_text()))
    vamb = Path(venv) / "bin" / "vamb"
    if not vamb.exists():
        sys.exit(f"no vamb in {venv}/bin")
    tax = work / "taxometer-labels.tsv"
    to_taxometer_labels(bench / labels, tax)
    shutil.rmtree(out, ignore_errors=True)
    timing = run([vamb, "taxometer", "--fasta", contigs_fasta(bench), "--abundance_tsv",
                  bench / "abundance.tsv", "--taxonomy", tax, "--outdir", out, "--seed", "1"],
                 work / "taxometer.log")
    record.write_text(json.dumps(timing))
    return out / "results_taxometer.tsv", timing


def score(scorer, bench, path):
    truth = scorer.load_truth(str(bench / "truth_taxonomy.tsv"))
    meta = scorer.load_meta(str(bench / "contig_meta.tsv"))
    _, preds = scorer.load_predictions(str(path))
    return scorer.evaluate(truth, preds, meta=meta)


def species_by_genome(scorer, bench, paths):
    """Per genome of contig_meta.tsv: novelty, contigs, and per method the share of its
    contigs whose species is right (the recall a reader checks genome by genome)."""
    truth = scorer.load_truth(str(bench / "truth_taxonomy.tsv"))
    meta = scorer.load_meta(str(bench / "contig_meta.tsv"))
    predictions = {name: scorer.load_predictions(str(path))[1] for name, path in paths.items()}
    genomes = {}
    for contig, t in truth.items():
        if 6 not in t or contig not in meta:
            continue
        row = genomes.setdefault(meta[contig]["genome_id"], {
            "novelty": meta[contig]["novelty"], "n": 0, **{name: 0 for name in paths}})
        row["n"] += 1
        for name, pred in predictions.items():
            named = pred.get(contig, {}).get(6)
            row[name] += named is not None and named[0] == t[6]
            row[name + " named"] = row.get(name + " named", 0) + (named is not None)
    return genomes


def table(header, rows):
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(str(v).ljust(w) for v, w in zip(r, widths)) + " |"
    print(line(header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(line(r))
    print()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("bench", type=Path, help="benchmark folder (e.g. ../shared/bench/dev)")
    parser.add_argument("--labels", default="mmseqs2_taxonomy.tsv",
                        help="noisy label file in the benchmark folder (QIIME TSV)")
    parser.add_argument("--taxometer-venv", help="venv with vamb 5 (Taxometer); skipped if absent")
    parser.add_argument("--reuse-taxometer", action="store_true",
                        help="reuse Taxometer's results and figures from an earlier run in the "
                             "work folder (the time ratio is then not from one run)")
    parser.add_argument("--taxometer-only", action="store_true",
                        help="run Taxometer alone (to reuse later) and stop")
    parser.add_argument("--hits", nargs="?", const="mmseqs2_tophits.tsv",
                        help="also give refine-taxonomy the contigs' search hits (BLAST6 file in "
                             "the benchmark folder; default mmseqs2_tophits.tsv)")
    parser.add_argument("--reference-taxonomy", nargs="?", const="reference_taxonomy.tsv",
                        help="with --hits, also the taxonomy of the hits' targets (file in the "
                             "benchmark folder; default reference_taxonomy.tsv)")
    parser.add_argument("--workdir", type=Path, help="default: bench-output/accuracy-<labels>")
    parser.add_argument("--qiime", default=str(ROOT / ".venv" / "bin" / "qiime"))
    args = parser.parse_args(argv)
    bench = args.bench.resolve()
    work = (args.workdir or ROOT / "bench-output" / (f"accuracy-{Path(args.labels).stem}"
                                                    + ("-hits" if args.hits else ""))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    scorer = load_scorer(bench)

    if args.taxometer_only:
        taxometer(bench, args.labels, work, args.taxometer_venv, args.reuse_taxometer)
        return
    results = {"input (" + args.labels + ")": score(scorer, bench, bench / args.labels)}
    if args.reference_taxonomy and not args.hits:
        parser.error("--reference-taxonomy names the hits' targets; give --hits too")
    corrected, timings = ours(bench, args.labels, work, args.qiime, args.hits,
                              args.reference_taxonomy)
    results["taxdistill"] = score(scorer, bench, corrected)
    if args.taxometer_venv:
        path, timings["taxometer"] = taxometer(bench, args.labels, work, args.taxometer_venv,
                                               args.reuse_taxometer)
        results["taxometer"] = score(scorer, bench, path)
    if (bench / "oracle_taxonomy.tsv").exists():
        results["oracle"] = score(scorer, bench, bench / "oracle_taxonomy.tsv")

    names = list(results)
    paths = {names[0]: bench / args.labels, "taxdistill": corrected}
    if "taxometer" in results:
        paths["taxometer"] = path
    print(f"# {bench.name} / {args.labels}{' + ' + args.hits if args.hits else ''}"
          f"{' + ' + args.reference_taxonomy if args.reference_taxonomy else ''}  "
          f"({time.strftime('%Y-%m-%d')}, teacher: composition)\n")
    print("F1 per rank")
    table(["rank"] + names,
          [[r] + [f"{results[n]['ranks'][r]['f1']:.3f}" for n in names] for r in RANKS])
    print("Species precision / recall")
    table(["method", "precision", "recall"],
          [[n, f"{results[n]['ranks']['species']['precision']:.3f}",
            f"{results[n]['ranks']['species']['recall']:.3f}"] for n in names])
    classes = sorted({c for n in names for c in results[n]["novelty"]})
    print("F1 per novelty class (genus / species)")
    table(["novelty"] + names,
          [[c] + [f"{results[n]['novelty'][c]['genus']['f1']:.3f} / "
                  f"{results[n]['novelty'][c]['species']['f1']:.3f}"
                  if c in results[n]["novelty"] else "-" for n in names] for c in classes])
    print("Known-species species recall (goal: taxdistill >= 0.97 x input)")
    known = [results[n]["novelty"].get("known_species", {}).get("species") for n in names]
    table(["method", "recall", "x input"],
          [[n, f"{k['recall']:.3f}", f"{k['recall'] / known[0]['recall']:.3f}"]
           for n, k in zip(names, known) if k and known[0] and known[0]["recall"] > 0])
    if "oracle" in results:
        f1 = {n: results[n]["ranks"]["species"]["f1"] for n in names}
        gap = f1["oracle"] - f1[names[0]]
        print("Species F1: share of the input-oracle gap closed")
        table(["method", "closed"], [[n, f"{(f1[n] - f1[names[0]]) / gap:.2f}" if gap else "-"]
                                     for n in names if n != "oracle"])
    print("Species per genome: share of the genome's contigs with the right species name, "
          "and (named) with any species name")
    genomes = species_by_genome(scorer, bench, paths)
    table(["genome", "novelty", "contigs"] + list(paths) + [f"{n} named" for n in paths],
          [[g, v["novelty"], v["n"]] + [f"{v[n] / v['n']:.2f}" for n in paths]
           + [f"{v[n + ' named'] / v['n']:.2f}" for n in paths]
           for g, v in sorted(genomes.items(), key=lambda kv: (kv[1]["novelty"], kv[0]))])
    print("Time and peak memory (child processes, one at a time)")
    rows = [[k, f"{w:.1f}", "-" if m is None else f"{m:.0f}"] for k, (w, m) in timings.items()]
    if "taxometer" in timings:
        (wo, mo), (wt, mt) = timings["refine-taxonomy"], timings["taxometer"]
        rows.append(["refine-taxonomy / taxometer", f"{wo / wt:.2f}x", f"{mo / mt:.2f}x"])
    table(["step", "wall s", "peak RSS MB"], rows)
    print(f"outputs in {work}")


if __name__ == "__main__":
    main()
