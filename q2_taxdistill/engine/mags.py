"""MAG taxonomy and contamination from contig labels: a vote of each MAG's own contigs.

No reference database, no marker genes: a MAG (bin) is named by the labels of its contigs,
each weighted by its length, and the contigs whose labels conflict with that name measure its
contamination. Rank by rank, from domain down:

* voters: the MAG's labelled contigs that do not conflict with the name decided so far
  (a contig from another phylum has no say on the genus);
* each voter casts its length (bp) for its name at the rank, or for "no name" when its label
  stops above the rank. At the deepest rank it names, a contig's Confidence is the support of
  that name (MMseqs2's fragment agreement, Kraken2's k-mer share, taxdistill's evidence), so it
  casts bp x Confidence there and the rest for "no name"; above it, the full bp (an empty
  Confidence is trusted);
* the rank is named when one taxon has more than `majority` of the voters' bp (default half),
  else the MAG's lineage stops above it.

Why more than half: it is the least support that names at most one taxon and puts more of
the MAG behind the name than against it (other names and "no name" together), the rule that
MMseqs2 (`--majority 0.5`) and CAT (`-f 0.5`) use to name a contig from its fragments or
ORFs, applied one level up, from contigs to a MAG. It is not fitted to any data set. A few
stray contigs leave a name standing (benchmarks/mags.py adds 0-30% foreign bp), and a MAG
whose contigs mostly stop at the genus (a novel species, once its labels are corrected)
names no species. Strict LCA (q2-annotate's kraken2-to-mag-features) is the unanimous
special case: one stray contig cuts it.

Contamination is meant as the share of the MAG's bp that comes from other genomes, as far as
the labels can tell. It is judged against a reference lineage and counted from confident
conflicts:

* reference: the MAG's name, continued below its deepest rank while, among the contigs that
  agree so far, one taxon has more vote than any other and more than "no name" (a plurality,
  not the majority naming needs). A MAG named only to the family because its genus vote
  split 45 / 30 / 25 (genus G, genus H, no genus) is judged against G, so H's contigs count.
  An exact tie gives no reference: nothing says which side is foreign.
* a MAG new at a rank: where instead "no name" has more than `majority` of the vote of the
  contigs that carry a Confidence, the MAG is a taxon that the labels' database lacks at
  that rank (a novel species whose corrected labels stop at the genus), and contigs naming
  a taxon there conflict with it (a known congeneric species binned with it). Only labels
  with a Confidence count for this: a label without one (a plain LCA of tied hits, such as
  MMseqs2's whole-contig `taxonomy`) may stop above a rank because its hits tied, which says
  nothing about novelty.
* flagged (counted as foreign): a contig whose label conflicts with the reference (names
  another taxon at a rank where both name one, or names one where the MAG is new) and whose
  Confidence reaches `confidence` (refine-taxonomy's default, 0.7: corrected labels at or
  above it are ones the correction would assign on its own evidence, below it input labels
  it kept on at least half of it; empty: trusted). A conflicting label below that is weak
  evidence against the bin: in strains, the contigs of accessory segments taken from a
  relative carry the relative's name with split support (benchmarks/mags.py, dev-strains:
  the contigs flagged at family or above with Confidence < 0.7 were 29% foreign, above it
  96%); such contigs count as the MAG's own bp.

Contamination at a rank: the flagged bp whose first conflict is at that rank or above, over
the MAG's labelled bp, down to the judged rank (the deepest reference rank, or the rank
where the MAG is new; NaN below it); `contamination` is the value there. Unlabelled bp are
left out of the share, i.e. taken to be foreign at the rate of the labelled; bp labelled
only above the judged rank, and weak conflicts, count as the MAG's own. What it trades: a
contaminant whose labels stop above the judged rank, or that carries the MAG's own name
(a novel species named after its sibling, congeneric species the labels do not tell apart),
is missed; a novel taxon's own contigs that keep a relative's name confidently are counted
as foreign. The MAG's Confidence is the share of its labelled bp whose labels back its
deepest name (by the naming vote); the rest either conflicts with it or stops above it.

Composition was measured and is not used (benchmarks/mags.py bins, corrected labels): the
tetranucleotide distance of a confidently flagged contig to its MAG's backing contigs does
not tell the MAG's own from foreign ones (AUC 0.42-0.61 on dev-strains and dev-mosaic:
accessory segments carry their donor's composition); for weakly labelled conflicting
contigs it does somewhat (AUC 0.73-0.82), but assigning them to the nearer of the MAG's own
and its flagged contigs' composition (a per-MAG Gaussian likelihood ratio) did no better on
precision and recall than moving the Confidence threshold, and for contigs labelled only
above the judged rank it pulled in more of the MAG's own bp than foreign bp.
"""
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .errors import InputError, preview
from .parameters import DEFAULTS, check
from .progress import notice
from .taxonomy import N_RANKS, PREFIXES, RANKS, format_lineage, parse_lineage

