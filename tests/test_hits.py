"""Alignment evidence: BLAST6 rows per contig, genome identity, and what it does to species."""
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from q2_taxdistill.engine.correction import (decide, label_evidence, refute_species,
                                            weigh_species_by_identity)
from q2_taxdistill.engine.errors import InputError, TaxDistillWarning
from q2_taxdistill.engine import workflow
from q2_taxdistill.engine.hits import (COLUMNS, best_hits, extend_by_hits, genome_identity,
                                     same_species)
from q2_taxdistill.engine.labels import encode_labels
from q2_taxdistill.engine.taxonomy import N_RANKS, TaxonomyTree, parse_lineage

SPECIES = N_RANKS - 1


def _rows(*rows):
    return pd.DataFrame([list(r) for r in rows], columns=COLUMNS)


def _row(query, target, identity, length, qstart=1, bits=100.0):
    return (query, target, identity, length, 0, 0, qstart, qstart + length - 1, 1, length,
            1e-30, bits)


def test_rows_of_the_best_target_are_pooled_per_contig():
    hits = _rows(_row("c1", "t1", 98.0, 800, bits=900), _row("c1", "t1", 96.0, 200, 801, 150),
                 _row("c1", "t2", 99.0, 300, bits=600), _row("c2", "t3", 80.0, 1000, bits=700))
    with pytest.warns(TaxDistillWarning, match="1 of 3 scored contigs have no hit"):
        got = best_hits(hits, ["c1", "c2", "c3"], [1500, 900, 2000])
    assert got.identity[:2] == pytest.approx([97.6, 80.0])
    assert np.isnan(got.identity[2])
    assert got.aligned.tolist() == [1000, 900, 0]   # capped at the contig's length
    assert not got.protein


def test_mmseqs_fident_on_0_1_is_read_as_percent():
    hits = _rows(_row("c1", "t1", 0.975, 500), _row("c2", "t1", 0.81, 500))
    assert best_hits(hits, ["c1", "c2"], [600, 600]).identity == pytest.approx([97.5, 81.0])


def test_a_translated_search_is_recognised():
    row = list(_row("c1", "p1", 70.0, 300))
    row[7] = 900                                    # 300 aa over 900 bp of the contig
    with pytest.warns(TaxDistillWarning, match="amino-acid"):
        got = best_hits(_rows(row), ["c1"], [2000])
    assert got.protein and got.aligned[0] == 900


@pytest.mark.parametrize("bad, message", [
    (_rows(_row("x1", "t", 99.0, 100)), "none of the hits' query IDs are contig IDs"),
    (_rows(_row("c1", "t", 130.0, 100)), "0-100"),
    (_rows(_row("c1", "t", "high", 100)), "pident column must be numeric"),
    (_rows(_row("c1", "t", 99.0, 0)), "alignment lengths must be positive"),
    (pd.DataFrame({"qseqid": ["c1"]}), "lack BLAST6 column"),
])
def test_bad_hits_are_named(bad, message):
    with pytest.raises(InputError, match=message):
        best_hits(bad, ["c1"], [500])


def test_hits_of_other_contigs_are_reported_and_ignored():
    hits = _rows(_row("c1", "t", 99.0, 100), _row("zz", "t", 99.0, 100))
    with pytest.warns(TaxDistillWarning, match="1 query ID.*zz"):
        got = best_hits(hits, ["c1"], [500])
    assert got.identity[0] == 99.0


def test_genome_identity_weighs_contigs_by_aligned_bases():
    got = best_hits(_rows(_row("a", "t", 90.0, 100), _row("b", "t", 99.0, 900)),
                    ["a", "b", "c"], [1000, 1000, 1000])
    rows = np.array([[0, 1], [1, 0], [2, 2]])
    identity = genome_identity(got, rows)
    assert identity[:2] == pytest.approx([98.1, 98.1]) and np.isnan(identity[2])
    assert same_species(np.array([95.0, 99.0, 85.0, np.nan])).tolist() == pytest.approx(
        [0.5, 0.982, 0.0000454, 1.0], abs=1e-3)


