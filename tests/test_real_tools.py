"""Lineages from real tool runs: kraken2 2.1.2 and MMseqs2 14 (Debian bookworm) on tiny
databases with NCBI's taxonomy as it was before 2025 (`superkingdom`) and after (`domain`,
kingdom Bacillati, Viruses an `acellular root`). The runs' files are kept in
tests/data/real-tools (`python -m tests.test_real_tools` writes them again; mmseqs2-14-2025's
contigs_lca.tsv and taxids_lca.tsv come from `easy-taxonomy --orf-filter 0` of nucleotide
contigs encoding four such proteins per taxon, and from `--tax-lineage 2`); where the tools
are installed, the tests run them again and compare."""
import random
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import qiime2

from q2_taxdistill._formats import MMseqs2LCAFormat
from q2_taxdistill._kraken2 import Kraken2ContigsDirectoryFormat, read_run
from q2_taxdistill._transformers import _mmseqs2_frame
from q2_taxdistill.engine.taxonomy import parse_lineage

DATA = Path(__file__).parent / "data" / "real-tools"
BACILLUS = "d__Bacteria; p__Bacillota; c__Bacilli; o__Bacillales; f__Bacillaceae; g__Bacillus"
ASPERGILLUS = "d__Eukaryota; p__Ascomycota; c__; o__; f__; g__Aspergillus; s__Aspergillus oryzae"
CORONA = ("d__Viruses; p__Pisuviricota; c__Pisoniviricetes; o__Nidovirales; f__Coronaviridae; "
          "g__Betacoronavirus; s__Severe acute respiratory syndrome-related coronavirus")
# what each sequence's lineage must be, whichever taxonomy the database was built with
EXPECTED = {"bsub": BACILLUS + "; s__Bacillus subtilis",
            "bthu": BACILLUS + "; s__Bacillus thuringiensis",
            "bact": "d__Bacteria", "asp": ASPERGILLUS, "cov": CORONA,
            "bacillota": "d__Bacteria; p__Bacillota"}


def _nodes(style):
    new = style == "2025"
    return [
        (1, 1, "no rank", "root"),
        (131567, 1, "cellular root" if new else "no rank", "cellular organisms"),
        (2, 131567, "domain" if new else "superkingdom", "Bacteria"),
        (1783272, 2, "kingdom" if new else "clade", "Bacillati" if new else "Terrabacteria group"),
        (1239, 1783272, "phylum", "Bacillota"), (91061, 1239, "class", "Bacilli"),
        (1385, 91061, "order", "Bacillales"), (186817, 1385, "family", "Bacillaceae"),
        (1386, 186817, "genus", "Bacillus"), (1423, 1386, "species", "Bacillus subtilis"),
        (1428, 1386, "species", "Bacillus thuringiensis"),
        (2759, 131567, "domain" if new else "superkingdom", "Eukaryota"),
        (33154, 2759, "clade", "Opisthokonta"), (4751, 33154, "kingdom", "Fungi"),
        (4890, 4751, "phylum", "Ascomycota"), (5052, 4890, "genus", "Aspergillus"),
        (5062, 5052, "species", "Aspergillus oryzae"),
        (10239, 1, "acellular root" if new else "superkingdom", "Viruses"),
        (2559587, 10239, "realm", "Riboviria"), (2732396, 2559587, "kingdom", "Orthornavirae"),
        (2732408, 2732396, "phylum", "Pisuviricota"), (2732506, 2732408, "class", "Pisoniviricetes"),
        (76804, 2732506, "order", "Nidovirales"), (11118, 76804, "family", "Coronaviridae"),
        (694002, 11118, "genus", "Betacoronavirus"),
        (694009, 694002, "species", "Severe acute respiratory syndrome-related coronavirus"),
    ]


TAXIDS = {"bsub": 1423, "bthu": 1428, "bact": 2, "asp": 5062, "cov": 694009, "bacillota": 1239}


