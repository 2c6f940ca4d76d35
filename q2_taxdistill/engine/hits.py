"""Alignment evidence: how close each contig is to its nearest reference genome.

The search the user already ran (MMseqs2 `easy-taxonomy`'s `_tophit_aln`, `mmseqs
convertalis`, BLAST `-outfmt 6`, DIAMOND `--outfmt 6`: BLAST6 columns) holds what labels
cannot show: the identity of the best hit. A strain of a reference species aligns to it
above the ~95% ANI species boundary (Jain et al. 2018, Nat Commun 9:5114); a novel species
named after its sibling aligns below it, and so does a novel genus. One contig says little
(a conserved gene aligns well across species, an accessory one not at all): the correction
averages identities over a contig's genome neighbourhood, whose contigs share their
distance to the reference (`genome_identity`), and turns that into the chance that the
genome is the named species (`same_species`).
"""
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .errors import InputError, preview
from .parameters import DEFAULTS
from .progress import notice

COLUMNS = ["qseqid", "sseqid", "pident", "length", "mismatch", "gapopen", "qstart", "qend",
           "sstart", "send", "evalue", "bitscore"]
IDENTITY_SCALE = 1.0


@dataclass
class ContigHits:
    """Per contig (aligned to the contigs it was made for): identity in percent (NaN
    without a hit), aligned bases and ID (None without a hit) of the best target."""

    identity: np.ndarray
    aligned: np.ndarray
    target: np.ndarray
    protein: bool = False

    @classmethod
    def none(cls, n):
        return cls(np.full(n, np.nan), np.zeros(n), np.full(n, None, dtype=object))


def _numeric(hits, column):
    values = pd.to_numeric(hits[column], errors="coerce")
    if values.isna().any():
        rows = [f"row {i + 1}: {hits[column].iloc[i]!r}"
                for i in np.flatnonzero(values.isna().to_numpy())]
        raise InputError(f"the hits' {column} column must be numeric; {len(rows)} row(s) are "
                         f"not: {preview(rows)}.")
    return values.to_numpy(np.float64)


def best_hits(hits, ids, lengths):
    """Aggregate BLAST6 rows (a table with `COLUMNS`, several rows per contig) per contig of
    `ids` (lengths in bp): the target with the highest summed bitscore, its rows'
    alignment-length-weighted identity and their aligned query bases (capped at the
    contig's length). Identities on 0-1 (MMseqs2's default `fident`) are recognised and
    read as percent; rows of a translated search (aligned length about a third of the
    query span: DIAMOND blastx, MMseqs2 with a protein DB) are amino-acid identities."""
    missing = [c for c in COLUMNS[:8] + ["bitscore"] if c not in hits.columns]
    if missing:
        raise InputError(f"the hits lack BLAST6 column(s) {preview(missing)}; expected "
                         f"{' '.join(COLUMNS)}.")
    n = len(ids)
    if len(hits) == 0:
        notice("hits", f"no hit is given: all {n} contigs are judged on their labels alone")
        return ContigHits.none(n)
    query = hits["qseqid"].astype(str).to_numpy()
    identity = _numeric(hits, "pident")
    length = _numeric(hits, "length")
    bits = _numeric(hits, "bitscore")
    span = np.abs(_numeric(hits, "qend") - _numeric(hits, "qstart")) + 1
    if (identity < 0).any() or (identity > 100).any():
        rows = [f"row {i + 1}: {identity[i]}" for i in
                np.flatnonzero((identity < 0) | (identity > 100))]
        raise InputError(f"hit identities must lie in 0-100 (percent) or 0-1 (fraction); "
                         f"{len(rows)} row(s) do not: {preview(rows)}.")
    if identity.max() <= 1.0:
        identity = identity * 100.0
    if (length <= 0).any():
        raise InputError(f"hit alignment lengths must be positive; rows "
                         f"{preview((np.flatnonzero(length <= 0) + 1).tolist())} are not.")
    position = pd.Index(ids).get_indexer(query)
    unknown = position < 0
    if unknown.all():
        raise InputError(f"none of the hits' query IDs are contig IDs (hits like "
                         f"{preview(pd.unique(query))}, contigs like {preview(list(ids))}): "
                         f"were they searched from these contigs?")
    if unknown.any():
        notice("hits", f"{len(pd.unique(query[unknown]))} query ID(s) of the hits are not "
                       f"among the scored contigs and are ignored: "
                       f"{preview(pd.unique(query[unknown]))}")
    protein = bool(np.median(span / length) > 2.0)
    frame = pd.DataFrame({"contig": position, "target": hits["sseqid"].astype(str).to_numpy(),
                          "bits": bits, "matched": identity * length, "length": length})
    frame = frame[~unknown]
    per_target = frame.groupby(["contig", "target"], sort=True).sum().reset_index()
    chosen = per_target.sort_values(["contig", "bits"], ascending=[True, False],
                                    kind="stable").drop_duplicates("contig")
    contigs = chosen["contig"].to_numpy()
    result = ContigHits.none(n)
    result.protein = protein
    result.identity[contigs] = chosen["matched"].to_numpy() / chosen["length"].to_numpy()
    result.target[contigs] = chosen["target"].to_numpy()
    bases = chosen["length"].to_numpy() * (3.0 if protein else 1.0)
    result.aligned[contigs] = np.minimum(bases, np.asarray(lengths, np.float64)[contigs])
    without = n - len(contigs)
    if without:
        notice("hits", f"{without} of {n} scored contigs have no hit; their species names are "
                       f"judged on their genome neighbourhood's hits and labels")
    if protein:
        notice("hits", "the hits look like a translated search (aligned length about a third "
                       "of the query span): identities are amino-acid identities; "
                       "species_identity is read on that scale")
    return result