_STAGE = "classify-mags"


@dataclass
class MAGCalls:
    """What `classify_mags` decides.

    taxonomy: per MAG (index `Feature ID`, sorted), `Taxon` and `Confidence`.
    summary: per MAG, its size, labelled share, deepest rank, the `reference` lineage and
      `judged rank` contamination is judged against and down to, contamination per rank and
      overall (at the judged rank), flagged contigs.
    contigs: per binned contig (index contig ID), `MAG`, `length`, its label (`Taxon`,
      `Confidence`, empty when unlabelled), `conflict rank` (the first rank where its label
      names another taxon than its MAG's reference, or one where the MAG is new; empty when
      none) and `flagged` (it conflicts with a Confidence that reaches `confidence`: counted
      as foreign).
    """
    taxonomy: pd.DataFrame
    summary: pd.DataFrame
    contigs: pd.DataFrame
    _codes: np.ndarray
    _names: list
    _decided: np.ndarray
    _mag_of: np.ndarray

    @property
    def conflicts(self) -> pd.DataFrame:
        """The flagged contigs: those whose confident label conflicts with their MAG's
        reference lineage (the ones counted as foreign)."""
        flagged = self.contigs[self.contigs["flagged"]]
        return flagged.join(self.taxonomy["Taxon"].rename("MAG taxon"), on="MAG") \
            .join(self.summary["reference"].rename("MAG reference"), on="MAG")

    def composition(self, top: int = 5) -> pd.DataFrame:
        """Labelled bp per taxon at the rank where each MAG splits: its first rank with a
        conflicting contig, else the rank below its deepest name (where the vote stopped),
        else species. Long form (MAG, rank, taxon, bp, share of the MAG's bp); beyond the `top`
        taxa, the rest is one row; unnamed and unlabelled bp are rows of their own."""
        n_mags = len(self.taxonomy)
        depth = _deepest(self._decided)
        first_conflict = np.full(n_mags, N_RANKS, dtype=np.int64)
        conflict = self.contigs["conflict rank"].map(
            {r: i for i, r in enumerate(RANKS)}).fillna(N_RANKS).to_numpy(np.int64)
        np.minimum.at(first_conflict, self._mag_of, conflict)
        split = np.minimum(np.minimum(first_conflict, depth + 1), N_RANKS - 1)
        rows = split[self._mag_of]
        name = self._codes[np.arange(len(rows)), rows]
        labelled = self._codes.max(axis=1) >= 0
        name = np.where(labelled, name, -2)
        frame = pd.DataFrame({"mag": self._mag_of, "name": name,
                              "bp": self.contigs["length"].to_numpy(np.float64)})
        grouped = frame.groupby(["mag", "name"], sort=True)["bp"].sum().reset_index()
        grouped = grouped.sort_values(["mag", "bp", "name"], ascending=[True, False, True],
                                      kind="stable")
        grouped["position"] = grouped.groupby("mag").cumcount()
        named = grouped["name"] >= 0
        rest = named & (grouped["position"] >= top)
        grouped.loc[rest, "name"] = -3
        grouped = grouped.groupby(["mag", "name"], sort=False)["bp"].sum().reset_index()
        mag_ids = self.taxonomy.index.to_numpy()
        rank_index = split[grouped["mag"].to_numpy()]
        labels = []
        for r, code in zip(rank_index, grouped["name"].to_numpy()):
            if code >= 0:
                labels.append(PREFIXES[r] + self._names[r][code])
            else:
                labels.append({-1: f"no {RANKS[r]} named", -2: "unlabelled",
                               -3: "other taxa"}[code])
        total = self.summary["bp"].to_numpy(np.float64)[grouped["mag"].to_numpy()]
        return pd.DataFrame({"MAG": mag_ids[grouped["mag"].to_numpy()],
                             "rank": [RANKS[r] for r in rank_index], "taxon": labels,
                             "bp": grouped["bp"].to_numpy(np.int64),
                             "share": grouped["bp"].to_numpy() / total})


