"""Soft labels: the teacher's per-rank probability distributions over taxa.

The classifier on teacher embeddings is a leave-one-out nearest-neighbour vote (n-fold
cross-fitting): a contig's soft label comes only from *other* contigs' labels, so a wrong
label on one contig can be overturned by its neighbours instead of being memorised. The
vote fraction at a rank is the empirical frequency of each taxon among the most similar
labelled contigs; the remainder (neighbours whose label at that rank is distrusted, see
`labels`) is the probability that the rank should stay unnamed.
"""
from dataclasses import dataclass
from typing import List

import numpy as np
import pandas as pd

from .errors import InputError, preview
from .labels import EncodedLabels
from .neighbours import nearest_neighbours, reduce_dimensions, standardise
from .progress import report
from .taxonomy import N_RANKS, RANKS, TaxonomyTree, format_lineage, parse_lineage

COLUMNS = ["feature-id", "rank", "taxon", "probability", "confidence"]


@dataclass
class SoftLabels:
    """ids (n); tree; probabilities[r] (n, C_r) with rows summing to <= 1; confidence (n, 7):
    how much labelled evidence stands behind the distribution (0 = none), used to weight
    the soft label in distillation."""

    ids: List[str]
    tree: TaxonomyTree
    probabilities: List[np.ndarray]
    confidence: np.ndarray

    def to_frame(self, top=3, min_probability=0.01):
        """Long table: the `top` most probable taxa per (contig, rank) above `min_probability`."""
        rows = []
        for r in range(N_RANKS):
            p = self.probabilities[r]
            if p.shape[1] == 0:
                continue
            k = min(top, p.shape[1])
            best = np.argsort(-p, axis=1, kind="stable")[:, :k]
            taxa = [format_lineage(self.tree.lineage(r, j)) for j in range(p.shape[1])]
            for i, contig in enumerate(self.ids):
                for j in best[i]:
                    if p[i, j] >= min_probability:
                        rows.append((contig, RANKS[r], taxa[j], float(p[i, j]),
                                     float(self.confidence[i, r])))
        frame = pd.DataFrame(rows, columns=COLUMNS)
        frame["probability"] = frame["probability"].round(6)
        frame["confidence"] = frame["confidence"].round(6)
        return frame

    @classmethod
    def from_frame(cls, frame, tree=None, ids=None):
        """Rebuild from the long table; `tree` defaults to the taxa the table names."""
        missing = [c for c in COLUMNS if c not in frame.columns]
        if missing:
            raise InputError(f"soft-label table lacks column(s) {preview(missing)}.")
        bad_ranks = sorted(set(frame["rank"]) - set(RANKS))
        if bad_ranks:
            raise InputError(f"soft-label table has unknown rank(s) {preview(bad_ranks)}.")
        lineages = {t: parse_lineage(t) for t in frame["taxon"].unique()}
        if tree is None:
            tree = TaxonomyTree.from_lineages(lineages.values())
        if ids is None:
            ids = list(dict.fromkeys(frame["feature-id"].astype(str)))
        row_of = {c: i for i, c in enumerate(ids)}
        probabilities = [np.zeros((len(ids), tree.n_classes(r)), np.float32) for r in range(N_RANKS)]
        confidence = np.zeros((len(ids), N_RANKS), np.float32)
        rank_index = {name: r for r, name in enumerate(RANKS)}
        for contig, rank, taxon, p, c in frame[COLUMNS].itertuples(index=False):
            i = row_of.get(str(contig))
            if i is None:
                continue
            r = rank_index[rank]
            code = tree.encode([lineages[taxon]])[0, r]
            if code >= 0:
                probabilities[r][i, code] += p
            confidence[i, r] = c
        return cls(list(ids), tree, probabilities, confidence)

    def subset(self, ids):
        """Rows for `ids` in that order; contigs without soft labels get zero rows."""
        row_of = {c: i for i, c in enumerate(self.ids)}
        take = np.array([row_of.get(c, -1) for c in ids], dtype=np.int64)
        present = take >= 0

        def pick(a):
            out = np.zeros((len(ids),) + a.shape[1:], a.dtype)
            out[present] = a[take[present]]
            return out

        return SoftLabels(list(ids), self.tree, [pick(p) for p in self.probabilities],
                          pick(self.confidence))


def neighbour_vote(neighbours, labels: EncodedLabels, tree: TaxonomyTree, evidence_prior=5.0):
    """Per-rank vote of each row's neighbours: (probabilities per rank, confidence (n, 7))."""
    n, k = neighbours.shape
    probabilities, confidence = [], np.zeros((n, N_RANKS), np.float32)
    for r in range(N_RANKS):
        codes = labels.codes[neighbours, r]
        weights = labels.weights[neighbours, r]
        named = codes >= 0
        counts = named.sum(1)
        p = np.zeros((n, tree.n_classes(r)), np.float32)
        rows = np.repeat(np.arange(n), k).reshape(n, k)
        np.add.at(p, (rows[named], codes[named]), weights[named])
        p /= np.maximum(counts, 1)[:, None]
        probabilities.append(p)
        confidence[:, r] = counts / (counts + evidence_prior)
    return probabilities, confidence


def fit_soft_labels(ids, embeddings, labels: EncodedLabels, tree: TaxonomyTree,
                    n_neighbours=50, n_components=64, seed=0, overwrite=False):
    """Cross-fitted (leave-one-out) soft labels from teacher embeddings. `overwrite`:
    standardise float32 `embeddings` in place (for a caller that no longer needs them)."""
    embeddings = np.asarray(embeddings, dtype=np.float32)
    if embeddings.shape[0] != len(ids):
        raise InputError(f"{embeddings.shape[0]} embeddings for {len(ids)} contigs.")
    if not np.isfinite(embeddings).all():
        bad = np.flatnonzero(~np.isfinite(embeddings).all(1))
        raise InputError(f"teacher embeddings are not finite for contig(s) "
                         f"{preview([ids[i] for i in bad])}.")
    report("teacher: neighbour vote", 0, 1)
    z, _, _ = standardise(embeddings, inplace=overwrite)
    z = reduce_dimensions(z, n_components, seed=seed, centred=True)
    neighbours = nearest_neighbours(z, n_neighbours, stage="teacher: neighbours")
    probabilities, confidence = neighbour_vote(neighbours, labels, tree)
    report("teacher: neighbour vote", 1, 1)
    return SoftLabels(list(ids), tree, probabilities, confidence)
