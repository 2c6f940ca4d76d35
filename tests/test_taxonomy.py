import json

import numpy as np
import pandas as pd
import pytest

from q2_taxdistill.engine.errors import InputError
from q2_taxdistill.engine.taxonomy import (
    PREFIXES, RANKS, TaxonomyTree, format_lineage, is_placeholder, parse_lineage, parse_taxonomy,
    skips_ranks,
    truncate,
)

ECOLI = ("Bacteria", "Proteobacteria", "Gammaproteobacteria", "Enterobacterales",
         "Enterobacteriaceae", "Escherichia", "Escherichia coli")


def test_constants():
    assert len(RANKS) == len(PREFIXES) == 7
    assert RANKS[0] == "domain" and RANKS[-1] == "species" and PREFIXES[5] == "g__"


@pytest.mark.parametrize("text", [
    "d__Bacteria; p__Proteobacteria; c__Gammaproteobacteria; o__Enterobacterales; "
    "f__Enterobacteriaceae; g__Escherichia; s__Escherichia coli",
    "d__Bacteria;p__Proteobacteria;c__Gammaproteobacteria;o__Enterobacterales;"
    "f__Enterobacteriaceae;g__Escherichia;s__Escherichia coli",
    # MMseqs2 single underscores, with its root and no-rank elements
    "-_root;-_cellular organisms;d_Bacteria;-_Pseudomonadati;p_Proteobacteria;"
    "c_Gammaproteobacteria;o_Enterobacterales;f_Enterobacteriaceae;g_Escherichia;"
    "s_Escherichia coli",
    # Kraken2 / q2-annotate kraken2-to-features: 8 ranks with k__ plus a strain rank
    "d__Bacteria;k__Pseudomonadati;p__Proteobacteria;c__Gammaproteobacteria;"
    "o__Enterobacterales;f__Enterobacteriaceae;g__Escherichia;s__Escherichia coli;"
    "s1__Escherichia coli K-12",
    # plain, with leading root elements, trailing separator and padding
    "root; cellular organisms; Bacteria;Proteobacteria; Gammaproteobacteria ;"
    "Enterobacterales;Enterobacteriaceae;Escherichia;Escherichia coli;",
    # MetaPhlAn / Kraken2 mpa style
    "k__Bacteria|p__Proteobacteria|c__Gammaproteobacteria|o__Enterobacterales|"
    "f__Enterobacteriaceae|g__Escherichia|s__Escherichia coli|t__SGB10068",
])
def test_lineage_styles_parse_identically(text):
    assert parse_lineage(text) == ECOLI


def test_kingdom_alone_is_domain_as_in_greengenes():
    assert parse_lineage("k__Bacteria; p__Firmicutes; c__Bacilli") == (
        "Bacteria", "Firmicutes", "Bacilli", None, None, None, None)
    # with a domain, the kingdom is dropped even when it repeats the domain
    assert parse_lineage("d__Bacteria;k__Bacteria;p__Firmicutes")[:2] == ("Bacteria", "Firmicutes")
    assert parse_lineage("d__Eukaryota;k__Fungi;p__Ascomycota")[:2] == ("Eukaryota", "Ascomycota")


@pytest.mark.parametrize("text", [
    "", "   ", "Unassigned", "Unclassified", "unknown", "d__", "d__; p__; c__",
    "d__Unclassified", "root", "NA", None, float("nan"), "r__root",
])
def test_unassigned_forms(text):
    assert parse_lineage(text) == (None,) * 7


def test_placeholders_become_none_and_keep_positions():
    lineage = parse_lineage(
        "d__Bacteria; p__Firmicutes; c__uncultured; o__; f__unclassified Bacillales; "
        "g__Bacillus; s__metagenome")
    assert lineage == ("Bacteria", "Firmicutes", None, None, None, "Bacillus", None)
    plain = parse_lineage("Bacteria;environmental samples;Unidentified;NA;uncultured bacterium")
    assert plain == ("Bacteria",) + (None,) * 6


def test_q2_annotate_containing_fillers():
    text = ("d__Bacteria;k__Bacteria;p__Bacillota;c__Bacilli;o__containing g__Staphylococcus;"
            "f__containing g__Staphylococcus;g__Staphylococcus")
    assert parse_lineage(text) == (
        "Bacteria", "Bacillota", "Bacilli", None, None, "Staphylococcus", None)
    assert parse_lineage("d__Bacteria; o__Bacillales containing Staphylococcus")[3] is None


