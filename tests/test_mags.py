"""MAG taxonomy and contamination (engine/mags.py) and its actions (classify-mags,
summarize-mags)."""
import warnings

import numpy as np
import pandas as pd
import pytest

from q2_taxdistill.engine.errors import InputError, TaxDistillWarning
from q2_taxdistill.engine.mags import bins_from_map, classify_mags

A = "d__Bacteria; p__P1; c__C1; o__O1; f__F1; g__G1; s__G1 alpha"
A2 = "d__Bacteria; p__P1; c__C1; o__O1; f__F1; g__G1; s__G1 beta"
A_GENUS = "d__Bacteria; p__P1; c__C1; o__O1; f__F1; g__G1"
FAR = "d__Bacteria; p__P9; c__C9; o__O9; f__F9; g__G9; s__G9 omega"


def _inputs(rows):
    """rows: (contig, bin, lineage or None, confidence, bp)."""
    ids = [r[0] for r in rows]
    taxonomy = pd.DataFrame({"Taxon": [r[2] for r in rows], "Confidence": [r[3] for r in rows]},
                            index=pd.Index(ids, name="Feature ID"))
    taxonomy = taxonomy[taxonomy["Taxon"].notna()]
    lengths = pd.Series([r[4] for r in rows], index=ids)
    bins = pd.Series([r[1] for r in rows], index=ids)
    return taxonomy, lengths, bins


def _classify(rows, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TaxDistillWarning)
        return classify_mags(*_inputs(rows), **kwargs)


def test_a_few_stray_contigs_leave_the_name_and_are_the_contamination():
    rows = [(f"c{i}", "m1", A, 1.0, 9000) for i in range(9)] + [("x", "m1", FAR, 1.0, 9000)]
    calls = _classify(rows)
    assert calls.taxonomy.loc["m1", "Taxon"] == A
    assert calls.taxonomy.loc["m1", "Confidence"] == pytest.approx(0.9)
    summary = calls.summary.loc["m1"]
    assert summary["contamination"] == pytest.approx(0.1)
    assert summary["contamination phylum"] == pytest.approx(0.1)
    assert summary["contamination domain"] == 0
    assert calls.conflicts.index.tolist() == ["x"]
    assert calls.conflicts.loc["x", "conflict rank"] == "phylum"
    assert calls.conflicts.loc["x", "MAG taxon"] == A


def test_a_rank_needs_more_than_half_of_the_vote():
    rows = [("a", "m1", A, 1.0, 5000), ("b", "m1", A2, 1.0, 5000)]
    calls = _classify(rows)
    assert calls.taxonomy.loc["m1", "Taxon"] == A_GENUS
    assert calls.summary.loc["m1", "rank"] == "genus"
    assert np.isnan(calls.summary.loc["m1", "contamination species"])
    assert calls.conflicts.empty


def test_most_bp_unnamed_at_species_names_no_species():
    rows = [("a", "m1", A, 1.0, 4000), ("b", "m1", A_GENUS, 1.0, 6000)]
    calls = _classify(rows)
    assert calls.taxonomy.loc["m1", "Taxon"] == A_GENUS
    assert calls.taxonomy.loc["m1", "Confidence"] == pytest.approx(1.0)


def test_confidence_weighs_only_the_deepest_rank_named():
    weak = _classify([("a", "m1", A, 0.4, 5000), ("b", "m1", A, 0.4, 5000)])
    assert weak.taxonomy.loc["m1", "Taxon"] == A_GENUS
    firm = _classify([("a", "m1", A, 0.6, 5000), ("b", "m1", A, 0.6, 5000)])
    assert firm.taxonomy.loc["m1", "Taxon"] == A


def test_votes_are_weighed_by_length():
    rows = [("long", "m1", A, 1.0, 100_000)] + [
        (f"s{i}", "m1", FAR, 1.0, 2000) for i in range(10)]
    calls = _classify(rows)
    assert calls.taxonomy.loc["m1", "Taxon"] == A
    assert calls.summary.loc["m1", "contamination"] == pytest.approx(20_000 / 120_000)
    assert calls.summary.loc["m1", "flagged contigs"] == 10


def test_a_weakly_supported_conflicting_label_is_not_counted_as_foreign():
    rows = [(f"c{i}", "m1", A, 1.0, 9000) for i in range(8)] + [
        ("weak", "m1", FAR, 0.6, 9000), ("firm", "m1", FAR, 0.9, 9000)]
    calls = _classify(rows)
    assert calls.taxonomy.loc["m1", "Taxon"] == A
    assert calls.summary.loc["m1", "contamination"] == pytest.approx(0.1)
    assert calls.conflicts.index.tolist() == ["firm"]
    assert calls.contigs.loc["weak", "conflict rank"] == "phylum"
    assert not calls.contigs.loc["weak", "flagged"]
    lenient = _classify(rows, confidence=0.5)
    assert lenient.summary.loc["m1", "contamination"] == pytest.approx(0.2)
    assert sorted(lenient.conflicts.index) == ["firm", "weak"]
    with pytest.raises(InputError, match="confidence"):
        _classify(rows, confidence=0.0)


