"""Lineages: parsing the formats classifiers write, formatting, and the per-rank class tree.

A lineage is always a 7-tuple over `RANKS` holding a name or None. None means "no name at
this rank": the label stops above it (truncated), the classifier skipped it, or it held a
placeholder such as `Unassigned` or `g__`.

Formats `parse_lineage` accepts (ranks split on ';', or on '|' when there is no ';'):

* QIIME 2 / GTDB: `d__Bacteria; p__Bacillota; ...; s__Bacillus subtilis` (spaces optional);
* MMseqs2: `d_Bacteria;p_Bacillota;...`, including `-_` (no rank) elements, which are dropped;
* Kraken2 via q2-annotate `kraken2-to-features`: `d__;k__;p__;...;s__` (8 ranks). `k__`
  (kingdom) is dropped when a `d__` rank is present; a lone `k__Bacteria` is the domain, as
  in Greengenes. Strain/infraspecific ranks (`s1__`, `ssp__`, `t__`, `g1__`...) are dropped;
* plain `Bacteria;Bacillota;...`: position = rank.

Leading `root` / `cellular organisms` elements (and `r__` elements) are dropped. Prefixed
elements are placed by their prefix, so a rank missing from the string stays None and deeper
ranks keep their position; empty elements (`d__Bacteria;;g__X`) are no rank. In a plain
lineage an empty element keeps its position (`Bacteria;;Bacilli` names domain and class).

Validation: prefixed ranks must run from domain to species (`g__X; d__Bacteria` is an
error), prefixes must be known. A name below an unnamed rank (`d__Bacteria; o__; g__X`: NCBI
genera without a family, unpropagated SILVA, q2-annotate's `containing` fillers) is valid
and kept as given; `skips_ranks` finds such lineages so that a run can say how many it read.
"""

import math
import re
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from .errors import InputError, preview

RANKS = ("domain", "phylum", "class", "order", "family", "genus", "species")
PREFIXES = ("d__", "p__", "c__", "o__", "f__", "g__", "s__")
N_RANKS = len(RANKS)

Lineage = Tuple[Optional[str], ...]
UNASSIGNED: Lineage = (None,) * N_RANKS

_RANK_OF_LETTER = {"d": 0, "p": 1, "c": 2, "o": 3, "f": 4, "g": 5, "s": 6}
# Prefixes of elements that are not one of our seven ranks and are dropped: root, MMseqs2
# "no rank", strain/subspecies (Kraken2 S1/S2, q2-annotate ssp__, MetaPhlAn t__) and
# Kraken2 intermediate ranks such as G1 or P2.
# Where each kept prefix sits from domain to species (kingdom between domain and phylum).
_ORDER = {**{letter: float(rank) for letter, rank in _RANK_OF_LETTER.items()}, "k": 0.5}
_DROPPED_PREFIX = re.compile(r"^(?:r|-|t|ssp|[dkpcofgs]\d+)$")
_PREFIXED = re.compile(r"^(ssp|[a-z]\d*|-)__?(.*)$", re.DOTALL)
_PLACEHOLDERS = frozenset({
    "", "unassigned", "unclassified", "unknown", "uncultured", "environmental samples",
    "unidentified", "metagenome", "na",
})
_LEADING_DROPPED = frozenset({"root", "cellular organisms"})


def is_placeholder(name: str) -> bool:
    """True for names that carry no taxonomic information (they parse to None)."""
    low = name.strip().lower()
    return (
        low in _PLACEHOLDERS
        or low.startswith(("unclassified ", "uncultured ", "containing "))
        or " containing " in low
    )


def _clean_name(name: str) -> Optional[str]:
    name = name.strip()
    return None if is_placeholder(name) else name


def _split(text: str) -> List[str]:
    sep = ";" if ";" in text or "|" not in text else "|"
    return [e.strip() for e in text.split(sep)]


def parse_lineage(text) -> Lineage:
    """Parse one lineage string into a 7-tuple of names (None where there is no name).

    None and NaN (an empty cell read by pandas) parse as unassigned. Raises InputError for
    a non-string, for mixed prefixed and plain elements, for a plain lineage with more
    than seven ranks, and for two different names with the same rank prefix.
    """
    if text is None or (isinstance(text, float) and math.isnan(text)):
        return UNASSIGNED
    if not isinstance(text, str):
        raise InputError(f"a lineage must be text, got {type(text).__name__} {text!r}.")
    # Empty elements keep their position in a plain lineage (position = rank); trailing
    # ones (a final ';') carry nothing.
    elements = _split(text)
    while elements and not elements[-1]:
        elements.pop()
    while elements and elements[0].lower() in _LEADING_DROPPED:
        elements.pop(0)
    if not any(elements):
        return UNASSIGNED
    matches = [_PREFIXED.match(e) for e in elements]
    if all(m is None for m in matches):
        return _parse_plain(text, elements)
    # A prefixed lineage places names by prefix: empty elements stand for no rank.
    elements, matches = zip(*[(e, m) for e, m in zip(elements, matches) if e])
    n_prefixed = sum(m is not None for m in matches)
    if n_prefixed != len(elements):
        plain = [e for e, m in zip(elements, matches) if m is None]
        raise InputError(
            f"lineage {text!r} mixes rank-prefixed and plain elements "
            f"(plain: {preview(plain)})."
        )
    return _parse_prefixed(text, [(m.group(1), m.group(2)) for m in matches])


