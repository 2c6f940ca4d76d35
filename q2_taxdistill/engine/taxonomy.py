"""Lineages: the one vocabulary (ranks, prefixes, placeholders), parsing the formats
classifiers write, formatting, and the per-rank class tree.

A lineage is always a 7-tuple over `RANKS` holding a name or None. None means "no name at
this rank": the label stops above it (truncated), the classifier skipped it, or it held a
placeholder such as `Unassigned`, `g__` or `Unspecified`.

Every reader of lineages uses what is here: `parse_lineage` for text (taxonomy tables,
soft-label taxa, MMseqs2 lca lineages, the scorer of evaluate-taxonomy), `lineage_from_path`
for trees whose nodes carry rank codes (Kraken2 reports), `is_placeholder` for names.

Formats `parse_lineage` accepts (ranks split on ';', or on '|' when there is no ';'):

* QIIME 2 / GTDB: `d__Bacteria; p__Bacillota; ...; s__Bacillus subtilis` (spaces optional;
  an upper-case prefix such as `D__` reads as its lower-case form);
* MMseqs2 (`--tax-lineage 1`): `-_cellular organisms;d_Bacteria;-_Terrabacteria group;
  p_Bacillota;...`; `-_` elements carry no rank (see the domain below);
* Kraken2 via q2-annotate `kraken2-to-features`: `d__;k__;p__;...;s__` (8 ranks);
  strain/infraspecific ranks (`s1__`, `ssp__`, `t__`, `g1__`...) are dropped;
* plain `Bacteria;Bacillota;...`: position = rank.

The domain, whatever the format (NCBI renamed `superkingdom` to `domain` in 2025, and
tools written before that give the new rank no code: Kraken2 before 2.17 writes Bacteria
with the code `R2`, MMseqs2 14-18 writes `-_Bacteria`):

1. an element of rank domain (`d__`, `d_`, Kraken2 `D`) is the domain, also when its name
   is a placeholder (q2-annotate's `d__containing k__Bacillati` names no domain);
2. else the first element without a rank (MMseqs2 `-_`, Kraken2 `R1`, `R2`...) below the
   leading `root` / `cellular organisms`: where NCBI puts the domain (Bacteria, Archaea,
   Eukaryota) and Viruses, the top of viral lineages (`acellular root` since 2025);
3. else a kingdom named like a domain (Bacteria, Archaea, Eukaryota, Eukarya, Viruses): the
   Greengenes and MetaPhlAn form `k__Bacteria`. Any other kingdom (NCBI's Bacillati,
   Metazoa, Fungi, Orthornavirae) is not the domain and is dropped like every kingdom.

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
RANK_LETTERS = "dpcofgs"
PREFIXES = tuple(f"{letter}__" for letter in RANK_LETTERS)
N_RANKS = len(RANKS)
RANK_OF_LETTER: Dict[str, int] = {letter: rank for rank, letter in enumerate(RANK_LETTERS)}
# Rank letters of path elements besides the seven: a kingdom, and an element with no rank.
KINGDOM, NO_RANK = "k", "-"

Lineage = Tuple[Optional[str], ...]
UNASSIGNED: Lineage = (None,) * N_RANKS

# Where each kept prefix sits from domain to species (kingdom between domain and phylum;
# an element without a rank may sit anywhere).
_ORDER = {**{letter: float(rank) for letter, rank in RANK_OF_LETTER.items()}, KINGDOM: 0.5}
# Prefixes of elements that are not one of our seven ranks and are dropped: root,
# strain/subspecies (Kraken2 S1/S2, q2-annotate ssp__, MetaPhlAn t__) and Kraken2
# intermediate ranks such as G1 or P2.
_DROPPED_PREFIX = re.compile(r"^(?:r|t|ssp|[dkpcofgs]\d+)$")
# Lower-case prefixes with one or two underscores (MMseqs2 `d_`, QIIME `d__`), upper-case
# ones only with two (`D__`), so that a plain name such as `E_coli` is not a prefix.
_PREFIXED = re.compile(r"^(?:(ssp|[a-z]\d*|-)__?|(SSP|[A-Z]\d*)__)(.*)$", re.DOTALL)
_LEADING_DROPPED = frozenset({"root", "cellular organisms"})
# Names a domain has, which Greengenes and MetaPhlAn write as a kingdom (`k__Bacteria`).
DOMAIN_NAMES = frozenset({"bacteria", "archaea", "eukaryota", "eukarya", "viruses"})

# Placeholders: names that say there is no taxon at this rank (compared after
# `normalise_name`). From the tools we read:
# - QIIME 2 `Unassigned`; GTDB and q2-annotate empty ranks (`g__`);
# - Kraken2 and MMseqs2 `unclassified` (and NCBI's `unclassified X` / `unclassified
#   entries` nodes), q2-annotate `d__Unclassified`;
# - q2-annotate classify-kaiju: `Unspecified` for a rank kaiju2table left `NA`, and Kaiju's
#   `cannot be assigned to a (non-viral) <rank>`;
# - q2-annotate kraken2-to-features fillers `containing g__X` (older: `X containing Y`);
# - NCBI/SILVA/UNITE bins for sequences of unknown origin: `uncultured X`, `environmental
#   samples`, `unidentified`, `unknown`, `metagenome(s)`, `X metagenome` (an NCBI
#   "species" named after a sample source), `other entries` / `other sequences` (NCBI's
#   top node of synthetic constructs and plasmids);
# - the text of missing values: `NA`, `nan`, `None`; `root`.
# Not placeholders: `incertae sedis` names (`Bacillales Family XI. Incertae Sedis`) are
# nodes of the reference taxonomy with their own taxid and members; a class is its full
# path, so the same words under two parents stay two taxa.
PLACEHOLDER_NAMES = frozenset({
    "", "unassigned", "unclassified", "unspecified", "unknown", "uncultured", "unidentified",
    "environmental samples", "metagenome", "metagenomes", "other entries", "other sequences",
    "root", "na", "nan", "none",
})
_PLACEHOLDER_STARTS = ("unclassified ", "uncultured ", "containing ", "cannot be assigned")
_PLACEHOLDER_ENDS = (" metagenome", " metagenomes")


def normalise_name(name: str) -> str:
    """Comparable form of a taxon name: `_` as space, whitespace collapsed, lower case."""
    return " ".join(name.replace("_", " ").split()).lower()


def is_placeholder(name: str) -> bool:
    """True for names that carry no taxonomic information (they parse to None)."""
    low = normalise_name(name)
    return (
        low in PLACEHOLDER_NAMES
        or low.startswith(_PLACEHOLDER_STARTS)
        or low.endswith(_PLACEHOLDER_ENDS)
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
    pairs = [((m.group(1) or m.group(2)).lower(), m.group(3)) for m in matches]
    for prefix, _ in pairs:
        if not _DROPPED_PREFIX.match(prefix) and prefix not in _ORDER and prefix != NO_RANK:
            raise InputError(
                f"lineage {text!r} has an unknown rank prefix {prefix + '__'!r} (known: "
                f"{', '.join(PREFIXES)}, k__ and the dropped r__, t__, ssp__, and -_ for no "
                "rank).")
    return lineage_from_path(
        [(prefix, name) for prefix, name in pairs if not _DROPPED_PREFIX.match(prefix)], text)


def _parse_plain(text: str, elements: List[str]) -> Lineage:
    if len(elements) > N_RANKS:
        raise InputError(
            f"lineage {text!r} has {len(elements)} unprefixed ranks; at most {N_RANKS} "
            f"({', '.join(RANKS)}) are allowed without rank prefixes."
        )
    names = [_clean_name(e) for e in elements]
    return tuple(names + [None] * (N_RANKS - len(names)))


def lineage_from_path(path: Sequence[Tuple[Optional[str], str]], text: str = None) -> Lineage:
    """The 7-tuple of a path of (rank letter, name) elements from the top down.

    Letters: one of `RANK_LETTERS`, `KINGDOM` ('k') or `NO_RANK` ('-'); None for an element
    to skip (a strain, an intermediate rank). Leading `root` / `cellular organisms` are
    dropped; the domain follows the three rules of the module docstring. `text` names the
    lineage in errors (ranks out of order, two names for one rank).
    """
    text = text if text is not None else ";".join(name for _, name in path)
    path = [(letter, name.strip()) for letter, name in path if letter is not None]
    while path and path[0][0] == NO_RANK and path[0][1].lower() in _LEADING_DROPPED:
        path.pop(0)
    names: List[Optional[str]] = [None] * N_RANKS
    kingdom: Optional[str] = None
    has_domain = any(letter == "d" for letter, _ in path)
    top_unranked = None
    if not has_domain and path and path[0][0] == NO_RANK:
        top_unranked = path[0][1]
    previous: Optional[str] = None
    for letter, raw in path:
        if letter == NO_RANK:
            continue
        if previous is not None and _ORDER[letter] < _ORDER[previous]:
            raise InputError(
                f"lineage {text!r} has its ranks out of order: {letter + '__'!r} comes after "
                f"{previous + '__'!r}; ranks must run from domain to species.")
        previous = letter
        if letter == KINGDOM:
            kingdom = _merge(text, letter, kingdom, _clean_name(raw))
            continue
        rank = RANK_OF_LETTER[letter]
        names[rank] = _merge(text, letter, names[rank], _clean_name(raw))
    if not has_domain:
        if top_unranked is not None:
            names[0] = _clean_name(top_unranked)
        elif kingdom is not None and kingdom.lower() in DOMAIN_NAMES:
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