def _taxdump(directory, style):
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "nodes.dmp", "w") as nodes, open(directory / "names.dmp", "w") as names:
        for taxid, parent, rank, name in _nodes(style):
            nodes.write(f"{taxid}\t|\t{parent}\t|\t{rank}\t|\t-\t|\n")
            names.write(f"{taxid}\t|\t{name}\t|\t\t|\tscientific name\t|\n")
    for empty in ("merged.dmp", "delnodes.dmp"):
        (directory / empty).write_text("")


def _run(*args, cwd):
    subprocess.run(args, cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=300)


def kraken2_run(work, style):
    """kraken2-build on five random genomes (one assigned to Bacteria itself), then kraken2 on
    two 5 kb pieces of each and a random contig: (output.txt, report.txt) in work/style."""
    rng = random.Random(11)
    genomes = {k: "".join(rng.choice("ACGT") for _ in range(20000))
               for k in ("bsub", "bthu", "bact", "asp", "cov")}
    run = work / f"kraken2-{style}"
    _taxdump(run / "db" / "taxonomy", style)
    (run / "lib.fna").write_text("".join(f">{k}|kraken:taxid|{TAXIDS[k]}\n{s}\n"
                                         for k, s in genomes.items()))
    (run / "contigs.fna").write_text(
        "".join(f">{k}_{i}\n{s[i * 9000:i * 9000 + 5000]}\n" for k, s in genomes.items()
                for i in range(2))
        + ">noise\n" + "".join(rng.choice("ACGT") for _ in range(4000)) + "\n")
    _run("kraken2-build", "--add-to-library", "lib.fna", "--db", "db", "--no-masking", cwd=run)
    _run("kraken2-build", "--build", "--db", "db", "--threads", "1", cwd=run)
    _run("kraken2", "--db", "db", "contigs.fna", "--output", "output.txt", "--report",
         "report.txt", cwd=run)
    return run / "output.txt", run / "report.txt"


def mmseqs2_run(work, style):
    """MMseqs2 easy-taxonomy (--tax-lineage 1) of protein fragments against random proteins
    with this taxonomy: the lca.tsv."""
    rng = random.Random(5)
    amino = "ACDEFGHIKLMNPQRSTVWY"
    run = work / f"mmseqs2-{style}"
    _taxdump(run / "taxdump", style)
    proteins = {f"{k}_p{i}": "M" + "".join(rng.choice(amino) for _ in range(299))
                for k in TAXIDS for i in range(2)}
    (run / "ref.faa").write_text("".join(f">{k}\n{p}\n" for k, p in proteins.items()))
    (run / "map.tsv").write_text("".join(f"{k}\t{TAXIDS[k.rsplit('_', 1)[0]]}\n"
                                         for k in proteins))
    (run / "q.faa").write_text("".join(f">{k}\n{p[20:220]}\n" for k, p in proteins.items())
                               + ">junk\n" + "".join(rng.choice(amino) for _ in range(200)))
    _run("mmseqs", "createdb", "ref.faa", "ref", cwd=run)
    _run("mmseqs", "createtaxdb", "ref", "tmp", "--ncbi-tax-dump", "taxdump",
         "--tax-mapping-file", "map.tsv", "--threads", "1", cwd=run)
    _run("mmseqs", "createindex", "ref", "tmp", "--threads", "1", cwd=run)
    _run("mmseqs", "easy-taxonomy", "q.faa", "ref", "res", "tmp", "--tax-lineage", "1",
         "--threads", "1", cwd=run)
    return run / "res_lca.tsv"


def _kraken2_expected():
    rows = {f"{k}_{i}": EXPECTED[k] for k in ("bsub", "bthu", "bact", "asp", "cov")
            for i in range(2)}
    return {**rows, "noise": "Unassigned"}


def _mmseqs2_expected():
    return {**{f"{k}_p{i}": v for k, v in EXPECTED.items() for i in range(2)},
            "junk": "Unassigned"}


