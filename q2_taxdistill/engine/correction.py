"""From per-rank probabilities to one lineage per contig, cut at the deepest confident rank.

Before the cut, each contig's probabilities are averaged with those of its nearest
neighbours in composition + co-abundance space (the contigs being corrected, itself
included): contigs of one genome then speak with one voice, and a genome whose own labels
disagree (a novel taxon) stays uncertain instead of inheriting one contig's guess.

After the cut, a species name is checked against the input labels of the contig's genome
neighbourhood (`species_conflict`). Contigs of a genome whose species is in the reference
database hit it almost without exception; contigs of a new species of a known genus hit the
sibling species most of the time and scattered other taxa the rest. A neighbourhood whose
species labels name other species more often than a small tolerance is therefore a relative
of the species named, not the species itself: the name is withdrawn and the lineage stops at
genus. This is the genome-level counterpart of a label's own support (`labels`), and works
without one.
"""
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from .neighbours import nearest_neighbours
from .taxonomy import N_RANKS, format_lineage

GENOME_STEPS = 4
SPECIES = N_RANKS - 1


def neighbourhood(space, n_neighbours):
    """Each row's `n_neighbours` nearest rows, itself first: (n, n_neighbours + 1)."""
    own = np.arange(len(space))[:, None]
    if n_neighbours <= 0 or len(space) < 2:
        return own
    neighbours = nearest_neighbours(space, n_neighbours, stage="correction: neighbours")
    return np.concatenate([own, neighbours], axis=1)


def smooth(probabilities, rows):
    """Mean of the distributions of each contig's neighbourhood `rows` (itself included)."""
    if rows.shape[1] <= 1:
        return probabilities
    smoothed = []
    for p in probabilities:
        # Column by column: memory stays at one (n, classes) array, not (n, k, classes).
        total = np.zeros(p.shape, np.float32)
        for j in range(rows.shape[1]):
            total += p[rows[:, j]]
        smoothed.append(total / rows.shape[1])
    return smoothed


def _averaging(rows):
    """The sparse (n, n) operator that replaces each row by the mean over its `rows`."""
    n, k = rows.shape
    return torch.sparse_coo_tensor(
        torch.from_numpy(np.stack([np.repeat(np.arange(n), k), rows.reshape(-1)])),
        torch.full((n * k,), 1.0 / k, dtype=torch.float64), (n, n),
        check_invariants=True).coalesce()


def _diffused(averaging, sources, queries, steps):
    """Weight that `steps` applications of `averaging` carry from the contigs with
    `sources[j] == c` to contig i, for c = `queries[i]` (0 where < 0).

    Sparse: a neighbourhood touches a few columns, however many the whole dataset has."""
    n = len(sources)
    n_columns = int(max(sources.max(initial=-1), queries.max(initial=-1))) + 1
    if n_columns == 0:
        return np.zeros(n)
    present = np.flatnonzero(sources >= 0)
    weights = torch.sparse_coo_tensor(
        torch.from_numpy(np.stack([present, sources[present]])),
        torch.ones(len(present), dtype=torch.float64), (n, n_columns),
        check_invariants=True).coalesce()
    for _ in range(steps):
        weights = torch.sparse.mm(averaging, weights).coalesce()
    # Coalesced entries are sorted by (row, column): look each (i, queries[i]) up.
    index, values = weights.indices().numpy(), weights.values().numpy()
    keys = index[0] * n_columns + index[1]
    out = np.zeros(n)
    wanted = np.flatnonzero(queries >= 0)
    if len(keys) and len(wanted):
        key = wanted * n_columns + queries[wanted]
        position = np.minimum(np.searchsorted(keys, key), len(keys) - 1)
        found = keys[position] == key
        out[wanted[found]] = values[position[found]]
    return out