def test_contamination_is_judged_below_the_name_where_one_taxon_leads():
    rows = [("a", "m1", A, 1.0, 4500), ("b", "m1", A2, 1.0, 3000),
            ("g", "m1", A_GENUS, 1.0, 2500)]
    calls = _classify(rows)
    summary = calls.summary.loc["m1"]
    assert calls.taxonomy.loc["m1", "Taxon"] == A_GENUS
    assert summary["reference"] == A
    assert summary["judged rank"] == "species"
    assert summary["contamination"] == pytest.approx(0.3)
    assert summary["contamination species"] == pytest.approx(0.3)
    assert summary["contamination genus"] == 0
    assert calls.conflicts.index.tolist() == ["b"]
    assert calls.conflicts.loc["b", "MAG reference"] == A


def test_a_mag_new_at_a_rank_flags_the_contigs_that_name_a_taxon_there():
    rows = [(f"g{i}", "m1", A_GENUS, 0.95, 1000) for i in range(7)] + [
        ("known", "m1", A, 0.95, 3000)]
    calls = _classify(rows)
    summary = calls.summary.loc["m1"]
    assert calls.taxonomy.loc["m1", "Taxon"] == A_GENUS
    assert summary["reference"] == A_GENUS
    assert summary["judged rank"] == "species"
    assert summary["contamination"] == pytest.approx(0.3)
    assert calls.conflicts.index.tolist() == ["known"]
    assert calls.contigs.loc["known", "conflict rank"] == "species"
    # Labels without a Confidence (an LCA of tied hits) may stop at the genus only because
    # their hits tied: they do not make the MAG new at the species.
    unsupported = _classify([r[:3] + (np.nan,) + r[4:] for r in rows])
    assert unsupported.taxonomy.loc["m1", "Taxon"] == A_GENUS
    assert unsupported.summary.loc["m1", "judged rank"] == "genus"
    assert unsupported.summary.loc["m1", "contamination"] == 0
    assert unsupported.conflicts.empty


def test_a_majority_parameter_above_half_is_stricter():
    rows = [(f"c{i}", "m1", A, 1.0, 1000) for i in range(7)] + [
        (f"x{i}", "m1", FAR, 1.0, 1000) for i in range(3)]
    assert _classify(rows).taxonomy.loc["m1", "Taxon"] == A
    assert _classify(rows, majority=0.8).taxonomy.loc["m1", "Taxon"] == "d__Bacteria"
    with pytest.raises(InputError, match="majority"):
        _classify(rows, majority=0.3)


def test_unlabelled_contigs_do_not_vote_and_a_mag_without_labels_is_unassigned():
    rows = [("a", "m1", A, 1.0, 1000), ("b", "m1", None, np.nan, 9000),
            ("c", "m2", None, np.nan, 5000), ("d", "m2", "Unassigned", np.nan, 5000)]
    calls = _classify(rows)
    assert calls.taxonomy.loc["m1", "Taxon"] == A
    assert calls.summary.loc["m1", "labelled bp share"] == pytest.approx(0.1)
    assert calls.taxonomy.loc["m2", "Taxon"] == "Unassigned"
    assert np.isnan(calls.taxonomy.loc["m2", "Confidence"])
    assert np.isnan(calls.summary.loc["m2", "contamination"])


def test_what_is_not_used_is_said():
    taxonomy, lengths, bins = _inputs([("a", "m1", A, 1.0, 1000), ("b", "m1", A, 1.0, 1000)])
    taxonomy.loc["elsewhere"] = [A, 1.0]
    lengths["unbinned"] = 500
    bins["no bin"] = np.nan
    lengths["no bin"] = 500
    with pytest.warns(TaxDistillWarning) as caught:
        classify_mags(taxonomy.drop("b"), lengths, bins)
    messages = " ".join(str(w.message) for w in caught)
    assert "in no bin" in messages and "'unbinned'" in messages and "'elsewhere'" in messages
    assert "have no label" in messages and "'b'" in messages
    assert "have no bin" in messages and "'no bin'" in messages


def test_inputs_that_cannot_be_used_are_errors_naming_them():
    taxonomy, lengths, bins = _inputs([("a", "m1", A, 1.0, 1000), ("b", "m2", A, 1.0, 1000)])
    with pytest.raises(InputError, match="'a'.*more than one bin|more than one bin.*'a'"):
        bins_from_map({"m1": ["a", "b"], "m2": ["a"]})
    with pytest.raises(InputError, match="length is unknown: 'b'"):
        classify_mags(taxonomy, lengths.drop("b"), bins)
    with pytest.raises(InputError, match="no contig in common"):
        classify_mags(taxonomy.set_axis(["x", "y"]), lengths, bins)
    bad = taxonomy.assign(Confidence=[0.5, 7.0])
    with pytest.raises(InputError, match="'b'"):
        classify_mags(bad, lengths, bins)
    text = taxonomy.assign(Confidence=["0.5", "high"])
    with pytest.raises(InputError, match="high"):
        classify_mags(text, lengths, bins)
    broken = taxonomy.assign(Taxon=[A, "g__X; d__Bacteria"])
    with pytest.raises(InputError, match="'b'.*out of order"):
        classify_mags(broken, lengths, bins)


