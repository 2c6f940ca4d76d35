"""Exact k-nearest-neighbour graphs, computed in blocks with torch so memory stays bounded.

Contigs of one genome lie close together in composition and co-abundance space; the
neighbour graph is how labels propagate inside a genome without clustering.
"""
import numpy as np
import torch

from .progress import report


def _column_moments(x, block=128):
    """Column mean and standard deviation, in row blocks (np.std would allocate a copy of x)."""
    mean = x.mean(0, dtype=np.float64)
    squares = np.zeros(x.shape[1], dtype=np.float64)
    for start in range(0, x.shape[0], block):
        d = x[start:start + block] - mean
        squares += np.einsum("ij,ij->j", d, d)
    return mean.astype(np.float32), np.sqrt(squares / max(x.shape[0], 1)).astype(np.float32)


def standardise(x, mean=None, std=None, inplace=False):
    """Z-score columns; returns (z, mean, std) so the same transform can be stored and re-applied.
    `inplace`: overwrite a float32 `x` instead of allocating a second array of its size."""
    x = np.asarray(x, dtype=np.float32)
    if mean is None:
        mean, std = _column_moments(x)
    std = np.where(std > 1e-8, std, 1.0).astype(np.float32)
    z = x if inplace else x.copy()
    z -= mean
    z /= std
    return z, mean.astype(np.float32), std


def reduce_dimensions(x, n_components, seed=0, centred=False):
    """Project onto the top principal components (deterministic for a seed). `centred`: the
    columns already have mean 0 (e.g. standardised), which spares a copy of `x`."""
    x = torch.as_tensor(np.asarray(x, dtype=np.float32))
    if x.shape[1] <= n_components or x.shape[0] <= n_components:
        return x.numpy()
    if not centred:
        x = x - x.mean(0)
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        _, _, v = torch.pca_lowrank(x, q=n_components, center=False, niter=4)
    finally:
        torch.random.set_rng_state(generator_state)
    return (x @ v[:, :n_components]).numpy()


def nearest_neighbours(x, k, query=None, exclude_self=True, block=512, stage="neighbours"):
    """Indices (n_query, k) of the k nearest rows of `x` (Euclidean) for each query row.

    With `query=None` the queries are the rows of `x` and, when `exclude_self`, a row is not
    its own neighbour (leave-one-out: a contig's own label never votes for it).
    """
    ref = torch.as_tensor(np.asarray(x, dtype=np.float32))
    qry = ref if query is None else torch.as_tensor(np.asarray(query, dtype=np.float32))
    n_ref = ref.shape[0]
    drop_self = query is None and exclude_self
    k = min(k, n_ref - (1 if drop_self else 0))
    if k <= 0:
        return np.zeros((qry.shape[0], 0), dtype=np.int64)
    ref_sq = (ref * ref).sum(1)
    out = np.empty((qry.shape[0], k), dtype=np.int64)
    for start in range(0, qry.shape[0], block):
        q = qry[start:start + block]
        d = ref_sq[None, :] - 2.0 * (q @ ref.T)
        if drop_self:
            rows = torch.arange(q.shape[0])
            d[rows, rows + start] = float("inf")
        out[start:start + q.shape[0]] = torch.topk(d, k, dim=1, largest=False).indices.numpy()
        report(stage, min(start + block, qry.shape[0]), qry.shape[0])
    return out
