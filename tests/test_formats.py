import json
import struct

import numpy as np
import pandas as pd
import pytest
import qiime2
from qiime2.plugin import ValidationError

from q2_taxdistill._formats import (
    EmbeddingsDirectoryFormat, MMseqs2LCADirectoryFormat, MMseqs2LCAFormat, SafetensorsFormat,
    SoftLabelsDirectoryFormat, SoftLabelsFormat, StudentModelConfigFormat,
    StudentModelDirectoryFormat, check_lineage)

HEADER = "feature-id\trank\ttaxon\tprobability\tconfidence\n"
BAC = "d__Bacteria"
BACILLOTA = "d__Bacteria; p__Bacillota"


def _fmt(cls, path, text, binary=False):
    if binary:
        path.write_bytes(text)
    else:
        path.write_text(text)
    return cls(str(path), mode="r")


def _validate_both(fmt):
    fmt.validate(level="min")
    fmt.validate(level="max")


# --- soft labels -------------------------------------------------------------------------------

GOOD_SOFT = (HEADER
             + f"c1\tdomain\t{BAC}\t0.98\t0.9\n"
             + f"c1\tphylum\t{BACILLOTA}\t0.7\t0.6\n"
             + "c1\tphylum\td__Bacteria; p__Bacteroidota\t0.2\t0.6\n"
             + "c2\tgenus\td__Bacteria; p__X; c__; o__Y; f__Z; g__Bacillus\t1.0\t1.0\n")


def test_soft_labels_valid(tmp_path):
    _validate_both(_fmt(SoftLabelsFormat, tmp_path / "s.tsv", GOOD_SOFT))


def test_soft_labels_without_rows_are_valid(tmp_path):
    """A teacher with no neighbour to vote (a single contig) has no soft labels to give."""
    _validate_both(_fmt(SoftLabelsFormat, tmp_path / "s.tsv", HEADER))


@pytest.mark.parametrize("text, message", [
    ("feature-id\trank\ttaxon\tprobability\n", "line 1: the header"),
    (HEADER + f"c1\tdomain\t{BAC}\t0.5\n", "line 2: expected 5"),
    (HEADER + f"\tdomain\t{BAC}\t0.5\t0.5\n", "line 2: empty feature-id"),
    (HEADER + f"c1\tkingdom\t{BAC}\t0.5\t0.5\n", "line 2: rank 'kingdom'"),
    (HEADER + "c1\tphylum\tBacteria; Bacillota\t0.5\t0.5\n", "no rank prefix"),
    (HEADER + f"c1\tclass\t{BACILLOTA}\t0.5\t0.5\n", "not at rank 'class'"),
    (HEADER + "c1\tphylum\tp__Bacillota; d__Bacteria\t0.5\t0.5\n", "out of rank order"),
    (HEADER + "c1\tphylum\td__Bacteria; p__\t0.5\t0.5\n", "has no name"),
    (HEADER + f"c1\tdomain\t{BAC}\tx\t0.5\n", "line 2: probability 'x' is not a number"),
    (HEADER + f"c1\tdomain\t{BAC}\t1.5\t0.5\n", "line 2: probability '1.5' is not in"),
    (HEADER + f"c1\tdomain\t{BAC}\t0.5\t-0.1\n", "line 2: confidence '-0.1' is not in"),
    (HEADER + f"c1\tphylum\t{BACILLOTA}\t0.6\t0.5\n"
     + "c1\tphylum\td__Bacteria; p__Other\t0.6\t0.5\n", "line 3: the probabilities"),
    (HEADER + f"c1\tphylum\t{BACILLOTA}\t0.3\t0.5\n"
     + "c1\tphylum\td__Bacteria; p__Other\t0.3\t0.4\n", "line 3: confidence 0.4"),
    (HEADER + f"c1\tphylum\t{BACILLOTA}\t0.3\t0.5\n"
     + f"c1\tphylum\t{BACILLOTA}\t0.3\t0.5\n", "line 3: taxon"),
    (HEADER + f"c1\tdomain\t{BAC}\t0.3\t0.5\n" + f"c2\tdomain\t{BAC}\t0.3\t0.5\n"
     + f"c1\tphylum\t{BACILLOTA}\t0.3\t0.5\n", "line 4: the rows of feature 'c1'"),
])
def test_soft_labels_invalid(tmp_path, text, message):
    fmt = _fmt(SoftLabelsFormat, tmp_path / "s.tsv", text)
    with pytest.raises(ValidationError, match=message):
        fmt.validate(level="min")


