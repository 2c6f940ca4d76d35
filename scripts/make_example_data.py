"""Write the bundled SYNTHETIC example (q2_taxdistill/data/example/): contigs, noisy labels,
true labels and read counts of a small CAMI-like community, seeded and deterministic.

    python scripts/make_example_data.py [--out q2_taxdistill/data/example]

Uses only numpy and pandas. Every genome is made up: sequences come from hierarchical
order-3 Markov chains (phylum -> class -> order -> family -> genus -> species), so
composition is more similar within a taxon than between taxa, and every name is invented.
The noisy labels imitate MMseqs2 against an incomplete reference database.

Two known species also have a second strain in the same samples, carrying accessory
segments of a relative's genome. Every draw for those strains comes from a second generator
(seed SEED + 1) and their contigs come after all others, so adding them left every other
contig, label, count and ID exactly as it was.
"""

import argparse
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd

SEED = 42
N_SAMPLES = 6
READ_LENGTH = 150
ORDER = 3
OUT = Path(__file__).resolve().parent.parent / "q2_taxdistill" / "data" / "example"

# phylum, class, order, family, genus, [species epithets]; GC of the phylum
PHYLA = {"Synthetobacterota": 0.56, "Simulatiota": 0.40}
GENERA = [
    ("Synthetobacterota", "Synthetobacteria", "Synthetobacterales", "Synthetobacteraceae",
     "Synthibacter", ["primus", "secundus", "tertius", "quartus"]),
    ("Synthetobacterota", "Synthetobacteria", "Artefactales", "Artefactaceae",
     "Fictimonas", ["alba", "rubra", "viridis", "lenta"]),
    ("Simulatiota", "Simulatia", "Simulatiales", "Simulatiaceae",
     "Imitococcus", ["magnus", "parvus", "medius"]),
    ("Synthetobacterota", "Synthetobacteria", "Synthetobacterales", "Synthetobacteraceae",
     "Novimonas", ["ignota"]),
]
# Relation to the imagined reference database. novel_species: every contig gets the named
# sibling species (MMseqs2 finds the closest relative); novel_genus: scattered labels.
NOVELTY = {
    "Synthibacter quartus": ("novel_species", "Synthibacter tertius"),
    "Fictimonas lenta": ("novel_species", "Fictimonas viridis"),
    "Imitococcus medius": ("novel_species", "Imitococcus parvus"),
    "Novimonas ignota": ("novel_genus", None),
}
# Second strain of a known species: ~2% substitutions from its species genome, ~8% of it
# overwritten by 5-15 kb segments of the donor (a known species of the same family), so the
# search tool labels part of its contigs with the donor.
STRAINS = {
    "Synthibacter primus": "Synthibacter secundus",
    "Fictimonas alba": "Fictimonas rubra",
}
STRAIN_RATE = 0.028
ACCESSORY_SHARE = 0.08
ACCESSORY_LENGTH = (5_000, 15_000)
PREFIXES = ("d__", "p__", "c__", "o__", "f__", "g__", "s__")
COMPLEMENT = str.maketrans("ACGT", "TGCA")


def lineage_text(names):
    names = [n for n in names if n is not None]
    return "; ".join(p + n for p, n in zip(PREFIXES, names)) if names else "Unassigned"


def perturb(rng, rows, concentration):
    """Child transition rows drawn around the parent's: Dirichlet(concentration * parent)."""
    return np.stack([rng.dirichlet(concentration * r) for r in rows])


def markov_sequence(rng, rows, length):
    """Order-3 Markov chain sample as uint8 codes 0..3 (sequential, so a plain loop)."""
    cumulative = np.cumsum(rows, axis=1).tolist()
    draws = rng.random(length).tolist()
    out = bytearray(length)
    context = 0
    mask = 4 ** ORDER - 1
    for i in range(length):
        cum = cumulative[context]
        u = draws[i]
        base = 0 if u < cum[0] else 1 if u < cum[1] else 2 if u < cum[2] else 3
        out[i] = base
        context = ((context << 2) | base) & mask
    return np.frombuffer(bytes(out), dtype=np.uint8)


def diverge(rng, ancestor, rows, rate):
    """Resample a fraction `rate` of positions from the species chain given the ancestor's
    preceding three bases: species differ from their genus ancestor but keep its style."""
    codes = ancestor.copy()
    positions = np.nonzero(rng.random(len(codes)) < rate)[0]
    positions = positions[positions >= ORDER]
    context = np.zeros(len(positions), dtype=np.int64)
    for back in range(ORDER, 0, -1):
        context = context * 4 + ancestor[positions - back]
    cumulative = np.cumsum(rows, axis=1)[context]
    u = rng.random(len(positions))[:, None]
    codes[positions] = np.minimum((u >= cumulative).sum(axis=1), 3)
    return codes


