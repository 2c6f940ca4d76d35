"""Kraken2 --output + --report -> per-contig taxonomy, on small files in Kraken2's layouts."""
import math

import pandas as pd
import pytest
import qiime2
from qiime2.plugin import ValidationError

from q2_taxdistill._kraken2 import Kraken2ContigsDirectoryFormat
from q2_taxdistill.engine.errors import InputError
from q2_taxdistill.engine.kraken2 import KrakenTaxonomy, contig_taxonomy
from q2_taxdistill.plugin_setup import KRAKEN2_TYPES
from tests.conftest import example_path

# kraken2 --report: % clade, clade fragments, direct fragments, rank code, taxid, indented name
REPORT = """\
 20.00\t1\t1\tU\t0\tunclassified
 80.00\t4\t0\tR\t1\troot
 80.00\t4\t0\tR1\t131567\t  cellular organisms
 60.00\t3\t0\tD\t2\t    Bacteria
 60.00\t3\t0\tP\t1224\t      Pseudomonadota
 60.00\t3\t0\tC\t1236\t        Gammaproteobacteria
 60.00\t3\t0\tO\t91347\t          Enterobacterales
 60.00\t3\t0\tF\t543\t            Enterobacteriaceae
 60.00\t3\t1\tG\t561\t              Escherichia
 40.00\t2\t1\tS\t562\t                Escherichia coli
 20.00\t1\t1\tS1\t83333\t                  Escherichia coli K-12
 20.00\t1\t0\tD\t2759\t    Eukaryota
 20.00\t1\t0\tK\t4751\t      Fungi
 20.00\t1\t1\tG\t5052\t        Aspergillus
"""
ECOLI = ("d__Bacteria; p__Pseudomonadota; c__Gammaproteobacteria; o__Enterobacterales; "
         "f__Enterobacteriaceae; g__Escherichia; s__Escherichia coli")
# kraken2 --output: C/U, ID, taxid, length, k-mer LCA mapping (A: ambiguous, 0: not in the db)
OUTPUT = """\
C\tc1\t562\t60\t562:13 561:4 A:6 0:1 83333:2
C\tc2\t83333\t40\t83333:6
C\tc3\t561\t50\t561:2 562:3 0:5 9999:10
C\tc4\t5052\t45\t5052:11
U\tc5\t0\t38\t0:4
C\tc6\t1\t40\t1:6
"""


def _taxonomy(report=REPORT):
    return KrakenTaxonomy.from_report(report.splitlines())


def _table(output=OUTPUT, report=REPORT):
    return contig_taxonomy(output.splitlines(), _taxonomy(report))


def test_lineages_come_from_the_report_tree():
    table = _table()
    assert table.loc["c1", "Taxon"] == ECOLI
    assert table.loc["c2", "Taxon"] == ECOLI  # a strain (S1) names its species
    assert table.loc["c3", "Taxon"] == ECOLI.rsplit("; ", 1)[0]
    assert table.loc["c4", "Taxon"] == "d__Eukaryota; p__; c__; o__; f__; g__Aspergillus"
    assert list(table.index) == ["c1", "c2", "c3", "c4", "c5", "c6"]


def test_confidence_is_the_share_of_unambiguous_kmers_in_the_clade():
    table = _table()
    # c1: 562 and its strain 83333 are in the clade of 562, 561 (parent) and 0 are not; A: out
    assert table.loc["c1", "Confidence"] == pytest.approx(round(15 / 20, 4))
    assert table.loc["c2", "Confidence"] == 1.0
    # c3: a taxid absent from the report counts outside the clade (lower bound)
    assert table.loc["c3", "Confidence"] == pytest.approx(5 / 20)


def test_unclassified_and_root_contigs_are_unassigned_without_confidence():
    table = _table()
    for contig in ("c5", "c6"):
        assert table.loc[contig, "Taxon"] == "Unassigned"
        assert math.isnan(table.loc[contig, "Confidence"])


