"""Bad and small inputs: nothing invented, nothing silent, never fewer correct labels than came in."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import qiime2

from q2_taxdistill.engine import workflow
from q2_taxdistill.engine.correction import judged_ranks
from q2_taxdistill.engine.errors import InputError, ModelLoadError, TaxDistillWarning
from q2_taxdistill.engine.metrics import score_taxonomy
from q2_taxdistill.engine.sequences import Contigs
from q2_taxdistill.engine.student import StudentConfig
from q2_taxdistill.engine.teacher import load_teacher
from .conftest import example_path, random_dna

FAST = StudentConfig(n_folds=3, max_epochs=15, patience=3)


def _subset(example, n, seed=0):
    contigs = example["contigs"]
    rng = np.random.default_rng(seed)
    ids = sorted(rng.choice(contigs.ids, n, replace=False).tolist(), key=contigs.index_of)
    return (contigs.subset(ids), example["taxonomy"].loc[ids], example["counts"].loc[ids],
            example["truth"].loc[ids])


def _correct_per_rank(taxonomy, truth):
    return score_taxonomy(taxonomy["Taxon"], truth["Taxon"])["correct"]


@pytest.fixture(scope="module")
def student(example, example_soft):
    """A quickly trained student: these tests check what is kept, not how well it learns."""
    return workflow.distill(example["contigs"], example["taxonomy"], example_soft.to_frame(),
                            example["counts"],
                            config=StudentConfig(n_folds=2, max_epochs=2, patience=1))


def test_an_all_n_contig_keeps_its_input_label_and_confidence(example, student):
    contigs = example["contigs"]
    with_gap = Contigs(contigs.ids + ["gap"], contigs.sequences + ["N" * 3000])
    taxonomy = pd.concat([example["taxonomy"], pd.DataFrame(
        {"Taxon": ["d__Bacteria; p__Simulatiota; c__Simulatia"], "Confidence": [0.42]},
        index=["gap"])])
    counts = pd.concat([example["counts"], example["counts"].iloc[:1].set_axis(["gap"])])
    with pytest.warns(TaxDistillWarning, match="1 contig.*fewer than 1000 unambiguous.*'gap'"):
        corrected = workflow.correct(student, with_gap, counts, taxonomy)
    assert corrected.loc["gap", "Taxon"] == "d__Bacteria; p__Simulatiota; c__Simulatia"
    assert corrected.loc["gap", "Confidence"] == 0.42


def test_contigs_count_their_unambiguous_bases(tmp_path):
    path = tmp_path / "c.fna"
    path.write_text(">a\nACGTNNRYacgt\n>b\nNNNN\n")
    for contigs in (Contigs.from_fasta(path), Contigs.from_fasta(path, stream=True)):
        assert contigs.acgt_lengths.tolist() == [8, 0]
        assert contigs.subset(["b"]).acgt_lengths.tolist() == [0]


def test_non_numeric_confidence_is_an_error_naming_the_rows(example):
    contigs, taxonomy, _, _ = _subset(example, 30)
    taxonomy = taxonomy.astype({"Confidence": object})
    taxonomy.iloc[4, 1] = "high"
    taxonomy.iloc[5, 1] = ""            # empty stays valid: unassigned
    with pytest.raises(InputError, match=rf"1 row.*{taxonomy.index[4]}: 'high'"):
        workflow.teach(contigs, taxonomy)


def test_lineages_out_of_order_are_an_error_and_skipped_ranks_are_reported(example):
    contigs, taxonomy, _, _ = _subset(example, 30)
    bad = taxonomy.copy()
    bad.iloc[2, 0] = "g__Synthibacter; d__Bacteria"
    with pytest.raises(InputError, match=rf"{bad.index[2]}.*out of order"):
        workflow.teach(contigs, bad)
    skipping = taxonomy.copy()
    skipping.iloc[2, 0] = "d__Bacteria;;;g__Synthibacter"
    with pytest.warns(TaxDistillWarning, match=rf"1 label\(s\) name a rank below an unnamed "
                                               rf"one.*{skipping.index[2]}"):
        workflow.teach(contigs, skipping)


def test_no_ids_in_common_names_both_id_styles(example):
    contigs, taxonomy, _, _ = _subset(example, 30)
    renamed = taxonomy.set_axis([f"contig_{i + 1}" for i in range(len(taxonomy))], axis=0)
    with pytest.raises(InputError, match=r"no feature IDs in common: contig IDs look like "
                                         r"'S\dC\d+'.*taxonomy IDs like 'contig_1'"):
        workflow.teach(contigs, renamed)


def test_a_misspelt_teacher_suggests_composition():
    with pytest.raises(ModelLoadError, match="did you mean 'composition'"):
        load_teacher("compositon")


def test_ignored_inputs_are_warned_about(example):
    contigs, taxonomy, counts, _ = _subset(example, 30)
    extra = pd.concat([taxonomy.iloc[1:], pd.DataFrame({"Taxon": ["d__Bacteria"],
                                                        "Confidence": [1.0]}, index=["other"])])
    with pytest.warns(TaxDistillWarning) as caught:
        soft = workflow.teach(contigs, extra)
        workflow.distill(contigs, extra, soft.to_frame(),
                         pd.concat([counts, counts.iloc[:1].set_axis(["unused"])]), config=FAST)
    messages = " ".join(str(w.message) for w in caught)
    assert "1 taxonomy ID(s) are not among the contigs and are ignored: 'other'" in messages
    assert f"1 contig(s) have no input label" in messages and taxonomy.index[0] in messages
    assert "read counts are not scored and are ignored: 'unused'" in messages


def test_too_few_labelled_contigs_keep_every_input_label(example):
    contigs, taxonomy, counts, truth = _subset(example, 5)
    with pytest.warns(TaxDistillWarning, match="input labels are kept"):
        soft = workflow.teach(contigs, taxonomy)
        trained = workflow.distill(contigs, taxonomy, soft.to_frame(), counts)
        assert trained.untrained and "needs at least 10" in trained.untrained
        corrected = workflow.correct(trained, contigs, counts, taxonomy)
    assert (_correct_per_rank(corrected, truth) >= _correct_per_rank(taxonomy, truth)).all()
    assert (corrected["Taxon"] == taxonomy["Taxon"].map(workflow._normalised)).all()


def test_a_small_input_never_loses_correct_labels(example, student):
    contigs, taxonomy, counts, truth = _subset(example, 223)
    corrected = workflow.correct(student, contigs, counts, taxonomy)
    assert (_correct_per_rank(corrected, truth) >= _correct_per_rank(taxonomy, truth)).all()


def test_ranks_whose_taxa_cannot_fill_a_genome_neighbourhood_keep_their_input(example, student):
    contigs, taxonomy, counts, truth = _subset(example, 60)
    with pytest.warns(TaxDistillWarning, match="keep their input names from a rank"):
        corrected = workflow.correct(student, contigs, counts, taxonomy)
    assert (_correct_per_rank(corrected, truth) >= _correct_per_rank(taxonomy, truth)).all()
    lineages = [workflow.parse_lineage(t) for t in taxonomy["Taxon"]]
    judged, why = judged_ranks(lineages, 20)
    assert (judged < 7).any() and "genome_neighbours" in why
    assert (judged_ranks(lineages, 2)[0] >= judged).all()


def test_an_untrained_student_needs_the_input_taxonomy(example, student):
    contigs, taxonomy, _, _ = _subset(example, 5)
    with pytest.warns(TaxDistillWarning):
        soft = workflow.teach(contigs, taxonomy)
        untrained = workflow.distill(contigs, taxonomy, soft.to_frame())
    with pytest.raises(InputError, match="not trained.*give the input taxonomy"):
        workflow.correct(untrained, contigs)
    unlabelled = pd.DataFrame({"Taxon": ["Unassigned"] * 5}, index=contigs.ids)
    # no input label at all: nothing to compare the neighbourhood with, nothing kept
    judged, why = judged_ranks([(None,) * 7] * 5, 50)
    assert (judged == 7).all() and why is None


def _artifacts(contigs, taxonomy):
    """The contigs and labels of a subset as QIIME 2 artifacts."""
    sequences = qiime2.Artifact.import_data(
        "FeatureData[Sequence]", pd.Series(contigs.sequences, index=contigs.ids, dtype=object)
        .map(__import__("skbio").DNA))
    return sequences, qiime2.Artifact.import_data("FeatureData[Taxonomy]", taxonomy.astype(str))


def test_refine_taxonomy_on_one_contig_returns_its_input_label(example):
    from qiime2.plugins import taxdistill
    contigs, taxonomy, _, _ = _subset(example, 1)
    sequences, labels = _artifacts(contigs, taxonomy)
    with pytest.warns(TaxDistillWarning, match="input labels are kept"):
        soft, student, corrected = taxdistill.actions.refine_taxonomy(
            contigs=sequences, taxonomy=labels)
    assert soft.view(pd.DataFrame).empty
    out = corrected.view(pd.DataFrame)
    assert out.loc[contigs.ids[0], "Taxon"] == taxonomy["Taxon"].iloc[0]
    assert float(out.loc[contigs.ids[0], "Confidence"]) == taxonomy["Confidence"].iloc[0]


def test_lowercase_contigs_import_as_the_help_says(tmp_path):
    from q2_taxdistill.plugin_setup import plugin
    help_text = plugin.actions["teach"].signature.inputs["contigs"].description
    assert "MixedCaseDNAFASTAFormat" in help_text
    fasta = tmp_path / "lower.fna"
    fasta.write_text(">c1\n" + random_dna(1200, seed=1).lower() + "\n")
    with pytest.raises(Exception):
        qiime2.Artifact.import_data("FeatureData[Sequence]", str(fasta))
    imported = qiime2.Artifact.import_data("FeatureData[Sequence]", str(fasta),
                                           "MixedCaseDNAFASTAFormat")
    assert str(imported.view(pd.Series).iloc[0]) == random_dna(1200, seed=1)


def _qiime():
    venv_qiime = Path(sys.executable).with_name("qiime")
    return str(venv_qiime) if venv_qiime.exists() else None


@pytest.mark.skipif(_qiime() is None, reason="q2cli is not installed")
def test_q2cli_on_five_contigs_keeps_their_labels_and_says_so_with_verbose(tmp_path, example):
    """q2cli (2022.11) sends an action's stderr to a log it deletes on success: warnings are
    shown with --verbose only, and the kept labels are in the result either way."""
    contigs, taxonomy, _, _ = _subset(example, 5)
    (tmp_path / "c.fna").write_text(
        "".join(f">{i}\n{s}\n" for i, s in zip(contigs.ids, contigs.sequences)))
    taxonomy.to_csv(tmp_path / "t.tsv", sep="\t", index_label="Feature ID")
    env = dict(os.environ, CONDA_PREFIX=str(Path(sys.executable).parent.parent))

    def run(*args):
        done = subprocess.run([_qiime(), *args], cwd=tmp_path, env=env, capture_output=True,
                              text=True)
        assert done.returncode == 0, done.stdout + done.stderr
        return done

    run("tools", "import", "--type", "FeatureData[Sequence]", "--input-path", "c.fna",
        "--output-path", "c.qza")
    run("tools", "import", "--type", "FeatureData[Taxonomy]", "--input-path", "t.tsv",
        "--output-path", "t.qza")
    done = run("taxdistill", "refine-taxonomy", "--i-contigs", "c.qza", "--i-taxonomy", "t.qza",
               "--p-teacher", "composition", "--verbose", "--o-soft-labels", "s.qza",
               "--o-student", "m.qza", "--o-corrected-taxonomy", "out.qza")
    assert "TaxDistillWarning" in done.stderr and "all 5 input labels are kept" in done.stderr
    corrected = qiime2.Artifact.load(str(tmp_path / "out.qza")).view(pd.DataFrame)
    assert corrected["Taxon"].tolist() == taxonomy["Taxon"].tolist()


def test_no_contig_reaching_min_length_keeps_every_input_label(example, student):
    """The README's promise holds when it concerns every contig: nothing is scored, nothing
    fails, every input label comes back, and the run says why."""
    contigs, taxonomy, counts, _ = _subset(example, 6, seed=3)
    taxonomy = taxonomy.copy()
    taxonomy.iloc[0, 0] = "d__Bacteria; s__Unspecified"  # kept as it came (normalised)
    with pytest.warns(TaxDistillWarning, match="no contig has at least 100000 unambiguous"):
        soft = workflow.teach(contigs, taxonomy, min_length=100_000)
    assert len(soft.ids) == 0 and soft.to_frame().empty
    with pytest.warns(TaxDistillWarning, match="no contig has at least 100000"):
        untrained = workflow.distill(contigs, taxonomy, soft, counts, min_length=100_000)
    assert untrained.untrained and "100000 unambiguous" in untrained.untrained
    for model in (untrained, student):
        with pytest.warns(TaxDistillWarning, match="keeps its input label"):
            out = workflow.correct(model, contigs, counts, taxonomy, min_length=100_000)
        assert out.index.tolist() == list(contigs.ids)
        assert out["Taxon"].tolist() == ["d__Bacteria"] + taxonomy["Taxon"].tolist()[1:]
        np.testing.assert_array_equal(out["Confidence"], taxonomy["Confidence"])
    with pytest.warns(TaxDistillWarning):
        bare = workflow.correct(student, contigs, counts, min_length=100_000)
    assert (bare["Taxon"] == "Unassigned").all()
    with pytest.raises(InputError, match="nothing can be scored; lower min_length"):
        workflow.embed(contigs, min_length=100_000)


def test_refine_taxonomy_with_no_contig_reaching_min_length(example):
    from qiime2.plugins import taxdistill
    contigs, taxonomy, _, _ = _subset(example, 4, seed=5)
    sequences, labels = _artifacts(contigs, taxonomy)
    with pytest.warns(TaxDistillWarning, match="no contig has at least 50000"):
        soft, student, corrected = taxdistill.actions.refine_taxonomy(
            contigs=sequences, taxonomy=labels, min_length=50_000)
    assert soft.view(pd.DataFrame).empty
    out = corrected.view(pd.DataFrame)
    assert out["Taxon"].tolist() == taxonomy["Taxon"].tolist()
    assert out["Confidence"].astype(float).tolist() == taxonomy["Confidence"].tolist()
