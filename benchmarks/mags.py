#!/usr/bin/env python3
"""MAG taxonomy and contamination (classify-mags) against strict LCA and bp-majority.

Bins are built from benchmark folders laid out like `../shared/bench/dev`, one per genome,
seeded: each takes a random 40-100% of its genome's bp (incompleteness) and 0-30% of its bp
from one other genome (contamination) of the same genus, the same family or another order,
in turn (the next wider one where the folder has no such genome). A contig is in one bin
only. Each replicate is one binning of the folder. The MAGs are named from the folder's input
labels and from corrected labels (refine-taxonomy's; `--corrected` takes its exported
taxonomy.tsv, one per folder in order, else the engine's teach -> distill -> correct with
refine-taxonomy's defaults runs here and its result is kept under --work; with --hits also
with the folder's search hits, scored as a column of its own):

* strict LCA: the deepest lineage shared by every labelled contig of the MAG, the rule of
  q2-annotate's kraken2-to-mag-features;
* bp-majority: the lineage that labels the most bp of the MAG;
* taxdistill: `engine.mags.classify_mags` with its default (more than half).

Scores per rank over all MAGs: F1 of the MAG lineage against its genome's truth, and against
its oracle (the truth cut at the deepest rank the labels' reference database holds for the
genome: what labels can know; a name below it is not scored); species named
for known- and for novel-species genomes; contigs of another family flagged (a confident
conflict at family or above): precision and recall; the estimated contamination (at the
judged rank) within 5 points of the true foreign share of bp. `--scale` times 10^4 MAGs over 10^6
synthetic contigs instead.

    .venv/bin/python benchmarks/mags.py ../shared/bench/dev ../shared/bench/dev-strains \\
        ../shared/bench/dev-mosaic
    .venv/bin/python benchmarks/mags.py --scale
"""
import argparse
import resource
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from q2_taxdistill.engine import mags, workflow  # noqa: E402
from q2_taxdistill.engine.errors import TaxDistillWarning  # noqa: E402
from q2_taxdistill.engine.hits import COLUMNS  # noqa: E402
from q2_taxdistill.engine.metrics import score_taxonomy  # noqa: E402
from q2_taxdistill.engine.sequences import Contigs  # noqa: E402
from q2_taxdistill.engine.taxonomy import RANKS, format_lineage, parse_lineage  # noqa: E402

SCORED = ["phylum", "class", "order", "family", "genus", "species"]
RELATIONS = ("genus", "family", "far")
FAMILY = RANKS.index("family")


def _read_taxonomy(path):
    return pd.read_csv(path, sep="\t", index_col=0, dtype={"Taxon": str},
                       keep_default_na=False, na_values=[""])


def corrected_labels(bench, labels, work, hits=None):
    """The engine's corrected taxonomy of a folder (refine-taxonomy's defaults), kept; with
    `hits` (a BLAST6 file of the folder), also the one corrected with them (same student).
    Returns {"corrected": ..., "corrected + hits": ...} (the latter only with hits)."""
    outs = {"corrected": work / f"{bench.name}-{Path(labels).stem}-corrected.tsv"}
    if hits:
        outs["corrected + hits"] = work / f"{bench.name}-{Path(labels).stem}-corrected-hits.tsv"
    if all(out.exists() for out in outs.values()):
        return {name: _read_taxonomy(out) for name, out in outs.items()}
    fasta = next(bench / n for n in ("contigs.fna.gz", "contigs.fna") if (bench / n).exists())
    contigs = Contigs.from_fasta(str(fasta), stream=True)
    taxonomy = _read_taxonomy(bench / labels)
    counts = pd.read_csv(bench / "counts.tsv", sep="\t", index_col=0)
    soft = workflow.teach(contigs, taxonomy)
    student = workflow.distill(contigs, taxonomy, soft, counts)
    result = {}
    for name, out in outs.items():
        table = None
        if name == "corrected + hits":
            table = pd.read_csv(bench / hits, sep="\t", header=None, names=COLUMNS,
                                dtype={"qseqid": str, "sseqid": str})
        result[name] = workflow.correct(student, contigs, counts, taxonomy, hits=table)
        out.parent.mkdir(parents=True, exist_ok=True)
        result[name].to_csv(out, sep="\t")
    return result


