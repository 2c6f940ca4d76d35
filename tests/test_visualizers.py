import pandas as pd
import pytest
import qiime2

from q2_taxdistill._visualizers import evaluate_taxonomy, summarize_soft_labels

FULL = ["d__Bacteria; p__Bacillota; c__Bacilli; o__Bacillales; f__Bacillaceae; g__Bacillus; "
        "s__Bacillus subtilis",
        "d__Bacteria; p__Pseudomonadota; c__Gammaproteobacteria; o__Enterobacterales; "
        "f__Enterobacteriaceae; g__Escherichia; s__Escherichia coli",
        "d__Archaea; p__Methanobacteriota; c__Methanobacteria; o__Methanobacteriales; "
        "f__Methanobacteriaceae; g__Methanobrevibacter; s__Methanobrevibacter smithii"]


def _taxonomy(taxa, confidence=None):
    index = pd.Index([f"c{i}" for i in range(len(taxa))], name="Feature ID")
    df = pd.DataFrame({"Taxon": taxa}, index=index)
    if confidence is not None:
        df["Confidence"] = [str(c) for c in confidence]
    return df


@pytest.fixture
def truth():
    return _taxonomy([FULL[i % 3] for i in range(12)])


@pytest.fixture
def noisy():
    taxa = [FULL[i % 3] for i in range(12)]
    taxa[0] = FULL[1]
    taxa[1] = "d__Bacteria; p__Pseudomonadota"
    taxa[2] = "Unassigned"
    return _taxonomy(taxa, confidence=[0.2, 0.5, "", 0.9, 0.95, 0.6, 0.7, 0.99, 0.3, 0.8, 1, 1])


def test_evaluate_taxonomy_writes_report(tmp_path, truth, noisy):
    corrected = truth.iloc[:10].copy()
    evaluate_taxonomy(str(tmp_path), [noisy, corrected], truth, names=["mmseqs2", "corrected"])
    html = (tmp_path / "index.html").read_text()
    for name in ("outcomes.png", "f1-by-rank.png", "f1-by-threshold.png", "metrics.tsv",
                 "mmseqs2", "corrected", "q2templateassets"):
        assert name in html
    for name in ("outcomes.png", "outcomes.svg", "f1-by-rank.png", "f1-by-threshold.png",
                 "metrics.tsv", "f1-by-threshold.tsv"):
        assert (tmp_path / name).stat().st_size > 0
    metrics = pd.read_csv(tmp_path / "metrics.tsv", sep="\t")
    assert list(metrics.columns) == ["taxonomy", "rank", "n", "correct", "wrong", "unlabelled",
                                     "precision", "recall", "f1"]
    assert len(metrics) == 14
    corrected_domain = metrics.query("taxonomy == 'corrected' and rank == 'domain'").iloc[0]
    assert (corrected_domain.correct, corrected_domain.unlabelled) == (10, 2)
    noisy_species = metrics.query("taxonomy == 'mmseqs2' and rank == 'species'").iloc[0]
    assert (noisy_species.correct, noisy_species.wrong, noisy_species.unlabelled) == (9, 1, 2)
    assert "Without a numeric Confidence column" in html and "corrected" in html


def test_evaluate_taxonomy_default_names_and_no_confidence(tmp_path, truth):
    evaluate_taxonomy(str(tmp_path), [truth], truth)
    html = (tmp_path / "index.html").read_text()
    assert "taxonomy 1" in html
    assert not (tmp_path / "f1-by-threshold.png").exists()


@pytest.mark.parametrize("names, message", [
    (["a"], "1 names were given for 2"),
    (["a", "a"], "repeated: a"),
])
def test_evaluate_taxonomy_checks_names(tmp_path, truth, names, message):
    with pytest.raises(ValueError, match=message):
        evaluate_taxonomy(str(tmp_path), [truth, truth], truth, names=names)


def test_evaluate_taxonomy_needs_shared_ids(tmp_path, truth):
    other = truth.rename(index=lambda i: "x" + i)
    with pytest.raises(ValueError, match="shares no feature IDs"):
        evaluate_taxonomy(str(tmp_path), [other], truth)