def bins_from_map(mapping) -> pd.Series:
    """{MAG ID: [contig IDs]} (FeatureMap[MAGtoContigs]) as contig -> MAG; a contig in two
    MAGs is an error, since its length cannot count for both."""
    mags, contigs = [], []
    for mag, members in mapping.items():
        members = list(members)
        mags.extend([str(mag)] * len(members))
        contigs.extend(str(c) for c in members)
    bins = pd.Series(mags, index=pd.Index(contigs, name="contig"), name="MAG", dtype=object)
    return check_bins(bins)


def check_bins(bins: pd.Series) -> pd.Series:
    """contig -> bin with missing bins left out (said) and repeated contigs refused."""
    bins = pd.Series(bins)
    bins.index = bins.index.astype(str)
    missing = bins.isna() | (bins.astype(str).str.strip() == "")
    if missing.any():
        notice(_STAGE, f"{int(missing.sum())} contig(s) have no bin and are not used: "
                       f"{preview(bins.index[missing.to_numpy()])}")
        bins = bins[~missing.to_numpy()]
    repeated = bins.index.duplicated(keep=False)
    if repeated.any():
        first = bins.index[repeated][0]
        where = sorted(set(bins[bins.index == first].astype(str)))
        raise InputError(
            f"{len(pd.unique(bins.index[repeated]))} contig(s) are in more than one bin, e.g. "
            f"{first!r} in {preview(where)}; a contig's bases can count for one MAG only: "
            f"{preview(pd.unique(bins.index[repeated]))}.")
    if bins.empty:
        raise InputError("no contig is in a bin: there is no MAG to classify.")
    return bins.astype(str)


def _confidence(taxonomy, labelled):
    """The label support in [0, 1], empty (or no column) trusted (1), and where it is given."""
    column = next((c for c in taxonomy.columns if str(c).lower() == "confidence"), None)
    if column is None:
        return np.ones(len(taxonomy)), np.zeros(len(taxonomy), dtype=bool)
    raw = taxonomy[column]
    values = pd.to_numeric(raw, errors="coerce")
    text = raw.isna() | raw.astype(str).str.strip().isin(["", "nan", "NaN"])
    bad = values.isna() & ~text
    if bad.any():
        raise InputError(f"the taxonomy's Confidence must be a number in [0, 1] or empty; "
                         f"{int(bad.sum())} row(s) hold text: "
                         f"{preview(f'{i}: {v!r}' for i, v in raw[bad].items())}.")
    values = values.to_numpy(np.float64)
    outside = np.isfinite(values) & ((values < 0) | (values > 1)) & labelled
    if outside.any():
        raise InputError(f"the taxonomy's Confidence must lie in [0, 1] (it weighs each "
                         f"contig's vote); contig(s) {preview(taxonomy.index[outside])} have "
                         f"others.")
    return np.where(np.isfinite(values), values, 1.0), np.isfinite(values)


