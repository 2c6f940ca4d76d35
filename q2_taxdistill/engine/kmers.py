"""Canonical k-mer counting: tetranucleotide frequencies (TNF) and k-mer spectra, k = 1..8.

A k-mer and its reverse complement are one canonical class (contigs come from either strand),
with the class represented by the lexicographically smaller of the two (order A < C < G < T).
Class ids follow that order, so they are stable across runs and machines. Class counts:
k=1: 2, 2: 10, 3: 32, 4: 136, 5: 512, 6: 2080.

TNF keeps all 136 canonical tetramers. Taxometer/Vamb project TNF onto a 103-dimensional
basis that removes the linear dependencies between tetramer frequencies; we keep the 136
frequencies instead because they are lossless and the student's first (linear) layer can
learn any linear projection of them, including that one.

Counting is vectorised per contig: bases become codes through a 256-entry lookup table,
the k-mer index rolls forward as idx_k = idx_{k-1} * 4 + code, and windows touching any
base other than A/C/G/T are sent to a sentinel bin that is discarded. All k of a spectrum
come from one such pass per contig. (One bincount over a whole block of contigs, binned by
contig and k-mer, was measured 2x slower: its table no longer fits the cache.)
`iter_kmer_spectra` hands the rows over in blocks, so a caller (the teacher's projection)
never holds millions of rows at once. Inputs of more than two blocks are counted in forked
worker processes, a block each, handed over in block order: counts are exact, so the
result does not depend on the number of workers.
"""

import multiprocessing
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from functools import lru_cache
from typing import Callable, Iterable, Iterator, Optional, Sequence, Tuple

import numpy as np

from .processors import available_processors, can_fork

MAX_K = 8
N_TNF = 136  # canonical tetramers
# Rows handed over at a time by `iter_kmer_spectra` (at most ~4 MB of sequence or 1,000
# contigs: 11 MB of spectra at k = 1..6).
BLOCK_BASES = 4_000_000
BLOCK_ROWS = 1000
# Counting workers at most: numpy counting in separate processes does not spin as torch's
# threads do, so they are not cut for other work; blocks in flight per worker.
MAX_WORKERS = 4
IN_FLIGHT = 2

# A/C/G/T (either case) -> 0..3, anything else -> 4 (replaced per k_max by `_code_table`).
_BASE_CODES = np.full(256, 4, dtype=np.uint8)
for _code, _bases in enumerate(("Aa", "Cc", "Gg", "Tt")):
    for _b in _bases:
        _BASE_CODES[ord(_b)] = _code


def _check_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= MAX_K:
        raise ValueError(f"k must be an integer between 1 and {MAX_K}, got {k!r}.")
    return int(k)


@lru_cache(maxsize=None)
def _canonical_cached(k: int) -> Tuple[np.ndarray, int]:
    kmers = np.arange(4 ** k, dtype=np.int64)
    revcomp = np.zeros_like(kmers)
    rest = kmers.copy()
    for _ in range(k):
        revcomp = revcomp * 4 + (3 - rest % 4)
        rest //= 4
    canonical = np.minimum(kmers, revcomp)
    _, class_of = np.unique(canonical, return_inverse=True)
    class_of = class_of.astype(np.int64).reshape(-1)
    class_of.setflags(write=False)
    return class_of, int(class_of.max()) + 1


def canonical_index(k: int) -> Tuple[np.ndarray, int]:
    """Map every k-mer index (base-4, A=0 C=1 G=2 T=3, first base most significant) to its
    canonical class id; returns `(class_of, n_classes)`. The array is shared and read-only."""
    return _canonical_cached(_check_k(k))


@lru_cache(maxsize=None)
def _code_table(k_max: int) -> np.ndarray:
    """Lookup table whose invalid code 4**k_max pushes every window containing it to or
    above 4**k for all k <= k_max; after clipping to the sentinel 4**k it stays invalid
    (sentinel * 4 + code >= 4**(k+1)). Codes are intp because `np.bincount` would otherwise
    copy its input to intp, which costs more than the wider arithmetic saves."""
    table = _BASE_CODES.astype(np.intp)
    table[table == 4] = 4 ** k_max
    table.setflags(write=False)
    return table


