"""Per-rank precision, recall and F1 of contig taxonomy, scored the way the benchmark scores it.

Lineages are read by the engine's parser (`taxonomy.parse_lineage`: the same ranks, domain
rules and placeholders as the labels a run learns from, so a name the engine treats as no
name, e.g. `uncultured bacterium` or kaiju's `Unspecified`, is no name here either), then
compared after lower-casing, turning `_` into a space and collapsing whitespace. Over the
contigs whose truth names rank r: Correct = same name at r, Wrong = another name at r,
NoLabel = no name at r or a confidence below the threshold (contigs absent from the
prediction count as NoLabel); precision = C/(C+W), recall = C/(C+W+N).
"""
from collections.abc import Mapping

import numpy as np
import pandas as pd

from .errors import InputError, preview
from .taxonomy import RANKS, normalise_name, parse_lineage

COLUMNS = ("correct", "wrong", "unlabelled", "precision", "recall", "f1")


def _missing(value):
    """None, NaN or pd.NA: a contig listed without any label."""
    return value is None or (not isinstance(value, str) and bool(pd.isna(value)))


def lineage_elements(lineage):
    """The names of a lineage by rank index (0 = domain ... 6 = species), as the engine
    parses them: a 7-list of the names as written (stripped), None where there is no name.
    Raises InputError for a lineage the engine rejects."""
    if _missing(lineage):
        return [None] * len(RANKS)
    return list(parse_lineage(lineage if isinstance(lineage, str) else str(lineage)))


def ranked_names(lineage):
    """The normalised names of a lineage as a 7-tuple (None where unnamed)."""
    return tuple(None if n is None else normalise_name(n) for n in lineage_elements(lineage))


def name_matrix(lineages, index=None):
    """A (contigs x 7) object array of normalised names, parsing each distinct lineage once.
    Raises InputError naming the first feature IDs whose lineage cannot be parsed."""
    values = pd.Series(lineages, index=index)
    cache, bad, first = {}, [], None
    rows = []
    for feature_id, value in zip(values.index, values.to_numpy(dtype=object)):
        key = None if _missing(value) else value
        if key not in cache:
            try:
                cache[key] = ranked_names(key)
            except InputError as error:
                cache[key] = None
                first = first or str(error)
        if cache[key] is None:
            bad.append(feature_id)
            rows.append((None,) * len(RANKS))
        else:
            rows.append(cache[key])
    if bad:
        raise InputError(f"{len(bad)} lineage(s) cannot be parsed, for feature ID(s) "
                         f"{preview(bad)}. First problem: {first}")
    matrix = np.empty((len(rows), len(RANKS)), dtype=object)
    if rows:
        matrix[:, :] = rows
    return matrix


def _check_unique(series, what):
    if series.index.has_duplicates:
        dup = series.index[series.index.duplicated()].unique()[:5]
        raise ValueError(f"{what} lists these feature IDs more than once: "
                         f"{', '.join(map(str, dup))}")


def _rank_thresholds(threshold):
    """One threshold (or None) per rank from a number, a {rank: value} mapping, or None."""
    if threshold is None:
        return [None] * len(RANKS)
    if isinstance(threshold, Mapping):
        unknown = set(threshold) - set(RANKS)
        if unknown:
            raise ValueError(f"unknown rank(s) in thresholds: {', '.join(sorted(unknown))}")
        return [None if threshold.get(r) is None else float(threshold[r]) for r in RANKS]
    return [float(threshold)] * len(RANKS)


class _Prepared:
    """Truth and prediction parsed once, aligned on the truth's feature IDs."""

    def __init__(self, predicted, truth, confidence):
        predicted, truth = pd.Series(predicted), pd.Series(truth)
        _check_unique(predicted, "the prediction")
        _check_unique(truth, "the truth")
        self.truth = name_matrix(truth)
        self.predicted = name_matrix(predicted.reindex(truth.index))
        if confidence is None:
            self.confidence = np.full(len(truth), np.nan)
        else:
            confidence = pd.Series(confidence)
            _check_unique(confidence, "the confidence")
            values = pd.to_numeric(confidence.reindex(truth.index), errors="coerce")
            values = values.to_numpy(dtype=float, na_value=np.nan)
            # No score (empty, NaN, negative) never hides a label.
            self.confidence = np.where(values < 0, np.nan, values)
        self.has_truth = np.not_equal(self.truth, None)
        self.has_pred = np.not_equal(self.predicted, None)
        self.same = self.truth == self.predicted

    def counts(self, thresholds):
        """(7 x 3) correct / wrong / unlabelled counts under per-rank thresholds."""
        out = np.zeros((len(RANKS), 3), dtype=np.int64)
        for r, thr in enumerate(thresholds):
            truth_r = self.has_truth[:, r]
            labelled = self.has_pred[:, r]
            if thr is not None:
                labelled = labelled & ~(self.confidence < thr)
            correct = int(np.count_nonzero(truth_r & labelled & self.same[:, r]))
            answered = int(np.count_nonzero(truth_r & labelled))
            out[r] = (correct, answered - correct, int(np.count_nonzero(truth_r)) - answered)
        return out


def precision_recall_f1(correct, wrong, unlabelled):
    """precision C/(C+W), recall C/(C+W+N), F1; 0 where undefined (arrays or scalars)."""
    c, w, n = (np.asarray(x, dtype=float) for x in (correct, wrong, unlabelled))
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(c + w > 0, c / (c + w), 0.0)
        recall = np.where(c + w + n > 0, c / (c + w + n), 0.0)
        f1 = np.where(precision + recall > 0,
                      2 * precision * recall / (precision + recall), 0.0)
    return precision, recall, f1


def _table(counts):
    precision, recall, f1 = precision_recall_f1(counts[:, 0], counts[:, 1], counts[:, 2])
    table = pd.DataFrame({"correct": counts[:, 0], "wrong": counts[:, 1],
                          "unlabelled": counts[:, 2], "precision": precision,
                          "recall": recall, "f1": f1},
                         index=pd.Index(list(RANKS), name="rank"))
    return table


def score_taxonomy(predicted, truth, confidence=None, threshold=None):
    """Per-rank correct / wrong / unlabelled counts with precision, recall and F1.

    predicted, truth: lineage strings indexed by feature ID. confidence: one score per
    feature ID for all ranks (missing, empty or negative = no score, never filtered).
    threshold: a number for every rank or a {rank: number} mapping; a label whose confidence
    is below it counts as unlabelled.
    """
    prepared = _Prepared(predicted, truth, confidence)
    return _table(prepared.counts(_rank_thresholds(threshold)))


def f1_by_threshold(predicted, truth, confidence, thresholds):
    """F1 per rank (columns) at each confidence threshold (index named `threshold`)."""
    prepared = _Prepared(predicted, truth, confidence)
    thresholds = [float(t) for t in thresholds]
    rows = []
    for thr in thresholds:
        counts = prepared.counts([thr] * len(RANKS))
        rows.append(precision_recall_f1(counts[:, 0], counts[:, 1], counts[:, 2])[2])
    return pd.DataFrame(np.array(rows, dtype=float).reshape(len(thresholds), len(RANKS)),
                        index=pd.Index(thresholds, name="threshold"), columns=list(RANKS))