def test_soft_labels_min_reads_the_first_rows_only(tmp_path):
    rows = "".join(f"c{i}\tdomain\t{BAC}\t0.5\t0.5\n" for i in range(150))
    fmt = _fmt(SoftLabelsFormat, tmp_path / "s.tsv", HEADER + rows + "c999\tdomain\tBad\t1\t1\n")
    fmt.validate(level="min")
    with pytest.raises(ValidationError, match="line 152"):
        fmt.validate(level="max")


def test_soft_labels_sum_tolerates_rounding(tmp_path):
    text = HEADER + "".join(f"c1\tphylum\td__B; p__P{i}\t0.3333334\t0.5\n" for i in range(3))
    _validate_both(_fmt(SoftLabelsFormat, tmp_path / "s.tsv", text))


def test_check_lineage():
    assert check_lineage("d__Bacteria; p__A; c__B", "class") is None
    assert check_lineage("d__Bacteria;g__Bacillus", "genus") is None
    assert "no rank prefix" in check_lineage("Bacteria; p__A", "phylum")


def test_soft_labels_round_trip(tmp_path):
    from q2_taxdistill._transformers import _df_to_soft_labels, _soft_labels_to_df

    fmt = _fmt(SoftLabelsFormat, tmp_path / "s.tsv", GOOD_SOFT)
    df = _soft_labels_to_df(fmt)
    assert list(df.columns) == ["feature-id", "rank", "taxon", "probability", "confidence"]
    assert isinstance(df.index, pd.RangeIndex)
    assert df["probability"].dtype == float and df["confidence"].dtype == float
    assert df.loc[3, "taxon"] == "d__Bacteria; p__X; c__; o__Y; f__Z; g__Bacillus"
    back = _df_to_soft_labels(df)
    back.validate(level="max")
    assert back.path.read_text() == GOOD_SOFT
    pd.testing.assert_frame_equal(_soft_labels_to_df(back), df)


def test_soft_labels_writer_groups_contigs_and_keeps_odd_ids(tmp_path):
    from q2_taxdistill._transformers import _df_to_soft_labels, _soft_labels_to_df

    df = pd.DataFrame({"feature-id": ["NA", "c2", "NA"], "rank": ["domain"] * 2 + ["phylum"],
                       "taxon": [BAC, BAC, BACILLOTA], "probability": [0.9, 0.8, 1 / 3],
                       "confidence": [0.5, 0.4, 0.25]})
    ff = _df_to_soft_labels(df)
    ff.validate(level="max")
    back = _soft_labels_to_df(ff)
    assert back["feature-id"].tolist() == ["NA", "NA", "c2"]
    assert back["probability"].tolist() == [0.9, 1 / 3, 0.8]


@pytest.mark.parametrize("change, message", [
    ({"rank": "kingdom"}, "unknown rank"),
    ({"taxon": "Bacteria"}, "no rank prefix"),
    ({"probability": 1.2}, "probability must lie"),
    ({"feature-id": "a\tb"}, "tabs"),
])
def test_soft_labels_writer_rejects(change, message):
    from q2_taxdistill._transformers import _df_to_soft_labels

    df = pd.DataFrame({"feature-id": ["c1"], "rank": ["domain"], "taxon": [BAC],
                       "probability": [0.9], "confidence": [0.5]})
    for column, value in change.items():
        df[column] = [value]
    with pytest.raises(ValueError, match=message):
        _df_to_soft_labels(df)


def test_soft_labels_writer_checks_groups():
    from q2_taxdistill._transformers import _df_to_soft_labels

    df = pd.DataFrame({"feature-id": ["c1", "c1"], "rank": ["phylum"] * 2,
                       "taxon": [BACILLOTA, "d__Bacteria; p__Other"],
                       "probability": [0.5, 0.4], "confidence": [0.5, 0.6]})
    with pytest.raises(ValueError, match="more than one confidence"):
        _df_to_soft_labels(df)
    df["confidence"] = 0.5
    df["probability"] = 0.6
    with pytest.raises(ValueError, match="sum to > 1"):
        _df_to_soft_labels(df)


