"""Soft labels: the teacher's per-rank probability distributions over taxa.

The classifier on teacher embeddings is a leave-one-out nearest-neighbour vote (n-fold
cross-fitting): a contig's soft label comes only from *other* contigs' labels, so a wrong
label on one contig can be overturned by its neighbours instead of being memorised. The
vote fraction at a rank is the empirical frequency of each taxon among the most similar
labelled contigs; the remainder (neighbours whose label at that rank is distrusted, see
`labels`) is the probability that the rank should stay unnamed.

Only the `TOP` most probable taxa per contig and rank (at least `MIN_PROBABILITY`) are kept:
a vote of 50 neighbours rarely names more than a few taxa, and the student learns from
these, so the soft labels of 10^6 contigs are three small arrays (n x 7 x TOP taxa and
probabilities, n x 7 confidences), not a table of every taxon.
"""
from dataclasses import dataclass
from typing import List

import numpy as np
import pandas as pd

from .errors import InputError, preview
from .parameters import DEFAULTS
from .labels import EncodedLabels
from .neighbours import nearest_neighbours
from .progress import report
from .teacher.projection import principal_components
from .taxonomy import N_RANKS, RANKS, TaxonomyTree, format_lineage, parse_lineage

COLUMNS = ["feature-id", "rank", "taxon", "probability", "confidence"]
TOP = 3
MIN_PROBABILITY = 0.01
# Dense vote rows handled at once: (rows x taxa of a rank) float32 of about 64 MB.
_VOTE_CELLS = 1 << 24


@dataclass
class SoftLabels:
    """ids (n); tree; per contig and rank the most probable taxa: `codes` (n, 7, t) int32,
    class index on `tree` at that rank or -1 for none, most probable first; `probabilities`
    (n, 7, t) float32 (0 where no taxon; a rank's sum is at most 1, the rest is other taxa
    or no name); `confidence` (n, 7): how much labelled evidence stands behind the
    distribution (0 = none), the weight of the soft label in distillation."""

    ids: List[str]
    tree: TaxonomyTree
    codes: np.ndarray
    probabilities: np.ndarray
    confidence: np.ndarray

    @classmethod
    def empty(cls, ids, tree):
        n = len(ids)
        return cls(list(ids), tree, np.full((n, N_RANKS, TOP), -1, np.int32),
                   np.zeros((n, N_RANKS, TOP), np.float32), np.zeros((n, N_RANKS), np.float32))

    def dense(self, rank, rows=None):
        """(rows, C_rank) float32 distribution over the rank's taxa (all rows by default)."""
        codes = self.codes[:, rank] if rows is None else self.codes[rows, rank]
        probabilities = (self.probabilities[:, rank] if rows is None
                         else self.probabilities[rows, rank])
        out = np.zeros((len(codes), self.tree.n_classes(rank)), np.float32)
        row, slot = np.nonzero(codes >= 0)
        np.add.at(out, (row, codes[row, slot]), probabilities[row, slot])
        return out

    def to_frame(self, top=None):
        """Long table `feature-id rank taxon probability confidence`: one row per kept taxon
        (the `top` most probable per contig and rank, when given), a contig's rows together
        (ranks in order, most probable first)."""
        row, rank, slot = np.nonzero(self.codes[:, :, :top] >= 0)
        codes = self.codes[row, rank, slot]
        taxa = np.empty(len(row), dtype=object)
        for r in range(N_RANKS):
            at = rank == r
            if at.any():
                names = np.array([format_lineage(self.tree.lineage(r, j))
                                  for j in range(self.tree.n_classes(r))], dtype=object)
                taxa[at] = names[codes[at]]
        return pd.DataFrame({
            "feature-id": np.asarray(self.ids, dtype=object)[row],
            "rank": np.asarray(RANKS, dtype=object)[rank],
            "taxon": taxa,
            # float32 holds ~7 digits: 6 decimals give back the values that were stored.
            "probability": self.probabilities[row, rank, slot].astype(np.float64).round(6),
            "confidence": self.confidence[row, rank].astype(np.float64).round(6),
        }, columns=COLUMNS)

    @classmethod
    def from_frame(cls, frame, tree=None, ids=None):
        """From the long table; `tree` defaults to the taxa the table names, `ids` to its
        contigs. Rows naming contigs outside `ids` are left out; a taxon given twice for a
        contig and rank counts once with the summed probability."""
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
        row = pd.Index(ids).get_indexer(frame["feature-id"].astype(str))
        rank = pd.Index(RANKS).get_indexer(frame["rank"])
        taxa = list(lineages)
        encoded = tree.encode([lineages[t] for t in taxa]).reshape(len(taxa), N_RANKS)
        code = encoded[pd.Index(taxa).get_indexer(frame["taxon"]), rank]
        table = pd.DataFrame({"row": row, "rank": rank, "code": code,
                              "p": frame["probability"].to_numpy(np.float64),
                              "c": frame["confidence"].to_numpy(np.float64)})
        table = table[table["row"] >= 0]
        confidence = np.zeros((len(ids), N_RANKS), np.float32)
        confidence[table["row"], table["rank"]] = table["c"]
        table = table[table["code"] >= 0].groupby(["row", "rank", "code"], as_index=False,
                                                  sort=False)["p"].sum()
        table = table.sort_values(["row", "rank", "p", "code"], ascending=[True, True, False, True],
                                  kind="stable")
        slot = table.groupby(["row", "rank"], sort=False).cumcount().to_numpy()
        width = max(TOP, int(slot.max()) + 1 if len(slot) else 0)
        codes = np.full((len(ids), N_RANKS, width), -1, np.int32)
        probabilities = np.zeros((len(ids), N_RANKS, width), np.float32)
        codes[table["row"], table["rank"], slot] = table["code"]
        probabilities[table["row"], table["rank"], slot] = table["p"]
        return cls(list(ids), tree, codes, probabilities, confidence)

    def aligned(self, ids, tree):
        """The soft labels of `ids` (in that order; contigs without one get none) with class
        indices on `tree`, which must contain every taxon named here."""
        take = pd.Index(self.ids).get_indexer(list(ids))
        present = take >= 0
        codes = np.full((len(take),) + self.codes.shape[1:], -1, np.int32)
        probabilities = np.zeros((len(take),) + self.probabilities.shape[1:], np.float32)
        confidence = np.zeros((len(take), N_RANKS), np.float32)
        source = self.codes[take[present]]
        for r in range(N_RANKS):
            mapping = np.array([tree.encode([self.tree.lineage(r, j)])[0, r]
                                for j in range(self.tree.n_classes(r))] + [-1], dtype=np.int32)
            if (mapping[:-1] < 0).any():
                raise ValueError(f"the tree lacks taxa of these soft labels at rank {RANKS[r]}.")
            codes[present, r] = mapping[source[:, r]]
        probabilities[present] = self.probabilities[take[present]]
        confidence[present] = self.confidence[take[present]]
        return SoftLabels(list(ids), tree, codes, probabilities, confidence)