def _relation(lineage_a, lineage_b):
    """genus / family / far (another order or beyond) / None (same species)."""
    if lineage_a[:7] == lineage_b[:7]:
        return None
    if lineage_a[:6] == lineage_b[:6]:
        return "genus"
    if lineage_a[:5] == lineage_b[:5]:
        return "family"
    if lineage_a[:4] == lineage_b[:4]:
        return None
    return "far"


def build_bins(meta, genomes, rng):
    """contig -> MAG (one per genome) and per MAG its genome, completeness and relation."""
    lineage = {g: parse_lineage(t) for g, t in genomes.items()}
    by_genome = {g: rows for g, rows in meta.groupby("genome_id", sort=True)}
    order = {g: rng.permutation(rows.index.to_numpy()) for g, rows in by_genome.items()}
    taken = {}
    plan = {}
    for g, ids in order.items():
        lengths = meta.loc[ids, "length"].to_numpy()
        completeness = rng.uniform(0.4, 1.0)
        n = int(np.searchsorted(np.cumsum(lengths), completeness * lengths.sum()) + 1)
        plan[g] = (ids[:n], completeness)
        taken.update(dict.fromkeys(ids[:n], f"MAG_{g}"))
    info = {}
    for k, g in enumerate(sorted(order)):
        own, completeness = plan[g]
        own_bp = meta.loc[own, "length"].sum()
        share = rng.uniform(0.0, 0.30)
        wanted = RELATIONS[k % 3]
        relation, donors = None, []
        for candidate in RELATIONS[RELATIONS.index(wanted):]:
            donors = [d for d in sorted(order) if d != g
                      and _relation(lineage[g], lineage[d]) == candidate]
            if donors:
                relation = candidate
                break
        foreign = []
        if donors and share > 0:
            donor = donors[rng.integers(len(donors))]
            need = share / (1 - share) * own_bp
            got = 0
            for contig in order[donor]:
                if got >= need:
                    break
                if contig in taken:
                    continue
                taken[contig] = f"MAG_{g}"
                foreign.append(contig)
                got += meta.loc[contig, "length"]
        info[f"MAG_{g}"] = {"genome": g, "completeness": completeness, "relation": relation,
                            "target": share}
    bins = pd.Series(taken, name="MAG")
    return bins, pd.DataFrame(info).T


def strict_lca(taxonomy, lengths, bins):
    """Deepest lineage shared by every labelled contig of a MAG (unnamed ranks end it)."""
    codes, names = mags.name_codes(taxonomy["Taxon"].reindex(bins.index))
    mag_ids, mag = np.unique(bins.to_numpy(str), return_inverse=True)
    labelled = codes.max(axis=1) >= 0
    result = np.full((len(mag_ids), len(RANKS)), -1)
    alive = np.ones(len(mag_ids), dtype=bool)
    for r in range(len(RANKS)):
        c = codes[labelled, r]
        m = mag[labelled]
        low = np.full(len(mag_ids), np.iinfo(np.int64).max)
        high = np.full(len(mag_ids), -2)
        np.minimum.at(low, m, c)
        np.maximum.at(high, m, c)
        alive &= (low == high) & (low >= 0)
        result[alive, r] = low[alive]
    return pd.Series([format_lineage([names[r][x] if x >= 0 else None for r, x in enumerate(row)])
                      for row in result], index=mag_ids)


def bp_majority(taxonomy, lengths, bins):
    """The lineage that labels the most bp of each MAG (ties: the first in name order)."""
    frame = pd.DataFrame({"MAG": bins.to_numpy(str),
                          "Taxon": taxonomy["Taxon"].reindex(bins.index).to_numpy(),
                          "bp": lengths.reindex(bins.index).to_numpy()})
    frame = frame[frame["Taxon"].notna() & (frame["Taxon"] != "Unassigned")]
    sums = frame.groupby(["MAG", "Taxon"])["bp"].sum().reset_index()
    sums = sums.sort_values(["MAG", "bp", "Taxon"], ascending=[True, False, True])
    best = sums.drop_duplicates("MAG").set_index("MAG")["Taxon"]
    return best.reindex(np.unique(bins.to_numpy(str))).fillna("Unassigned")