def _soft_label_arrays(tmp_path, text=GOOD_SOFT):
    """The arrays layout of a long table, as the transformer writes it."""
    from q2_taxdistill._transformers import _soft_labels_tsv_to_arrays

    return _soft_labels_tsv_to_arrays(_fmt(SoftLabelsFormat, tmp_path / "s.tsv", text))


def test_soft_label_arrays_are_valid_and_read_back(tmp_path):
    from q2_taxdistill._transformers import (
        _soft_label_arrays_to_df, _soft_label_arrays_to_soft_labels, _soft_labels_to_df)

    arrays = _soft_label_arrays(tmp_path)
    _validate_both(arrays)
    root = arrays.path
    assert sorted(p.name for p in root.iterdir()) == [
        "confidence.npy", "feature-ids.tsv", "probabilities.npy", "taxa.npy", "taxa.tsv"]
    assert np.load(root / "taxa.npy").shape == (2, 7, 3)
    expected = _soft_labels_to_df(_fmt(SoftLabelsFormat, tmp_path / "e.tsv", GOOD_SOFT))
    pd.testing.assert_frame_equal(_soft_label_arrays_to_df(arrays), expected)
    soft = _soft_label_arrays_to_soft_labels(arrays)
    assert soft.ids == ["c1", "c2"]
    assert np.allclose(soft.confidence[0], [0.9, 0.6, 0, 0, 0, 0, 0])


@pytest.mark.parametrize("damage,message", [
    (lambda r: np.save(r / "confidence.npy", np.zeros((3, 7), "<f4")), "arrays must be"),
    (lambda r: np.save(r / "taxa.npy", np.full((2, 7, 3), 99, "<i4")), "outside taxa.tsv"),
    (lambda r: np.save(r / "probabilities.npy", np.full((2, 7, 3), 0.5, "<f4")),
     "sum to more than 1|gives a probability to no taxon"),
    (lambda r: np.save(r / "taxa.npy", np.zeros((2, 7, 3), "<f4")), "dtype"),
    (lambda r: (r / "taxa.tsv").write_text("rank\ttaxon\nplanet\td__X\n"), "planet"),
    (lambda r: (r / "confidence.npy").write_bytes(b"not numpy"), "bad magic"),
])
def test_soft_label_arrays_invalid(tmp_path, damage, message):
    arrays = _soft_label_arrays(tmp_path)
    damage(arrays.path)
    with pytest.raises(ValidationError, match=message):
        arrays.validate(level="max")


def test_soft_label_arrays_name_a_taxon_at_its_rank(tmp_path):
    arrays = _soft_label_arrays(tmp_path)
    codes = np.load(arrays.path / "taxa.npy")
    codes[0, 0, 0], codes[0, 1, 0] = codes[0, 1, 0], codes[0, 0, 0]  # domain <-> phylum
    np.save(arrays.path / "taxa.npy", codes)
    with pytest.raises(ValidationError, match="not a taxon of that rank"):
        arrays.validate(level="max")


def test_soft_labels_in_the_earlier_tsv_layout_still_import(tmp_path):
    (tmp_path / "soft-labels.tsv").write_text(GOOD_SOFT)
    artifact = qiime2.Artifact.import_data("FeatureData[SoftLabels]", str(tmp_path),
                                           view_type=SoftLabelsDirectoryFormat)
    table = artifact.view(pd.DataFrame)
    assert len(table) == 4 and table["probability"].sum() == pytest.approx(2.88)
    from_file = qiime2.Artifact.import_data("FeatureData[SoftLabels]",
                                            str(tmp_path / "soft-labels.tsv"),
                                            view_type=SoftLabelsFormat)
    pd.testing.assert_frame_equal(from_file.view(pd.DataFrame), table)


def test_soft_labels_directory(tmp_path):
    (tmp_path / "soft-labels.tsv").write_text(GOOD_SOFT)
    SoftLabelsDirectoryFormat(str(tmp_path), mode="r").validate()


# --- embeddings --------------------------------------------------------------------------------

def _embeddings_dir(path, array, ids, teacher=None):
    path.mkdir()
    np.save(path / "embeddings.npy", array, allow_pickle=True)
    (path / "feature-ids.tsv").write_text("feature-id\n" + "".join(f"{i}\n" for i in ids))
    (path / "teacher.json").write_text(json.dumps(teacher or {"teacher": "composition"}))
    return EmbeddingsDirectoryFormat(str(path), mode="r")


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_embeddings_valid(tmp_path, dtype):
    fmt = _embeddings_dir(tmp_path / "e", np.ones((3, 4), dtype=dtype), ["a", "b", "c"])
    _validate_both(fmt)