def make_genomes(rng):
    species_rows = {}
    cache = {}

    def level(key, parent_rows, concentration):
        if key not in cache:
            cache[key] = perturb(rng, parent_rows, concentration)
        return cache[key]

    genomes = []
    for phylum, cls, order, family, genus, epithets in GENERA:
        gc = PHYLA[phylum]
        base = np.array([(1 - gc) / 2, gc / 2, gc / 2, (1 - gc) / 2])
        p_rows = level(("p", phylum), np.tile(base, (4 ** ORDER, 1)), 25.0)
        c_rows = level(("c", cls), p_rows, 400.0)
        o_rows = level(("o", order), c_rows, 400.0)
        f_rows = level(("f", family), o_rows, 400.0)
        g_rows = level(("g", genus), f_rows, 300.0)
        ancestor = markov_sequence(rng, g_rows, 300_000)
        for epithet in epithets:
            species = f"{genus} {epithet}"
            species_rows[species] = perturb(rng, g_rows, 300.0)
            length = int(rng.integers(150_000, 300_001))
            start = int(rng.integers(0, len(ancestor) - length + 1))
            rate = rng.uniform(0.14, 0.26)
            codes = diverge(rng, ancestor[start:start + length], species_rows[species], rate)
            lineage = ("Bacteria", phylum, cls, order, family, genus, species)
            novelty, sibling = NOVELTY.get(species, ("known_species", None))
            genomes.append({
                "species": species, "lineage": lineage, "novelty": novelty, "sibling": sibling,
                "sequence": "".join("ACGT"[c] for c in codes.tolist()),
                "divergence": float((codes != ancestor[start:start + length]).mean()),
                "codes": codes, "rows": species_rows[species], "name": species,
                "donor": None, "accessory": np.zeros(length, dtype=bool),
            })
    return genomes


def make_strains(rng, genomes):
    """Strain B of each species in STRAINS: its species genome with point substitutions
    from the species chain, then accessory segments copied exactly from the donor."""
    by_species = {g["species"]: g for g in genomes}
    strains = []
    for species, donor_name in STRAINS.items():
        parent, donor = by_species[species], by_species[donor_name]
        assert parent["lineage"][4] == donor["lineage"][4], (species, donor_name)
        codes = diverge(rng, parent["codes"], parent["rows"], STRAIN_RATE)
        divergence = float((codes != parent["codes"]).mean())
        accessory = np.zeros(len(codes), dtype=bool)
        target = int(round(ACCESSORY_SHARE * len(codes)))
        while target - accessory.sum() >= ACCESSORY_LENGTH[0] / 2:
            length = int(rng.integers(ACCESSORY_LENGTH[0], ACCESSORY_LENGTH[1] + 1))
            length = min(length, max(target - int(accessory.sum()), ACCESSORY_LENGTH[0]))
            start = int(rng.integers(0, len(codes) - length + 1))
            if accessory[max(start - 1, 0):start + length + 1].any():
                continue  # segments do not touch, so each is one donor gene cluster
            source = int(rng.integers(0, len(donor["codes"]) - length + 1))
            codes[start:start + length] = donor["codes"][source:source + length]
            accessory[start:start + length] = True
        strains.append({
            **parent, "name": f"{species} (strain B)", "donor": donor,
            "sequence": "".join("ACGT"[c] for c in codes.tolist()), "codes": codes,
            "divergence": divergence, "accessory": accessory,
        })
    return strains


def contig_lengths(rng, n):
    """Log-normal, median 3 kb, at least 1 kb (redrawn below), at most 12 kb."""
    lengths = np.empty(0, dtype=np.int64)
    while len(lengths) < n:
        draw = np.round(rng.lognormal(np.log(3000), 0.55, size=2 * n)).astype(np.int64)
        lengths = np.concatenate([lengths, draw[(draw >= 1000) & (draw <= 12000)]])
    return lengths[:n]


def cut_contigs(rng, genomes, first=0):
    """(genome index, sequence, start, end) of each contig; genome indices start at `first`."""
    pieces = []
    for g, genome in enumerate(genomes, start=first):
        seq = genome["sequence"]
        n = int(rng.integers(55, 71))
        lengths = contig_lengths(rng, n)
        while lengths.sum() > 0.85 * len(seq):
            lengths = lengths[:-1]
        slack = len(seq) - int(lengths.sum())
        gaps = np.floor(rng.dirichlet(np.ones(len(lengths) + 1)) * slack).astype(np.int64)
        position = 0
        for length, gap in zip(lengths.tolist(), gaps[:-1].tolist()):
            position += gap
            piece = seq[position:position + length]
            if rng.random() < 0.5:
                piece = piece.translate(COMPLEMENT)[::-1]
            pieces.append((g, piece, position, position + length))
            position += length
    return pieces


