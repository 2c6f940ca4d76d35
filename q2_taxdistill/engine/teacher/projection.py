"""Standardised principal components of teacher embeddings, fitted and applied in row blocks.

Teacher embeddings are wide (2,772 k-mer frequencies, 1,536 dimensions for GenomeOcean-500M)
and an assembly has up to millions of contigs: 11 GB of k-mer spectra for 10^6 contigs. The
neighbour vote needs only their top principal components of the standardised columns (the
correlation matrix), so the rows never have to be in memory together: the column moments
and cross-products of a seeded sample of rows (every row up to `FIT_ROWS`) are accumulated
block by block, the components come from the eigendecomposition of that correlation matrix,
and a second pass projects every block. 10^5 rows pin down a few dozen leading components of
a 2,772-dimensional correlation matrix far beyond what a neighbour search can tell apart.

A source of rows is anything with `n_rows`, `n_columns` and `blocks(select=None)` yielding
float32 row blocks in row order (only the rows `select` marks, when given): `ArrayRows` for
an array or memory map, `CompositionTeacher.rows` for k-mer spectra counted on the way.
"""
from dataclasses import dataclass

import numpy as np

from ..errors import InputError, preview
from ..parameters import DEFAULTS
from ..progress import report

FIT_ROWS = 100_000
BLOCK_ROWS = 4096
# A source whose rows cost a pass to make (`counted`: k-mer spectra) and that the fitting
# sample holds whole keeps them from the fitting pass for the projection, up to this size
# (~11,500 contigs at k = 1..6, d = 2,772): counting them again cost 1.7 s of refine-taxonomy's
# ~17 s on 7,839 contigs. What it trades: teach's peak grows by at most this much, and stays
# below what distill and correct reach after it (torch and the student; dev-mosaic through
# q2cli: ~390 MB in teach against 486 MB overall); above it the spectra are counted twice.
KEEP_BYTES = 128 << 20


class ArrayRows:
    """Rows of an array or memory map (optionally `rows`, positions in the order wanted), read
    `BLOCK_ROWS` at a time; `ids` name the rows in messages."""

    def __init__(self, values, rows=None, ids=None):
        self.values = values
        self.rows = np.arange(len(values)) if rows is None else np.asarray(rows, dtype=np.int64)
        self.ids = ids
        self.n_rows = len(self.rows)
        self.n_columns = int(values.shape[1])

    def blocks(self, select=None):
        rows = self.rows if select is None else self.rows[np.asarray(select, dtype=bool)]
        for start in range(0, len(rows), BLOCK_ROWS):
            take = rows[start:start + BLOCK_ROWS]
            if len(take) and take[-1] - take[0] == len(take) - 1 and (np.diff(take) == 1).all():
                block = self.values[take[0]:take[-1] + 1]
            else:
                block = self.values[take]
            yield np.asarray(block, dtype=np.float32)


@dataclass
class Projection:
    """x -> ((x - mean) / std) @ components: standardised principal components."""

    mean: np.ndarray
    std: np.ndarray
    components: np.ndarray

    def __call__(self, block, rows=256):
        """In float64, `rows` rows at a time: a whole block's float64 copies (2 x 90 MB for
        4,096 rows of 2,772 columns) were fresh pages on every call, 8x slower than these
        reused small ones, for the same numbers row by row."""
        out = np.empty((len(block), self.components.shape[1]), dtype=np.float32)
        for start in range(0, len(block), rows):
            z = np.asarray(block[start:start + rows], dtype=np.float64) - self.mean
            z /= self.std
            out[start:start + rows] = z @ self.components
        return out


def _check_finite(block, positions, ids):
    """InputError naming the rows (`positions` of the block's rows) that hold NaN or inf."""
    bad = ~np.isfinite(block).all(1)
    if bad.any():
        where = positions[np.flatnonzero(bad)]
        names = [ids[i] for i in where] if ids is not None else where.tolist()
        raise InputError(f"teacher embeddings are not finite for contig(s) {preview(names)}.")


