"""Correction: the genome-neighbourhood evidence, the keep/change/cut decision, the plain cut."""
import numpy as np
import pytest

from q2_taxdistill.engine import workflow
from q2_taxdistill.engine.correction import (decide, decode, judged_ranks, label_evidence,
                                             neighbour_space, neighbourhood, smooth)
from q2_taxdistill.engine.kmers import N_TNF
from q2_taxdistill.engine.labels import encode_labels
from q2_taxdistill.engine.metrics import score_taxonomy
from q2_taxdistill.engine.neighbours import nearest_neighbours
from q2_taxdistill.engine.progress import reporting, stderr_reporter
from q2_taxdistill.engine.student import FeatureSpec, StudentConfig
from q2_taxdistill.engine.taxonomy import N_RANKS, TaxonomyTree, parse_lineage

ABOVE = "d__D; p__P; c__C; o__O; f__F; "
SPECIES = N_RANKS - 1


def test_decode_follows_the_tree_and_cuts_at_the_threshold():
    lineages = [parse_lineage(t) for t in ["d__A; p__X; c__1", "d__A; p__Y; c__2"]]
    tree = TaxonomyTree.from_lineages(lineages)
    p = [np.zeros((1, tree.n_classes(r))) for r in range(7)]
    p[0][0, 0] = 1.0
    x, y = tree.encode(lineages)[:, 1]
    c2 = tree.encode(lineages)[1, 2]
    c1 = tree.encode(lineages)[0, 2]
    p[1][0, [x, y]] = [0.8, 0.2]
    p[2][0, [c1, c2]] = [0.1, 0.9]   # the most probable class lies under the other phylum
    decision, = decode(p, tree, threshold=0.5)
    assert decision.lineage[:3] == ("A", "X", None)
    assert decision.confidence == pytest.approx(0.8)
    decision, = decode(p, tree, threshold=0.05)
    assert decision.lineage[:3] == ("A", "X", "1") and decision.code == c1


def test_smoothing_is_the_neighbourhood_mean():
    rng = np.random.default_rng(4)
    space = rng.normal(size=(60, 3)).astype(np.float32)
    probabilities = [rng.random((60, 4)).astype(np.float32) for _ in range(2)]
    rows = neighbourhood(space, 5)
    assert (rows[:, 0] == np.arange(60)).all()
    assert (rows[:, 1:] == nearest_neighbours(space, 5)).all()
    for got, p in zip(smooth(probabilities, rows), probabilities):
        assert np.allclose(got, p[rows].mean(1), atol=1e-6)
    assert smooth(probabilities, neighbourhood(space, 0)) is probabilities


def _tree(*species):
    lineages = [parse_lineage(ABOVE + t) for t in species]
    return TaxonomyTree.from_lineages(lineages), lineages


def _uniform(tree, n):
    """An uninformative student: equal probability on every taxon and on "unnamed"."""
    return [np.full((n, tree.n_classes(r) + 1), 1.0 / (tree.n_classes(r) + 1), np.float32)
            for r in range(N_RANKS)]


@pytest.mark.parametrize("steps", [1, 2, 3])
def test_label_evidence_matches_its_definition(steps):
    tree, lineages = _tree("g__G; s__S1", "g__G; s__S2", "g__H; s__T", "g__G")
    rng = np.random.default_rng(steps)
    n, k = 40, 4
    chosen = [lineages[i] for i in rng.integers(0, 4, n)]
    chosen[:3] = [(None,) * N_RANKS] * 3                      # unlabelled contigs do not vote
    support = np.where(rng.random(n) < 0.3, 0.8, 1.0)
    labels = encode_labels(tree, chosen, support)
    rows = np.concatenate([np.arange(n)[:, None], rng.integers(0, n, (n, k))], axis=1)
    prior = [rng.dirichlet(np.ones(tree.n_classes(r) + 1), n).astype(np.float32)
             for r in range(N_RANKS)]
    got = label_evidence(labels, prior, rows, steps=steps, prior_weight=5.0)
    step = np.zeros((n, n))
    for i in range(n):
        for j in rows[i]:
            step[i, j] += 1.0
    spread = step @ np.linalg.matrix_power(step / (k + 1), steps - 1)
    for r in range(N_RANKS):
        c = tree.n_classes(r)
        votes = np.zeros((n, c + 1))
        for i in range(n):
            if labels.codes[i, r] >= 0:
                votes[i, labels.codes[i, r]] = labels.weights[i, r]
                votes[i, c] = 1 - labels.weights[i, r]
        counts = spread @ votes
        want = (5.0 * prior[r] + counts) / (5.0 + counts.sum(1, keepdims=True))
        assert np.allclose(got[r], want, atol=1e-5), r
        assert np.allclose(got[r].sum(1), 1.0, atol=1e-5)