def test_minimizer_columns_use_names_and_paired_separators():
    report8 = "\n".join("\t".join(f.split("\t")[:3] + ["10", "5"] + f.split("\t")[3:])
                        for f in REPORT.splitlines())
    output = "C\tc1\tEscherichia coli (taxid 562)\t60|40\t562:3 |:| 562:1 0:4\n"
    table = contig_taxonomy(output.splitlines(), KrakenTaxonomy.from_report(report8.splitlines()))
    assert table.loc["c1", "Taxon"] == ECOLI
    assert table.loc["c1", "Confidence"] == 0.5


def test_a_kingdom_is_never_the_domain():
    report = "100.00\t1\t0\tR\t1\troot\n100.00\t1\t0\tK\t33208\t  Metazoa\n" \
             "100.00\t1\t1\tP\t6656\t    Arthropoda\n"
    table = contig_taxonomy(["C\tx\t6656\t40\t6656:6"], _taxonomy(report))
    assert table.loc["x", "Taxon"] == "d__; p__Arthropoda"


# NCBI's 2025 taxonomy (domain, kingdom Bacillati, Viruses an acellular root) as kraken2 before
# 2.17 writes it (Bacteria R2 under R1 cellular organisms; as in kraken2 issue #991 and
# smdabdoub/kraken-biom#31), and as kraken2 2.17 writes it (domain = D, Viruses still R1).
REPORT_2025 = """\
  5.00\t1\t1\tU\t0\tunclassified
 95.00\t19\t1\tR\t1\troot
 70.00\t14\t0\tR1\t131567\t  cellular organisms
 60.00\t12\t2\tR2\t2\t    Bacteria
 50.00\t10\t1\tK\t1783272\t      Bacillati
 45.00\t9\t9\tP\t1239\t        Bacillota
 10.00\t2\t0\tR2\t2759\t    Eukaryota
 10.00\t2\t0\tR3\t33154\t      Opisthokonta
 10.00\t2\t0\tK\t33208\t        Metazoa
 10.00\t2\t0\tK1\t6072\t          Eumetazoa
 10.00\t2\t2\tP\t7711\t            Chordata
 20.00\t4\t0\tR1\t10239\t  Viruses
 20.00\t4\t0\tR2\t2559587\t    Riboviria
 20.00\t4\t0\tK\t2732396\t      Orthornavirae
 20.00\t4\t0\tP\t2732408\t        Pisuviricota
 20.00\t4\t0\tC\t2732506\t          Pisoniviricetes
 20.00\t4\t0\tO\t76804\t            Nidovirales
 20.00\t4\t4\tF\t11118\t              Coronaviridae
"""
OUTPUT_2025 = """\
C\tbact\t2\t60\t2:6
C\tbacillota\t1239\t60\t1239:6
C\tbacillati\t1783272\t60\t1783272:6
C\tchordate\t7711\t60\t7711:6
C\tcorona\t11118\t60\t11118:6
C\tcellular\t131567\t60\t131567:6
"""
EXPECTED_2025 = {
    "bact": "d__Bacteria",                       # assigned to the domain itself
    "bacillota": "d__Bacteria; p__Bacillota",    # not d__Bacillati
    "bacillati": "d__Bacteria",
    "chordate": "d__Eukaryota; p__Chordata",     # not d__Metazoa
    "corona": "d__Viruses; p__Pisuviricota; c__Pisoniviricetes; o__Nidovirales; "
              "f__Coronaviridae",
    "cellular": "Unassigned",
}


@pytest.mark.parametrize("version", ["before 2.17", "2.17"])
def test_ncbi_2025_ranks_keep_the_domain(version):
    report = REPORT_2025
    if version == "2.17":  # kraken2 2.17 gives the rank `domain` the code D
        report = report.replace("\tR2\t2\t", "\tD\t2\t").replace("\tR2\t2759\t", "\tD\t2759\t") \
            .replace("\tR3\t33154\t", "\tD1\t33154\t")
    table = _table(OUTPUT_2025, report)
    assert table["Taxon"].to_dict() == EXPECTED_2025
    assert math.isnan(table.loc["cellular", "Confidence"])