def simulate_abundance(rng, n_genomes):
    """Per genome and sample: log-normal abundance, 20% of pairs nearly absent; per-sample
    sequencing depth varies threefold. Returns expected coverage (genomes x samples)."""
    abundance = rng.lognormal(0.0, 1.0, size=(n_genomes, 1)) * rng.lognormal(
        0.0, 1.0, size=(n_genomes, N_SAMPLES))
    abundance[rng.random(abundance.shape) < 0.2] *= 0.02
    depth = rng.uniform(6.0, 18.0, size=N_SAMPLES)
    return abundance / abundance.mean(axis=0) * depth, depth / abundance.mean(axis=0)


def strain_abundance(rng, n_strains, scale):
    """Abundance rows drawn as in simulate_abundance, on the same per-sample scale."""
    abundance = rng.lognormal(0.0, 1.0, size=(n_strains, 1)) * rng.lognormal(
        0.0, 1.0, size=(n_strains, N_SAMPLES))
    abundance[rng.random(abundance.shape) < 0.2] *= 0.02
    return abundance * scale


def noisy_label(rng, genome, all_species):
    """One MMseqs2-like label (lineage tuple, confidence) for a contig of this genome."""
    lineage = genome["lineage"]
    # As MMseqs2's fragment vote on real genomes: nearly every fragment of a database genome
    # agrees (support 1), while a relative's fragments often split (support < 1).
    if genome["novelty"] == "known_species":
        return lineage, 1.0 if rng.random() < 0.95 else rng.uniform(0.9, 1.0)
    if genome["novelty"] == "novel_species":
        return lineage[:6] + (genome["sibling"],), 1.0 if rng.random() < 0.5 else rng.uniform(0.8, 1.0)
    # Novel genus: hits scatter over related genera, often stopping above genus.
    u = rng.random()
    if u < 0.55:
        same_family = [s for s in all_species if s[4] == lineage[4] and s[5] != lineage[5]]
        other = [s for s in all_species if s[1] == lineage[1] and s[4] != lineage[4]]
        pool = same_family if u < 0.40 else other
        return pool[int(rng.integers(len(pool)))], rng.uniform(0.5, 0.9)
    if u < 0.85:
        return lineage[:5] + (None, None), rng.uniform(0.6, 0.95)
    return lineage[:3] + (None,) * 4, rng.uniform(0.5, 0.8)


def strain_label(rng, strain, start, end, all_species):
    """A strain B contig: the donor's lineage where the donor's sequence is most of it (the
    search finds the donor exactly), else its species with the share of its own sequence."""
    donor_share = float(strain["accessory"][start:end].mean())
    if donor_share > 0.5:
        return strain["donor"]["lineage"], 1.0
    if donor_share > 0:
        return strain["lineage"], 1.0 - donor_share
    return noisy_label(rng, strain, all_species)


def truncate(lineage, rank):
    return tuple(n if r <= rank else None for r, n in enumerate(lineage))


def database_noise(rng, labels, confidences, members):
    """Database-independent noise on the contigs `members`: ~5% of their labels truncated
    at a random rank, ~2% unassigned."""
    shuffled = members[rng.permutation(len(members))]
    n_trunc = int(round(0.05 * len(members)))
    n_unassigned = int(round(0.02 * len(members)))
    for i in shuffled[:n_trunc].tolist():
        labels[i] = truncate(labels[i], int(rng.integers(1, 6)))
        confidences[i] = rng.uniform(0.5, 0.9)
    for i in shuffled[n_trunc:n_trunc + n_unassigned].tolist():
        labels[i] = (None,) * 7
        confidences[i] = None