def _parse_plain(text: str, elements: List[str]) -> Lineage:
    if len(elements) > N_RANKS:
        raise InputError(
            f"lineage {text!r} has {len(elements)} unprefixed ranks; at most {N_RANKS} "
            f"({', '.join(RANKS)}) are allowed without rank prefixes."
        )
    names = [_clean_name(e) for e in elements]
    return tuple(names + [None] * (N_RANKS - len(names)))


def _parse_prefixed(text: str, pairs: List[Tuple[str, str]]) -> Lineage:
    names: List[Optional[str]] = [None] * N_RANKS
    kingdom: Optional[str] = None
    has_domain = False
    previous: Optional[str] = None
    for prefix, raw in pairs:
        if _DROPPED_PREFIX.match(prefix):
            continue
        if prefix != "k" and prefix not in _RANK_OF_LETTER:
            raise InputError(
                f"lineage {text!r} has an unknown rank prefix {prefix + '__'!r} (known: "
                f"{', '.join(p for p in PREFIXES)}, k__ and the dropped r__, t__, ssp__, -_).")
        if previous is not None and _ORDER[prefix] < _ORDER[previous]:
            raise InputError(
                f"lineage {text!r} has its ranks out of order: {prefix + '__'!r} comes after "
                f"{previous + '__'!r}; ranks must run from domain to species.")
        previous = prefix
        if prefix == "k":
            kingdom = _merge(text, prefix, kingdom, _clean_name(raw))
            continue
        if prefix == "d":
            has_domain = True
        rank = _RANK_OF_LETTER[prefix]
        names[rank] = _merge(text, prefix, names[rank], _clean_name(raw))
    if not has_domain and kingdom is not None:
        names[0] = kingdom
    return tuple(names)


def _merge(text: str, prefix: str, old: Optional[str], new: Optional[str]) -> Optional[str]:
    if old is not None and new is not None and old != new:
        raise InputError(
            f"lineage {text!r} gives two different names for rank prefix "
            f"{prefix + '__'!r}: {old!r} and {new!r}."
        )
    return old if new is None else new


def skips_ranks(lineage: Sequence[Optional[str]]) -> bool:
    """True when a rank without a name lies above the deepest named rank."""
    names = list(lineage)
    deepest = max((r for r, n in enumerate(names) if n is not None), default=-1)
    return deepest > 0 and any(n is None for n in names[:deepest])


def format_lineage(names: Sequence[Optional[str]]) -> str:
    """QIIME/GTDB form `d__X; p__Y; ...` up to the deepest named rank.

    Skipped ranks above it are written as the bare prefix (`g__`); a lineage with no name
    at all is `Unassigned`.
    """
    names = list(names)
    if len(names) > N_RANKS:
        raise ValueError(f"a lineage has at most {N_RANKS} ranks, got {len(names)}.")
    deepest = max((r for r, n in enumerate(names) if n is not None), default=-1)
    if deepest < 0:
        return "Unassigned"
    return "; ".join(PREFIXES[r] + (names[r] or "") for r in range(deepest + 1))


def truncate(lineage: Sequence[Optional[str]], rank: int) -> Lineage:
    """The lineage cut below `rank` (names at ranks > rank become None)."""
    return tuple(n if r <= rank else None for r, n in enumerate(lineage))


def parse_taxonomy(series: pd.Series) -> pd.Series:
    """Parse a Taxon column (index = feature IDs) into a Series of 7-tuples.

    Raises InputError naming the first feature IDs whose lineage cannot be parsed.
    """
    parsed: List[Lineage] = []
    bad: List[str] = []
    first_error: Optional[str] = None
    for feature_id, text in series.items():
        try:
            parsed.append(parse_lineage(text))
        except InputError as error:
            bad.append(feature_id)
            if first_error is None:
                first_error = str(error)
            parsed.append(UNASSIGNED)
    if bad:
        raise InputError(
            f"{len(bad)} taxonomy entries cannot be parsed, for feature ID(s) {preview(bad)}. "
            f"First problem ({bad[0]!r}): {first_error}"
        )
    return pd.Series(parsed, index=series.index, name=series.name, dtype=object)


def _sort_key(path: Tuple[Optional[str], ...]):
    return tuple((name is not None, name or "") for name in path)