def test_prefixes_place_names_by_rank():
    assert parse_lineage("d__Bacteria; p__Firmicutes; g__Bacillus") == (
        "Bacteria", "Firmicutes", None, None, None, "Bacillus", None)
    # case is kept, names are not altered beyond stripping
    parsed = parse_lineage("d__ bacteria ; s__Escherichia Coli")
    assert parsed[::6] == ("bacteria", "Escherichia Coli")
    # the same name twice for one prefix is fine
    assert parse_lineage("d__Bacteria; d__Bacteria")[0] == "Bacteria"


@pytest.mark.parametrize("text,match", [
    ("d__Bacteria; p__Firmicutes; p__Proteobacteria", "two different names"),
    ("d__Bacteria; Firmicutes", "mixes rank-prefixed and plain"),
    ("x__Bacteria", "unknown rank prefix"),
    ("g__Bacillus_A; d__Bacteria", "out of order: 'd__' comes after 'g__'"),
    ("d__Bacteria; p__Firmicutes; d__Bacteria", "out of order"),
    ("d__Bacteria; p__Firmicutes; k__Bacteria", "out of order: 'k__' comes after 'p__'"),
    ("A;B;C;D;E;F;G;H", "8 unprefixed ranks"),
    (42, "must be text"),
    (["d__Bacteria"], "must be text"),
])
def test_garbage_raises(text, match):
    with pytest.raises(InputError, match=match):
        parse_lineage(text)


def test_format_lineage():
    assert format_lineage(ECOLI) == (
        "d__Bacteria; p__Proteobacteria; c__Gammaproteobacteria; o__Enterobacterales; "
        "f__Enterobacteriaceae; g__Escherichia; s__Escherichia coli")
    assert format_lineage(("Bacteria", "Firmicutes", None, None, None, "Bacillus", None)) == (
        "d__Bacteria; p__Firmicutes; c__; o__; f__; g__Bacillus")
    assert format_lineage((None,) * 7) == "Unassigned"
    assert format_lineage(truncate(ECOLI, 1)) == "d__Bacteria; p__Proteobacteria"
    for lineage in [ECOLI, truncate(ECOLI, 3), ("Bacteria", None, "X", None, None, None, None)]:
        assert parse_lineage(format_lineage(lineage)) == lineage


def test_parse_taxonomy_names_feature_ids():
    series = pd.Series(["d__Bacteria", "Unassigned", "d__A; d__B", 5, "p__X"],
                       index=["f1", "f2", "bad1", "bad2", "f5"], name="Taxon")
    with pytest.raises(InputError) as err:
        parse_taxonomy(series)
    message = str(err.value)
    assert "2 taxonomy entries" in message and "'bad1', 'bad2'" in message
    assert "two different names" in message
    parsed = parse_taxonomy(series.drop(["bad1", "bad2"]))
    assert parsed.index.tolist() == ["f1", "f2", "f5"]
    assert parsed["f5"] == (None, "X", None, None, None, None, None)
    assert parse_taxonomy(pd.Series([], dtype=object)).empty


def _lineages():
    return [
        ECOLI,
        ECOLI[:6] + ("Escherichia albertii",),
        truncate(ECOLI, 4),                                    # stops at family
        ("Bacteria", "Firmicutes", "Bacilli", "Bacillales", "Bacillaceae", "Bacillus", None),
        # the same genus name under another family: a different class, no crash
        ("Bacteria", "Firmicutes", "Bacilli", "Bacillales", "Planococcaceae", "Bacillus", None),
        # skipped ranks between phylum and genus
        ("Bacteria", "Firmicutes", None, None, None, "Bacillus", "Bacillus subtilis"),
        (None,) * 7,
    ]


