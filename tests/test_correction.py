"""Correction: smoothing over the neighbourhood, the top-down cut, and the species check."""
import numpy as np
import pytest

from q2_taxdistill.engine import workflow
from q2_taxdistill.engine.correction import (SPECIES, check_species, decode, neighbourhood,
                                             smooth, species_conflict)
from q2_taxdistill.engine.neighbours import nearest_neighbours
from q2_taxdistill.engine.progress import reporting, stderr_reporter
from q2_taxdistill.engine.student import StudentConfig
from q2_taxdistill.engine.taxonomy import TaxonomyTree, parse_lineage


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
    decision, = decode(p, tree, threshold=0.05, max_rank=1)
    assert decision.lineage[:3] == ("A", "X", None) and decision.rank == 1


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


def _dense_conflict(species, labels, rows, steps):
    """The definition, written out with a dense averaging matrix."""
    n, k = rows.shape
    step = np.zeros((n, n))
    for i in range(n):
        for j in rows[i]:
            step[i, j] += 1.0 / k
    weight = np.linalg.matrix_power(step, steps)
    out = np.zeros(n)
    for i in range(n):
        if species[i] < 0:
            continue
        counted = (species == species[i]) & (labels >= 0)
        total = weight[i, counted].sum()
        if total > 0:
            out[i] = 1.0 - weight[i, counted & (labels == species[i])].sum() / total
    return out


@pytest.mark.parametrize("steps", [1, 2, 4])
def test_species_conflict_matches_its_definition(steps):
    rng = np.random.default_rng(steps)
    n, k = 70, 5
    rows = np.concatenate([np.arange(n)[:, None], rng.integers(0, n, (n, k - 1))], axis=1)
    species = rng.integers(-1, 4, n)
    labels = rng.integers(-1, 5, n)   # 4: a species the student does not know
    got = species_conflict(species, labels, rows, steps=steps)
    assert np.allclose(got, _dense_conflict(species, labels, rows, steps), atol=1e-9)


def _two_genomes():
    """Genome A (contigs 0-39) given species S1 of genus G; genome B (40-79) species T of H.
    Each contig's neighbours lie in its own genome."""
    above = "d__D; p__P; c__C; o__O; f__F; "
    lineages = [parse_lineage(above + t) for t in ["g__G; s__S1", "g__G; s__S2", "g__H; s__T"]]
    tree = TaxonomyTree.from_lineages(lineages)
    s1, s2, t = tree.encode(lineages)[:, SPECIES]
    g, h = tree.encode(lineages)[[0, 2], SPECIES - 1]
    rng = np.random.default_rng(0)
    rows = []
    for i in range(80):
        genome = np.arange(40) + 40 * (i // 40)
        rows.append([i] + list(rng.choice(np.delete(genome, i % 40), 6, replace=False)))
    rows = np.array(rows)
    p = [np.zeros((80, tree.n_classes(r)), np.float32) for r in range(7)]
    for r in range(5):
        p[r][:, 0] = 1.0
    p[5][:40, g], p[5][40:, h] = 0.95, 0.9
    p[6][:40, s1], p[6][40:, t] = 0.9, 0.85
    return tree, rows, p, (s1, s2, t)


def test_a_genome_whose_labels_name_two_species_loses_its_species_name():
    tree, rows, p, (s1, s2, t) = _two_genomes()
    labels = np.array([s1] * 40 + [t] * 40)
    labels[[3, 17]] = s2                        # 5% of genome A hit a sibling species
    labels[[5, 44]] = -1                        # labels cut short count for nothing
    decisions = decode(p, tree, 0.7)
    assert all(d.rank == SPECIES for d in decisions)
    checked, withdrawn = check_species(decisions, p, tree, 0.7, labels, rows, 0.005)
    assert withdrawn == 40
    assert all(d.rank == SPECIES - 1 and d.lineage[5] == "G" for d in checked[:40])
    assert all(d.confidence == pytest.approx(0.95) for d in checked[:40])
    assert checked[40:] == decisions[40:]
    _, withdrawn = check_species(decisions, p, tree, 0.7, labels, rows, 0.2)
    assert withdrawn == 0


def test_labels_of_contigs_given_another_species_do_not_count():
    """Genome B, given its own species, sits next to genome A: B's labels name a congeneric
    species, which is no evidence against A's name."""
    tree, rows, p, (s1, s2, t) = _two_genomes()
    p[5][40:] = p[5][:40]
    p[6][40:] = 0.0
    p[6][40:, s2] = 0.85                         # genome B: S2, of A's genus
    labels = np.array([s1] * 40 + [s2] * 40)
    rows[:40, -1] = 40 + np.arange(40)           # A's contigs see B's ...
    rows[40:, -1] = np.arange(40)                # ... and B's see A's
    decisions = decode(p, tree, 0.7)
    assert {d.code for d in decisions} == {s1, s2}
    _, withdrawn = check_species(decisions, p, tree, 0.7, labels, rows, 0.005)
    assert withdrawn == 0
    labels[40:45] = t                            # B's own labels name another species
    conflict = species_conflict(np.array([d.code for d in decisions]), labels, rows)
    assert (conflict[:40] == 0).all() and (conflict[40:] > 0.005).all()


def test_correct_withdraws_species_contradicted_by_the_input_labels(example, capsys):
    """A genome whose input labels name two species keeps its genus but not a species name;
    with the check off (1.0) the species is named."""
    taxonomy = example["taxonomy"].copy()
    soft = workflow.teach(example["contigs"], taxonomy)
    student = workflow.distill(example["contigs"], taxonomy, soft.to_frame(), example["counts"],
                               config=StudentConfig(n_folds=3, max_epochs=15, patience=3))
    kept = workflow.correct(student, example["contigs"], example["counts"], taxonomy,
                            n_neighbours=10, max_species_conflict=1.0)
    alba = kept.index[kept["Taxon"].str.endswith("s__Fictimonas alba")]
    assert len(alba) > 20
    relabelled = taxonomy.copy()
    rubra = taxonomy.loc[taxonomy["Taxon"].str.endswith("s__Fictimonas rubra"), "Taxon"].iloc[0]
    relabelled.loc[alba[::8], "Taxon"] = rubra
    with reporting(stderr_reporter()):
        checked = workflow.correct(student, example["contigs"], example["counts"], relabelled,
                                   n_neighbours=10)
    assert "species name(s) withdrawn" in capsys.readouterr().err
    assert checked.loc[alba, "Taxon"].str.endswith("g__Fictimonas").mean() > 0.9
    others = kept.index.difference(alba)
    assert (checked.loc[others, "Taxon"] == kept.loc[others, "Taxon"]).mean() > 0.95