@pytest.mark.parametrize("style", ["before-2025", "2025"])
def test_kraken2_2_1_2_runs_keep_the_domain(tmp_path, style):
    """kraken2 2.1.2 writes `R`/`D` codes empty and Bacteria of the 2025 taxonomy as `2`
    (R2 without its letter): every lineage still has its domain, Bacillati none."""
    run = DATA / f"kraken2-2.1.2-{style}"
    directory = Kraken2ContigsDirectoryFormat(str(run), mode="r")
    directory.validate(level="max")
    table = qiime2.Artifact.import_data("FeatureData[Taxonomy]", str(run),
                                        view_type=Kraken2ContigsDirectoryFormat).view(pd.DataFrame)
    assert table["Taxon"].to_dict() == _kraken2_expected()


@pytest.mark.parametrize("style", ["before-2025", "2025"])
def test_mmseqs2_14_runs_keep_the_domain(style):
    path = DATA / f"mmseqs2-14-{style}" / "lca.tsv"
    MMseqs2LCAFormat(str(path), mode="r").validate(level="max")
    table = qiime2.Artifact.import_data("FeatureData[Taxonomy]", str(path),
                                        view_type=MMseqs2LCAFormat).view(pd.DataFrame)
    assert table["Taxon"].to_dict() == _mmseqs2_expected()


def test_mmseqs2_14_contig_votes_and_taxid_lineages():
    votes = DATA / "mmseqs2-14-2025" / "contigs_lca.tsv"  # nucleotide contigs, ORF votes
    frame = _mmseqs2_frame(MMseqs2LCAFormat(str(votes), mode="r"))
    assert frame["Taxon"].to_dict() == {**{f"{k}_contig": v for k, v in EXPECTED.items()},
                                        "junk_contig": "Unassigned"}
    assert frame.loc["bact_contig", "Confidence"] == "1.000"
    taxids = MMseqs2LCAFormat(str(DATA / "mmseqs2-14-2025" / "taxids_lca.tsv"), mode="r")
    with pytest.raises(qiime2.plugin.ValidationError, match="--tax-lineage 1 for names"):
        taxids.validate(level="max")


@pytest.mark.skipif(shutil.which("kraken2-build") is None, reason="kraken2 is not installed")
@pytest.mark.parametrize("style", ["before-2025", "2025"])
def test_installed_kraken2_gives_the_same_lineages(tmp_path, style):
    output, report = kraken2_run(tmp_path, style)
    assert read_run(output, report)["Taxon"].to_dict() == _kraken2_expected()


@pytest.mark.skipif(shutil.which("mmseqs") is None, reason="MMseqs2 is not installed")
def test_installed_mmseqs2_gives_the_same_lineages(tmp_path):
    lca = mmseqs2_run(tmp_path, "2025")
    frame = _mmseqs2_frame(MMseqs2LCAFormat(str(lca), mode="r"))
    assert frame["Taxon"].to_dict() == _mmseqs2_expected()


# Five genomes of distinct composition, two with ranks NCBI leaves unnamed (a virus order
# straight under Viruses, a fungal genus without class, order or family).
GENOMES = {  # key: (taxid, GC content)
    "bsub": (1423, 0.36), "bthu": (1428, 0.44), "asp": (5062, 0.52), "cov": (694009, 0.60),
    "bact": (2, 0.68)}
GAPPED_NODES = [n for n in _nodes("before-2025") if n[0] not in (2559587, 2732396, 2732408,
                                                                 2732506, 76804)] + [
    (76804, 10239, "order", "Nidovirales")]


def _genome(rng, n, gc):
    weights = [(1 - gc) / 2, gc / 2, gc / 2, (1 - gc) / 2]
    return "".join(rng.choices("ACGT", weights=weights, k=n))


