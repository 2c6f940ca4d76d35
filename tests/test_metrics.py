import numpy as np
import pandas as pd
import pytest

from q2_taxdistill.engine.metrics import (
    RANKS, f1_by_threshold, lineage_elements, normalise_name, precision_recall_f1,
    ranked_names, score_taxonomy)

TRUTH = pd.Series({
    "c1": "d__Bacteria; p__Bacillota; c__Bacilli",
    "c2": "d__Bacteria; p__Pseudomonadota",
    "c3": "d__Archaea",
    "c4": "d__Bacteria; p__Bacillota; c__Bacilli",
})


def test_normalise_name():
    assert normalise_name("  Escherichia_coli  K-12 ") == "escherichia coli k-12"


@pytest.mark.parametrize("lineage, expected", [
    ("d__Bacteria; p__Bacillota", ("bacteria", "bacillota")),
    ("d_Bacteria;p_BACILLOTA", ("bacteria", "bacillota")),
    ("k__Bacteria; p__Bacillota", ("bacteria", "bacillota")),
    ("D__Bacteria; P__Bacillota", ("bacteria", "bacillota")),
    ("Bacteria;Bacillota", ("bacteria", "bacillota")),
    ("root;Bacteria;Bacillota", ("bacteria", "bacillota")),
    ("d__Bacteria; p__; c__Bacilli", ("bacteria", None, "bacilli")),
    ("d__Bacteria; g__Bacillus", ("bacteria", None, None, None, None, "bacillus")),
    ("d__Bacteria; p__unclassified", ("bacteria",)),
    ("Unassigned", ()),
    ("", ()),
    (None, ()),
    (np.nan, ()),
])
def test_ranked_names(lineage, expected):
    assert ranked_names(lineage) == tuple(expected) + (None,) * (7 - len(expected))


def test_lineage_elements_keep_spelling():
    assert lineage_elements("d__Bacteria; g__Bacillus_A")[5] == "Bacillus_A"


def test_score_by_hand():
    predicted = pd.Series({
        "c1": "d_bacteria;p_BACILLOTA;c_Clostridia",   # right, right, wrong
        "c2": "Bacteria;Pseudomonadota;Gammaproteobacteria",  # below the truth's depth
        "c4": "Unassigned",
        "extra": "d__Bacteria",
    })
    table = score_taxonomy(predicted, TRUTH)
    assert list(table.index) == list(RANKS)
    assert list(table.columns) == ["correct", "wrong", "unlabelled", "precision", "recall", "f1"]
    # domain: c1, c2 correct; c3 missing; c4 unassigned
    assert table.loc["domain", ["correct", "wrong", "unlabelled"]].tolist() == [2, 0, 2]
    assert table.loc["domain", "precision"] == 1.0
    assert table.loc["domain", "recall"] == 0.5
    assert table.loc["domain", "f1"] == pytest.approx(2 / 3)
    assert table.loc["phylum", ["correct", "wrong", "unlabelled"]].tolist() == [2, 0, 1]
    assert table.loc["class", ["correct", "wrong", "unlabelled"]].tolist() == [0, 1, 1]
    assert table.loc["class", ["precision", "recall", "f1"]].tolist() == [0.0, 0.0, 0.0]
    assert table.loc["species"].tolist() == [0, 0, 0, 0.0, 0.0, 0.0]


def test_thresholds_hide_low_confidence_labels():
    predicted = TRUTH.copy()
    confidence = pd.Series({"c1": 0.95, "c2": 0.5, "c3": "", "c4": -1})
    table = score_taxonomy(predicted, TRUTH, confidence, threshold=0.9)
    # c2 falls below; c3 (empty) and c4 (negative) have no score, so they always pass
    assert table.loc["domain", ["correct", "wrong", "unlabelled"]].tolist() == [3, 0, 1]
    assert table.loc["phylum", ["correct", "wrong", "unlabelled"]].tolist() == [2, 0, 1]
    assert table.loc["class", ["correct", "wrong", "unlabelled"]].tolist() == [2, 0, 0]
    per_rank = score_taxonomy(predicted, TRUTH, confidence, threshold={"phylum": 0.4})
    assert per_rank.loc["domain", "correct"] == 4
    assert per_rank.loc["phylum", "correct"] == 3