def _codes(seq: str, k_max: int) -> np.ndarray:
    return _code_table(k_max)[np.frombuffer(seq.encode("ascii", "replace"), dtype=np.uint8)]


def _rolling_counts(seq: str, ks: Sequence[int]) -> dict:
    """Raw (non-canonical) k-mer counts, {k: int64 array of 4**k}, for every k in `ks`."""
    k_max = max(ks)
    wanted = set(ks)
    out = {}
    idx = _codes(seq, k_max)
    codes = idx.copy() if k_max > 1 else idx
    for k in range(1, k_max + 1):
        size = 4 ** k
        if k > 1:
            # Window starting at i extends the (k-1)-window at i by the base at i + k - 1.
            n = len(idx) - 1
            if n <= 0:
                idx = idx[:0]
            else:
                idx = idx[:n]
                idx <<= 2
                idx += codes[k - 1:k - 1 + n]
        np.minimum(idx, size, out=idx)
        if k in wanted:
            out[k] = np.bincount(idx, minlength=size + 1)[:size].astype(np.int64, copy=False)
    return out


def _to_canonical(raw: np.ndarray, k: int) -> np.ndarray:
    class_of, n_classes = canonical_index(k)
    return np.bincount(class_of, weights=raw, minlength=n_classes).astype(np.int64)


def kmer_counts(seq: str, k: int) -> np.ndarray:
    """Canonical k-mer counts (int64, one per class) of one sequence; windows with N skipped."""
    k = _check_k(k)
    return _to_canonical(_rolling_counts(seq, [k])[k], k)


def _stream(sequences) -> Tuple[Iterable[str], int]:
    """(iterable of sequences, count): a `Contigs` is read one contig at a time."""
    if isinstance(sequences, str):
        raise TypeError("expected a collection of sequences, got a single string.")
    if hasattr(sequences, "iter_sequences"):
        return sequences.iter_sequences(), len(sequences)
    seqs = sequences if isinstance(sequences, (list, tuple)) else list(sequences)
    return seqs, len(seqs)


def _blocks(seqs, total, select):
    """(rows read so far, list of selected sequences), in blocks of about BLOCK_BASES bases or
    BLOCK_ROWS sequences."""
    block, bases, row = [], 0, -1
    for row, seq in enumerate(seqs):
        if row >= total:
            raise ValueError(f"more sequences than the {total} announced.")
        if select is not None and not select[row]:
            continue
        block.append(seq)
        bases += len(seq)
        if bases >= BLOCK_BASES or len(block) >= BLOCK_ROWS:
            yield row + 1, block
            block, bases = [], 0
    if row + 1 != total:
        raise ValueError(f"{row + 1} sequences where {total} were announced.")
    if block or total == 0:
        yield total, block


def _check_spectra_args(ks, pseudocount):
    ks = [_check_k(k) for k in ks]
    if not ks:
        raise ValueError("ks must name at least one k.")
    if pseudocount < 0 or not np.isfinite(pseudocount):
        raise ValueError(f"pseudocount must be a finite number >= 0, got {float(pseudocount)!r}.")
    widths = [canonical_index(k)[1] for k in ks]
    return ks, np.concatenate([[0], np.cumsum(widths)]).astype(int)


def _fill(out, block, ks, offsets, pseudocount):
    """Frequencies of the sequences in `block` into the rows of `out`."""
    distinct = sorted(set(ks))
    for row, seq in enumerate(block):
        raw = _rolling_counts(seq, distinct)
        for b, k in enumerate(ks):
            out[row, offsets[b]:offsets[b + 1]] = _to_canonical(raw[k], k)
    for b in range(len(ks)):
        part = out[:, offsets[b]:offsets[b + 1]]
        if pseudocount:
            part += np.float32(pseudocount)
        totals = part.sum(axis=1, keepdims=True, dtype=np.float64)
        empty = totals[:, 0] <= 0
        part[empty] = 1.0
        totals[empty] = part.shape[1]
        part /= totals.astype(np.float32)


def _count_block(block, ks, offsets, pseudocount):
    out = np.zeros((len(block), int(offsets[-1])), dtype=np.float32)
    _fill(out, block, ks, offsets, pseudocount)
    return out