def test_the_map_gives_the_same_bins_as_the_column():
    rows = [("a", "m1", A, 1.0, 1000), ("b", "m2", FAR, 1.0, 1000), ("c", "m2", FAR, 1.0, 10)]
    taxonomy, lengths, bins = _inputs(rows)
    by_map = classify_mags(taxonomy, lengths, bins_from_map({"m2": ["b", "c"], "m1": ["a"]}))
    by_column = classify_mags(taxonomy, lengths, bins)
    pd.testing.assert_frame_equal(by_map.summary, by_column.summary)


def test_results_do_not_depend_on_input_order(example):
    truth = example["truth"]["Taxon"]
    bins = truth.map({s: f"bin{i}" for i, s in enumerate(sorted(truth.unique()))})
    lengths = example["contigs"].lengths_series()
    taxonomy = example["taxonomy"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TaxDistillWarning)
        first = classify_mags(taxonomy, lengths, bins)
        order = np.random.default_rng(3).permutation(len(bins))
        second = classify_mags(taxonomy.iloc[order[::-1]], lengths.iloc[order], bins.iloc[order])
    pd.testing.assert_frame_equal(first.taxonomy, second.taxonomy)
    pd.testing.assert_frame_equal(first.summary, second.summary)
    pd.testing.assert_frame_equal(first.contigs.sort_index(), second.contigs.sort_index())


def test_composition_is_read_where_the_mag_splits():
    rows = [(f"c{i}", "m1", A, 1.0, 1000) for i in range(6)] + [
        ("g", "m1", A_GENUS, 1.0, 3000), ("x", "m1", FAR, 1.0, 1000), ("u", "m1", None, 0, 500)]
    rows += [("a", "m2", A, 1.0, 1000), ("b", "m2", A2, 1.0, 1000)]
    composition = _classify(rows).composition().set_index(["MAG", "taxon"])
    assert (composition.loc["m1", "rank"] == "phylum").all()
    assert composition.loc[("m1", "p__P1"), "bp"] == 9000
    assert composition.loc[("m1", "p__P9"), "bp"] == 1000
    assert composition.loc[("m1", "unlabelled"), "share"] == pytest.approx(500 / 10_500)
    assert (composition.loc["m2", "rank"] == "species").all()
    assert set(composition.loc["m2"].index) == {"s__G1 alpha", "s__G1 beta"}


# --- through QIIME 2 ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def q2_inputs():
    from qiime2 import Artifact, Metadata

    from q2_taxdistill import _examples
    from tests.conftest import example_path
    bins = _examples.example_bins()
    return {"taxonomy": Artifact.import_data("FeatureData[Taxonomy]", example_path("taxonomy.tsv")),
            "contigs": Artifact.import_data("FeatureData[Sequence]", example_path("contigs.fna")),
            "bins": Metadata(bins.to_frame().rename_axis("id")).get_column("bin")}


def test_classify_mags_action(q2_inputs):
    from qiime2 import Metadata
    from qiime2.plugins import taxdistill
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TaxDistillWarning)
        mag_taxonomy, contamination = taxdistill.actions.classify_mags(**q2_inputs)
    taxa = mag_taxonomy.view(pd.DataFrame)
    assert taxa.index.tolist() == [f"bin{i:02d}" for i in range(1, 13)]
    table = contamination.view(Metadata).to_dataframe()
    assert table.loc["bin01", "flagged contigs"] == 4
    assert table.loc["bin01", "contamination phylum"] > 0
    assert table.loc["bin02", "contamination"] == pytest.approx(0.0)
    assert set(table.columns) >= {"Taxon", "rank", "Confidence", "contamination species",
                                  "reference", "judged rank"}


def test_classify_mags_without_bins_says_how_to_give_them(q2_inputs):
    from qiime2.plugins import taxdistill

    from q2_taxdistill import plugin_setup
    with pytest.raises(InputError, match="bins") as caught:
        taxdistill.actions.classify_mags(taxonomy=q2_inputs["taxonomy"],
                                         contigs=q2_inputs["contigs"])
    if plugin_setup.MAG_MAP is None:
        assert "no FeatureMap[MAGtoContigs]" in str(caught.value)


def test_summarize_mags_writes_sortable_tables(q2_inputs, tmp_path):
    from qiime2.plugins import taxdistill
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TaxDistillWarning)
        viz, = taxdistill.actions.summarize_mags(**q2_inputs)
    viz.export_data(str(tmp_path))
    html = (tmp_path / "index.html").read_text()
    assert 'id="mags"' in html and 'id="flagged"' in html and "q2td-sortable" in html
    assert "bin01" in html and "q2td-seg" in html
    flagged = pd.read_csv(tmp_path / "flagged-contigs.tsv", sep="\t", index_col=0)
    assert (flagged.loc[flagged["MAG"] == "bin01", "conflict rank"] == "phylum").sum() == 4
    mags = pd.read_csv(tmp_path / "mags.tsv", sep="\t", index_col=0)
    assert len(mags) == 12
