"""From the student's predictions and the input labels to one lineage per contig.

The input label is evidence, not only a training target. Each contig is judged on its
*genome neighbourhood*: its nearest contigs in composition + co-abundance space
(`neighbour_space`), spread a few averaging steps along the neighbour graph (at most
`GENOME_STEPS`, fewer where taxa have few contigs: `genome_steps`). Contigs of one genome
share composition and abundance profile, so the neighbourhood is mostly that genome, and its
input labels say how that genome was labelled as a whole: a known species' contigs name it
throughout (a strain's accessory and recombined pieces now and then name a relative); a new
genus carries scattered names. Each label votes with its trust (`labels`: its support on the
input's own scale), and the student's own prediction joins as `PRIOR_WEIGHT` pseudo-labels,
which is what speaks where the neighbourhood is unlabelled. With the search's hits, species
votes are weighed by the genome's identity to its reference (`weigh_species_by_identity`):
labels alone cannot tell a novel species named after its only sibling from a strain of it;
with the database's taxonomy too, labels that stop above their best target are extended to
it first (`hits.extend_by_hits`) and judged like the rest.

Per rank that gives a posterior distribution over taxa and "unnamed" (`label_evidence`).
The decision (`decide`), top-down:
- the input name is kept while at least half the evidence supports it (`KEEP`): weak or
  split evidence never costs a label;
- it is changed only when another taxon reaches `confidence`, and a rank the input does not
  name is filled only then;
- otherwise the lineage stops above that rank (a new taxon, or a label its own genome
  does not back); with hits, a species the identity-weighed evidence holds at `KEEP`
  is named under a genus the evidence changed (`decide`'s `checked_ranks`);
- where the evidence cannot judge a taxon (too few contigs, or neighbourhoods that do not
  resolve its genomes: `judged_ranks`) the input name stands.

Without input labels, the student's neighbourhood-averaged prediction is cut at the deepest
rank reaching `confidence` (`decode`).
"""
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .hits import same_species
from .neighbours import nearest_neighbours
from .parameters import DEFAULTS
from .taxonomy import N_RANKS, RANKS, format_lineage

GENOME_STEPS = 3
PRIOR_WEIGHT = 5.0
KEEP = 0.5
# The neighbour space: 136 TNF z-scores, then (with read counts) the square-rooted abundance
# profile and the log depth. Co-abundance is weighted to lead: a genome's contigs share their
# profile and depth, while composition varies along a genome (a strain's accessory and
# recombined segments carry their donor's), so composition mostly orders contigs within a
# co-abundant group; with one sample the profile is constant and the depth is all there is.
# Chosen against the earlier 15 and 3 on the benchmarks with 1, 2, 3 and 8 samples and on
# their subsets; the README ("What changed") says what was measured and what it trades.
ABUNDANCE_WEIGHT = 60.0
DEPTH_WEIGHT = 30.0


def neighbour_space(spec, raw):
    """Where correction looks for a contig's genome neighbourhood: the student's TNF
    z-scores, plus the abundance profile and depth weighted by `ABUNDANCE_WEIGHT` and
    `DEPTH_WEIGHT` when the student read abundance (`spec`: its `FeatureSpec`)."""
    z = spec.normalise(raw)
    parts = [z[:, spec.tnf_columns]]
    if spec.samples is not None:
        parts += [ABUNDANCE_WEIGHT * np.sqrt(raw[:, spec.profile_columns]),
                  DEPTH_WEIGHT * raw[:, spec.depth_columns]]
    return np.concatenate(parts, axis=1)


def min_taxon_contigs(n_neighbours):
    """Contigs a taxon needs for the genome neighbourhoods of its contigs (the contig and
    its `n_neighbours` nearest) to lie mostly inside it: twice a neighbourhood, since a
    contig at a genome's edge has about half its neighbours outside. Below it the votes
    judge a mixture of taxa. Measured on 223-contig subsets of the bundled example (half of
    the species labels in taxa of 27 contigs or fewer) judging species lost correct names at
    every neighbourhood size tried (5 to 20 neighbours), while the whole example (101) and
    1,500-contig subsets of the benchmarks (127-141) gained them."""
    return 2 * (n_neighbours + 1)