def _total_bases(sequences):
    if hasattr(sequences, "lengths"):
        return int(np.sum(sequences.lengths))
    if isinstance(sequences, (list, tuple)):
        return sum(len(s) for s in sequences)
    return 0


def _workers(sequences, workers):
    """Counting workers: the given number, or (None) the available processors (at most
    `MAX_WORKERS`) where the input is more than two blocks and fork exists, else 1."""
    if workers is None:
        big = _total_bases(sequences) > 2 * BLOCK_BASES
        workers = min(MAX_WORKERS, available_processors()) if big and can_fork() else 1
    return max(1, int(workers))


def _counted(seqs, total, select, ks, offsets, pseudocount, workers):
    """(rows read so far, the block's spectra) in block order, counted here or by `workers`
    forked processes with at most `IN_FLIGHT` blocks each waiting."""
    blocks = _blocks(seqs, total, select)
    if workers <= 1:
        for done, block in blocks:
            yield done, _count_block(block, ks, offsets, pseudocount)
        return
    with ProcessPoolExecutor(max_workers=workers,
                             mp_context=multiprocessing.get_context("fork")) as pool:
        pending = deque()
        for done, block in blocks:
            pending.append((done, pool.submit(_count_block, block, ks, offsets, pseudocount)))
            if len(pending) >= IN_FLIGHT * workers:
                done_first, future = pending.popleft()
                yield done_first, future.result()
        while pending:
            done_first, future = pending.popleft()
            yield done_first, future.result()


def iter_kmer_spectra(
    sequences,
    ks: Iterable[int] = (1, 2, 3, 4, 5, 6),
    pseudocount: float = 0.0,
    progress: Optional[Callable[[int, int], None]] = None,
    select: Optional[np.ndarray] = None,
    workers: Optional[int] = None,
) -> Iterator[np.ndarray]:
    """`kmer_spectra` in consecutive row blocks (float32), for callers that never hold the
    whole matrix. `select` (bool, one per sequence): only those rows, in order (the others
    are read past, not counted). `workers`: counting processes (default: see `_workers`)."""
    ks, offsets = _check_spectra_args(ks, pseudocount)
    n_workers = _workers(sequences, workers)
    seqs, total = _stream(sequences)
    if select is not None and len(select) != total:
        raise ValueError(f"select has {len(select)} entries for {total} sequences.")
    for done, out in _counted(seqs, total, select, ks, offsets, pseudocount, n_workers):
        if progress is not None:
            progress(done, total)
        yield out


def kmer_spectra(
    sequences,
    ks: Iterable[int] = (1, 2, 3, 4, 5, 6),
    pseudocount: float = 0.0,
    progress: Optional[Callable[[int, int], None]] = None,
    workers: Optional[int] = None,
) -> np.ndarray:
    """Concatenated canonical k-mer frequencies (float32, n x sum of class counts).

    Each k's block sums to 1 per row; a contig with no valid k-mer gets a uniform block.
    `sequences` is a list of strings or a `Contigs` (streamed from its file). All ks come
    from one pass per contig; `progress(done, total)` is called after each block of rows.
    """
    ks, offsets = _check_spectra_args(ks, pseudocount)
    n_workers = _workers(sequences, workers)
    seqs, total = _stream(sequences)
    out = np.zeros((total, int(offsets[-1])), dtype=np.float32)
    row = 0
    for done, block in _counted(seqs, total, None, ks, offsets, pseudocount, n_workers):
        out[row:row + len(block)] = block
        row += len(block)
        if progress is not None:
            progress(done, total)
    return out


def kmer_frequencies(
    sequences,
    k: int,
    pseudocount: float = 0.0,
    progress: Optional[Callable[[int, int], None]] = None,
) -> np.ndarray:
    """Canonical k-mer frequencies (float32, n x n_classes(k)); rows sum to 1, uniform if empty."""
    return kmer_spectra(sequences, ks=(k,), pseudocount=pseudocount, progress=progress)


def tnf(sequences, progress: Optional[Callable[[int, int], None]] = None) -> np.ndarray:
    """Tetranucleotide frequencies: 136 canonical tetramers per contig (float32, rows sum to 1)."""
    return kmer_frequencies(sequences, 4, progress=progress)