def test_codes_lost_by_kraken2_2_1_2_builds():
    """kraken2 2.1.2/2.1.3 builds write some codes empty or as bare digits (kraken2 #759; what
    Debian's 2.1.2 writes, tests/data/kraken2-2.1.2): those nodes have no rank."""
    lost = REPORT_2025.replace("\tR\t1\t", "\t\t1\t").replace("\tR1\t", "\t1\t") \
        .replace("\tR2\t", "\t2\t")
    assert _table(OUTPUT_2025, lost)["Taxon"].to_dict() == EXPECTED_2025
    old = REPORT_2025.replace("\tR2\t2\t", "\t\t2\t")  # a superkingdom's D lost
    assert _table(OUTPUT_2025, old).loc["bacillota", "Taxon"] == "d__Bacteria; p__Bacillota"


def test_a_run_that_classified_nothing_is_all_unassigned(tmp_path):
    report = "100.00\t2\t2\tU\t0\tunclassified\n"
    output = "U\tc1\t0\t40\t0:6\nU\tc2\t0\t50\t0:16\n"
    table = _table(output, report)
    assert (table["Taxon"] == "Unassigned").all() and table["Confidence"].isna().all()
    artifact = qiime2.Artifact.import_data(
        "FeatureData[Taxonomy]", str(_run_dir(tmp_path, output=output, report=report)),
        view_type=Kraken2ContigsDirectoryFormat)
    assert list(artifact.view(pd.DataFrame)["Taxon"]) == ["Unassigned", "Unassigned"]


def test_taxid_missing_from_the_report_is_named():
    with pytest.raises(InputError, match=r"taxid.*not in the Kraken2 report: '777'.*line 2.*'b'"
                                         r".*same kraken2 run"):
        contig_taxonomy(["C\ta\t562\t40\t562:6", "C\tb\t777\t40\t777:6"], _taxonomy())


@pytest.mark.parametrize("output, message", [
    ("C\tc1\t562\t40\n", "line 1: expected 5 tab-separated columns"),
    ("X\tc1\t562\t40\t562:6\n", "line 1: the first column must be C or U"),
    ("C\tc1\tE. coli\t40\t562:6\n", "line 1: taxid 'E. coli'"),
    ("C\tc1\t562\t40\t562-6\n", "line 1: k-mer mapping token '562-6'"),
    ("C\tc1\t562\t40\t562:6\nC\tc1\t562\t40\t562:6\n", "line 2: contig 'c1' appears twice"),
    ("\n", "no contig lines"),
])
def test_bad_outputs_are_named(output, message):
    with pytest.raises(InputError, match=message):
        _table(output)


@pytest.mark.parametrize("report, message", [
    ("50.0\t1\t1\tS\t562\n", "line 1: expected 6 tab-separated columns"),
    ("50.0\t1\t1\tspecies\t562\tE. coli\n", "line 1: 'species' is not a Kraken2 rank code"),
    ("50.0\t1\t1\tS\tx562\tE. coli\n", "line 1: taxid 'x562' is not a number"),
])
def test_bad_reports_are_named(report, message):
    with pytest.raises(InputError, match=message):
        _taxonomy(report)


def _run_dir(path, output=OUTPUT, report=REPORT):
    path.mkdir(parents=True, exist_ok=True)
    (path / "output.txt").write_text(output)
    (path / "report.txt").write_text(report)
    return path


def test_import_as_feature_data_taxonomy(tmp_path):
    artifact = qiime2.Artifact.import_data("FeatureData[Taxonomy]", str(_run_dir(tmp_path)),
                                           view_type=Kraken2ContigsDirectoryFormat)
    table = artifact.view(pd.DataFrame)
    assert table.loc["c1", "Taxon"] == ECOLI
    assert table.loc["c5", "Taxon"] == "Unassigned"
    assert float(table.loc["c2", "Confidence"]) == 1.0


def test_directory_format_validation_names_the_file(tmp_path):
    _run_dir(tmp_path, report="50.0\t1\t1\tS\t562\n")
    with pytest.raises(ValidationError, match="report, line 1: expected 6"):
        Kraken2ContigsDirectoryFormat(str(tmp_path), mode="r").validate()