def test_a_novel_species_loses_its_siblings_name_and_a_strain_keeps_it():
    """Both genomes name S1 throughout with full support: labels cannot tell them apart, the
    identity of their hits can."""
    lineages = [parse_lineage("d__D; p__P; c__C; o__O; f__F; g__G; s__S1")] * 80
    tree = TaxonomyTree.from_lineages(lineages)
    labels = encode_labels(tree, lineages, np.ones(80))
    rng = np.random.default_rng(1)
    rows = np.array([[i] + list(rng.choice(np.delete(np.arange(40) + 40 * (i // 40), i % 40),
                                           15, replace=False)) for i in range(80)])
    identity = np.r_[np.full(40, 98.5), np.full(40, 88.0)]
    weigh_species_by_identity(labels, identity)
    student = [np.full((80, tree.n_classes(r) + 1), 0.5, np.float32) for r in range(N_RANKS)]
    decisions, _ = decide(label_evidence(labels, student, rows), tree, labels.codes, 0.7)
    assert all(d.lineage == lineages[0] for d in decisions[:40])
    assert all(d.lineage == lineages[0][:SPECIES] + (None,) for d in decisions[40:])


def test_hits_refute_a_species_name_the_neighbour_votes_cannot_judge():
    """Where a taxon's contigs are not cohesive its input names stand unjudged (judged_ranks);
    a species name there still falls when the genome lies well below the species boundary,
    and stays for a strain above it or a contig without hits."""
    lineages = [parse_lineage("d__D; p__P; c__C; o__O; f__F; g__G; s__S1")] * 4
    tree = TaxonomyTree.from_lineages(lineages)
    labels = encode_labels(tree, lineages, np.ones(4))
    judged = np.array([SPECIES, SPECIES, SPECIES, N_RANKS])   # the last one is judged
    identity = np.array([80.0, 98.5, np.nan, 80.0])
    codes, refuted = refute_species(labels.codes, judged, identity)
    assert refuted == 1
    assert codes[:, SPECIES].tolist() == [-1, 0, 0, 0]
    assert (codes[:, :SPECIES] == labels.codes[:, :SPECIES]).all()
    student = [np.full((4, tree.n_classes(r) + 1), 0.5, np.float32) for r in range(N_RANKS)]
    rows = np.array([[i, i] for i in range(4)])
    decisions, _ = decide(label_evidence(labels, student, rows), tree, codes, 0.7,
                          judged_ranks=judged)
    assert decisions[0].lineage == lineages[0][:SPECIES] + (None,)
    assert decisions[1].lineage == decisions[2].lineage == lineages[0]


def test_labels_stopping_above_their_best_target_are_extended_to_it():
    hits = _rows(_row("c1", "t1", 99.0, 900), _row("c2", "t1", 99.0, 900),
                 _row("c3", "t1", 90.0, 900), _row("c4", "t2", 99.0, 900),
                 _row("c5", "t9", 99.0, 900), _row("c6", "t1", 99.0, 900))
    ids = ["c1", "c2", "c3", "c4", "c5", "c6"]
    with pytest.warns(TaxDistillWarning, match="hits"):
        contig_hits = best_hits(hits, ids + ["c7"], [1000] * 7)
    full = parse_lineage("d__D; p__P; c__C; o__O; f__F; g__G; s__S")
    other = parse_lineage("d__D; p__P; c__C; o__O; f__F; g__H; s__T")
    reference = {"t1": full, "t2": other}
    family = full[:5] + (None, None)
    lineages = [family, full[:6] + (None,), family, family, family,
                parse_lineage("d__D; p__P; c__C; o__O; f__F; g__K"), (None,) * N_RANKS]
    got, extended, missing = extend_by_hits(lineages, contig_hits, reference)
    # c1, c2 stop above their 99% target: extended; c3 lies below species_identity; c4 is
    # extended to its own target; c5's target is unknown; c6 names another genus; c7 has no hit
    assert extended.tolist() == [True, True, False, True, False, False, False]
    assert got[0] == got[1] == full and got[3] == other
    assert got[2] == family and got[5] == lineages[5] and got[6] == lineages[6]
    assert missing == 1


def test_a_reference_taxonomy_needs_hits_and_must_name_their_targets():
    reference = pd.DataFrame({"Taxon": ["d__D; p__P"]}, index=["t1"])
    with pytest.raises(InputError, match="give the hits too"):
        workflow.correct(None, None, reference_taxonomy=reference)
    contig_hits = best_hits(_rows(_row("c1", "x1", 99.0, 900)), ["c1"], [1000])
    with pytest.raises(InputError, match="none of the hits' best targets"):
        workflow._extended([(None,) * N_RANKS], np.ones(1), contig_hits, reference, 95.0)


@pytest.mark.skipif(shutil.which("mmseqs") is None, reason="MMseqs2 is not installed")
def test_real_mmseqs2_hits_read_with_their_identities(tmp_path):
    """A real `mmseqs easy-search` (default columns, fident on 0-1) of a strain's and a
    distant relative's contigs against a reference genome."""
    rng = np.random.default_rng(7)
    reference = rng.choice(list("ACGT"), 6000)

    def mutate(sequence, rate):
        out = sequence.copy()
        where = rng.random(len(out)) < rate
        out[where] = rng.choice(list("ACGT"), int(where.sum()))
        return "".join(out)

    (tmp_path / "ref.fna").write_text(">ref\n" + "".join(reference) + "\n")
    (tmp_path / "q.fna").write_text(">strain\n" + mutate(reference[:3000], 0.02) +
                                    "\n>relative\n" + mutate(reference[3000:], 0.16) + "\n")
    subprocess.run(["mmseqs", "easy-search", "q.fna", "ref.fna", "hits.m8", "tmp",
                    "--search-type", "3", "-k", "13", "-v", "1", "--threads", "1"],
                   cwd=tmp_path, check=True, capture_output=True)
    hits = pd.read_csv(tmp_path / "hits.m8", sep="\t", header=None, names=COLUMNS)
    assert hits["pident"].max() <= 1.0                  # MMseqs2 writes fident on 0-1
    got = best_hits(hits, ["strain", "relative"], [3000, 3000])
    assert 96.5 < got.identity[0] <= 99.5
    assert got.identity[1] < 92.0


def test_correct_taxonomy_reads_blast6_hits_through_qiime2(tmp_path, example, example_student):
    """An MMseqs2 result (fident on 0-1, no header) imports as FeatureData[BLAST6]; the
    species whose genome aligns at 85% loses its name, the one at 99% keeps it."""
    import qiime2
    from q2_types.feature_data import BLAST6Format
    from qiime2.plugins import taxdistill
    from tests.conftest import example_path
    taxonomy = example["taxonomy"]
    species = taxonomy["Taxon"].str.extract(r"s__(.+)$")[0]
    named = species.value_counts().index[:2]
    with open(tmp_path / "tophit_aln", "w") as out:
        for contig, name in species.items():
            if name in named:
                identity = 0.99 if name == named[0] else 0.85
                out.write("\t".join(map(str, _row(contig, f"ref{name[:3]}", identity, 900)))
                          + "\n")
    hits = qiime2.Artifact.import_data("FeatureData[BLAST6]", str(tmp_path / "tophit_aln"),
                                       view_type=BLAST6Format)
    contigs = qiime2.Artifact.import_data("FeatureData[Sequence]", example_path("contigs.fna"))
    labels = qiime2.Artifact.import_data("FeatureData[Taxonomy]", example_path("taxonomy.tsv"))
    abundance = qiime2.Artifact.import_data("FeatureTable[Frequency]",
                                            example["counts"].T.astype(float))
    student = qiime2.Artifact.import_data("StudentModel", example_student)
    corrected, = taxdistill.actions.correct_taxonomy(student=student, contigs=contigs,
                                                     abundance=abundance, taxonomy=labels,
                                                     hits=hits)
    after = corrected.view(pd.DataFrame)["Taxon"].str.extract(r"s__(.+)$")[0]
    kept = (after[species == named[0]] == named[0]).mean()
    lost = after[species == named[1]].notna().mean()
    assert kept > 0.9 and lost < 0.1


def test_refine_inputs_extend_truncated_labels_through_qiime2(tmp_path, example, example_student):
    """With a reference taxonomy, labels cut back to the family whose contigs align at 99% to
    a target of a named species take that species again."""
    import qiime2
    from q2_types.feature_data import BLAST6Format
    from qiime2.plugins import taxdistill
    from tests.conftest import example_path
    taxonomy = example["taxonomy"].copy()
    species = taxonomy["Taxon"].str.extract(r"s__(.+)$")[0]
    name = species.value_counts().index[0]
    chosen = species.index[species == name]
    lineage = taxonomy.loc[chosen[0], "Taxon"]
    taxonomy.loc[chosen, "Taxon"] = "; ".join(lineage.split("; ")[:5])
    taxonomy.loc[chosen, "Confidence"] = np.nan
    with open(tmp_path / "tophit_aln", "w") as out:
        for contig in chosen:
            out.write("\t".join(map(str, _row(contig, "ref1", 0.99, 900))) + "\n")
    hits = qiime2.Artifact.import_data("FeatureData[BLAST6]", str(tmp_path / "tophit_aln"),
                                       view_type=BLAST6Format)
    reference = qiime2.Artifact.import_data(
        "FeatureData[Taxonomy]", pd.DataFrame({"Taxon": [lineage]},
                                              index=pd.Index(["ref1"], name="Feature ID")))
    contigs = qiime2.Artifact.import_data("FeatureData[Sequence]", example_path("contigs.fna"))
    labels = qiime2.Artifact.import_data("FeatureData[Taxonomy]", taxonomy)
    abundance = qiime2.Artifact.import_data("FeatureTable[Frequency]",
                                            example["counts"].T.astype(float))
    student = qiime2.Artifact.import_data("StudentModel", example_student)
    corrected, = taxdistill.actions.correct_taxonomy(student=student, contigs=contigs,
                                                     abundance=abundance, taxonomy=labels,
                                                     hits=hits, reference_taxonomy=reference)
    after = corrected.view(pd.DataFrame)["Taxon"].reindex(chosen).str.extract(r"s__(.+)$")[0]
    assert (after == name).mean() > 0.9