def genome_identity(contig_hits, rows):
    """Per contig, the identity of its genome neighbourhood `rows` (itself first): the mean
    of its contigs' best-hit identities weighted by their aligned bases; NaN where no
    contig of the neighbourhood has a hit."""
    weight = np.where(np.isfinite(contig_hits.identity), contig_hits.aligned, 0.0)
    value = np.nan_to_num(contig_hits.identity) * weight
    total = weight[rows].sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, value[rows].sum(1) / total, np.nan)


def same_species(identity, boundary=DEFAULTS.species_identity, scale=IDENTITY_SCALE):
    """The chance that a genome at `identity` (percent) to its nearest reference is that
    reference's species: logistic around `boundary`, 1 where no identity is known (no hit
    says nothing). With the scale of 1 point, 97% gives 0.88 and 93% 0.12: strains of a
    reference species sit at 97.4-99.8% in the shared benchmarks, novel species at 74-94%,
    and real strains at 93-96% lose their species name more often than not, which is the
    price of the literature boundary."""
    with np.errstate(over="ignore"):
        p = 1.0 / (1.0 + np.exp(-(np.asarray(identity, np.float64) - boundary) / scale))
    return np.where(np.isfinite(identity), p, 1.0)


def extend_by_hits(lineages, contig_hits, reference, boundary=DEFAULTS.species_identity):
    """Input lineages extended by the best hit's lineage where the label stops above it.

    `reference`: target ID -> lineage (7-tuple), the taxonomy of the searched database. A
    contig whose best target it aligns to at `boundary` or above is that target's species
    (the contig is a piece of it), so where its input label stops above the target's
    deepest rank and names nothing the target contradicts, the target's lineage is its label.
    That is the case a lowest-common-ancestor label loses: whole-contig hits to two genera
    tied at E-value 0 stop the label at the family although one aligns better. Labels that
    name another taxon, contigs below `boundary` and targets missing from `reference` are
    left as they are. Returns (lineages, extended mask, number of best targets not in
    `reference`)."""
    lineages = list(lineages)
    extended = np.zeros(len(lineages), dtype=bool)
    missing = 0
    for i, (target, identity) in enumerate(zip(contig_hits.target, contig_hits.identity)):
        if target is None or not np.isfinite(identity):
            continue
        hit = reference.get(target)
        if hit is None:
            missing += 1
            continue
        if identity < boundary:
            continue
        hit = tuple(hit)
        if hit != lineages[i] and all(n is None or n == h for n, h in zip(lineages[i], hit)):
            lineages[i] = hit
            extended[i] = True
    return lineages, extended, missing