@pytest.mark.parametrize("array, ids, teacher, message", [
    (np.ones((3, 4), np.float64), "abc", None, "float16 or float32"),
    (np.ones((3, 4, 2), np.float32), "abc", None, "2-D"),
    (np.array([[object()]] * 3, dtype=object), "abc", None, "structured|float16"),
    (np.ones((3, 4), np.float32), "ab", None, "lists 2 IDs but embeddings.npy has 3 rows"),
    (np.ones((3, 4), np.float32), "aab", None, "line 3: feature ID 'a' is repeated"),
    (np.ones((3, 4), np.float32), "abc", {"pooling": "mean"}, "missing key"),
])
def test_embeddings_invalid(tmp_path, array, ids, teacher, message):
    fmt = _embeddings_dir(tmp_path / "e", array, list(ids), teacher)
    with pytest.raises(ValidationError, match=message):
        fmt.validate(level="min")


def test_embeddings_nan_and_truncation(tmp_path):
    array = np.ones((3, 4), np.float32)
    array[2, 1] = np.nan
    fmt = _embeddings_dir(tmp_path / "e", array, ["a", "b", "c"])
    fmt.validate(level="min")
    with pytest.raises(ValidationError, match="row 2"):
        fmt.validate(level="max")
    npy = tmp_path / "e" / "embeddings.npy"
    npy.write_bytes(npy.read_bytes()[:-4])
    with pytest.raises(ValidationError, match="bytes"):
        fmt.validate(level="min")
    npy.write_bytes(b"not numpy at all")
    with pytest.raises(ValidationError, match="magic"):
        fmt.validate(level="min")


def test_embeddings_round_trip(tmp_path):
    from q2_taxdistill._transformers import _df_to_embeddings, _embeddings_to_df

    values = np.arange(12, dtype=np.float64).reshape(3, 4) / 7
    df = pd.DataFrame(values, index=pd.Index(["x", "y", "z"], name="feature-id"))
    df.attrs["teacher"] = {"teacher": "GenomeOcean-100M", "pooling": "mean",
                           "window": np.int64(5000)}
    ff = _df_to_embeddings(df)
    ff.validate(level="max")
    array = np.load(str(ff.path / "embeddings.npy"), allow_pickle=False)
    assert array.dtype == np.float32
    back = _embeddings_to_df(ff)
    assert back.index.name == "feature-id" and back.index.tolist() == ["x", "y", "z"]
    assert back.columns.tolist() == ["0", "1", "2", "3"]
    assert back.dtypes.eq(np.float32).all()
    np.testing.assert_allclose(back.to_numpy(), values, rtol=1e-6)
    assert back.attrs["teacher"] == {"teacher": "GenomeOcean-100M", "pooling": "mean",
                                     "window": 5000}


def test_embeddings_writer_defaults_and_rejects():
    from q2_taxdistill._transformers import _df_to_embeddings

    ff = _df_to_embeddings(pd.DataFrame([[1.0, 2.0]], index=["a"]))
    assert json.loads((ff.path / "teacher.json").read_text()) == {"teacher": "unknown"}
    with pytest.raises(ValueError, match="unique"):
        _df_to_embeddings(pd.DataFrame([[1.0], [2.0]], index=["a", "a"]))
    with pytest.raises(ValueError, match="finite"):
        _df_to_embeddings(pd.DataFrame([[np.nan]], index=["a"]))


# --- student model -----------------------------------------------------------------------------