def _named(lineage, rank):
    return parse_lineage(lineage)[RANKS.index(rank)] is not None


def evaluate(bench, taxonomies, replicates, seed):
    meta = pd.read_csv(bench / "contig_meta.tsv", sep="\t", index_col=0)
    truth = _read_taxonomy(bench / "truth_taxonomy.tsv")["Taxon"]
    genome_truth = truth.groupby(meta.loc[truth.index, "genome_id"]).first()
    oracle = _read_taxonomy(bench / "oracle_taxonomy.tsv")["Taxon"]
    genome_oracle = oracle.groupby(meta.loc[oracle.index, "genome_id"]).first()
    novelty = meta.groupby("genome_id")["novelty"].first()
    lengths = meta["length"]
    rng = np.random.default_rng(seed)
    rows = {name: [] for name in taxonomies}
    mag_rows = []
    for rep in range(replicates):
        bins, info = build_bins(meta, genome_truth, rng)
        bins.index = bins.index.astype(str)
        info["truth"] = genome_truth.reindex(info["genome"]).to_numpy()
        info["novelty"] = novelty.reindex(info["genome"]).to_numpy()
        info["oracle"] = genome_oracle.reindex(info["genome"]).fillna("Unassigned").to_numpy()
        own_genome = info["genome"].reindex(bins.to_numpy()).to_numpy()
        contig_genome = meta.loc[bins.index, "genome_id"].to_numpy()
        foreign = contig_genome != own_genome
        bp = lengths.reindex(bins.index).to_numpy(float)
        true_share = pd.Series(bp * foreign).groupby(bins.to_numpy()).sum() \
            / pd.Series(bp).groupby(bins.to_numpy()).sum()
        mag_family = pd.Series([parse_lineage(t)[FAMILY] for t in info["truth"]],
                               index=info.index)
        contig_family = np.array([parse_lineage(t)[FAMILY] for t in
                                  truth.reindex(bins.index).fillna("Unassigned")], dtype=object)
        other_family = foreign & (contig_family != mag_family.reindex(bins.to_numpy()).to_numpy())
        for name, taxonomy in taxonomies.items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", TaxDistillWarning)
                calls = mags.classify_mags(taxonomy, lengths, bins)
            predictions = {"strict LCA": strict_lca(taxonomy, lengths, bins),
                           "bp-majority": bp_majority(taxonomy, lengths, bins),
                           "taxdistill": calls.taxonomy["Taxon"]}
            flagged = (calls.contigs["flagged"]
                       & calls.contigs["conflict rank"].isin(RANKS[:FAMILY + 1])) \
                .reindex(bins.index).to_numpy()
            estimate = calls.summary["contamination"].reindex(info.index).fillna(0.0)
            rows[name].append({"predictions": predictions, "info": info,
                               "flagged": flagged, "other_family": other_family,
                               "estimate": estimate,
                               "true_share": true_share.reindex(info.index)})
            for mag_id, item in info.iterrows():
                mag_rows.append({"folder": bench.name, "labels": name, "replicate": rep,
                                 "MAG": mag_id, "novelty": novelty[item["genome"]],
                                 "relation": item["relation"],
                                 "completeness": item["completeness"],
                                 "true contamination": true_share[mag_id],
                                 "estimate": estimate[mag_id],
                                 **{f"{m} taxon": p[mag_id] for m, p in predictions.items()},
                                 "truth": item["truth"]})
    return rows, pd.DataFrame(mag_rows)


