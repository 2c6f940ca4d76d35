"""Kraken2 per-contig results (`--output` plus `--report` of the same run) -> contig labels.

The `--output` file names one taxid per contig and, in its fifth column, the LCA mapping of
the contig's k-mers (`562:13 561:4 A:31 0:1`); the `--report` file holds the taxonomy tree
(indented names, rank codes). Together they give each contig a lineage (from the report's
tree) and Kraken2's own confidence score: the share of the contig's unambiguous k-mers that
map into the clade of the assigned taxon (what `kraken2 --confidence` thresholds).

Rank codes: `D`, `P`, `C`, `O`, `F`, `G`, `S` are the seven ranks, `K` a kingdom, which is
never the domain (NCBI's Bacillati, Metazoa, Fungi), codes with a digit below a rank (`S1`
strains, `D1` clades) name no rank. `R`, `R1`, `R2`... are the nodes above the first ranked
one. NCBI's 2025 taxonomy has no `superkingdom`, so kraken2 before 2.17 writes Bacteria,
Archaea and Eukaryota as `R2` (under `R1` cellular organisms) and Viruses as `R1`; kraken2
2.1.2 and 2.1.3 builds also write some codes empty or as bare digits (DerrickWood/kraken2
#759), `D` and `R` among them. Such nodes carry no rank, and the domain is read from the
position NCBI gives it (see `taxonomy.lineage_from_path`): a `D` above the taxon, else the
first node below root and cellular organisms, so a contig assigned to Bacteria itself is
`d__Bacteria`.
"""
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .errors import InputError, preview
from .taxonomy import KINGDOM, NO_RANK, RANK_LETTERS, format_lineage, lineage_from_path

# Kraken2 rank codes: a letter and an optional depth below it; empty or digits only where a
# kraken2 2.1.2/2.1.3 build lost the letter.
_RANK_CODE = re.compile(r"^(?:[URDKPCOFGS]?\d*|-)$")
_LETTER_OF_CODE = {**{code: letter for code, letter in zip("DPCOFGS", RANK_LETTERS)},
                   "K": KINGDOM}
_USE_NAMES_TAXID = re.compile(r"\(taxid (\d+)\)\s*$")
# Tokens of the LCA mapping that separate mates (paired reads) or reading frames (protein).
_SEPARATORS = {"|:|", "-:-"}


def _path_letter(code):
    """The rank letter of a report code for `lineage_from_path`: one of the seven ranks, the
    kingdom, no rank (`R...`, `-`, a code without its letter) or None (below a rank: skip)."""
    if code in _LETTER_OF_CODE:
        return _LETTER_OF_CODE[code]
    if not code or code[0] in "R-" or code.isdigit():
        return NO_RANK
    return None


@dataclass
class _Taxon:
    name: str
    code: str
    parent: int  # 0: none