def test_tree_classes_and_encoding():
    tree = TaxonomyTree.from_lineages(_lineages())
    assert [tree.n_classes(r) for r in range(7)] == [1, 2, 2, 2, 3, 4, 3]
    assert tree.names(5).count("Bacillus") == 3
    codes = tree.encode(_lineages())
    assert codes.dtype == np.int64 and codes.shape == (7, 7)
    assert (codes[6] == -1).all()
    assert (codes[2, 5:] == -1).all() and (codes[2, :5] >= 0).all()
    assert codes[0, 5] == codes[1, 5] and codes[0, 6] != codes[1, 6]
    assert len({codes[3, 5], codes[4, 5], codes[5, 5]}) == 3
    assert tree.decode(5, codes[5, 5]) == ("Bacteria", "Firmicutes", None, None, None, "Bacillus")
    assert tree.lineage(5, codes[5, 5]) == (
        "Bacteria", "Firmicutes", None, None, None, "Bacillus", None)
    # skipped ranks encode as -1; unknown paths too
    assert codes[5, 2:5].tolist() == [-1, -1, -1]
    unknown = ("Archaea", "Euryarchaeota", None, None, None, None, None)
    assert tree.encode([unknown]).tolist() == [[-1] * 7]
    with pytest.raises(IndexError):
        tree.decode(0, 5)


def test_tree_parents():
    tree = TaxonomyTree.from_lineages(_lineages())
    for rank in range(1, 7):
        parents = tree.parent_index(rank)
        assert parents.shape == (tree.n_classes(rank),)
        for index, parent in enumerate(parents):
            path = tree.decode(rank, index)
            if path[-2] is None:
                assert parent == -1
            else:
                assert tree.decode(rank - 1, parent) == path[:-1]
    assert (tree.parent_index(0) == -1).all()
    genus = tree.classes(5).index(("Bacteria", "Firmicutes", None, None, None, "Bacillus"))
    assert tree.parent_index(5)[genus] == -1


def test_tree_order_independent_and_round_trip():
    tree = TaxonomyTree.from_lineages(_lineages())
    assert tree == TaxonomyTree.from_lineages(reversed(_lineages()))
    data = json.loads(json.dumps(tree.to_dict()))
    again = TaxonomyTree.from_dict(data)
    assert again == tree
    np.testing.assert_array_equal(again.encode(_lineages()), tree.encode(_lineages()))
    assert tree != TaxonomyTree.from_lineages(_lineages()[:2])
    with pytest.raises(ValueError, match="ranks"):
        TaxonomyTree.from_dict({"ranks": ["a"], "classes": data["classes"]})
    with pytest.raises(ValueError, match="7 names"):
        TaxonomyTree.from_lineages([("Bacteria",)])


def test_empty_tree_and_encode():
    tree = TaxonomyTree.from_lineages([(None,) * 7])
    assert [tree.n_classes(r) for r in range(7)] == [0] * 7
    assert tree.encode([]).shape == (0, 7)


def test_empty_elements_are_no_rank_and_plain_positions_are_kept():
    assert parse_lineage("d__Bacteria;;;g__Bacillus") == (
        "Bacteria", None, None, None, None, "Bacillus", None)
    # plain: position = rank, so an empty element must not shift the deeper names
    assert parse_lineage("Bacteria;;Bacilli;") == (
        "Bacteria", None, "Bacilli", None, None, None, None)


def test_skips_ranks_finds_names_below_unnamed_ranks():
    assert skips_ranks(parse_lineage("d__Bacteria;;;g__Bacillus"))
    assert skips_ranks(parse_lineage("d__Bacteria; o__; g__Bacillus"))
    assert not skips_ranks(parse_lineage("d__Bacteria; p__Firmicutes; c__; o__"))
    assert not skips_ranks(parse_lineage("Unassigned"))


def test_parse_taxonomy_names_the_first_out_of_order_lineage():
    series = pd.Series(["d__Bacteria; p__Firmicutes", "g__X; d__Bacteria", "g__Y; p__Z"],
                       index=["ok", "bad1", "bad2"])
    with pytest.raises(InputError, match=r"2 taxonomy entries.*'bad1', 'bad2'.*g__X; d__Bacteria"):
        parse_taxonomy(series)


