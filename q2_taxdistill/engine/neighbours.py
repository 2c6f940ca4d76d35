"""k-nearest-neighbour graphs: exact for small inputs, approximate (faiss IVF) for large ones.

Contigs of one genome lie close together in composition and co-abundance space; the
neighbour graph is how labels propagate inside a genome without clustering. An exact graph
compares every pair (in bounded blocks with torch), which grows with the square of the
contig count: 5.5 s for 10^4 rows, hours for 10^6. Above `EXACT_MAX_ROWS` rows the graph
comes from an inverted-file index (faiss `IndexIVFFlat`): k-means splits the rows into
lists of about `LIST_SIZE` rows, and each query compares exact distances with the rows of
its `N_PROBE` nearest lists only, so that part costs the same per row at any n. Two parts
still grow as n^2 / LIST_SIZE: the k-means (on 64 rows per list) and finding each row's
lists. At 4 x 10^5 rows in ~150 dimensions they took ~10 s (the k-means, profiled in the
correction graph, 50 s in all) and ~13 s (adding and searching every row's lists, timed on
synthetic rows); extrapolated, ~2.5 min at 10^6 rows, but hours at 10^7. At that size
the lists need a hierarchical quantizer (e.g. faiss's HNSW over the list centres), which
is not built here.

Why IVF from faiss (measured with `benchmarks/neighbour_libraries.py`, 2 cores, k = 50 on the
teacher's 64 components): on 107,670 contigs it found 0.985 of the exact neighbours in 5 s and
the same graph on every run; HNSW graphs (faiss, hnswlib) found 0.995-0.997 in 9-20 s, and
built on several threads they differ from run to run (hnswlib on one thread had not built and
searched 10^6 rows after 10 minutes). On 10^6 contigs (the scale benchmark's) it found all of them
(1.000) in 80 s, where faiss's usual list count (4 sqrt(n) lists, 32 probed) took 152 s,
its k-means being the cost. On 10^6 synthetic rows in 400 overlapping Gaussian clusters, a
harder case than contigs, it found 0.86. pynndescent needs numba (a JIT compiler, ~100 MB)
and is reproducible only on one thread. faiss-cpu is one wheel (numpy its only dependency),
maintained by Meta, and on conda-forge for QIIME 2 environments.
"""
import numpy as np

from .parameters import DEFAULTS
from .progress import report

EXACT_MAX_ROWS = 20_000
LIST_SIZE = 250
N_PROBE = 16
QUERY_BLOCK = 65_536
METHODS = ("auto", "exact", "approximate")


def nearest_neighbours(x, k, method="auto", seed=DEFAULTS.seed, stage="neighbours"):
    """Indices (n, k) of each row's k nearest other rows of `x` (Euclidean; a row is never its
    own neighbour, so a contig's own label never votes for it). `method`: `exact`,
    `approximate` (faiss IVF) or `auto` (exact up to `EXACT_MAX_ROWS` rows). The result is
    the same for the same rows and `seed`."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}.")
    x = np.ascontiguousarray(x, dtype=np.float32)
    k = min(k, len(x) - 1)
    if k <= 0:
        return np.zeros((len(x), 0), dtype=np.int64)
    if method == "exact" or (method == "auto" and len(x) <= EXACT_MAX_ROWS):
        return _exact(x, k, stage)
    return _approximate(x, k, seed, stage)


def _exact(x, k, stage, block=512):
    import torch  # here, not at the top: loading the plugin does not import torch

    ref = torch.from_numpy(x)
    ref_sq = (ref * ref).sum(1)
    out = np.empty((len(x), k), dtype=np.int64)
    for start in range(0, len(x), block):
        q = ref[start:start + block]
        # ref_sq - 2 q.ref, in place: one block x n matrix, not three (48 MB at n = 7,839);
        # the same numbers (-2m + s is s - 2m exactly).
        d = q @ ref.T
        d.mul_(-2.0).add_(ref_sq)
        rows = torch.arange(q.shape[0])
        d[rows, rows + start] = float("inf")
        out[start:start + q.shape[0]] = torch.topk(d, k, dim=1, largest=False).indices.numpy()
        report(stage, min(start + block, len(x)), len(x))
    return out


def _drop_self(found, start, k):
    """Rows of `found` (k + 1 candidates, nearest first) without the query itself; where it
    is missing (another row at distance 0 took its place) the farthest candidate goes."""
    own = np.arange(start, start + len(found))[:, None]
    is_self = found == own
    is_self[~is_self.any(1), -1] = True
    return found[~is_self].reshape(len(found), k)


def _approximate(x, k, seed, stage):
    import faiss

    n, d = x.shape
    n_lists = max(1, int(round(n / LIST_SIZE)))
    index = faiss.IndexIVFFlat(faiss.IndexFlatL2(d), d, n_lists)
    index.cp.seed = int(seed)
    index.cp.niter = 10
    index.cp.max_points_per_centroid = 64  # k-means on a seeded sample of 64 rows per list
    index.cp.min_points_per_centroid = 1
    report(stage, message=f"approximate search: {n_lists} lists of ~{LIST_SIZE} rows, "
                          f"{min(N_PROBE, n_lists)} searched per contig")
    index.train(x)
    index.add(x)
    index.nprobe = min(N_PROBE, n_lists)
    out = np.empty((n, k), dtype=np.int64)
    for start in range(0, n, QUERY_BLOCK):
        _, found = index.search(x[start:start + QUERY_BLOCK], k + 1)
        out[start:start + len(found)] = _drop_self(found, start, k)
        report(stage, min(start + QUERY_BLOCK, n), n)
    if (out < 0).any():
        # A list smaller than k + 1 rows and no other list probed: search those rows exactly.
        short = np.flatnonzero((out < 0).any(1))
        out[short] = _exact_rows(x, short, k)
    return out


def _exact_rows(x, rows, k):
    """Exact neighbours of the given rows only (a fallback for a handful of rows)."""
    import torch

    ref = torch.from_numpy(x)
    q = ref[torch.from_numpy(rows)]
    d = (ref * ref).sum(1)[None, :] - 2.0 * (q @ ref.T)
    d[torch.arange(len(rows)), torch.from_numpy(rows)] = float("inf")
    return torch.topk(d, k, dim=1, largest=False).indices.numpy()