def fit_projection(source, n_components, seed=DEFAULTS.seed, fit_rows=FIT_ROWS, stage="teacher: fitting components",
                   keep=None):
    """Standardised principal components of `source`'s rows (a seeded sample of `fit_rows`
    when there are more). Columns that do not vary are left out of the correlation. `keep`:
    a list that gets every block read (as read), when given."""
    n = source.n_rows
    select = None
    if n > fit_rows:
        select = np.zeros(n, dtype=bool)
        select[np.random.default_rng(seed).choice(n, fit_rows, replace=False)] = True
    used = n if select is None else fit_rows
    positions = np.arange(n) if select is None else np.flatnonzero(select)
    ids = getattr(source, "ids", None)
    d = source.n_columns
    shift = None
    total = np.zeros(d, dtype=np.float64)
    products = np.zeros((d, d), dtype=np.float64)
    done = 0
    for block in source.blocks(select):
        _check_finite(block, positions[done:done + len(block)], ids)
        if keep is not None:
            keep.append(block)
        if shift is None:
            shift = block.mean(0, dtype=np.float64)  # accumulate around it: no cancellation
        centred = np.array(block, dtype=np.float32)
        centred -= shift.astype(np.float32)
        total += centred.sum(0, dtype=np.float64)
        products += centred.T @ centred
        done += len(block)
        report(stage, done, used)
    if shift is None:
        raise InputError("no teacher embeddings to project.")
    # Covariance, then correlation, in place: a d x d float64 matrix is 61 MB at d = 2,772.
    mean = total / used
    products /= used
    for start in range(0, d, 256):
        products[start:start + 256] -= np.outer(mean[start:start + 256], mean)
    std = np.sqrt(np.clip(np.diag(products), 0.0, None))
    varies = std > 1e-8
    safe = np.where(varies, std, 1.0)
    products /= safe[:, None]
    products /= safe[None, :]
    products[~varies, :] = 0.0
    products[:, ~varies] = 0.0
    k = min(n_components, int(varies.sum()), used)
    components = _leading_eigenvectors(products, k)
    # eigh's signs are arbitrary: make each component's largest loading positive.
    flip = np.sign(components[np.abs(components).argmax(0), np.arange(k)])
    components = components * np.where(flip == 0, 1.0, flip)
    return Projection(mean + shift, safe, components)


def _leading_eigenvectors(symmetric, k):
    """The `k` eigenvectors of the largest eigenvalues, largest first; only those are computed
    (LAPACK's MRRR driver, in place), so the memory is the matrix itself."""
    from scipy.linalg import eigh

    d = symmetric.shape[0]
    if k == 0:
        return np.zeros((d, 0))
    # LAPACK reads a Fortran-ordered matrix; handed this C-ordered one, scipy would copy it
    # first (61 MB at d = 2,772: the teacher's peak). Its transpose is that Fortran array,
    # without a copy, and its upper triangle is the lower triangle eigh read before (the
    # matrix is symmetric only up to rounding), so LAPACK gets the same numbers.
    _, vectors = eigh(symmetric.T, lower=False, subset_by_index=[d - k, d - 1], driver="evr",
                      overwrite_a=True, check_finite=False)
    return vectors[:, ::-1]


def _drain(blocks):
    """The blocks of a list in order, each let go once handed over."""
    blocks.reverse()
    while blocks:
        yield blocks.pop()


def principal_components(source, n_components, seed=DEFAULTS.seed, fit_rows=FIT_ROWS):
    """(n, <= n_components) float32: every row of `source` on the components fitted by
    `fit_projection`. With no more columns than `n_components` the components are a rotation
    of the standardised columns: the same distances."""
    ids = getattr(source, "ids", None)
    kept = None
    if getattr(source, "counted", False) and source.n_rows <= fit_rows \
            and source.n_rows * source.n_columns * 4 <= KEEP_BYTES:
        kept = []  # every row is in the fitting sample: count them once (see KEEP_BYTES)
    projection = fit_projection(source, n_components, seed, fit_rows, keep=kept)
    out = np.empty((source.n_rows, projection.components.shape[1]), dtype=np.float32)
    row = 0
    blocks = source.blocks() if kept is None else _drain(kept)
    for block in blocks:
        _check_finite(block, np.arange(row, row + len(block)), ids)
        out[row:row + len(block)] = projection(block)
        row += len(block)
        report("teacher: projecting on components", row, source.n_rows)
    return out