def _soft_labels():
    rows = []
    for i in range(12):
        lineage = [part.strip() for part in FULL[i % 3].split(";")]
        for r, rank in enumerate(("domain", "phylum", "class", "order", "family", "genus",
                                  "species")):
            taxon = "; ".join(lineage[:r + 1])
            confidence = 0.95 if i % 2 else 0.4
            rows.append((f"c{i}", rank, taxon, 0.8, confidence))
            if r == 5:
                rows.append((f"c{i}", rank, "; ".join(lineage[:5] + ["g__Other"]), 0.1,
                             confidence))
    return pd.DataFrame(rows, columns=["feature-id", "rank", "taxon", "probability",
                                       "confidence"])


def test_summarize_soft_labels(tmp_path, noisy):
    summarize_soft_labels(str(tmp_path), _soft_labels(), noisy)
    html = (tmp_path / "index.html").read_text()
    for name in ("confidence.png", "disagreement.png", "per-rank.tsv", "label-changes.tsv"):
        assert name in html
        assert (tmp_path / name).stat().st_size > 0
    per_rank = pd.read_csv(tmp_path / "per-rank.tsv", sep="\t").set_index("rank")
    # c0 is labelled E. coli but the teacher says B. subtilis (same domain);
    # c1 is labelled down to the phylum only and agrees; c2 is unassigned.
    assert per_rank.loc["domain", ["named by both", "disagree"]].tolist() == [11, 0]
    assert per_rank.loc["phylum", ["named by both", "disagree"]].tolist() == [11, 1]
    assert per_rank.loc["class", ["named by both", "disagree"]].tolist() == [10, 1]
    assert per_rank.loc["phylum", "disagreement"] == pytest.approx(1 / 11)
    # c0 has confidence 0.4: no confident disagreement
    assert per_rank.loc["phylum", "disagreement (confidence >= 0.9)"] == 0
    changes = pd.read_csv(tmp_path / "label-changes.tsv", sep="\t")
    assert changes["rank"].tolist() == ["phylum", "class", "order", "family", "genus",
                                        "species"]
    assert changes.loc[0, ["input taxon", "teacher taxon", "contigs"]].tolist() == [
        "Pseudomonadota", "Bacillota", 1]
    assert changes.loc[5, ["input taxon", "teacher taxon"]].tolist() == [
        "Escherichia coli", "Bacillus subtilis"]


def test_summarize_soft_labels_counts_what_the_soft_labels_leave_out(tmp_path, noisy):
    soft = _soft_labels()
    soft = soft[soft["feature-id"] != "c3"]
    summarize_soft_labels(str(tmp_path), soft, noisy)
    inputs = pd.read_csv(tmp_path / "inputs.tsv", sep="\t").set_index("what")["contigs"]
    assert inputs.filter(like="without soft labels").tolist() == [1]
    # c2 is unassigned in the input
    assert inputs.filter(like="but no input label").tolist() == [1]
    assert "What the soft labels cover" in (tmp_path / "index.html").read_text()


def test_summarize_soft_labels_needs_shared_ids(tmp_path, noisy):
    soft = _soft_labels().assign(**{"feature-id": "other"}).drop_duplicates(
        ["feature-id", "rank", "taxon"])
    with pytest.raises(ValueError, match="share no feature IDs"):
        summarize_soft_labels(str(tmp_path), soft, noisy)


def test_visualizers_through_the_plugin(tmp_path, truth, noisy):
    from qiime2.plugins import taxdistill

    truth_a = qiime2.Artifact.import_data("FeatureData[Taxonomy]", truth)
    noisy_a = qiime2.Artifact.import_data("FeatureData[Taxonomy]", noisy)
    (viz,) = taxdistill.visualizers.evaluate_taxonomy(
        predictions=[noisy_a, truth_a], truth=truth_a, names=["noisy", "truth"])
    viz.export_data(str(tmp_path / "evaluation"))
    assert (tmp_path / "evaluation" / "metrics.tsv").exists()
    soft_a = qiime2.Artifact.import_data("FeatureData[SoftLabels]", _soft_labels())
    (viz,) = taxdistill.visualizers.summarize_soft_labels(soft_labels=soft_a, taxonomy=noisy_a)
    viz.export_data(str(tmp_path / "summary"))
    assert (tmp_path / "summary" / "label-changes.tsv").exists()