# MMseqs2 14-18 (--tax-lineage 1) on NCBI's 2025 taxonomy: the rank `domain` has no short code.
@pytest.mark.parametrize("text, expected", [
    ("-_cellular organisms;-_Eukaryota;-_Opisthokonta;k_Metazoa;-_Eumetazoa;p_Chordata",
     ("Eukaryota", "Chordata")),
    ("-_cellular organisms;-_Bacteria;k_Bacillati;p_Bacillota;c_Bacilli",
     ("Bacteria", "Bacillota", "Bacilli")),
    ("-_cellular organisms;-_Bacteria", ("Bacteria",)),
    ("-_Viruses;-_Riboviria;k_Orthornavirae;p_Pisuviricota", ("Viruses", "Pisuviricota")),
    # before 2025: superkingdom = d_, clades below it have no rank
    ("-_cellular organisms;d_Bacteria;-_Terrabacteria group;p_Bacillota",
     ("Bacteria", "Bacillota")),
    ("d_Viruses;-_Riboviria;k_Orthornavirae;p_Pisuviricota", ("Viruses", "Pisuviricota")),
    ("-_cellular organisms", ()),
    ("-_other entries;-_other sequences;-_artificial sequences;s_synthetic construct",
     (None,) * 6 + ("synthetic construct",)),
    ("-_unclassified entries;-_unclassified sequences;-_metagenomes;-_organismal metagenomes;"
     "s_human gut metagenome", ()),
])
def test_mmseqs2_domain_without_a_short_code(text, expected):
    assert parse_lineage(text) == tuple(expected) + (None,) * (7 - len(expected))


def test_only_a_kingdom_named_like_a_domain_is_the_domain():
    assert parse_lineage("k__Bacteria; p__Firmicutes")[:2] == ("Bacteria", "Firmicutes")
    assert parse_lineage("k__Viruses|p__Pisuviricota")[:2] == ("Viruses", "Pisuviricota")
    assert parse_lineage("k_Metazoa;p_Chordata")[:2] == (None, "Chordata")
    assert parse_lineage("k__Bacillati; p__Bacillota")[:2] == (None, "Bacillota")
    # q2-annotate kraken2-to-features on a report without a domain code: no domain either
    assert parse_lineage("d__containing k__Bacillati;k__Bacillati;p__Bacillota")[:2] == (
        None, "Bacillota")


@pytest.mark.parametrize("text, expected", [
    # q2-annotate classify-kaiju: kaiju2table's NA ranks become `Unspecified`
    ("d__Bacteria;p__Pseudomonadota;c__Unspecified;o__Unspecified;f__Unspecified;"
     "g__Unspecified;s__Unspecified", ("Bacteria", "Pseudomonadota")),
    ("d__Viruses;p__Unspecified;c__Unspecified;o__Nidovirales;f__Coronaviridae;"
     "g__Betacoronavirus;s__Unspecified",
     ("Viruses", None, None, "Nidovirales", "Coronaviridae", "Betacoronavirus")),
    ("d__cannot be assigned to a (non-viral) class", ()),
    ("d__unclassified", ()),
    ("d__Unclassified", ()),
    ("d__Bacteria; g__unclassified_Bacillales", ("Bacteria",)),
    ("d__Bacteria; s__uncultured bacterium", ("Bacteria",)),
    ("d__Bacteria; s__gut metagenome", ("Bacteria",)),
    ("d__None; p__nan", ()),
    # a name of the reference taxonomy, not a placeholder
    ("d__Bacteria; p__Bacillota; c__Bacilli; o__Bacillales; "
     "f__Bacillales Family XI. Incertae Sedis",
     ("Bacteria", "Bacillota", "Bacilli", "Bacillales", "Bacillales Family XI. Incertae Sedis")),
])
def test_placeholders_of_the_tools_we_read(text, expected):
    assert parse_lineage(text) == tuple(expected) + (None,) * (7 - len(expected))


def test_placeholder_vocabulary():
    for name in ("Unassigned", "unclassified", "Unspecified", "uncultured", "unknown",
                 "environmental samples", "cannot be assigned to a (non-viral) genus",
                 "containing g__Staphylococcus", "Bacillales containing Staphylococcus",
                 "unclassified Bacillales", "uncultured_bacterium", "  NA ", ""):
        assert is_placeholder(name), name
    for name in ("Bacillus", "Incertae Sedis", "Unclassifiedium", "Candidatus Unknownia",
                 "Escherichia coli"):
        assert not is_placeholder(name), name


def test_upper_case_prefixes():
    assert parse_lineage("D__Bacteria; P__Bacillota")[:2] == ("Bacteria", "Bacillota")
    # a single underscore after a capital is a name, not a prefix
    assert parse_lineage("Bacteria;E_coli_group")[:2] == ("Bacteria", "E_coli_group")
