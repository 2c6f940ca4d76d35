"""Write the example's noisy labels as one kraken2 run on the contigs would have (SYNTHETIC).

    python scripts/make_kraken2_example.py

Reads `q2_taxdistill/data/example/taxonomy.tsv` and `contigs.fna` and writes
`q2_taxdistill/data/example/kraken2/output.txt` (kraken2 --output) and `report.txt`
(kraken2 --report) in Kraken2's documented layouts: the same labels, invented taxids (from
1000 on, in name order), 35-mers split between the assigned taxon (55% times the label's
Confidence), its parent (15%) and "not in the database" (the rest). Deterministic.
"""
from pathlib import Path

import pandas as pd

EXAMPLE = Path(__file__).resolve().parent.parent / "q2_taxdistill" / "data" / "example"
K = 35
CODES = "DPCOFGS"


def contig_lengths(path):
    lengths, name = {}, None
    with open(path) as fh:
        for line in fh:
            if line.startswith(">"):
                name = line[1:].split()[0]
                lengths[name] = 0
            else:
                lengths[name] += len(line.strip())
    return lengths


def lineage_nodes(taxon):
    """(rank code, name) pairs of a QIIME lineage, skipping empty placeholders."""
    nodes = []
    for level, part in enumerate(p.strip() for p in taxon.split(";")):
        name = part[3:].strip()
        if name:
            nodes.append((CODES[level], name))
    return tuple(nodes)


def main():
    labels = pd.read_csv(EXAMPLE / "taxonomy.tsv", sep="\t", index_col=0, dtype=str,
                         keep_default_na=False)
    lengths = contig_lengths(EXAMPLE / "contigs.fna")
    paths = {lineage_nodes(t) for t in labels["Taxon"] if t != "Unassigned"}
    prefixes = sorted({path[:i] for path in paths for i in range(1, len(path) + 1)},
                      key=lambda p: [n for _, n in p])
    taxid = {prefix: 1000 + i for i, prefix in enumerate(prefixes)}
    clade = dict.fromkeys(prefixes, 0)
    direct = dict.fromkeys(prefixes, 0)
    out_lines, unclassified = [], 0
    for contig, row in labels.iterrows():
        n = max(lengths[contig] - K + 1, 1)
        if row["Taxon"] == "Unassigned":
            unclassified += 1
            out_lines.append(f"U\t{contig}\t0\t{lengths[contig]}\t0:{n}")
            continue
        path = lineage_nodes(row["Taxon"])
        support = float(row["Confidence"]) if row["Confidence"] else 1.0
        own = round(n * 0.55 * support)
        parent = round(n * 0.15) if len(path) > 1 else 0
        mapping = [f"{taxid[path]}:{own}"]
        if parent:
            mapping.append(f"{taxid[path[:-1]]}:{parent}")
        if n - own - parent:
            mapping.append(f"0:{n - own - parent}")
        out_lines.append(f"C\t{contig}\t{taxid[path]}\t{lengths[contig]}\t{' '.join(mapping)}")
        direct[path] += 1
        for i in range(1, len(path) + 1):
            clade[path[:i]] += 1
    total = len(labels)
    classified = total - unclassified
    report = [f"{100 * unclassified / total:6.2f}\t{unclassified}\t{unclassified}\tU\t0\tunclassified",
              f"{100 * classified / total:6.2f}\t{classified}\t0\tR\t1\troot",
              f"{100 * classified / total:6.2f}\t{classified}\t0\tR1\t131567\t  cellular organisms"]

    def visit(prefix, depth):
        report.append(f"{100 * clade[prefix] / total:6.2f}\t{clade[prefix]}\t{direct[prefix]}\t"
                      f"{prefix[-1][0]}\t{taxid[prefix]}\t{'  ' * depth}{prefix[-1][1]}")
        children = [p for p in prefixes if len(p) == len(prefix) + 1 and p[:-1] == prefix]
        for child in sorted(children, key=lambda p: (-clade[p], p[-1][1])):
            visit(child, depth + 1)

    for top in sorted((p for p in prefixes if len(p) == 1), key=lambda p: (-clade[p], p[0][1])):
        visit(top, 2)
    target = EXAMPLE / "kraken2"
    target.mkdir(exist_ok=True)
    (target / "output.txt").write_text("\n".join(out_lines) + "\n")
    (target / "report.txt").write_text("\n".join(report) + "\n")
    print(f"wrote {target}/output.txt ({len(out_lines)} contigs) and report.txt "
          f"({len(report)} lines)")


if __name__ == "__main__":
    main()