def _evidence(tree, rank_values):
    """Evidence where every rank above the ones given is certain of its only taxon."""
    n = len(next(iter(rank_values.values())))
    evidence = []
    for r in range(N_RANKS):
        e = np.zeros((n, tree.n_classes(r) + 1))
        if r in rank_values:
            e[:] = rank_values[r]
        else:
            e[:, 0] = 1.0
        evidence.append(e)
    return evidence


def test_decide_keeps_an_input_name_that_half_the_evidence_supports():
    tree, lineages = _tree("g__G; s__S1", "g__G; s__S2")
    s1, s2 = tree.encode(lineages)[:, SPECIES]
    codes = tree.encode(lineages[:1] * 4)
    species = np.zeros((4, 3))
    species[0, [s1, s2, 2]] = [0.55, 0.45, 0.0]   # split evidence: the input stands
    species[1, [s1, s2, 2]] = [0.40, 0.30, 0.30]  # under half, nothing confident: cut
    species[2, [s1, s2, 2]] = [0.20, 0.75, 0.05]  # another species is confident: changed
    species[3, [s1, s2, 2]] = [0.10, 0.10, 0.80]  # "unnamed" is confident: cut
    decisions, outcome = decide(_evidence(tree, {SPECIES: species}), tree, codes, 0.7)
    assert [d.lineage[SPECIES] for d in decisions] == ["S1", None, "S2", None]
    assert [d.rank for d in decisions] == [SPECIES, SPECIES - 1, SPECIES, SPECIES - 1]
    assert decisions[0].confidence == pytest.approx(0.55)
    assert decisions[2].confidence == pytest.approx(0.75)
    assert outcome[:, SPECIES].tolist() == [1, 0, 2, 0]
    assert (outcome[:, :SPECIES] == 1).all()


def test_decide_fills_a_missing_rank_only_when_confident():
    tree, lineages = _tree("g__G; s__S1", "g__G")
    s1 = tree.encode(lineages)[0, SPECIES]
    codes = tree.encode(lineages[1:] * 2)                      # input stops at genus
    species = np.zeros((2, 2))
    species[0, [s1, 1]] = [0.9, 0.1]
    species[1, [s1, 1]] = [0.6, 0.4]
    decisions, outcome = decide(_evidence(tree, {SPECIES: species}), tree, codes, 0.7)
    assert [d.lineage[SPECIES] for d in decisions] == ["S1", None]
    assert outcome[:, SPECIES].tolist() == [2, 0]


def test_decide_never_keeps_a_name_under_a_changed_parent():
    tree, lineages = _tree("g__G; s__S1", "g__H; s__T")
    (g, h), (s1, t) = tree.encode(lineages)[:, SPECIES - 1], tree.encode(lineages)[:, SPECIES]
    codes = tree.encode(lineages[:1])
    genus, species = np.zeros((1, 3)), np.zeros((1, 3))
    genus[0, [g, h]] = [0.2, 0.8]
    species[0, [s1, t]] = [0.6, 0.4]                           # S1 lies under G, not H
    decisions, _ = decide(_evidence(tree, {SPECIES - 1: genus, SPECIES: species}), tree,
                          codes, 0.7)
    assert decisions[0].lineage[SPECIES - 1:] == ("H", None)