def name_codes(taxa: pd.Series):
    """(contigs x 7) int32 name codes (-1: no name) and each rank's names by code (sorted,
    so ties break the same way on every run). Each distinct lineage is parsed once."""
    values = taxa.where(taxa.notna(), "Unassigned").astype(str)
    codes, uniques = pd.factorize(values)
    parsed = []
    for text in uniques:
        try:
            parsed.append(parse_lineage(text))
        except InputError as error:
            first = values.index[values.to_numpy() == text][0]
            raise InputError(f"the taxonomy entry of {first!r} cannot be parsed: {error}") \
                from None
    unique_codes = np.full((len(parsed), N_RANKS), -1, dtype=np.int32)
    names = []
    for r in range(N_RANKS):
        at_rank = pd.Series([p[r] for p in parsed], dtype=object)
        rank_codes, rank_names = pd.factorize(at_rank, sort=True)
        unique_codes[:, r] = rank_codes
        names.append(np.asarray(rank_names, dtype=object))
    if len(parsed) == 0:
        return np.zeros((0, N_RANKS), dtype=np.int32), names
    return unique_codes[codes], names


def _deepest(decided):
    """Index of the deepest named rank per row (-1: none)."""
    named = decided >= 0
    return np.where(named.any(axis=1), N_RANKS - 1 - np.argmax(named[:, ::-1], axis=1), -1)


def _tally(mag, n_mags, names, weight, active):
    """Per MAG: the name (code) with the most vote among `active` contigs naming one (ties:
    the smaller code), its vote, the runner-up's vote and the named vote in all; -1 / 0
    where none is named."""
    top = np.full(n_mags, -1, dtype=np.int64)
    top_votes = np.zeros(n_mags)
    second_votes = np.zeros(n_mags)
    named_votes = np.zeros(n_mags)
    named = active & (names >= 0)
    if not named.any():
        return top, top_votes, second_votes, named_votes
    n_names = int(names[named].max()) + 1
    key = mag[named].astype(np.int64) * n_names + names[named]
    keys, inverse = np.unique(key, return_inverse=True)
    votes = np.bincount(inverse.ravel(), weights=weight[named])
    key_mag, key_name = keys // n_names, keys % n_names
    order = np.lexsort((key_name, -votes, key_mag))
    starts = np.r_[True, key_mag[order][1:] != key_mag[order][:-1]]
    first = order[starts]
    top[key_mag[first]] = key_name[first]
    top_votes[key_mag[first]] = votes[first]
    runner = np.flatnonzero(~starts & np.r_[False, starts[:-1]])
    second_votes[key_mag[order[runner]]] = votes[order[runner]]
    named_votes[:] = np.bincount(key_mag, weights=votes, minlength=n_mags)
    return top, top_votes, second_votes, named_votes


def _mark_clashes(conflict, labelled, mag_names, names, r):
    """Set rank `r` as the first conflict of the labelled contigs without one whose name at
    `r` differs from their MAG's (`mag_names`, per contig; -1: the MAG names none there)."""
    clash = (conflict < 0) & labelled & (mag_names >= 0) & (names >= 0) & (names != mag_names)
    conflict[clash] = r


def _vote(mag, n_mags, codes, bp, weight_deepest, depth, majority):
    """The top-down vote: each MAG's name code per rank (-1 below its deepest name) and each
    contig's first conflicting rank (-1: none)."""
    labelled = depth >= 0
    conflict = np.full(len(mag), -1, dtype=np.int64)
    decided = np.full((n_mags, N_RANKS), -1, dtype=np.int64)
    open_ = np.ones(n_mags, dtype=bool)
    for r in range(N_RANKS):
        active = labelled & (conflict < 0) & open_[mag]
        voters = np.bincount(mag[active], weights=bp[active], minlength=n_mags)
        weight = np.where(depth == r, weight_deepest, bp)
        top, top_votes, _, _ = _tally(mag, n_mags, codes[:, r], weight, active)
        won = (top >= 0) & open_ & (top_votes > majority * voters)
        decided[won, r] = top[won]
        open_ &= won
        _mark_clashes(conflict, labelled, decided[mag, r], codes[:, r], r)
    return decided, conflict