def _safetensors(tensors, metadata=None):
    header, blobs, offset = {}, [], 0
    for name, array in tensors.items():
        raw = np.ascontiguousarray(array, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


_BAD_HEADER = json.dumps({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}).encode()
_BAD_SIZE = struct.pack("<Q", len(_BAD_HEADER)) + _BAD_HEADER


def test_safetensors_valid(tmp_path):
    data = _safetensors({"w": np.ones((2, 3)), "b": np.zeros(3)}, {"format": "pt"})
    _validate_both(_fmt(SafetensorsFormat, tmp_path / "m.safetensors", data, binary=True))


def test_safetensors_matches_the_library(tmp_path):
    from safetensors.numpy import save_file

    save_file({"a": np.ones((4, 2), np.float32), "b": np.arange(3, dtype=np.int64)},
              str(tmp_path / "m.safetensors"))
    _validate_both(SafetensorsFormat(str(tmp_path / "m.safetensors"), mode="r"))


@pytest.mark.parametrize("data, message", [
    (b"\x01\x00", "shorter than"),
    (struct.pack("<Q", 10 ** 6) + b"{}", "exceeds the file"),
    (struct.pack("<Q", 4) + b"nope", "not valid UTF-8 JSON"),
    (struct.pack("<Q", 2) + b"[]", "JSON object"),
    (_safetensors({"w": np.ones(3)})[:-4], "data bytes"),
    (_BAD_SIZE + b"\0" * 8, "8 bytes for shape"),
])
def test_safetensors_invalid(tmp_path, data, message):
    fmt = _fmt(SafetensorsFormat, tmp_path / "m.safetensors", data, binary=True)
    with pytest.raises(ValidationError, match=message):
        fmt.validate(level="min")


def test_student_config(tmp_path):
    good = {"format_version": 1, "architecture": {}, "taxonomy": {}, "features": {}}
    _validate_both(_fmt(StudentModelConfigFormat, tmp_path / "c.json", json.dumps(good)))
    for text, message in (("[1]", "JSON object"), ("{", "not valid JSON"),
                          (json.dumps({"format_version": 1}), "architecture, taxonomy")):
        fmt = _fmt(StudentModelConfigFormat, tmp_path / "c.json", text)
        with pytest.raises(ValidationError, match=message):
            fmt.validate(level="min")


def test_student_round_trip(tmp_path):
    import torch

    from q2_taxdistill._transformers import _student_dir_to_student, _student_to_student_dir
    from q2_taxdistill.engine.student import FeatureSpec, Student, StudentConfig
    from q2_taxdistill.engine.student_network import StudentNetwork
    from q2_taxdistill.engine.taxonomy import TaxonomyTree

    tree = TaxonomyTree.from_lineages([("Bacteria", "Bacillota") + (None,) * 5,
                                       ("Archaea",) + (None,) * 6])
    n_classes = [tree.n_classes(r) for r in range(7)]
    torch.manual_seed(0)
    networks = [StudentNetwork(137, n_classes, hidden=8, dropout=0.0) for _ in range(2)]
    student = Student(tree, FeatureSpec(samples=None, mean=[0.0] * 137, std=[1.0] * 137),
                      StudentConfig(hidden=8, dropout=0.0, n_folds=2), networks,
                      {"a": 0, "b": 1}, [1.0] * 7)
    ff = _student_to_student_dir(student)
    assert isinstance(ff, StudentModelDirectoryFormat)
    ff.validate(level="max")
    back = _student_dir_to_student(ff)
    assert back.tree == tree and back.fold_of == {"a": 0, "b": 1}
    for net, new in zip(networks, back.networks):
        for key, value in net.state_dict().items():
            assert torch.equal(value, new.state_dict()[key])


# --- MMseqs2 -----------------------------------------------------------------------------------

ECOLI_LINEAGE = ("-_cellular organisms;d_Bacteria;k_Pseudomonadati;p_Pseudomonadota;"
                 "c_Gammaproteobacteria;o_Enterobacterales;f_Enterobacteriaceae;"
                 "g_Escherichia;s_Escherichia coli")
ECOLI_QIIME = ("d__Bacteria; p__Pseudomonadota; c__Gammaproteobacteria; o__Enterobacterales; "
               "f__Enterobacteriaceae; g__Escherichia; s__Escherichia coli")
PLAIN = ("contig_1\t562\tspecies\tEscherichia coli\t" + ECOLI_LINEAGE + "\n"
         "contig_2\t0\tno rank\tunclassified\t\n"
         "contig_3\t1783272\tclade\tTerrabacteria group\t"
         "-_cellular organisms;d_Bacteria;-_Terrabacteria group\n"
         "contig_4\t1\tno rank\troot\t-_root\n"
         "contig_5\t186826\tfamily\tLactobacillaceae\t"
         "-_cellular organisms;d_Bacteria;p_Bacillota;o_Lactobacillales;f_Lactobacillaceae\n")
VOTE = ("k141_1\t562\tspecies\tEscherichia coli\t12\t10\t9\t0.9\t" + ECOLI_LINEAGE + "\n"
        "k141_2\t0\tno rank\tunclassified\t3\t0\t0\t0\t\n"
        "k141_3\t2759\tsuperkingdom\tEukaryota\t2\t2\t2\t1\t-_cellular organisms;d_Eukaryota\n")


@pytest.mark.parametrize("text", [PLAIN, VOTE], ids=["plain", "vote"])
def test_mmseqs2_valid(tmp_path, text):
    _validate_both(_fmt(MMseqs2LCAFormat, tmp_path / "r_lca.tsv", text))
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "lca.tsv").write_text(text)
    MMseqs2LCADirectoryFormat(str(tmp_path / "d"), mode="r").validate()