def test_bundled_example_run_gives_the_example_labels():
    directory = Kraken2ContigsDirectoryFormat(example_path("kraken2"), mode="r")
    directory.validate(level="max")
    table = qiime2.Artifact.import_data("FeatureData[Taxonomy]", example_path("kraken2"),
                                        view_type=Kraken2ContigsDirectoryFormat).view(pd.DataFrame)
    labels = pd.read_csv(example_path("taxonomy.tsv"), sep="\t", index_col=0)
    assert list(table.index) == list(labels.index)
    assert (table["Taxon"] == labels["Taxon"]).all()


def _collection(tmp_path, kind, type_name, samples):
    root = tmp_path / kind
    for sample, text in samples.items():
        (root / sample).mkdir(parents=True)
        (root / sample / f"{kind}.txt").write_text(text)
    return qiime2.Artifact.import_data(f"SampleData[{type_name} % Properties('contigs')]",
                                       str(root))


@pytest.mark.skipif(not KRAKEN2_TYPES, reason="q2-types without the Kraken2 types (2022.11)")
def test_q2_annotate_results_of_several_samples(tmp_path):
    from qiime2.plugins import taxdistill
    other = "C\td1\t5052\t45\t5052:11\n"
    reports = _collection(tmp_path, "report", "Kraken2Report", {"s1": REPORT, "s2": REPORT})
    outputs = _collection(tmp_path, "output", "Kraken2Output", {"s1": OUTPUT, "s2": other})
    taxonomy, = taxdistill.actions.kraken2_to_taxonomy(reports=reports, outputs=outputs)
    table = taxonomy.view(pd.DataFrame)
    assert list(table.index) == ["c1", "c2", "c3", "c4", "c5", "c6", "d1"]
    assert table.loc["d1", "Taxon"].endswith("g__Aspergillus")

    again = _collection(tmp_path / "dup", "output", "Kraken2Output", {"s1": OUTPUT, "s2": OUTPUT})
    with pytest.raises(ValueError, match=r"unique across samples: 'c1'.*s2/output.txt.*s1/output"):
        taxdistill.actions.kraken2_to_taxonomy(reports=reports, outputs=again)
    lonely = _collection(tmp_path / "one", "report", "Kraken2Report", {"s1": REPORT})
    with pytest.raises(ValueError, match=r"no Kraken2 report 's2/report.txt'"):
        taxdistill.actions.kraken2_to_taxonomy(reports=lonely, outputs=outputs)


def test_output_and_report_of_different_runs_fail_validation(tmp_path):
    other = "100.00\t1\t0\tR\t1\troot\n100.00\t1\t1\tS\t562\t  Escherichia coli\n"
    _run_dir(tmp_path, report=other)
    for level in ("min", "max"):
        with pytest.raises(ValidationError, match=r"output.txt: 3 taxid\(s\) are not in the "
                                                  r"Kraken2 report: '561', '5052', '83333'.*"
                                                  r"line 2, contig 'c2'"):
            Kraken2ContigsDirectoryFormat(str(tmp_path), mode="r").validate(level=level)


def test_q2cli_reports_import_errors_without_a_traceback(tmp_path):
    """`qiime tools import` shows a format error as an input problem (no traceback)."""
    import os
    import subprocess
    import sys
    pytest.importorskip("q2cli")
    run = _run_dir(tmp_path / "run", report="100.00\t1\t1\tS\t562\tEscherichia coli\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
         os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run(
        [sys.executable, "-m", "q2cli.__main__", "tools", "import", "--type",
         "FeatureData[Taxonomy]", "--input-format", "Kraken2ContigsDirectoryFormat",
         "--input-path", str(run), "--output-path", str(tmp_path / "t.qza")],
        capture_output=True, text=True, env=env, timeout=300)
    message = done.stdout + done.stderr
    assert done.returncode != 0
    assert "output.txt: 4 taxid(s) are not in the Kraken2 report" in message
    assert "(first on line 2, contig 'c2')" in message
    assert "Traceback" not in message and "unexpected error" not in message