def _reference(mag, n_mags, codes, bp, weight_deepest, depth, decided, majority, supported):
    """What contamination is judged against (module text): the MAG's name, continued below
    its deepest rank while the taxon with the most vote there outweighs the vote for no
    name; where instead no name has more than `majority` of the vote of the contigs that
    carry a Confidence (`supported`), the MAG is a taxon new at that rank and the contigs
    naming one there conflict. Returns the reference codes (MAGs x 7), each MAG's judged
    rank (its deepest reference rank, or the rank where it is new; -1: none) and each
    contig's first conflicting rank (-1: none)."""
    labelled = depth >= 0
    reference = decided.copy()
    judged = _deepest(decided)
    conflict = np.full(len(mag), -1, dtype=np.int64)
    open_ = np.ones(n_mags, dtype=bool)
    for r in range(N_RANKS):
        beyond = open_ & (judged < r)
        if beyond.any():
            active = labelled & (conflict < 0) & beyond[mag]
            weight = np.where(depth == r, weight_deepest, bp)
            voters = np.bincount(mag[active], weights=bp[active], minlength=n_mags)
            top, top_votes, second, named_votes = _tally(mag, n_mags, codes[:, r], weight,
                                                         active)
            extend = beyond & (top >= 0) & (top_votes > voters - named_votes) \
                & (top_votes > second)
            reference[extend, r] = top[extend]
            backed = active & supported
            voters_s = np.bincount(mag[backed], weights=bp[backed], minlength=n_mags)
            named_s = _tally(mag, n_mags, codes[:, r], weight, backed)[3]
            new = beyond & ~extend & (voters_s > 0) & (voters_s - named_s > majority * voters_s)
            judged = np.where(extend | new, r, judged)
            open_ &= ~beyond | extend
            novel = active & new[mag] & (codes[:, r] >= 0)
            conflict[novel] = r
        _mark_clashes(conflict, labelled, reference[mag, r], codes[:, r], r)
    return reference, judged, conflict