class TaxonomyTree:
    """The classes seen at each rank, with integer encoders.

    A class at rank r is the full path tuple `(names of ranks 0..r)`, so the same name under
    two parents (e.g. a genus placed in two families by different labels) is two classes,
    never an error. Skipped ranks appear as None inside the path: `("Bacteria", None,
    None, None, None, "Bacillus")` is a genus class whose lineages name no phylum..family,
    and it differs from the fully named path of the same genus. A lineage contributes a
    class at rank r only when it has a name at rank r, so a lineage truncated at rank r
    contributes to ranks <= r only. Classes are sorted per rank (None first), so the
    encoding does not depend on input order.
    """

    def __init__(self, classes: Sequence[Sequence[Sequence[Optional[str]]]]):
        if len(classes) != N_RANKS:
            raise ValueError(f"expected classes for {N_RANKS} ranks, got {len(classes)}.")
        self._classes: List[List[Tuple[Optional[str], ...]]] = []
        self._lookup: List[Dict[Tuple[Optional[str], ...], int]] = []
        for rank, paths in enumerate(classes):
            paths = [tuple(p) for p in paths]
            for p in paths:
                if len(p) != rank + 1 or p[-1] is None or not all(
                    n is None or isinstance(n, str) for n in p
                ):
                    raise ValueError(
                        f"invalid class path {p!r} at rank {RANKS[rank]}: it needs "
                        f"{rank + 1} names (str or None) ending in a name."
                    )
            lookup = {p: i for i, p in enumerate(paths)}
            if len(lookup) != len(paths):
                raise ValueError(f"duplicated class paths at rank {RANKS[rank]}.")
            self._classes.append(paths)
            self._lookup.append(lookup)

    @classmethod
    def from_lineages(cls, lineages: Iterable[Sequence[Optional[str]]]) -> "TaxonomyTree":
        """Collect every class path present in these 7-tuples."""
        seen = [set() for _ in range(N_RANKS)]
        for lineage in lineages:
            lineage = _check_lineage(lineage)
            for rank, name in enumerate(lineage):
                if name is not None:
                    seen[rank].add(lineage[:rank + 1])
        return cls([sorted(s, key=_sort_key) for s in seen])

    def n_classes(self, rank: int) -> int:
        return len(self._classes[rank])

    def classes(self, rank: int) -> List[Tuple[Optional[str], ...]]:
        """Class paths at `rank`, in index order (a copy)."""
        return list(self._classes[rank])

    def names(self, rank: int) -> List[str]:
        """The last name of each class path at `rank` (not unique across parents)."""
        return [p[-1] for p in self._classes[rank]]

    def encode(self, lineages: Iterable[Sequence[Optional[str]]]) -> np.ndarray:
        """int64 (n, 7): class index per rank; -1 where there is no name or the path is unknown."""
        rows = []
        for lineage in lineages:
            lineage = _check_lineage(lineage)
            rows.append([
                -1 if name is None else self._lookup[rank].get(lineage[:rank + 1], -1)
                for rank, name in enumerate(lineage)
            ])
        if not rows:
            return np.zeros((0, N_RANKS), dtype=np.int64)
        return np.asarray(rows, dtype=np.int64)

    def decode(self, rank: int, index: int) -> Tuple[Optional[str], ...]:
        """The class path of `index` at `rank`."""
        if not 0 <= index < len(self._classes[rank]):
            raise IndexError(
                f"class index {index} out of range for rank {RANKS[rank]} "
                f"({len(self._classes[rank])} classes)."
            )
        return self._classes[rank][index]

    def lineage(self, rank: int, index: int) -> Lineage:
        """The class at (`rank`, `index`) as a 7-tuple, None below `rank`."""
        path = self.decode(rank, index)
        return tuple(path) + (None,) * (N_RANKS - len(path))

    def parent_index(self, rank: int) -> np.ndarray:
        """int64 per class at `rank`: index of its parent class at rank - 1, -1 when the
        parent rank was skipped (None in the path). All -1 at rank 0."""
        if rank == 0:
            return np.full(self.n_classes(0), -1, dtype=np.int64)
        lookup = self._lookup[rank - 1]
        return np.asarray(
            [-1 if p[-2] is None else lookup[p[:-1]] for p in self._classes[rank]],
            dtype=np.int64,
        )

    def to_dict(self) -> dict:
        """JSON-safe form: {"ranks": [...], "classes": [[path as list, ...] per rank]}."""
        return {
            "ranks": list(RANKS),
            "classes": [[list(p) for p in paths] for paths in self._classes],
        }

    @classmethod
    def from_dict(cls, data: dict) -> "TaxonomyTree":
        """Inverse of `to_dict`; class order (and so every index) is kept as stored."""
        if list(data.get("ranks", [])) != list(RANKS):
            raise ValueError(f"taxonomy tree ranks {data.get('ranks')!r} are not {list(RANKS)}.")
        return cls(data["classes"])

    def __eq__(self, other) -> bool:
        return isinstance(other, TaxonomyTree) and self._classes == other._classes

    def __repr__(self) -> str:
        counts = ", ".join(f"{r}={len(c)}" for r, c in zip(RANKS, self._classes))
        return f"TaxonomyTree({counts})"


def _check_lineage(lineage) -> Lineage:
    lineage = tuple(lineage)
    if len(lineage) != N_RANKS or not all(n is None or isinstance(n, str) for n in lineage):
        raise ValueError(f"a lineage must be {N_RANKS} names (str or None), got {lineage!r}.")
    return lineage