class KrakenTaxonomy:
    """The taxonomy tree of a Kraken2 report: taxid -> name, rank code and parent."""

    def __init__(self, taxa):
        self._taxa = taxa
        self._lineages = {}
        self._above = {}

    def __contains__(self, taxid):
        return taxid in self._taxa

    def __len__(self):
        return len(self._taxa)

    def ancestors(self, taxid):
        """`taxid` and its ancestors, nearest first."""
        chain = []
        while taxid and taxid in self._taxa:
            chain.append(taxid)
            taxid = self._taxa[taxid].parent
        return chain

    def in_clade(self, node, taxid):
        """Whether `node` is `taxid` or one of its descendants (False for unknown nodes)."""
        if node not in self._above:
            self._above[node] = frozenset(self.ancestors(node))
        return taxid in self._above[node]

    def lineage(self, taxid):
        """The QIIME lineage (`d__Bacteria; p__...; s__...`) of `taxid`, or None when none of
        its ancestors is at one of the seven ranks (the domain included, read as the module
        docstring says); ranks missing between named ones stay as empty placeholders."""
        if taxid not in self._lineages:
            path = [(_path_letter(self._taxa[node].code), self._taxa[node].name)
                    for node in reversed(self.ancestors(taxid))]
            text = "; ".join(name for _, name in path)
            lineage = lineage_from_path(path, f"{text} (taxid {taxid})")
            self._lineages[taxid] = None if all(n is None for n in lineage) \
                else format_lineage(lineage)
        return self._lineages[taxid]

    @classmethod
    def from_report(cls, lines, source="the Kraken2 report"):
        """Parse a standard report (6 columns, or 8 with `--report-minimizer-data`)."""
        taxa, stack = {}, []  # stack: (depth, taxid) of the current path from the root
        for lineno, line in enumerate(lines, start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            fields = line.split("\t")
            if len(fields) not in (6, 8):
                raise InputError(
                    f"{source}, line {lineno}: expected 6 tab-separated columns (8 with "
                    f"--report-minimizer-data), found {len(fields)}; is this a kraken2 --report "
                    "file (not --use-mpa-style)?")
            code, taxid_text, raw_name = fields[-3], fields[-2].strip(), fields[-1]
            if not _RANK_CODE.match(code.strip()):
                raise InputError(f"{source}, line {lineno}: {code!r} is not a Kraken2 rank code "
                                 "(U, R, D, K, P, C, O, F, G, S, optionally followed by a "
                                 "number)")
            try:
                taxid = int(taxid_text)
            except ValueError:
                raise InputError(f"{source}, line {lineno}: taxid {taxid_text!r} is not a "
                                 "number") from None
            name = raw_name.strip()
            if taxid == 0:  # the "unclassified" line
                continue
            depth = (len(raw_name) - len(raw_name.lstrip(" "))) // 2
            while stack and stack[-1][0] >= depth:
                stack.pop()
            parent = stack[-1][1] if stack else 0
            if taxid in taxa and (taxa[taxid].name, taxa[taxid].parent) != (name, parent):
                raise InputError(f"{source}, line {lineno}: taxid {taxid} appears twice with "
                                 "different names or parents")
            taxa[taxid] = _Taxon(name=name, code=code.strip(), parent=parent)
            stack.append((depth, taxid))
        # A run in which nothing was classified writes only the `unclassified` line (or,
        # without sequences, nothing): a valid report of no taxon.
        return cls(taxa)


def _taxid(text, source, lineno):
    """Column 3 of --output: a taxid, or `name (taxid N)` with --use-names."""
    text = text.strip()
    found = _USE_NAMES_TAXID.search(text)
    try:
        return int(found.group(1) if found else text)
    except ValueError:
        raise InputError(f"{source}, line {lineno}: taxid {text!r} is neither a number nor "
                         "'name (taxid N)'") from None


def kmer_confidence(mapping, taxonomy, taxid, source="", lineno=0):
    """The share of unambiguous k-mers (all but `A:n`) that map into the clade of `taxid`.

    Taxids absent from the report count as outside the clade (the report lists only taxa with
    assigned sequences, unless kraken2 ran with --report-zero-counts), so this is a lower
    bound there. None when the contig has no unambiguous k-mer.
    """
    inside = total = 0
    for token in mapping.split():
        if token in _SEPARATORS:
            continue
        hit, sep, count = token.rpartition(":")
        if not sep:
            raise InputError(f"{source}, line {lineno}: k-mer mapping token {token!r} is not "
                             "'taxid:count'")
        try:
            n = int(count)
            node = None if hit == "A" else int(hit)
        except ValueError:
            raise InputError(f"{source}, line {lineno}: k-mer mapping token {token!r} is not "
                             "'taxid:count'") from None
        if node is None:
            continue
        total += n
        if node and taxonomy.in_clade(node, taxid):
            inside += n
    return inside / total if total else None


def contig_taxonomy(output_lines, taxonomy, source="the Kraken2 output"):
    """A QIIME taxonomy table (`Taxon`, `Confidence`) with one row per contig of --output.

    Unclassified contigs (`U`, taxid 0) and contigs assigned above the seven ranks (root,
    "cellular organisms") are `Unassigned` with no confidence. A taxid missing from the report
    is an error naming it: the two files must come from the same kraken2 run.
    """
    ids, taxa, confidence = [], [], []
    missing = {}
    seen = set()
    for lineno, line in enumerate(output_lines, start=1):
        line = line.rstrip("\r\n")
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 5:
            raise InputError(f"{source}, line {lineno}: expected 5 tab-separated columns "
                             f"(C/U, ID, taxid, length, k-mer LCA mapping), found {len(fields)}")
        status, contig, taxid_text, _, mapping = fields
        if status not in ("C", "U"):
            raise InputError(f"{source}, line {lineno}: the first column must be C or U, "
                             f"found {status!r}")
        contig = contig.strip()
        if not contig:
            raise InputError(f"{source}, line {lineno}: empty sequence ID")
        if contig in seen:
            raise InputError(f"{source}, line {lineno}: contig {contig!r} appears twice")
        seen.add(contig)
        taxid = _taxid(taxid_text, source, lineno)
        lineage, score = None, None
        if status == "C" and taxid != 0:
            if taxid not in taxonomy:
                missing.setdefault(taxid, (lineno, contig))
            else:
                lineage = taxonomy.lineage(taxid)
                if lineage is not None:
                    score = kmer_confidence(mapping, taxonomy, taxid, source, lineno)
        ids.append(contig)
        taxa.append(lineage or "Unassigned")
        confidence.append(np.nan if score is None else round(score, 4))
    if missing:
        taxid, (lineno, contig) = next(iter(missing.items()))
        raise InputError(
            f"{source}: {len(missing)} taxid(s) are not in the Kraken2 report: "
            f"{preview(sorted(missing))} (first on line {lineno}, contig {contig!r}); give the "
            "--report written by the same kraken2 run as the --output.")
    if not ids:
        raise InputError(f"{source} has no contig lines")
    return pd.DataFrame({"Taxon": taxa, "Confidence": confidence},
                        index=pd.Index(ids, name="Feature ID"))