def classify_mags(taxonomy: pd.DataFrame, lengths: pd.Series, bins: pd.Series,
                  majority: float = DEFAULTS.majority,
                  confidence: float = DEFAULTS.confidence) -> MAGCalls:
    """Name each MAG and measure its contamination from its contigs' labels (module text).

    taxonomy: contig labels (`Taxon`, optional `Confidence`), e.g. refine-taxonomy's output;
    lengths: bp per contig ID (every binned contig must have one); bins: contig -> MAG ID.
    confidence: the Confidence a conflicting label needs to count as foreign (flagged);
    refine-taxonomy's `confidence` default, the evidence at which it names a taxon itself.
    Contigs of a bin without a label count as unlabelled; labels and contigs in no bin are
    not used; both are said (`notice`).
    """
    check(majority=majority, confidence=confidence)
    if "Taxon" not in taxonomy.columns:
        raise InputError("the contig taxonomy has no 'Taxon' column.")
    bins = check_bins(bins)
    taxonomy = taxonomy.set_axis(taxonomy.index.astype(str), axis=0)
    if taxonomy.index.has_duplicates:
        raise InputError(f"the contig taxonomy lists some contigs more than once: "
                         f"{preview(pd.unique(taxonomy.index[taxonomy.index.duplicated()]))}.")
    lengths = pd.Series(lengths)
    lengths.index = lengths.index.astype(str)
    without_length = ~bins.index.isin(lengths.index)
    if without_length.any():
        raise InputError(
            f"{int(without_length.sum())} binned contig(s) are not among the contigs, so their "
            f"length is unknown: {preview(bins.index[without_length])}. Give the contigs that "
            f"were binned (the same IDs in the bins, the contigs and the taxonomy).")
    unbinned = ~lengths.index.isin(bins.index)
    if unbinned.any():
        notice(_STAGE, f"{int(unbinned.sum())} contig(s) are in no bin and are not used: "
                       f"{preview(lengths.index[unbinned])}")
    outside = ~taxonomy.index.isin(bins.index)
    if outside.any() and outside.all():
        raise InputError(
            f"the bins and the contig taxonomy have no contig in common: binned contigs look "
            f"like {preview(bins.index, 3)}, taxonomy IDs like {preview(taxonomy.index, 3)}.")
    if outside.any():
        notice(_STAGE, f"{int(outside.sum())} labelled contig(s) are in no bin and are not "
                       f"used: {preview(taxonomy.index[outside])}")
    unlabelled = ~bins.index.isin(taxonomy.index)
    if unlabelled.any():
        notice(_STAGE, f"{int(unlabelled.sum())} binned contig(s) have no label and count as "
                       f"unlabelled bp of their MAG: {preview(bins.index[unlabelled])}")

    labels = taxonomy.reindex(bins.index)
    codes, names = name_codes(labels["Taxon"])
    depth = _deepest(codes)
    labelled = depth >= 0
    support, supported = _confidence(labels, labelled)
    bp = lengths.reindex(bins.index).to_numpy(np.float64)
    mag_ids, mag = np.unique(bins.to_numpy(dtype=str), return_inverse=True)
    mag = mag.ravel().astype(np.int64)
    n_mags = len(mag_ids)
    decided, vote_conflict = _vote(mag, n_mags, codes, bp, bp * support, depth, majority)
    reference, judged, conflict = _reference(mag, n_mags, codes, bp, bp * support, depth,
                                             decided, majority, supported & labelled)
    flagged = (conflict >= 0) & (support >= confidence)

    mag_depth = _deepest(decided)
    total_bp = np.bincount(mag, weights=bp, minlength=n_mags)
    labelled_bp = np.bincount(mag, weights=bp * labelled, minlength=n_mags)
    rows = np.arange(len(mag))
    at_depth = np.maximum(mag_depth[mag], 0)
    backs = labelled & (vote_conflict < 0) & (mag_depth[mag] >= 0) \
        & (codes[rows, at_depth] == decided[mag, at_depth])
    backing_bp = np.bincount(mag, weights=bp * backs, minlength=n_mags)
    with np.errstate(invalid="ignore", divide="ignore"):
        confidence_share = np.where(mag_depth >= 0, backing_bp / labelled_bp, np.nan)
        per_rank = {}
        for r in range(N_RANKS):
            against = flagged & (conflict <= r)
            share = np.bincount(mag, weights=bp * against, minlength=n_mags) / labelled_bp
            per_rank[f"contamination {RANKS[r]}"] = np.where(r <= judged, share, np.nan)
    overall = np.full(n_mags, np.nan)
    assessed = judged >= 0
    overall[assessed] = np.stack(list(per_rank.values()), axis=1)[assessed, judged[assessed]]

    def lineage_text(row):
        return format_lineage([names[r][c] if c >= 0 else None for r, c in enumerate(row)])

    lineages = [lineage_text(row) for row in decided]
    references = [lineage_text(row) for row in reference]
    index = pd.Index(mag_ids, name="Feature ID")
    mag_taxonomy = pd.DataFrame({"Taxon": lineages,
                                 "Confidence": np.round(confidence_share, 4)}, index=index)
    summary = pd.DataFrame({
        "Taxon": lineages,
        "rank": [RANKS[d] if d >= 0 else "" for d in mag_depth],
        "Confidence": confidence_share,
        "contigs": np.bincount(mag, minlength=n_mags),
        "bp": total_bp.astype(np.int64),
        "labelled bp share": labelled_bp / np.where(total_bp > 0, total_bp, 1),
        "reference": references,
        "judged rank": [RANKS[d] if d >= 0 else "" for d in judged],
        "contamination": overall,
        **per_rank,
        "flagged contigs": np.bincount(mag, weights=flagged, minlength=n_mags)
        .astype(np.int64),
    }, index=index)
    confidence_column = next((c for c in labels.columns if str(c).lower() == "confidence"), None)
    contig_table = pd.DataFrame({
        "MAG": mag_ids[mag],
        "length": bp.astype(np.int64),
        "Taxon": labels["Taxon"].where(labels["Taxon"].notna(), "").astype(str).to_numpy(),
        "Confidence": (pd.to_numeric(labels[confidence_column], errors="coerce").to_numpy()
                       if confidence_column is not None else np.nan),
        "conflict rank": np.where(conflict >= 0, np.asarray(RANKS, dtype=object)[conflict], ""),
        "flagged": flagged,
    }, index=pd.Index(bins.index, name="contig"))
    return MAGCalls(taxonomy=mag_taxonomy, summary=summary, contigs=contig_table,
                    _codes=codes, _names=names, _decided=decided, _mag_of=mag)