def test_decide_names_a_checked_majority_under_a_changed_parent_only():
    tree, lineages = _tree("g__G; s__S1", "g__H; s__T", "g__H; s__U", "g__G")
    codes = tree.encode(lineages)
    g, h = codes[0, SPECIES - 1], codes[1, SPECIES - 1]
    s1, t, u = codes[0, SPECIES], codes[1, SPECIES], codes[2, SPECIES]
    inputs = codes[[0, 3, 0]]                       # S1; genus G only; S1
    genus, species = np.zeros((3, 3)), np.zeros((3, 4))
    genus[:2, [g, h]] = [0.2, 0.8]                  # the evidence moves G -> H
    genus[2, [g, h]] = [0.8, 0.2]                   # the evidence keeps G
    species[:2, [s1, t, u]] = [0.1, 0.55, 0.15]     # T holds half, below confidence
    species[2, [s1, t, u]] = [0.45, 0.1, 0.0]       # S1 under half
    evidence = _evidence(tree, {SPECIES - 1: genus, SPECIES: species})
    plain, _ = decide(evidence, tree, inputs, 0.7)
    checked, outcome = decide(evidence, tree, inputs, 0.7, checked_ranks=(SPECIES,))
    assert [d.lineage[SPECIES - 1:] for d in plain] == [("H", None), ("H", None), ("G", None)]
    # the input's S1 lies under the refuted G: T, holding half, names the species; a rank
    # the input left unnamed still needs confidence, and an unchanged parent keeps the rule
    assert [d.lineage[SPECIES - 1:] for d in checked] == [("H", "T"), ("H", None), ("G", None)]
    assert checked[0].confidence == pytest.approx(0.55)
    assert outcome[:, SPECIES].tolist() == [2, 0, 0]


def test_decide_judges_names_below_unnamed_ranks_on_their_own_evidence():
    """NCBI virus lineages name no phylum or class; a genus may have no family. The names
    below the gap are judged, the gap is never filled."""
    virus = parse_lineage("d__Viruses; p__; c__; o__Nidovirales; f__Coronaviridae; "
                          "g__Betacoronavirus; s__Betacoronavirus pandemicum")
    other = parse_lineage("d__Viruses; p__Pisuviricota; c__Pisoniviricetes; o__Nidovirales")
    nofamily = parse_lineage("d__Bacteria; p__P; c__C; o__O; f__; g__G; s__G one")
    tree = TaxonomyTree.from_lineages([virus, other, nofamily])
    codes = tree.encode([virus, virus, nofamily])
    evidence = []
    for r in range(N_RANKS):
        e = np.zeros((3, tree.n_classes(r) + 1))
        for i, c in enumerate(codes[:, r]):
            e[i, c if c >= 0 else -1] = 1.0
        evidence.append(e)
    # the named-class sibling path is confident at phylum and class for the first contig
    for r in (1, 2):
        evidence[r][0, tree.encode([other])[0, r]] = 0.9
        evidence[r][0, -1] = 0.1
    # the second contig's own species evidence is weak: cut there, above kept
    evidence[SPECIES][1, codes[1, SPECIES]] = 0.3
    evidence[SPECIES][1, -1] = 0.7
    decisions, outcome = decide(evidence, tree, codes, 0.7)
    assert decisions[0].lineage == virus
    assert (outcome[0, 1:3] == 0).all() and (outcome[0, 3:] == 1).all()
    assert decisions[1].lineage == virus[:SPECIES] + (None,)
    assert decisions[2].lineage == nofamily and decisions[2].rank == SPECIES