def summarise(runs):
    """Per (labels, rule): F1 per rank over all MAGs, species named for known / novel species;
    per labels: flagged other-family contigs' precision and recall, estimates within 5 points."""
    table, extra = {}, {}
    for name, reps in runs.items():
        for rule in ("strict LCA", "bp-majority", "taxdistill"):
            predicted = pd.concat([r["predictions"][rule].rename(lambda m, i=i: f"{i}:{m}")
                                   for i, r in enumerate(reps)])
            truth = pd.concat([r["info"]["truth"].rename(lambda m, i=i: f"{i}:{m}")
                               for i, r in enumerate(reps)])
            novelty = pd.concat([r["info"]["novelty"].rename(lambda m, i=i: f"{i}:{m}")
                                 for i, r in enumerate(reps)])
            scores = score_taxonomy(predicted, truth)
            oracle = pd.concat([r["info"]["oracle"].rename(lambda m, i=i: f"{i}:{m}")
                                for i, r in enumerate(reps)])
            knowable = score_taxonomy(predicted, oracle)
            named = predicted.map(lambda t: _named(t, "species"))
            right = pd.Series([p == t for p, t in zip(predicted, truth)], index=predicted.index)
            table[(name, rule)] = {
                **{rank: scores.loc[rank, "f1"] for rank in SCORED},
                **{f"oracle {rank}": knowable.loc[rank, "f1"] for rank in SCORED},
                "known species named right": (named & right)[novelty == "known_species"].mean(),
                "novel species name none": (~named)[novelty == "novel_species"].mean(),
            }
        flagged = np.concatenate([r["flagged"] for r in reps])
        positive = np.concatenate([r["other_family"] for r in reps])
        estimate = np.concatenate([r["estimate"].to_numpy() for r in reps])
        true_share = np.concatenate([r["true_share"].to_numpy() for r in reps])
        extra[name] = {
            "flagged other-family precision": (flagged & positive).sum() / max(flagged.sum(), 1),
            "flagged other-family recall": (flagged & positive).sum() / max(positive.sum(), 1),
            "contamination within 5 points": float(np.mean(np.abs(estimate - true_share)
                                                           <= 0.05)),
            "MAGs": len(estimate),
        }
    return table, extra


def run_benchmark(args):
    work = args.work.resolve()
    corrected = list(args.corrected or [])
    all_rows = []
    for i, bench in enumerate(args.bench):
        bench = bench.resolve()
        taxonomies = {"input": _read_taxonomy(bench / args.labels)}
        start = time.monotonic()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if i < len(corrected):
                taxonomies["corrected"] = _read_taxonomy(corrected[i])
            else:
                taxonomies.update(corrected_labels(bench, args.labels, work, args.hits))
        print(f"# {bench.name}: corrected labels in {time.monotonic() - start:.0f} s",
              file=sys.stderr)
        runs, per_mag = evaluate(bench, taxonomies, args.replicates, args.seed)
        table, extra = summarise(runs)
        all_rows.append((bench.name, table, extra))
        work.mkdir(parents=True, exist_ok=True)
        per_mag.to_csv(work / f"{bench.name}-mags.tsv", sep="\t", index=False,
                       float_format="%.4f")
    rules = [("input", "strict LCA"), ("input", "bp-majority"), ("input", "taxdistill"),
             ("corrected", "strict LCA"), ("corrected", "bp-majority"),
             ("corrected", "taxdistill")]
    if all("corrected + hits" in extra for _, _, extra in all_rows):
        rules.append(("corrected + hits", "taxdistill"))
    print(f"MAGs: {args.replicates} binnings per folder (seed {args.seed}), labels "
          f"{args.labels}\n")
    for folder, table, extra in all_rows:
        n = extra["input"]["MAGs"]
        print(f"## {folder} ({n} MAGs)\n")
        print("| | " + " | ".join(f"{labels}: {rule}" for labels, rule in rules) + " |")
        print("|---" * (len(rules) + 1) + "|")
        for key in SCORED + [f"oracle {r}" for r in SCORED] + [
                "known species named right", "novel species name none"]:
            label = f"F1 {key}" if key in SCORED else (
                f"F1 vs oracle {key[7:]}" if key.startswith("oracle ") else key)
            print(f"| {label} | " + " | ".join(f"{table[r][key]:.3f}" for r in rules) + " |")
        for key in ("flagged other-family precision", "flagged other-family recall",
                    "contamination within 5 points"):
            cells = [f"{extra[labels][key]:.3f}" if rule == "taxdistill" else "-"
                     for labels, rule in rules]
            print(f"| {key} | " + " | ".join(cells) + " |")
        print()