def build(out: Path):
    rng = np.random.default_rng(SEED)
    genomes = make_genomes(rng)
    pieces = cut_contigs(rng, genomes)
    coverage, scale = simulate_abundance(rng, len(genomes))
    samples = [f"S{s + 1}" for s in range(N_SAMPLES)]
    # The strains draw only from their own generator, after everything else: the contigs of
    # the other genomes (and their IDs, labels and counts) do not depend on them.
    strain_rng = np.random.default_rng(SEED + 1)
    strains = make_strains(strain_rng, genomes)
    strain_pieces = cut_contigs(strain_rng, strains, first=len(genomes))
    coverage = np.vstack([coverage, strain_abundance(strain_rng, len(strains), scale)])
    n_main = len(pieces)
    pieces = pieces + strain_pieces
    genomes = genomes + strains

    # Name each contig after the sample it was "assembled" in (drawn by abundance).
    origin = [int((rng if i < n_main else strain_rng).choice(
        N_SAMPLES, p=coverage[g] / coverage[g].sum())) for i, (g, *_) in enumerate(pieces)]
    order = sorted(range(len(pieces)), key=lambda i: (origin[i], i))
    ids = [""] * len(pieces)
    per_sample = [0] * N_SAMPLES
    for i in order:
        per_sample[origin[i]] += 1
        ids[i] = f"S{origin[i] + 1}C{per_sample[origin[i]]:05d}"

    lengths = np.array([len(p) for _, p, *_ in pieces])
    genome_of = np.array([g for g, *_ in pieces])
    expected_reads = coverage[genome_of] * lengths[:, None] / READ_LENGTH
    reads = np.vstack([rng.poisson(expected_reads[:n_main]),
                       strain_rng.poisson(expected_reads[n_main:])])

    known = [g["lineage"] for g in genomes if g["novelty"] == "known_species" and
             g["donor"] is None]
    labels, confidences = [], []
    for g in genome_of[:n_main].tolist():
        lineage, confidence = noisy_label(rng, genomes[g], known)
        labels.append(lineage)
        confidences.append(confidence)
    database_noise(rng, labels, confidences, np.arange(n_main))
    for g, _, begin, end in strain_pieces:
        lineage, confidence = strain_label(strain_rng, genomes[g], begin, end, known)
        labels.append(lineage)
        confidences.append(confidence)
    database_noise(strain_rng, labels, confidences, np.arange(n_main, len(pieces)))

    out.mkdir(parents=True, exist_ok=True)
    rows = sorted(range(len(pieces)), key=lambda i: ids[i])
    with open(out / "contigs.fna", "w") as handle:
        for i in rows:
            handle.write(f">{ids[i]}\n")
            handle.write("\n".join(textwrap.wrap(pieces[i][1], 80)) + "\n")
    index = pd.Index([ids[i] for i in rows], name="Feature ID")
    taxonomy = pd.DataFrame({
        "Taxon": [lineage_text(labels[i]) for i in rows],
        "Confidence": ["" if confidences[i] is None else f"{confidences[i]:.4f}" for i in rows],
    }, index=index)
    taxonomy.to_csv(out / "taxonomy.tsv", sep="\t")
    truth = pd.DataFrame({
        "Taxon": [lineage_text(genomes[genome_of[i]]["lineage"]) for i in rows],
        "Confidence": "1.0",
    }, index=index)
    truth.to_csv(out / "truth.tsv", sep="\t")
    counts = pd.DataFrame(reads[rows], index=index.rename("feature-id"), columns=samples)
    counts.to_csv(out / "counts.tsv", sep="\t")
    write_readme(out, genomes, genome_of, lengths, labels, rows)


KRAKEN2_README = """
## Kraken2 files (synthetic)
`kraken2/output.txt` (kraken2 `--output`) and `kraken2/report.txt` (kraken2 `--report`) hold
the same noisy labels as `taxonomy.tsv`, laid out as one kraken2 run on the contigs would
write them: invented taxids, 35-mers split between the assigned taxon (55% times the label's
Confidence), its parent (15%) and "not in the database". Regenerate with
`python scripts/make_kraken2_example.py` (after this script). They exist to show and test the
Kraken2 import.
"""


