"""Noisy input labels: encoded on the taxonomy tree, with how far each one is trusted.

A search tool's label is evidence, not truth. Two facts shape how much a label counts:
- A rank the label does not reach (truncated, or `Unassigned`) carries no information there:
  it is *missing*, not a vote for "unknown".
- A label's support (the `Confidence` column: MMseqs2's weighted fraction of fragments that
  agree with the name, Kraken2's share of k-mers in the clade) says how much of the contig
  backs the name at its deepest rank. The label counts as that share of a vote there,
  read on the input's own scale, the rest going to "unnamed" (`support_trust`); ranks above
  it count fully. Partial support is
  *not* a mark of a relative on its own: real strains are mosaics of recombined pieces and
  mobile elements, so a known species' contigs often carry a few fragments of relatives
  (in `../shared/bench/dev-mosaic`, 3-54% of a known genome's correctly named contigs have
  support below 1, while the novel species named after a sibling have 22-78% and mean
  support 0.92-1.00, inside the known strains' 0.87-1.00: no rule on the labels alone
  separates them). The correction sums these votes over a contig's genome neighbourhood: a
  genome whose labels mostly back the name keeps it, one whose labels are scattered or
  weakly supported loses it, and a novel species named after its only sibling keeps the
  name unless the search's hits say its genome is too far from the reference (`hits`).
"""
from dataclasses import dataclass

import numpy as np

from .parameters import DEFAULTS
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


def support_trust(support, deepest, min_support=DEFAULTS.min_support):
    """Trust in each label's deepest name from its support (n,), NaN where none was given.

    Support is read on the input's own scale: a label counts fully when its support reaches
    the median support of the labels that stop at the same rank, and in proportion below it
    (MMseqs2's fragment agreement has median 1.0, so a label of support 0.8 counts 0.8;
    Kraken2's k-mer share is lower for right labels too, and its typical label still counts
    fully; so do all of a rank whose median support is 0, a scale that says nothing). Below `min_support` a label gives its deepest rank no vote (0, the default, never
    withdraws one). A label without support is trusted fully."""
    support = np.asarray(support, dtype=np.float64)
    trust = np.ones(len(support), dtype=np.float32)
    given = np.isfinite(support) & (deepest >= 0)
    for r in np.unique(deepest[given]):
        at = given & (deepest == r)
        typical = float(np.median(support[at]))
        if typical > 0:
            trust[at] = np.clip(support[at] / typical, 0.0, 1.0)
    trust[given & (support < min_support - 1e-6)] = 0.0
    return trust


def encode_labels(tree: TaxonomyTree, lineages, support=None, min_support=DEFAULTS.min_support):
    """Encode 7-tuples on `tree`; `support` (n,) may hold NaN where the input gave none."""
    codes = tree.encode(lineages)
    weights = (codes >= 0).astype(np.float32)
    labels = EncodedLabels(codes, weights)
    if support is not None:
        deepest = labels.deepest_rank
        rows = np.flatnonzero(deepest >= 0)
        weights[rows, deepest[rows]] = support_trust(support, deepest, min_support)[rows]
    return labels