def neighbour_vote(neighbours, labels: EncodedLabels, tree: TaxonomyTree, ids,
                   evidence_prior=5.0, top=TOP, min_probability=MIN_PROBABILITY):
    """Soft labels from each row's neighbours' labels: per rank the share of the neighbours
    named there that name each taxon (weighted by trust), keeping the `top` largest at or
    above `min_probability`; confidence = named / (named + `evidence_prior`)."""
    n, k = neighbours.shape
    soft = SoftLabels.empty(ids, tree)
    for r in range(N_RANKS):
        n_classes = tree.n_classes(r)
        block = max(1, _VOTE_CELLS // max(n_classes, 1))
        for start in range(0, n, block):
            rows = neighbours[start:start + block]
            codes = labels.codes[rows, r]
            weights = labels.weights[rows, r]
            named = codes >= 0
            counts = named.sum(1)
            soft.confidence[start:start + len(rows), r] = counts / (counts + evidence_prior)
            if n_classes == 0:
                continue
            owner = np.broadcast_to(np.arange(len(rows))[:, None], codes.shape)
            p = np.bincount(owner[named] * n_classes + codes[named], weights=weights[named],
                            minlength=len(rows) * n_classes).reshape(len(rows), n_classes)
            p = (p / np.maximum(counts, 1)[:, None]).astype(np.float32)
            best = np.argsort(-p, axis=1, kind="stable")[:, :top]
            chosen = np.take_along_axis(p, best, axis=1)
            keep = chosen >= min_probability
            width = best.shape[1]
            soft.codes[start:start + len(rows), r, :width] = np.where(keep, best, -1)
            soft.probabilities[start:start + len(rows), r, :width] = np.where(keep, chosen, 0.0)
    return soft


def fit_soft_labels(ids, rows, labels: EncodedLabels, tree: TaxonomyTree, n_neighbours=DEFAULTS.n_neighbours,
                    n_components=64, seed=DEFAULTS.seed, neighbour_search="auto"):
    """Cross-fitted (leave-one-out) soft labels from teacher embeddings. `rows`: the teacher
    embeddings as a source of row blocks (see `projection`), one row per contig of `ids`."""
    if rows.n_rows != len(ids):
        raise InputError(f"{rows.n_rows} embeddings for {len(ids)} contigs.")
    z = principal_components(rows, n_components, seed=seed)
    neighbours = nearest_neighbours(z, n_neighbours, method=neighbour_search, seed=seed,
                                    stage="teacher: neighbours")
    del z
    report("teacher: neighbour vote", 0, 1)
    soft = neighbour_vote(neighbours, labels, tree, ids)
    report("teacher: neighbour vote", 1, 1)
    return soft