def taxon_sizes(lineages):
    """Scored contigs per input taxon, a taxon being a lineage prefix that ends in a name."""
    return Counter(l[:r + 1] for l in lineages for r in range(N_RANKS) if l[r] is not None)


def cohesion(codes, rows):
    """Per rank (n, 7): the share of each contig's neighbours (`rows` without itself) whose
    input label names the same taxon there; NaN where the contig names none. Counted one
    neighbour column at a time, so memory stays at (n, 7), not (n, k, 7)."""
    own = np.where(codes >= 0, codes, -2)
    same = np.zeros(codes.shape, np.int64)
    for j in range(1, rows.shape[1]):
        same += codes[rows[:, j]] == own
    return np.where(codes >= 0, same / (rows.shape[1] - 1), np.nan)


def judged_ranks(lineages, n_neighbours, codes=None, rows=None):
    """Per contig, the ranks (0 .. r-1) whose input names can be judged on genome
    neighbourhoods of `n_neighbours` + 1 contigs. From the first rank on where either
    - its input taxon has fewer than `min_taxon_contigs` scored contigs, or
    - (given the labels' `codes` and the neighbourhood `rows`) the taxon's contigs are not
      cohesive: the median share of their neighbours that name it is below `KEEP`,
    the input name is kept. A taxon whose own right labels cannot hold half of their
    neighbourhoods would lose them to the keep rule: its genomes are not resolved by the
    neighbour space (congeners of like composition without read counts: the bundled
    example without abundance lost 0.56 of its species F1 that way), so the votes would
    judge a mixture. Returns the (n,) ranks and a message (None when every contig is
    judged throughout)."""
    judged = np.full(len(lineages), N_RANKS, dtype=np.int64)
    if n_neighbours <= 0:
        return judged, None
    need = min_taxon_contigs(n_neighbours)
    sizes = taxon_sizes(lineages)
    for i, lineage in enumerate(lineages):
        for r in range(N_RANKS):
            if lineage[r] is not None and sizes[lineage[:r + 1]] < need:
                judged[i] = r
                break
    small = judged.copy()
    if codes is not None and rows is not None and rows.shape[1] > 1:
        shares = cohesion(codes, rows)
        for r in range(N_RANKS):
            named = np.flatnonzero(codes[:, r] >= 0)
            if not len(named):
                continue
            median = pd.Series(shares[named, r]).groupby(codes[named, r]).median()
            loose = np.isin(codes[:, r], median.index[median < KEEP])
            judged = np.where(loose & (judged > r), r, judged)
    if (judged == N_RANKS).all():
        return judged, None
    parts = []
    if (small < N_RANKS).any():
        counts = Counter(RANKS[r] for r in small if r < N_RANKS)
        parts.append(
            f"{int((small < N_RANKS).sum())} contig(s) keep their input names from a rank "
            f"whose input taxon has fewer than {need} scored contigs, too few for genome "
            f"neighbourhoods of {n_neighbours + 1} contigs to stay inside it "
            f"(genome_neighbours={n_neighbours}; add contigs or lower it): "
            + ", ".join(f"from {rank}: {count}" for rank, count in counts.items()))
    loose = judged < small
    if loose.any():
        counts = Counter(RANKS[r] for r in judged[loose])
        parts.append(
            f"{int(loose.sum())} contig(s) keep their input names from a rank whose taxon's "
            f"contigs mostly have neighbours naming other taxa (the neighbour space does not "
            f"resolve its genomes; read counts help): "
            + ", ".join(f"from {rank}: {count}" for rank, count in counts.items()))
    return judged, "; ".join(parts)


