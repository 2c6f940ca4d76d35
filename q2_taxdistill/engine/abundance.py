"""Read counts -> per-sample depth -> co-abundance features for the student.

Contigs from one genome share an abundance profile across samples; Taxometer and Vamb feed
that profile to their networks after removing sequencing-depth differences between samples.
"""

from dataclasses import dataclass
from typing import List

import numpy as np
import pandas as pd

from .errors import InputError, preview


@dataclass(frozen=True)
class Abundance:
    """Depth per contig and sample, aligned to the requested contigs.

    `depth` (float64, index = contig IDs in the order of `lengths`, columns = `samples`);
    `dropped`: contigs present in the counts but not requested (e.g. filtered by length).
    """

    depth: pd.DataFrame
    samples: List[str]
    dropped: List[str]


def _duplicates(index: pd.Index) -> List[str]:
    return list(pd.unique(index[index.duplicated()]))


def depth_from_counts(counts: pd.DataFrame, lengths: pd.Series) -> Abundance:
    """Depth = read count / contig length (reads per base) for every contig in `lengths`.

    Reads per base times the read length is the mean depth of coverage, so for a fixed read
    length the two are proportional (and the features below are scale-free anyway).
    `counts` is contigs x samples (index = contig IDs); `lengths` is indexed by contig ID.
    Raises InputError for: no samples, duplicated contig or sample names, non-numeric,
    negative or non-finite counts, requested contigs missing from the counts, non-positive
    lengths, or a sample with no reads on the requested contigs.
    """
    if counts.shape[1] == 0:
        raise InputError("the read-count table has no samples (columns).")
    for axis, what in ((counts.index, "contig IDs"), (counts.columns, "sample names")):
        dups = _duplicates(axis)
        if dups:
            raise InputError(f"the read-count table has duplicated {what}: {preview(dups)}.")
    dups = _duplicates(lengths.index)
    if dups:
        raise InputError(f"the contig lengths have duplicated contig IDs: {preview(dups)}.")

    non_numeric = [c for c in counts.columns if not pd.api.types.is_numeric_dtype(counts[c])]
    if non_numeric:
        raise InputError(
            f"the read-count table has non-numeric values in sample(s) {preview(non_numeric)}."
        )
    lengths_values = pd.to_numeric(lengths, errors="coerce").to_numpy(dtype=np.float64)
    bad_len = ~(np.isfinite(lengths_values) & (lengths_values > 0))
    if bad_len.any():
        raise InputError(
            f"{int(bad_len.sum())} contig length(s) are not positive numbers, for contig(s) "
            f"{preview(lengths.index[bad_len])}."
        )

    wanted = lengths.index
    missing = wanted[~wanted.isin(counts.index)]
    if len(missing):
        hint = ""
        if counts.columns.isin(missing).any():
            hint = " The contig IDs are in the columns: the table looks transposed " \
                   "(it must have contigs as rows)."
        raise InputError(
            f"{len(missing)} of {len(wanted)} contigs have no row in the read-count table: "
            f"{preview(missing)}.{hint}"
        )
    dropped = [str(i) for i in counts.index[~counts.index.isin(wanted)]]

    values = counts.loc[wanted].to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values) | (values < 0)
    if bad.any():
        rows, cols = np.nonzero(bad)
        cells = [f"{wanted[r]}/{counts.columns[c]}" for r, c in zip(rows, cols)]
        raise InputError(
            f"the read-count table has {int(bad.sum())} negative, missing or non-finite "
            f"count(s), at contig/sample {preview(cells)}."
        )
    empty = counts.columns[values.sum(axis=0) == 0]
    if len(empty):
        raise InputError(
            f"sample(s) {preview(empty)} have no reads on any of the {len(wanted)} contigs."
        )

    depth = pd.DataFrame(
        values / lengths_values[:, None], index=wanted.copy(), columns=counts.columns.copy()
    )
    return Abundance(depth=depth, samples=[str(c) for c in counts.columns], dropped=dropped)


def abundance_features(depth) -> np.ndarray:
    """Co-abundance features (float32, n x (S + 1)) from depth (n contigs x S samples).

    With d[i, s] the depth of contig i in sample s and n the number of contigs:

        x[i, s] = d[i, s] * n / sum_j d[j, s]      each sample scaled to the same total, so
                                                    sequencing depth differences vanish
                                                    (1 = that sample's mean contig depth)
        p[i, s] = x[i, s] / sum_t x[i, t]          relative profile across samples
                                                    (1 / S for a contig with no reads)
        a[i]    = log(1 + mean_s x[i, s]),  z[i] = (a[i] - mean(a)) / std(a)

    Output columns: p[:, 0..S-1] then z (z is 0 when every contig has the same a). This is
    Vamb/Taxometer's normalisation with a per-dataset scale instead of per million.
    """
    frame = depth if isinstance(depth, pd.DataFrame) else None
    d = np.asarray(depth, dtype=np.float64)
    if d.ndim != 2 or d.shape[1] == 0:
        raise InputError(f"depth must be a contigs x samples matrix, got shape {d.shape}.")
    n, n_samples = d.shape
    if n == 0:
        return np.zeros((0, n_samples + 1), dtype=np.float32)
    names = list(frame.columns) if frame is not None else list(range(n_samples))
    bad_rows = np.nonzero(~np.isfinite(d).all(axis=1) | (d < 0).any(axis=1))[0]
    if len(bad_rows):
        rows = list(frame.index[bad_rows]) if frame is not None else list(bad_rows)
        raise InputError(f"depth has negative or non-finite values for contig(s) {preview(rows)}.")
    totals = d.sum(axis=0)
    empty = [names[s] for s in np.nonzero(totals <= 0)[0]]
    if empty:
        raise InputError(f"depth is zero for every contig in sample(s) {preview(empty)}.")

    x = d * (n / totals)
    row_sums = x.sum(axis=1, keepdims=True)
    zero = row_sums[:, 0] <= 0
    profile = np.divide(x, row_sums, out=np.full_like(x, 1.0 / n_samples), where=~zero[:, None])
    a = np.log1p(x.mean(axis=1))
    std = a.std()
    z = (a - a.mean()) / std if std > 0 else np.zeros_like(a)
    return np.concatenate([profile, z[:, None]], axis=1).astype(np.float32)
