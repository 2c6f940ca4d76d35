"""Contig sequences: a streaming FASTA reader (plain or gzip) and the validated `Contigs` set.

Sequences are cleaned once, on the way in, to the alphabet ACGTN so that every later stage
(k-mer counting, language-model tokenisation) can rely on it: lowercase (soft-masking) is
uppercased and every other symbol (IUPAC ambiguity codes, gaps, '*') becomes N.
"""

import gzip
import io
import os
from dataclasses import dataclass, field
from typing import Dict, Iterable, Iterator, List, Optional, Tuple

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


@dataclass(frozen=True)
class Contigs:
    """An ordered set of contigs with unique IDs and cleaned (ACGTN) sequences.

    Construction validates: equal numbers of IDs and sequences, at least one contig, unique
    IDs, no empty sequence. Sequences are cleaned with `clean_sequence` (idempotent).
    """

    ids: List[str]
    sequences: List[str]
    source: str = field(default="contigs", compare=False)
    _index: Dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        ids = [str(i) for i in self.ids]
        seqs = [clean_sequence(s) for s in self.sequences]
        if len(ids) != len(seqs):
            raise InputError(
                f"{self.source}: {len(ids)} contig IDs but {len(seqs)} sequences."
            )
        if not ids:
            raise InputError(f"{self.source} contains no sequences.")
        dups = _first_duplicates(ids)
        if dups:
            raise InputError(
                f"{self.source} has {len(dups)} duplicated contig ID(s): {preview(dups)}."
            )
        empty = [i for i, s in zip(ids, seqs) if not s]
        if empty:
            raise InputError(
                f"{self.source} has {len(empty)} contig(s) with an empty sequence: "
                f"{preview(empty)}."
            )
        object.__setattr__(self, "ids", ids)
        object.__setattr__(self, "sequences", seqs)
        object.__setattr__(self, "_index", {i: n for n, i in enumerate(ids)})

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
    def from_fasta(cls, path) -> "Contigs":
        """Read and validate a plain or gzip FASTA file."""
        path = os.fspath(path)
        return cls.from_pairs(read_fasta(path), source=path)

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, contig_id) -> bool:
        return contig_id in self._index

    @property
    def lengths(self) -> np.ndarray:
        """Sequence lengths (bp) as int64, in contig order."""
        return np.fromiter((len(s) for s in self.sequences), dtype=np.int64, count=len(self))

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
        """The contigs with these IDs, in the requested order."""
        ids = list(ids)
        positions = self.indices(ids)
        return Contigs(
            [self.ids[p] for p in positions],
            [self.sequences[p] for p in positions],
            source=self.source,
        )