def synthetic(n_mags, n_contigs, seed):
    """A taxonomy of 2,000 species in 400 genera, 100 families, 30 orders ... ; each MAG one
    species, its contigs labelled with it (80%), its genus (10%), another species (5%) or
    nothing (5%), with supports in [0.5, 1] and log-normal lengths."""
    rng = np.random.default_rng(seed)
    n_species = 2000
    parents = {"genus": 400, "family": 100, "order": 30, "class": 12, "phylum": 5}
    lineage = []
    for s in range(n_species):
        g = s % parents["genus"]
        f = g % parents["family"]
        o = f % parents["order"]
        c = o % parents["class"]
        p = c % parents["phylum"]
        lineage.append(f"d__Bacteria; p__P{p}; c__C{c}; o__O{o}; f__F{f}; g__G{g}; s__G{g} s{s}")
    genus_of = [t.rsplit("; ", 1)[0] for t in lineage]
    mag = rng.integers(0, n_mags, n_contigs)
    species = rng.integers(0, n_species, n_mags)[mag]
    kind = rng.random(n_contigs)
    other = rng.integers(0, n_species, n_contigs)
    taxa = np.asarray(lineage, dtype=object)[species]
    taxa = np.where((kind >= 0.80) & (kind < 0.90), np.asarray(genus_of, dtype=object)[species],
                    taxa)
    taxa = np.where((kind >= 0.90) & (kind < 0.95), np.asarray(lineage, dtype=object)[other],
                    taxa)
    taxa = np.where(kind >= 0.95, "Unassigned", taxa)
    ids = np.char.add("c", np.arange(n_contigs).astype(str)).astype(object)
    taxonomy = pd.DataFrame({"Taxon": taxa, "Confidence": rng.uniform(0.5, 1.0, n_contigs)},
                            index=pd.Index(ids, name="Feature ID"))
    lengths = pd.Series(np.clip(rng.lognormal(np.log(3000), 0.8, n_contigs), 1000, 200_000)
                        .astype(np.int64), index=ids)
    bins = pd.Series(np.char.add("MAG", mag.astype(str)).astype(object), index=ids)
    return taxonomy, lengths, bins


def run_scale(args):
    taxonomy, lengths, bins = synthetic(args.mags, args.contigs, args.seed)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.monotonic()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TaxDistillWarning)
        calls = mags.classify_mags(taxonomy, lengths, bins)
    elapsed = time.monotonic() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("| MAGs | contigs | classify-mags engine | peak RSS (process) | peak RSS before |")
    print("|---|---|---|---|---|")
    print(f"| {len(calls.taxonomy):,} | {len(bins):,} | {elapsed:.1f} s | {peak:,.0f} MB | "
          f"{before:,.0f} MB |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("bench", type=Path, nargs="*")
    parser.add_argument("--labels", default="mmseqs2_taxonomy.tsv")
    parser.add_argument("--corrected", type=Path, action="append",
                        help="corrected taxonomy TSV (refine-taxonomy, exported), one per "
                             "folder in order; else the engine computes it")
    parser.add_argument("--hits", nargs="?", const="mmseqs2_tophits.tsv",
                        help="also correct the labels with the contigs' search hits (BLAST6 "
                             "file in each folder; default mmseqs2_tophits.tsv) and score "
                             "classify-mags on those ('corrected + hits')")
    parser.add_argument("--replicates", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--work", type=Path, default=ROOT / "bench-output" / "mags")
    parser.add_argument("--scale", action="store_true")
    parser.add_argument("--mags", type=int, default=10_000)
    parser.add_argument("--contigs", type=int, default=1_000_000)
    args = parser.parse_args()
    if args.scale:
        run_scale(args)
    elif args.bench:
        run_benchmark(args)
    else:
        parser.error("give benchmark folders, or --scale")


if __name__ == "__main__":
    main()
