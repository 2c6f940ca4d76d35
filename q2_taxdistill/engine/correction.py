"""From per-rank probabilities to one lineage per contig, cut at the deepest confident rank.

Before the cut, each contig's probabilities are averaged with those of its nearest
neighbours in composition + co-abundance space (the contigs being corrected, itself
included): contigs of one genome then speak with one voice, and a genome whose own labels
disagree (a novel taxon) stays uncertain instead of inheriting one contig's guess.
"""
from dataclasses import dataclass

import numpy as np

from .neighbours import nearest_neighbours
from .taxonomy import N_RANKS, format_lineage


def smooth(probabilities, space, n_neighbours):
    """Mean of each row's and its `n_neighbours` nearest rows' distributions."""
    if n_neighbours <= 0 or len(space) < 2:
        return probabilities
    neighbours = nearest_neighbours(space, n_neighbours, stage="correction: neighbours")
    smoothed = []
    for p in probabilities:
        # Column by column: memory stays at one (n, classes) array, not (n, k, classes).
        total = p.astype(np.float32, copy=True)
        for j in range(neighbours.shape[1]):
            total += p[neighbours[:, j]]
        smoothed.append(total / (neighbours.shape[1] + 1))
    return smoothed


@dataclass
class Decision:
    lineage: tuple
    rank: int
    confidence: float

    @property
    def taxon(self):
        return format_lineage(self.lineage)


def decode(probabilities, tree, threshold):
    """Top-down: at each rank the most probable child of the taxon chosen above; stop at the
    first rank whose probability is below `threshold`. Confidence = probability of the
    deepest rank kept (the top-rank probability when nothing is kept). A class whose parent
    rank is unnamed in the tree is never reached from above, so decoding stops there."""
    n = probabilities[0].shape[0]
    chosen = np.full(n, -1, dtype=np.int64)
    depth = np.full(n, -1, dtype=np.int64)
    confidence = np.zeros(n, dtype=np.float64)
    deepest = np.full(n, -1, dtype=np.int64)
    active = np.ones(n, dtype=bool)
    for r in range(N_RANKS):
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
                 int(depth[i]), float(confidence[i]))
        for i in range(n)
    ]
