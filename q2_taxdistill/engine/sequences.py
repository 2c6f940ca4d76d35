"""Contig sequences: a streaming FASTA reader (plain or gzip) and the validated `Contigs` set.

Sequences are cleaned once, on the way in, to the alphabet ACGTN so that every later stage
(k-mer counting, language-model tokenisation) can rely on it: lowercase (soft-masking) is
uppercased and every other symbol (IUPAC ambiguity codes, gaps, '*') becomes N.
"""

import gzip
import io
import os
from typing import Iterable, Iterator, List, Optional, Tuple

import numpy as np
import pandas as pd

from .errors import InputError, preview

_GZIP_MAGIC = b"\x1f\x8b"

# bytes.translate table: ACGT (either case) keep their uppercase letter, everything else is N.
_CLEAN_TABLE = bytes(
    (c if chr(c) in "ACGT" else (c - 32 if chr(c) in "acgt" else ord("N"))) for c in range(256)
)


def _open_text(path) -> io.TextIOBase:
    """Open plain or gzip text by magic bytes, so a gzipped file named `.fa` still reads."""
    with open(path, "rb") as handle:
        magic = handle.read(2)
    if magic == _GZIP_MAGIC:
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", errors="replace")
    return open(path, "r", encoding="utf-8", errors="replace")


def read_fasta(path) -> Iterator[Tuple[str, str]]:
    """Yield `(id, sequence)` from a FASTA file, one record at a time.

    The ID is the first whitespace-separated token of the header (the rest is a description).
    The sequence is uppercased with whitespace removed; other symbols are left for
    `clean_sequence`. Plain and gzip files are told apart by content, not by name.
    """
    path = os.fspath(path)
    with _open_text(path) as handle:
        record_id: Optional[str] = None
        chunks: List[str] = []
        for line_no, line in enumerate(handle, start=1):
            line = line.strip()
            if not line:
                continue
            if line.startswith(">"):
                if record_id is not None:
                    yield record_id, "".join(chunks).upper()
                tokens = line[1:].split(None, 1)
                if not tokens:
                    raise InputError(
                        f"{path} line {line_no}: FASTA header without a sequence ID."
                    )
                record_id = tokens[0]
                chunks = []
            elif record_id is None:
                raise InputError(
                    f"{path} is not a FASTA file: line {line_no} should start with '>' "
                    f"but reads {line[:40]!r}."
                )
            else:
                chunks.append("".join(line.split()))
        if record_id is not None:
            yield record_id, "".join(chunks).upper()


def clean_sequence(seq: str) -> str:
    """Uppercase and map every symbol other than A, C, G, T to N (length is preserved)."""
    # errors="replace" turns each non-ASCII character into one '?', which then becomes N.
    return seq.encode("ascii", "replace").translate(_CLEAN_TABLE).decode("ascii")


def _count_acgt(seq: str) -> int:
    """A, C, G, T in an uppercased sequence (everything else becomes N when cleaned); deleting
    them from the bytes is ~20x faster than four `str.count` passes."""
    return len(seq) - len(seq.encode("ascii", "replace").translate(None, b"ACGT"))


def _first_duplicates(ids: Iterable[str]) -> List[str]:
    seen = set()
    dups: List[str] = []
    reported = set()
    for i in ids:
        if i in seen and i not in reported:
            dups.append(i)
            reported.add(i)
        seen.add(i)
    return dups


