"""Noisy input labels: encoded on the taxonomy tree, with how far each one is trusted.

A search tool's label is evidence, not truth. Two facts shape how much a label counts:
- A rank the label does not reach (truncated, or `Unassigned`) carries no information there:
  it is *missing*, not a vote for "unknown".
- A label's support (MMseqs2's weighted fraction of agreeing fragments, the `Confidence`
  column) below `min_support` means some of the contig disagrees with the name at the
  label's deepest rank. Reads of a genome that is in the reference database agree
  throughout; partial agreement is the mark of a relative (a novel species labelled with its
  sibling's name). Such a label is kept for the ranks above its deepest rank and counts as
  evidence *against* naming its deepest rank.
"""
from dataclasses import dataclass

import numpy as np

from .taxonomy import N_RANKS, TaxonomyTree


@dataclass
class EncodedLabels:
    """codes (n, 7): class index per rank or -1 (missing); weights (n, 7): trust in [0, 1]
    of the name at that rank (1 - weight is evidence that the rank should stay unnamed)."""

    codes: np.ndarray
    weights: np.ndarray

    @property
    def deepest_rank(self):
        """Deepest named rank per contig, -1 when unlabelled."""
        named = self.codes >= 0
        return np.where(named.any(1), N_RANKS - 1 - np.argmax(named[:, ::-1], axis=1), -1)


def encode_labels(tree: TaxonomyTree, lineages, support=None, min_support=1.0):
    """Encode 7-tuples on `tree`; `support` (n,) may hold NaN where the input gave none."""
    codes = tree.encode(lineages)
    weights = (codes >= 0).astype(np.float32)
    labels = EncodedLabels(codes, weights)
    if support is not None and min_support > 0:
        support = np.asarray(support, dtype=np.float64)
        partial = np.isfinite(support) & (support < min_support - 1e-6)
        deepest = labels.deepest_rank
        rows = np.flatnonzero(partial & (deepest >= 0))
        weights[rows, deepest[rows]] = 0.0
    return labels