@pytest.mark.parametrize("text, message", [
    ("", "no rows"),
    ("c1\t562\tspecies\tEscherichia coli\n", "line 1: 4 columns and no lineage"),
    ("c1\t562\tspecies\tE\t1\t1\t1\t1\n", "--tax-lineage 1"),
    ("c1\t562\tspecies\tE\t1;2;562\n", "taxids"),
    ("c1\t562\tspecies\tE\tBacteria;Bacillota\n", "lacks the rank prefix"),
    ("c1\tx\tspecies\tE\td_Bacteria\n", "taxid 'x'"),
    ("c1\t2\tdomain\tB\td_Bacteria\nc2\t2\tdomain\tB\t1\t1\t1\t1\td_Bacteria\n",
     "line 2: 9 columns, the first row has 5"),
    ("c1\t2\tdomain\tB\td_Bacteria\nc1\t2\tdomain\tB\td_Bacteria\n", "line 2: query 'c1'"),
    ("c1\t2\tdomain\tB\t1\t1\t1\t1.5\td_Bacteria\n", "support '1.5'"),
    ("c1\t2\tdomain\tB\tx\t1\t1\t1\td_Bacteria\n", "#fragments"),
    # lineages the engine rejects are format errors, with the line and query
    ("c1\t2\tgenus\tB\td_Bacteria\nc2\t5\tgenus\tX\tg_X;d_Bacteria\n",
     "line 2, query 'c2': lineage 'g_X;d_Bacteria' has its ranks out of order"),
    ("c1\t2\tgenus\tX\tx_Bacteria\n", "line 1, query 'c1': .*unknown rank prefix"),
    ("a\tb\tc\n", "3 columns"),
])
def test_mmseqs2_invalid(tmp_path, text, message):
    fmt = _fmt(MMseqs2LCAFormat, tmp_path / "r_lca.tsv", text)
    with pytest.raises(ValidationError, match=message):
        fmt.validate(level="max")


def test_mmseqs2_lineage_conversion():
    from q2_taxdistill._transformers import mmseqs2_lineage_to_qiime as convert

    assert convert(ECOLI_LINEAGE) == ECOLI_QIIME
    assert convert("-_root") is None
    assert convert("") is None
    assert convert("-_cellular organisms;d_Bacteria;-_Terrabacteria group") == "d__Bacteria"
    # the kingdom stands in for the domain only when there is no domain
    assert convert("k_Bacteria;p_Bacillota") == "d__Bacteria; p__Bacillota"
    assert convert("d_Bacteria;p_Bacillota;g_Bacillus") == (
        "d__Bacteria; p__Bacillota; c__; o__; f__; g__Bacillus")
    # NCBI 2025 (MMseqs2 14-18 give the rank `domain` no short code), as MMseqs2 14 writes it
    assert convert("-_cellular organisms;-_Eukaryota;-_Opisthokonta;k_Metazoa;-_Eumetazoa;"
                   "p_Chordata") == "d__Eukaryota; p__Chordata"
    assert convert("-_cellular organisms;-_Bacteria") == "d__Bacteria"
    assert convert("-_Viruses;-_Riboviria;k_Orthornavirae;p_Pisuviricota") == (
        "d__Viruses; p__Pisuviricota")
    assert convert("k_Metazoa;p_Chordata") == "d__; p__Chordata"
    assert convert("-_cellular organisms;d_Bacteria;p_Bacillota;s_uncultured Bacillota") == (
        "d__Bacteria; p__Bacillota")