def write_readme(out, genomes, genome_of, lengths, labels, rows):
    table = []
    for g, genome in enumerate(genomes):
        members = np.nonzero(genome_of == g)[0]
        correct = sum(labels[i][6] == genome["species"] for i in members)
        donor = genome["donor"]
        if donor is None:
            divergence, accessory, donor_labelled = f"{genome['divergence']:.1%}", "-", "-"
        else:
            divergence = f"{genome['divergence']:.1%} (vs its species genome)"
            segments = int(np.count_nonzero(np.diff(genome["accessory"].astype(np.int8)) == 1)
                           + genome["accessory"][0])
            accessory = (f"{donor['species']} ({genome['accessory'].mean():.1%}, "
                         f"{segments} segments)")
            donor_labelled = sum(labels[i][6] == donor["species"] for i in members)
        table.append(
            f"| {genome['name']} | {genome['lineage'][4]} | {genome['novelty']} | "
            f"{len(genome['sequence']):,} | {divergence} | {accessory} | {len(members)} | "
            f"{correct} | {donor_labelled} |"
        )
    per_genome = [int(np.count_nonzero(genome_of == g)) for g, genome in enumerate(genomes)
                  if genome["donor"] is None]
    per_genome = f"{min(per_genome)}-{max(per_genome)}"
    segment_kb = f"{ACCESSORY_LENGTH[0] // 1000}-{ACCESSORY_LENGTH[1] // 1000}"
    rate, share = f"{STRAIN_RATE:.1%}", f"{ACCESSORY_SHARE:.0%}"
    n_unassigned = sum(all(n is None for n in labels[i]) for i in rows)
    text = f"""# Example data (synthetic)

Everything here is SYNTHETIC: invented genomes with invented, clearly made-up names
(`g__Synthibacter`, `p__Simulatiota`, ...). It is small enough to ship with the plugin and
to run the whole pipeline quickly on a laptop; it is not a benchmark.

Regenerate it exactly (seed {SEED}, numpy and pandas only) from the repository root with:

    python scripts/make_example_data.py

## Files
- `contigs.fna`: {len(rows)} contigs ({int(lengths.sum()):,} bp), 80-column plain FASTA, IDs
  `S<sample>C<nnnnn>` (the sample the contig was "assembled" in).
- `taxonomy.tsv`: noisy labels, QIIME 2 `FeatureData[Taxonomy]` TSV (`Feature ID`, `Taxon`,
  `Confidence`); `Unassigned` with an empty confidence where the classifier found nothing
  ({n_unassigned} contigs).
- `truth.tsv`: the true lineage of every contig, same form (Confidence 1.0).
- `counts.tsv`: integer read counts ({READ_LENGTH} bp reads), header `feature-id` + samples
  `S1..S{N_SAMPLES}`, contigs as rows. Imported as a biom `FeatureTable[Frequency]` it is
  transposed: QIIME 2 tables hold samples as rows and contigs as features (columns).

## How it was made
- Composition: a hierarchy of order-3 Markov chains. Each phylum has its own GC content and
  transition rows; every class, order, family and genus redraws its rows around its
  parent's (Dirichlet), so closer taxa have more similar k-mer composition. Each genus
  ancestor (300 kb) is sampled from its chain; each species genome (150-300 kb) is a
  window of it in which 14-26% of positions are redrawn from a species-level perturbed
  chain (10-20% actual substitutions).
- Strains: {len(STRAINS)} known species ({", ".join(STRAINS)}) also have a second
  strain ("strain B") in the same samples: the species genome with {rate} of positions
  redrawn from the species chain (about 2% actual substitutions), then about {share} of it
  overwritten by {segment_kb} kb segments copied exactly from the genome of another known species
  of the same family (the donor: accessory genes). Its true lineage is its species. The
  original genome of such a species is strain A, unchanged. Every draw for the strains
  (genome, contigs, abundance, sample, reads, labels) comes from a second generator (seed
  {SEED + 1}) and their contigs are numbered after the others of their sample, so all other
  contigs, labels and counts are as before the strains.
- Contigs: {per_genome} non-overlapping pieces per genome (55-70 drawn, fewer where
  they would cover more than 85% of it), log-normal lengths (median 3 kb, 1-12 kb),
  random strand.
- Abundance: per genome (strain B: its own row) and sample log-normal (genome effect x
  sample effect, 20% of pairs x0.02), per-sample sequencing depth 6-18x; Poisson read
  counts of {READ_LENGTH} bp reads.
- Noisy labels, as MMseqs2 against a reference database that lacks some taxa:
  `known_species` contigs get their true lineage (confidence ~1); `novel_species` contigs
  all get a sibling species' name (confidence 0.8-1); the `novel_genus` genome's contigs
  scatter over other genera (40% same family, 15% another family) or stop at family or
  class. A strain B contig that is mostly (>50%) donor sequence gets the donor's lineage
  with confidence 1 (the search finds the donor exactly); one that partly overlaps a donor
  segment gets its own species with confidence = the share of its own sequence; the rest
  are labelled as other `known_species` contigs. Then 5% of the labels (of the strain B
  contigs and of the others, each drawn apart) are truncated at a random rank and 2%
  become `Unassigned`.

## Genomes
| genome | family | novelty | length (bp) | substitutions vs genus ancestor | accessory segments from (share of genome) | contigs | contigs labelled with the true species | contigs labelled with the donor |
|---|---|---|---|---|---|---|---|---|
""" + "\n".join(table) + "\n" + KRAKEN2_README
    (out / "README.md").write_text(text)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help="output folder")
    build(parser.parse_args().out)


if __name__ == "__main__":
    main()