@pytest.mark.skipif(shutil.which("kraken2-build") is None, reason="kraken2 is not installed")
def test_refine_keeps_real_kraken2_labels_of_genomes_in_its_database(tmp_path):
    """Every label right (the genomes are the database): the correction may change no rank
    the input names and cut back at most 5% of the labels, gaps in the lineages included."""
    from q2_taxdistill.engine import workflow
    from q2_taxdistill.engine.sequences import Contigs
    from q2_taxdistill.engine.student import StudentConfig
    rng = random.Random(3)
    genomes = {k: _genome(rng, 100_000, gc) for k, (_, gc) in GENOMES.items()}
    db = tmp_path / "db" / "taxonomy"
    db.mkdir(parents=True)
    with open(db / "nodes.dmp", "w") as nodes, open(db / "names.dmp", "w") as names:
        for taxid, parent, rank, name in GAPPED_NODES:
            nodes.write(f"{taxid}\t|\t{parent}\t|\t{rank}\t|\t-\t|\n")
            names.write(f"{taxid}\t|\t{name}\t|\t\t|\tscientific name\t|\n")
    (db / "merged.dmp").write_text("")
    (db / "delnodes.dmp").write_text("")
    (tmp_path / "lib.fna").write_text("".join(f">{k}|kraken:taxid|{GENOMES[k][0]}\n{s}\n"
                                              for k, s in genomes.items()))
    pieces = {f"{k}_{i}": s[i * 2000:(i + 1) * 2000] for k, s in genomes.items()
              for i in range(50)}
    (tmp_path / "contigs.fna").write_text("".join(f">{c}\n{s}\n" for c, s in pieces.items()))
    _run("kraken2-build", "--add-to-library", "lib.fna", "--db", "db", "--no-masking",
         cwd=tmp_path)
    _run("kraken2-build", "--build", "--db", "db", "--threads", "1", cwd=tmp_path)
    _run("kraken2", "--db", "db", "contigs.fna", "--output", "output.txt", "--report",
         "report.txt", cwd=tmp_path)
    labels = read_run(tmp_path / "output.txt", tmp_path / "report.txt")
    # kraken2 2.1.2 writes no rank code for an order straight under Viruses: a gap to family
    assert labels.loc["cov_0", "Taxon"].startswith("d__Viruses; p__; c__; o__; f__Corona")
    assert labels.loc["asp_0", "Taxon"].startswith("d__Eukaryota; p__Ascomycota; c__; o__;")
    contigs = Contigs.from_fasta(str(tmp_path / "contigs.fna"))
    abundance = {k: [rng.uniform(1, 50) for _ in range(4)] for k in genomes}
    counts = pd.DataFrame([[rng.randint(int(a * 7), int(a * 13)) for a in abundance[c.rsplit("_", 1)[0]]]
                           for c in contigs.ids], index=contigs.ids,
                          columns=[f"S{i}" for i in range(4)])
    with pytest.warns(Warning):
        soft = workflow.teach(contigs, labels)
        student = workflow.distill(contigs, labels, soft, counts,
                                   config=StudentConfig(n_folds=3, max_epochs=10, patience=2))
        corrected = workflow.correct(student, contigs, counts, labels)
    before = [parse_lineage(t) for t in labels.loc[contigs.ids, "Taxon"]]
    after = [parse_lineage(t) for t in corrected.loc[contigs.ids, "Taxon"]]
    changed = sum(a is not None and b is not None and a != b
                  for x, y in zip(before, after) for b, a in zip(x, y))
    cut = sum(x != y for x, y in zip(before, after))
    assert changed == 0
    assert cut <= 0.05 * len(before)


if __name__ == "__main__":  # write tests/data/real-tools again from the installed tools
    import tempfile
    with tempfile.TemporaryDirectory() as work:
        for style in ("before-2025", "2025"):
            target = DATA / f"kraken2-2.1.2-{style}"
            target.mkdir(parents=True, exist_ok=True)
            for path in kraken2_run(Path(work), style):
                shutil.copy(path, target / path.name)
            target = DATA / f"mmseqs2-14-{style}"
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy(mmseqs2_run(Path(work), style), target / "lca.tsv")