def genome_steps(lineages, n_neighbours):
    """Averaging steps for the genome neighbourhood: as many as the typical taxon (the size
    s such that half of the labels at the deepest rank most labels name are in taxa of at
    least s contigs) holds twice-neighbourhoods of `n_neighbours` + 1 contigs, 1 to
    `GENOME_STEPS`. Each step reaches further along the neighbour graph; in a small input it
    reaches into other genomes. Measured on the bundled example's seeded subsets (student
    trained on each): at 223 contigs 1 step kept every rank at least as right as the input
    and 3 steps lost 10 species names; on the whole example 1 and 2 steps named 562 and 557
    species right, 3 steps 545; on the benchmarks (thousands of contigs per set) 3 steps
    gave 0.01-0.02 more species F1 than 1."""
    n_labelled = sum(any(n is not None for n in l) for l in lineages)
    if not n_labelled or n_neighbours <= 0:
        return GENOME_STEPS
    by_rank = [[] for _ in range(N_RANKS)]
    for taxon, size in taxon_sizes(lineages).items():
        by_rank[len(taxon) - 1].append(size)
    typical = 0
    for sizes in by_rank:
        named = sum(sizes)
        if 2 * named < n_labelled:
            break
        sizes = sorted(sizes, reverse=True)
        typical = sizes[int(np.searchsorted(np.cumsum(sizes), named / 2))]
    return int(np.clip(typical // min_taxon_contigs(n_neighbours), 1, GENOME_STEPS))




def neighbourhood(space, n_neighbours, method="auto"):
    """Each row's `n_neighbours` nearest rows, itself first: (n, n_neighbours + 1)."""
    own = np.arange(len(space))[:, None]
    if n_neighbours <= 0 or len(space) < 2:
        return own
    neighbours = nearest_neighbours(space, n_neighbours, method=method,
                                    stage="correction: neighbours")
    return np.concatenate([own, neighbours], axis=1)


def _neighbourhood_mean(values, rows):
    """Mean of `values` over each row's `rows`, column by column: memory stays at one
    (n, classes) array, not (n, k, classes)."""
    total = np.zeros(values.shape, np.float32)
    for j in range(rows.shape[1]):
        total += values[rows[:, j]]
    return total / rows.shape[1]


def smooth(probabilities, rows):
    """Mean of the distributions of each contig's neighbourhood `rows` (itself included)."""
    if rows.shape[1] <= 1:
        return probabilities
    return [_neighbourhood_mean(p, rows) for p in probabilities]


def label_evidence(labels, probabilities, rows, steps=GENOME_STEPS, prior_weight=PRIOR_WEIGHT):
    """Per rank (n, C_r + 1): posterior over the taxa of that rank and "unnamed" (last column).

    Votes: each labelled contig of the neighbourhood (`rows`, itself included) gives its
    trust (`labels.weights`) to its taxon and the rest to "unnamed"; contigs whose label
    stops above the rank do not vote there. The votes are summed over `rows`, then averaged
    `steps - 1` more times along the graph (genome level, not just the nearest contigs).
    `probabilities` (the student's, per rank with "unnamed" last) count as `prior_weight`
    extra votes: a Dirichlet prior whose mean is the student's prediction."""
    n, k = rows.shape
    evidence = []
    for r, prior in enumerate(probabilities):
        n_classes = prior.shape[1] - 1
        codes, weights = labels.codes[:, r], labels.weights[:, r]
        named = np.flatnonzero(codes >= 0)
        votes = np.zeros((n, n_classes + 1), np.float32)
        votes[named, codes[named]] = weights[named]
        votes[named, n_classes] = 1.0 - weights[named]
        votes = _neighbourhood_mean(votes, rows) * k
        for _ in range(steps - 1):
            votes = _neighbourhood_mean(votes, rows)
        total = votes.sum(1, keepdims=True)
        evidence.append((prior_weight * prior + votes) / (prior_weight + total))
    return evidence


def weigh_species_by_identity(labels, identity, boundary=DEFAULTS.species_identity):
    """Scale each label's species vote by the chance that its genome is the named species,
    from its genome neighbourhood's best-hit identity (`hits.genome_identity`, NaN where
    unknown: the vote stands). Labels cannot tell a novel species named after its only
    sibling from a strain of that sibling (both name it throughout with full support); their
    distance to the reference can: a strain aligns above the species boundary, a sibling
    below it. The vote's lost share goes to "unnamed", so a genome below the boundary loses
    the species name and keeps its genus, and one above keeps it."""
    labels.weights[:, N_RANKS - 1] *= same_species(identity, boundary).astype(np.float32)
    return labels


def refute_species(label_codes, judged, identity, boundary=DEFAULTS.species_identity):
    """The input codes without the species names that would stand unjudged (`judged_ranks`
    at or above species: the neighbour votes cannot judge them) although the genome
    neighbourhood's best-hit identity says the genome is more likely not that species
    (`same_species` below `KEEP`). The cohesion rule keeps what the neighbour space cannot
    judge; the identity needs no resolved neighbour space, so it still judges the species
    name (a novel species whose contigs' neighbours name other taxa kept its sibling's name
    otherwise: on dev-mosaic an Enterococcus at 74% identity, on 0.85 of its contigs).
    NaN identity (no hit) refutes nothing. Returns (codes, number of names refuted)."""
    species = N_RANKS - 1
    refuted = ((np.asarray(judged) <= species) & (label_codes[:, species] >= 0)
               & (same_species(identity, boundary) < KEEP))
    codes = label_codes.copy()
    codes[refuted, species] = -1
    return codes, int(refuted.sum())


@dataclass
class Decision:
    lineage: tuple
    rank: int
    code: int
    confidence: float

    @property
    def taxon(self):
        return format_lineage(self.lineage)


def _decisions(tree, depth, deepest, confidence):
    return [
        Decision((None,) * N_RANKS if depth[i] < 0 else tree.lineage(depth[i], deepest[i]),
                 int(depth[i]), int(deepest[i]), float(confidence[i]))
        for i in range(len(depth))
    ]


def _nearest_ancestors(tree, r):
    """Per class at rank r: the rank and class of its deepest named ancestor ((-1, -1) at
    the top). A class under skipped ranks (a virus order with no phylum or class, an NCBI
    genus without a family) hangs from the last rank its path names."""
    if r == 0 or tree.n_classes(r) == 0:
        return np.full(tree.n_classes(r), -1), np.full(tree.n_classes(r), -1)
    paths = tree.encode([tree.lineage(r, c) for c in range(tree.n_classes(r))])[:, :r]
    named = paths >= 0
    rank = np.where(named.any(1), r - 1 - np.argmax(named[:, ::-1], axis=1), -1)
    return rank, np.where(rank >= 0, paths[np.arange(len(paths)), np.maximum(rank, 0)], -1)


def _under(tree, r, probabilities, chosen_rank, chosen):
    """Rank-r probabilities (without "unnamed") with classes whose nearest named ancestor is
    not the one chosen above at -1."""
    p = probabilities[:, :tree.n_classes(r)]
    if r == 0:
        return p
    rank, code = _nearest_ancestors(tree, r)
    inside = (rank[None, :] == chosen_rank[:, None]) & (code[None, :] == chosen[:, None])
    return np.where(inside, p, -1.0)


def decode(probabilities, tree, threshold):
    """Without input labels: top-down, at each rank the most probable child of the taxon
    chosen above; stop at the first rank whose probability is below `threshold`. Confidence =
    probability of the deepest rank kept (the top-rank probability when nothing is kept). A
    class whose parent rank is unnamed in the tree is never reached from above, so decoding
    stops there."""
    n = probabilities[0].shape[0]
    return decide(probabilities, tree, np.full((n, N_RANKS), -1), threshold)[0]


def decide(evidence, tree, label_codes, threshold, keep=KEEP, judged_ranks=None,
           checked_ranks=()):
    """Top-down decisions that start from the input label (see the module docstring).

    `label_codes` (n, 7): the input label's class per rank on `tree` (-1 where it names
    none). `judged_ranks` (n,), optional: per contig, the ranks from which on it is not
    judged; there its input name stands where it lies under the taxon chosen above (the
    caller found the evidence too thin).
    `checked_ranks`: ranks whose votes independent evidence has already weighed (species,
    given hits: `weigh_species_by_identity`). There, under a parent the evidence changed,
    the child holding `keep` of the evidence is named where the input named one: the
    input's own name lies under the refuted parent and cannot stand, and the votes a
    sibling's name would get from a novel genome are gone already. A strain's contig
    carrying a relative's genus and species (an accessory or recombined segment) then takes
    its genome's species along with its genus; unchecked, a majority under a changed parent
    names a novel genome's sibling (without hits on dev-mosaic: 142 species right, 91
    wrong; at genus, with or without hits, none right).
    A rank the input leaves unnamed above a rank it names (a virus without phylum or class,
    a genus without a family) stays unnamed and the ranks below are judged on their own
    evidence: it is never filled, since a name there could contradict the names below.
    Returns (decisions, outcome): outcome (n, 7) per rank is 1 where the input name was
    kept, 2 where a name was changed or added, 0 where the rank is left unnamed.
    Confidence = the evidence for the deepest rank named."""
    n = evidence[0].shape[0]
    rows = np.arange(n)
    chosen = np.full(n, -1, dtype=np.int64)
    chosen_rank = np.full(n, -1, dtype=np.int64)
    confidence = np.zeros(n, dtype=np.float64)
    outcome = np.zeros((n, N_RANKS), dtype=np.int8)
    active = np.ones(n, dtype=bool)
    judged_ranks = np.full(n, N_RANKS) if judged_ranks is None else np.asarray(judged_ranks)
    named = label_codes >= 0
    named_below = np.flip(np.cumsum(np.flip(named, 1), 1), 1) - named > 0
    for r in range(N_RANKS):
        label = label_codes[:, r]
        skip = active & (label < 0) & named_below[:, r]
        if tree.n_classes(r) == 0:
            active = skip
            if not active.any():
                break
            continue
        masked = _under(tree, r, evidence[r], chosen_rank, chosen)
        best = masked.argmax(1)
        best_p = masked[rows, best]
        if r == 0:
            confidence = np.maximum(best_p, 0.0).astype(np.float64)
        label_p = np.where(label >= 0, masked[rows, np.maximum(label, 0)], -1.0)
        # A taxon reaching `threshold` wins unless it is the input's or the input ties it;
        # below that the input stands while it holds `keep` of the evidence.
        confident = (best_p >= threshold) & ((best_p > label_p) | (best == label))
        pick = np.where(confident, best, np.where(label_p >= keep, label, -1))
        if r in checked_ranks and r > 0:
            moot = (outcome[:, r - 1] == 2) & (label >= 0) & (pick < 0)
            pick = np.where(moot & (best_p >= keep), best, pick)
        pick = np.where(r >= judged_ranks, np.where(label_p >= 0, label, -1), pick)
        ok = active & ~skip & (pick >= 0)
        chosen = np.where(ok, pick, chosen)
        chosen_rank = np.where(ok, r, chosen_rank)
        confidence = np.where(ok, masked[rows, np.maximum(pick, 0)], confidence)
        outcome[:, r] = np.where(ok, np.where(pick == label, 1, 2), 0)
        active = ok | skip
        if not active.any():
            break
    depth = chosen_rank
    return _decisions(tree, depth, chosen, confidence), outcome