@pytest.mark.parametrize("text, expected", [
    (PLAIN, pd.DataFrame({"Taxon": [ECOLI_QIIME, "Unassigned", "d__Bacteria", "Unassigned",
                                    "d__Bacteria; p__Bacillota; c__; o__Lactobacillales; "
                                    "f__Lactobacillaceae"]},
                         index=pd.Index([f"contig_{i}" for i in range(1, 6)],
                                        name="Feature ID"))),
    (VOTE, pd.DataFrame({"Taxon": [ECOLI_QIIME, "Unassigned", "d__Eukaryota"],
                         "Confidence": ["0.9", "0", "1"]},
                        index=pd.Index(["k141_1", "k141_2", "k141_3"], name="Feature ID"))),
], ids=["plain", "vote"])
def test_mmseqs2_import_as_taxonomy(tmp_path, text, expected):
    path = tmp_path / "result_lca.tsv"
    path.write_text(text)
    artifact = qiime2.Artifact.import_data("FeatureData[Taxonomy]", str(path),
                                           view_type=MMseqs2LCAFormat)
    assert str(artifact.type) == "FeatureData[Taxonomy]"
    observed = artifact.view(pd.DataFrame)
    pd.testing.assert_frame_equal(observed.astype(object), expected.astype(object),
                                  check_index_type=False)
    by_name = qiime2.Artifact.import_data("FeatureData[Taxonomy]", str(path),
                                          view_type="MMseqs2LCAFormat")
    assert by_name.view(pd.DataFrame)["Taxon"].tolist() == expected["Taxon"].tolist()


def test_mmseqs2_to_dataframe(tmp_path):
    from q2_taxdistill._transformers import _mmseqs2_to_df

    df = _mmseqs2_to_df(_fmt(MMseqs2LCAFormat, tmp_path / "r.tsv", VOTE))
    assert df.index.name == "Feature ID" and list(df.columns) == ["Taxon", "Confidence"]


def test_artifacts_of_the_new_types(tmp_path):
    soft = pd.DataFrame({"feature-id": ["c1"], "rank": ["domain"], "taxon": [BAC],
                         "probability": [0.9], "confidence": [0.5]})
    artifact = qiime2.Artifact.import_data("FeatureData[SoftLabels]", soft)
    pd.testing.assert_frame_equal(artifact.view(pd.DataFrame), soft)
    emb = pd.DataFrame(np.eye(2, dtype=np.float32), index=pd.Index(["a", "b"], name="feature-id"),
                       columns=["0", "1"])
    emb.attrs["teacher"] = {"teacher": "composition"}
    artifact = qiime2.Artifact.import_data("FeatureData[Embeddings]", emb)
    back = artifact.view(pd.DataFrame)
    pd.testing.assert_frame_equal(back, emb)
    assert back.attrs["teacher"] == {"teacher": "composition"}


def test_contig_collections_concatenate_into_one_fasta(tmp_path):
    from q2_taxdistill._transformers import concatenate_fasta, fasta_files
    from q2_taxdistill.engine.sequences import Contigs

    (tmp_path / "s2_contigs.fa").write_text(">b1\nGGGG\n>b2\nTT")
    (tmp_path / "s1_contigs.fasta").write_text(">a1\nACGT\nACGT\n")
    (tmp_path / "MANIFEST").write_text("sample-id,mag-id,filename\n")
    (tmp_path / "s3").mkdir()
    (tmp_path / "s3" / "bin1.fa").write_text(">c1\nCCCC\n")
    files = fasta_files(tmp_path)
    assert [p.name for p in files] == ["s1_contigs.fasta", "s2_contigs.fa", "bin1.fa"]
    view = concatenate_fasta(files)  # its temporary file lives as long as the view
    merged = Contigs.from_fasta(str(view))
    assert merged.ids == ["a1", "b1", "b2", "c1"]
    assert merged.sequences == ["ACGTACGT", "GGGG", "TT", "CCCC"]


def test_plugin_accepts_feature_data_sequence_for_contigs():
    from qiime2.sdk import PluginManager

    action = PluginManager().plugins["taxdistill"].actions["teach"]
    contigs = action.signature.inputs["contigs"].qiime_type
    assert "FeatureData[Sequence]" in str(contigs)


def test_soft_labels_with_missing_ids_are_rejected():
    from q2_taxdistill._transformers import _df_to_soft_labels

    frame = pd.DataFrame({"feature-id": ["c1", None], "rank": ["domain", "domain"],
                          "taxon": ["d__Bacteria", "d__Bacteria"], "probability": [1.0, 1.0],
                          "confidence": [0.5, 0.5]})
    with pytest.raises(ValueError, match="missing values in column 'feature-id'"):
        _df_to_soft_labels(frame)