class Contigs:
    """An ordered set of contigs with unique IDs and cleaned (ACGTN) sequences.

    Construction validates: equal numbers of IDs and sequences, at least one contig, unique
    IDs, no empty sequence. Sequences are cleaned with `clean_sequence` (idempotent).

    `from_fasta(path, stream=True)` keeps only IDs and lengths in memory and re-reads the
    file whenever sequences are iterated: features are computed one contig at a time, so an
    assembly of several gigabases does not have to fit in memory as text.
    """

    def __init__(self, ids, sequences, source: str = "contigs"):
        ids = [str(i) for i in ids]
        seqs = [clean_sequence(s) for s in sequences]
        if len(ids) != len(seqs):
            raise InputError(f"{source}: {len(ids)} contig IDs but {len(seqs)} sequences.")
        self._init(ids, np.fromiter((len(s) for s in seqs), np.int64, count=len(seqs)), source)
        self._acgt = np.fromiter((len(s) - s.count("N") for s in seqs), np.int64, count=len(seqs))
        self._sequences: Optional[List[str]] = seqs
        self._path: Optional[str] = None
        self._keep: Optional[np.ndarray] = None

    def _init(self, ids: List[str], lengths: np.ndarray, source: str):
        if not ids:
            raise InputError(f"{source} contains no sequences.")
        dups = _first_duplicates(ids)
        if dups:
            raise InputError(f"{source} has {len(dups)} duplicated contig ID(s): {preview(dups)}.")
        empty = [i for i, n in zip(ids, lengths) if n == 0]
        if empty:
            raise InputError(
                f"{source} has {len(empty)} contig(s) with an empty sequence: {preview(empty)}.")
        self.ids = ids
        self.source = source
        self._lengths = lengths
        self._index = {i: n for n, i in enumerate(ids)}

    @classmethod
    def from_pairs(cls, pairs: Iterable[Tuple[str, str]], source: str = "contigs") -> "Contigs":
        """Build from `(id, sequence)` pairs, e.g. `read_fasta(path)` or `zip(ids, seqs)`."""
        ids: List[str] = []
        seqs: List[str] = []
        for record_id, seq in pairs:
            ids.append(record_id)
            seqs.append(seq)
        return cls(ids, seqs, source=source)

    @classmethod
    def from_fasta(cls, path, stream: bool = False) -> "Contigs":
        """Read and validate a plain or gzip FASTA file (`stream`: keep only IDs and lengths)."""
        path = os.fspath(path)
        if not stream:
            return cls.from_pairs(read_fasta(path), source=path)
        ids: List[str] = []
        lengths: List[int] = []
        acgt: List[int] = []
        for record_id, seq in read_fasta(path):
            ids.append(record_id)
            lengths.append(len(seq))
            acgt.append(_count_acgt(seq))
        return cls._streamed(ids, np.asarray(lengths, dtype=np.int64), path, keep=None,
                             acgt=np.asarray(acgt, dtype=np.int64))

    @classmethod
    def _streamed(cls, ids, lengths, path, keep, acgt) -> "Contigs":
        """Contigs whose sequences stay in `path`; `keep` marks the file's records in the set
        (None: all of them)."""
        contigs = cls.__new__(cls)
        contigs._init(ids, lengths, path)
        contigs._acgt = acgt
        contigs._sequences = None
        contigs._path = path
        contigs._keep = keep
        return contigs

    @property
    def streamed(self) -> bool:
        return self._sequences is None

    def iter_sequences(self) -> Iterator[str]:
        """Cleaned sequences in contig order, one at a time (from the file when streamed)."""
        if self._sequences is not None:
            yield from self._sequences
            return
        expected = iter(self.ids)
        for n, (record_id, seq) in enumerate(read_fasta(self._path)):
            if self._keep is not None and not self._keep[n]:
                continue
            if record_id != next(expected, None):
                raise InputError(f"{self._path} changed while it was being read.")
            yield clean_sequence(seq)
        if next(expected, None) is not None:
            raise InputError(f"{self._path} changed while it was being read.")

    @property
    def sequences(self) -> List[str]:
        """All sequences as a list (read into memory when streamed)."""
        if self._sequences is not None:
            return self._sequences
        return list(self.iter_sequences())

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, contig_id) -> bool:
        return contig_id in self._index

    def __eq__(self, other) -> bool:
        if not isinstance(other, Contigs):
            return NotImplemented
        return self.ids == other.ids and self.sequences == other.sequences

    def __repr__(self) -> str:
        return f"Contigs({len(self)} from {self.source!r}{', streamed' if self.streamed else ''})"

    @property
    def lengths(self) -> np.ndarray:
        """Sequence lengths (bp) as int64, in contig order."""
        return self._lengths.copy()

    @property
    def acgt_lengths(self) -> np.ndarray:
        """Unambiguous bases (A, C, G, T) per contig: what k-mers and models can read."""
        return self._acgt.copy()

    def unscored(self, min_length: int) -> Tuple[np.ndarray, np.ndarray]:
        """The contigs with too little sequence to judge, as two masks: `short` (fewer than
        `min_length` bases) and `thin` (long enough, but fewer than `min_length` unambiguous
        bases). The rest is what every step scores and embeds, the sharded embedding included."""
        short = self._lengths < min_length
        return short, ~short & (self._acgt < min_length)

    def lengths_series(self) -> pd.Series:
        """Lengths indexed by contig ID (the form `abundance.depth_from_counts` takes)."""
        return pd.Series(self.lengths, index=pd.Index(self.ids, name="contig"), name="length")

    def index_of(self, contig_id: str) -> int:
        """Position of one contig; InputError if it is not in the set."""
        try:
            return self._index[contig_id]
        except KeyError:
            raise InputError(f"contig ID {contig_id!r} is not in {self.source}.") from None

    def indices(self, ids: Iterable[str], what: str = "requested IDs") -> np.ndarray:
        """Positions (int64) of many contigs, in the order given; InputError names any missing."""
        ids = list(ids)
        missing = [i for i in ids if i not in self._index]
        if missing:
            raise InputError(
                f"{len(missing)} of the {what} are not in {self.source}: {preview(missing)}."
            )
        return np.fromiter((self._index[i] for i in ids), dtype=np.int64, count=len(ids))

    def subset(self, ids: Iterable[str]) -> "Contigs":
        """The contigs with these IDs, in the requested order (still streamed when the order
        is the file's)."""
        ids = list(ids)
        positions = self.indices(ids)
        if self._sequences is not None or np.any(np.diff(positions) <= 0):
            seqs = self.sequences
            return Contigs([self.ids[p] for p in positions], [seqs[p] for p in positions],
                           source=self.source)
        keep = np.zeros(len(self), dtype=bool)
        keep[positions] = True
        if self._keep is not None:
            full = self._keep.copy()
            full[np.flatnonzero(self._keep)] = keep
            keep = full
        return Contigs._streamed([self.ids[p] for p in positions], self._lengths[positions],
                                 self._path, keep, self._acgt[positions])