def test_f1_by_threshold():
    predicted = pd.Series({"c1": TRUTH["c1"], "c2": "d__Archaea", "c3": "d__Archaea",
                           "c4": TRUTH["c4"]})
    confidence = pd.Series({"c1": 0.9, "c2": 0.3, "c3": 0.6, "c4": 0.8})
    curve = f1_by_threshold(predicted, TRUTH, confidence, [0.0, 0.5, 0.85, 1.0])
    assert curve.index.name == "threshold" and list(curve.columns) == list(RANKS)
    # domain at 0: C=3 W=1 -> P=.75 R=.75; at .5: C=3 N=1 -> P=1 R=.75
    assert curve.loc[0.0, "domain"] == pytest.approx(0.75)
    assert curve.loc[0.5, "domain"] == pytest.approx(2 * 0.75 / 1.75)
    # at .85 only c1 remains: C=1, N=3
    assert curve.loc[0.85, "domain"] == pytest.approx(2 * 0.25 / 1.25)
    assert curve.loc[1.0, "domain"] == 0.0
    for t in curve.index:
        expected = score_taxonomy(predicted, TRUTH, confidence, t)["f1"]
        np.testing.assert_allclose(curve.loc[t].to_numpy(), expected.to_numpy())


def test_precision_recall_f1_undefined_is_zero():
    p, r, f = precision_recall_f1(0, 0, 0)
    assert (float(p), float(r), float(f)) == (0.0, 0.0, 0.0)


def test_duplicated_ids_are_an_error():
    with pytest.raises(ValueError, match="more than once"):
        score_taxonomy(pd.Series(["d__A", "d__B"], index=["x", "x"]), TRUTH)


def test_empty_prediction_counts_everything_unlabelled():
    table = score_taxonomy(pd.Series(dtype=object), TRUTH)
    assert table["unlabelled"].tolist() == [4, 3, 2, 0, 0, 0, 0]
    assert table["f1"].eq(0).all()


PLACEHOLDER_LINEAGES = [
    "d__Bacteria; p__Bacillota; c__Bacilli; o__Bacillales; f__Bacillaceae; g__Bacillus; "
    "s__uncultured bacterium",
    "d__Bacteria;p__Bacillota;c__Unspecified;o__Unspecified;f__Unspecified;g__Unspecified;"
    "s__Unspecified",
    "d__cannot be assigned to a (non-viral) species",
    "d__Bacteria;k__Bacteria;p__Bacillota;c__Bacilli;o__containing g__Bacillus;"
    "f__containing g__Bacillus;g__Bacillus",
    "d__Unclassified", "d__Bacteria; g__unclassified_Bacillales", "d__Bacteria; s__metagenome",
    "-_cellular organisms;-_Bacteria;k_Bacillati;p_Bacillota", "Unassigned", "d__; p__; c__",
]


@pytest.mark.parametrize("lineage", PLACEHOLDER_LINEAGES)
def test_scorer_and_engine_agree_on_placeholders(lineage):
    from q2_taxdistill.engine.taxonomy import TaxonomyTree, parse_lineage
    engine = parse_lineage(lineage)
    assert ranked_names(lineage) == tuple(None if n is None else normalise_name(n)
                                          for n in engine)
    # what the engine learns no class from is no label for the scorer
    tree = TaxonomyTree.from_lineages([engine])
    assert [n is not None for n in ranked_names(lineage)] == [
        tree.n_classes(r) > 0 for r in range(7)]


def test_a_placeholder_species_is_unlabelled_not_wrong():
    truth = pd.Series({"c1": "d__Bacteria; g__Bacillus; s__Bacillus subtilis"})
    for predicted in ("d__Bacteria; g__Bacillus; s__uncultured bacterium",
                      "d__Bacteria; g__Bacillus; s__Unspecified"):
        table = score_taxonomy(pd.Series({"c1": predicted}), truth)
        assert table.loc["species", ["correct", "wrong", "unlabelled"]].tolist() == [0, 0, 1]
        assert table.loc["genus", "correct"] == 1


def test_q2_annotate_kingdom_is_not_the_domain():
    assert ranked_names("d__Bacteria;k__Bacillati;p__Bacillota")[:2] == ("bacteria", "bacillota")


def test_unparseable_lineages_are_named():
    with pytest.raises(ValueError, match=r"1 lineage\(s\).*'c2'.*out of order"):
        score_taxonomy(pd.Series({"c1": "d__A", "c2": "g__X; d__A"}), TRUTH)