def _genomes(tree, lineages, support=None):
    """Genomes of 40 contigs whose neighbourhoods stay inside each genome."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(len(lineages)):
        genome = np.arange(40) + 40 * (i // 40)
        rows.append([i] + list(rng.choice(np.delete(genome, i % 40), 20, replace=False)))
    return encode_labels(tree, lineages, support), np.array(rows)


def test_a_genome_decides_for_its_odd_contigs_and_a_mosaic_strain_keeps_its_name():
    """A: a known species whose accessory contigs hit a relative (10%); B: a strain of the
    same species whose recombined pieces give 30 of its 40 contigs partial support (0.8);
    C: a species whose labels are right but whose student knows nothing (uniform): the
    input stands; D: a new genus whose few labels are scattered and weakly supported."""
    tree, named = _tree("g__G; s__S1", "g__R; s__Rel", "g__H; s__T", "g__G; s__S2")
    s1, rel, t, s2 = tree.encode(named)[:, SPECIES]
    lineages = [named[0]] * 80 + [named[2]] * 40 + [named[1]] * 10 + [named[3]] * 10 + [
        parse_lineage(ABOVE)] * 20
    lineages[0:4] = [named[1]] * 4
    support = np.ones(160)
    support[40:70] = 0.8
    support[120:140] = 0.4
    labels, rows = _genomes(tree, lineages, support)
    evidence = label_evidence(labels, _uniform(tree, 160), rows)
    decisions, outcome = decide(evidence, tree, labels.codes, 0.7)
    species = [d.lineage[SPECIES] for d in decisions]
    assert species[:4] == ["S1"] * 4 and (outcome[:4, SPECIES] == 2).all()
    assert species[4:40] == ["S1"] * 36 and (outcome[4:40, SPECIES] == 1).all()
    assert species[40:80] == ["S1"] * 40 and (outcome[40:80, SPECIES] == 1).all()
    assert species[80:120] == ["T"] * 40 and (outcome[80:120] == 1).all()
    assert species[120:] == [None] * 40
    assert all(d.lineage[SPECIES - 1] is None for d in decisions[120:])


def test_support_counts_on_the_inputs_own_scale():
    """MMseqs2 support (median 1) weighs a label by its value; a tool whose right labels
    carry lower scores (Kraken2's k-mer share) keeps its typical label at full trust; a
    floor withdraws the votes of labels below it."""
    tree, named = _tree("g__G; s__S1", "g__G")
    lineages = [named[0]] * 5 + [named[1]] * 2
    mmseqs = encode_labels(tree, lineages, np.array([1.0, 1.0, 1.0, 0.8, 0.5, 0.6, np.nan]))
    assert mmseqs.weights[:5, SPECIES].tolist() == pytest.approx([1.0, 1.0, 1.0, 0.8, 0.5])
    assert mmseqs.weights[5:, SPECIES - 1].tolist() == [1.0, 1.0]   # alone at genus: median
    assert (mmseqs.weights[:, :SPECIES - 1] == 1).all()
    kraken = encode_labels(tree, lineages, np.array([0.3, 0.4, 0.2, 0.5, 0.35, 0.1, 0.1]))
    assert kraken.weights[:5, SPECIES].tolist() == pytest.approx([0.3 / 0.35, 1, 0.2 / 0.35,
                                                                  1, 1])
    floor = encode_labels(tree, lineages, np.array([1.0, 1.0, 1.0, 0.8, 0.5, 0.6, np.nan]),
                          min_support=0.9)
    assert floor.weights[:5, SPECIES].tolist() == [1.0, 1.0, 1.0, 0.0, 0.0]


def test_an_isolated_contig_keeps_its_label_when_the_student_agrees(example):
    tree, named = _tree("g__G; s__S1", "g__H; s__T")
    labels = encode_labels(tree, named[:1])
    student = [np.zeros((1, tree.n_classes(r) + 1), np.float32) for r in range(N_RANKS)]
    for r, code in enumerate(labels.codes[0]):
        student[r][0, code] = 0.6
        student[r][0, -1] = 0.4
    evidence = label_evidence(labels, student, np.zeros((1, 1), np.int64))
    decisions, outcome = decide(evidence, tree, labels.codes, 0.7)
    assert decisions[0].lineage == named[0] and (outcome == 1).all()


@pytest.fixture(scope="module")
def trained(example_student):
    """A student of the example (StudentConfig(n_folds=3, max_epochs=15, patience=3), shared:
    tests/conftest.py)."""
    return example_student


def test_correct_is_never_worse_than_its_input_on_the_example(example, trained, capsys):
    with reporting(stderr_reporter()):
        corrected = workflow.correct(trained, example["contigs"], example["counts"],
                                     example["taxonomy"])
    assert "input labels of the scored contigs:" in capsys.readouterr().err
    before = score_taxonomy(example["taxonomy"]["Taxon"], example["truth"]["Taxon"])
    after = score_taxonomy(corrected["Taxon"], example["truth"]["Taxon"])
    for rank in ("phylum", "class", "order", "family", "genus", "species"):
        assert after.loc[rank, "f1"] >= before.loc[rank, "f1"], rank
        assert after.loc[rank, "correct"] >= before.loc[rank, "correct"], rank
    assert after.loc["species", "precision"] > before.loc["species", "precision"]


def test_correct_without_input_labels_uses_the_student_alone(example, trained, capsys):
    with reporting(stderr_reporter()):
        alone = workflow.correct(trained, example["contigs"], example["counts"])
    assert "lineages come from the student alone" in capsys.readouterr().err
    after = score_taxonomy(alone["Taxon"], example["truth"]["Taxon"])
    assert after.loc["genus", "precision"] > 0.9


def _segment_neighbours(seed, host, donor, segment):
    """The 10 nearest contigs (indices) of a segment with the donor's composition among 30
    host and 30 donor contigs (indices 0-29: the host's); `host`, `donor`, `segment`: each
    one's (profile, depth)."""
    rng = np.random.default_rng(seed)
    samples = [f"S{i + 1}" for i in range(len(host[0]))]
    width = N_TNF + 1 + len(samples) + 1
    spec = FeatureSpec(samples=samples, mean=[0.0] * width, std=[1.0] * width)
    host_tnf, donor_tnf = rng.normal(0, 1, N_TNF), rng.normal(0, 1, N_TNF)

    def contigs(centre, abundance, n):
        raw = np.zeros((n, width))
        raw[:, :N_TNF] = centre + rng.normal(0, 0.7, (n, N_TNF))
        raw[:, spec.profile_columns] = abundance[0]
        raw[:, spec.depth_columns] = abundance[1]
        return raw

    raw = np.concatenate([contigs(host_tnf, host, 30), contigs(donor_tnf, donor, 30),
                          contigs(donor_tnf, segment, 1)])
    space = neighbour_space(spec, raw)
    return np.argsort(((space[:-1] - space[-1]) ** 2).sum(1))[:10]


def test_a_segment_with_its_donors_composition_finds_its_genome_by_co_abundance():
    """A strain's accessory segment carries a donor's composition but its own genome's
    abundance profile: in the neighbour space the profile leads, so its nearest contigs are
    its genome's (with composition and profile weighed about equally they were the donor's)."""
    host, donor = ([0.4, 0.3, 0.2, 0.1], 0.0), ([0.1, 0.2, 0.3, 0.4], 0.0)
    assert (_segment_neighbours(0, host, donor, host) < 30).all()


def test_with_one_sample_the_depth_finds_the_segments_genome():
    """One sample: the profile is constant, so the depth is the co-abundance that leads."""
    host, donor = ([1.0], 1.0), ([1.0], 0.0)
    assert (_segment_neighbours(1, host, donor, host) < 30).all()


def test_taxa_the_neighbour_space_does_not_resolve_keep_their_names():
    """Three congeners of 60 contigs each, rightly labelled: when every neighbourhood mixes
    them (no read counts to tell them apart) the names are kept; when each neighbourhood
    stays in its genome the same labels are judged (and kept on their evidence)."""
    tree, named = _tree("g__G; s__S1", "g__G; s__S2", "g__G; s__S3")
    lineages = [named[i // 60] for i in range(180)]
    labels = encode_labels(tree, lineages)
    rng = np.random.default_rng(2)
    mixed = np.array([[i] + list(rng.choice(np.delete(np.arange(180), i), 20, replace=False))
                      for i in range(180)])
    judged, why = judged_ranks(lineages, 20, labels.codes, mixed)
    assert (judged == SPECIES).all() and "does not resolve its genomes" in why
    evidence = label_evidence(labels, _uniform(tree, 180), mixed)
    assert all(d.lineage[SPECIES] is None for d in decide(evidence, tree, labels.codes,
                                                          0.7)[0])   # judged: all lost
    kept, _ = decide(evidence, tree, labels.codes, 0.7, judged_ranks=judged)
    assert [d.lineage for d in kept] == lineages
    pure = np.array([[i] + list(rng.choice(np.delete(np.arange(60) + 60 * (i // 60), i % 60),
                                           20, replace=False)) for i in range(180)])
    judged, why = judged_ranks(lineages, 20, labels.codes, pure)
    assert (judged == N_RANKS).all() and why is None