def species_conflict(species, label_species, rows, steps=GENOME_STEPS):
    """Per contig named at species, the share of the species-level input labels of its genome
    neighbourhood that name another species (0 for other contigs, or where no label is near).

    species: (n,) the species class each contig was given (-1: none). label_species: (n,)
    the input label's species class (-1 where the label names none; any class outside
    `species`' range for a species the student does not know). The genome neighbourhood is
    `steps` rounds of averaging over `rows` (each contig's neighbours, itself included),
    restricted to contigs given the same species: weight spreads over a genome's contigs, so
    a handful of scattered labels across a few hundred contigs is seen wherever the genome
    is, while nearby contigs given another species or none (a congeneric species, a novel
    genus labelled with this species now and then) are not counted."""
    species = np.asarray(species, dtype=np.int64)
    label_species = np.asarray(label_species, dtype=np.int64)
    labelled = (species >= 0) & (label_species >= 0)
    with warnings.catch_warnings():
        # torch flags its sparse kernels as beta; the results are checked in the tests.
        warnings.filterwarnings("ignore", message="Sparse", category=UserWarning)
        averaging = _averaging(rows)
        agreeing = _diffused(averaging, np.where(labelled & (label_species == species),
                                                 species, -1), species, steps)
        total = _diffused(averaging, np.where(labelled, species, -1), species, steps)
    conflict = np.zeros(len(species))
    near = (species >= 0) & (total > 1e-12)
    conflict[near] = 1.0 - agreeing[near] / total[near]
    return np.clip(conflict, 0.0, 1.0)


@dataclass
class Decision:
    lineage: tuple
    rank: int
    code: int
    confidence: float

    @property
    def taxon(self):
        return format_lineage(self.lineage)


def decode(probabilities, tree, threshold, max_rank=N_RANKS - 1):
    """Top-down: at each rank the most probable child of the taxon chosen above; stop at the
    first rank whose probability is below `threshold` (or after `max_rank`). Confidence =
    probability of the deepest rank kept (the top-rank probability when nothing is kept). A
    class whose parent rank is unnamed in the tree is never reached from above, so decoding
    stops there."""
    n = probabilities[0].shape[0]
    chosen = np.full(n, -1, dtype=np.int64)
    depth = np.full(n, -1, dtype=np.int64)
    confidence = np.zeros(n, dtype=np.float64)
    deepest = np.full(n, -1, dtype=np.int64)
    active = np.ones(n, dtype=bool)
    for r in range(min(N_RANKS, max_rank + 1)):
        p = probabilities[r][:, :tree.n_classes(r)]
        if p.shape[1] == 0:
            break
        if r == 0:
            masked = p
        else:
            masked = np.where(tree.parent_index(r)[None, :] == chosen[:, None], p, -1.0)
        best = masked.argmax(1)
        best_p = masked[np.arange(n), best]
        if r == 0:
            confidence = np.maximum(best_p, 0.0).astype(np.float64)
        keep = active & (best_p >= threshold)
        chosen = np.where(keep, best, -1)
        deepest = np.where(keep, best, deepest)
        confidence = np.where(keep, best_p, confidence)
        depth = np.where(keep, r, depth)
        active = keep
        if not active.any():
            break
    return [
        Decision((None,) * N_RANKS if depth[i] < 0 else tree.lineage(depth[i], deepest[i]),
                 int(depth[i]), int(deepest[i]), float(confidence[i]))
        for i in range(n)
    ]


def check_species(decisions, probabilities, tree, threshold, label_species, rows,
                  max_conflict):
    """Withdraw each species name whose genome neighbourhood's input labels name other species
    more often than `max_conflict` (see `species_conflict`); those lineages are decoded again
    down to genus. Returns (decisions, number withdrawn)."""
    species = np.array([d.code if d.rank == SPECIES else -1 for d in decisions], dtype=np.int64)
    conflict = species_conflict(species, label_species, rows)
    withdrawn = np.flatnonzero(conflict > max_conflict)
    if not len(withdrawn):
        return decisions, 0
    above = decode([p[withdrawn] for p in probabilities], tree, threshold, max_rank=SPECIES - 1)
    decisions = list(decisions)
    for i, decision in zip(withdrawn, above):
        decisions[i] = decision
    return decisions, len(withdrawn)
