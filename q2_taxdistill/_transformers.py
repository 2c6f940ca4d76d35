"""Formats to and from the views the actions use (pandas frames, the engine's Student)."""
import csv
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
from q2_types.feature_data import (
    DNASequencesDirectoryFormat, TSVTaxonomyDirectoryFormat, TSVTaxonomyFormat)

from q2_taxdistill._formats import (
    ContigsFASTAFormat, EmbeddingsDirectoryFormat, MMseqs2LCAFormat,
    SoftLabelsArraysDirectoryFormat, SoftLabelsFormat, SoftLabelTaxaFormat,
    StudentModelDirectoryFormat, check_lineage, mmseqs2_shape, mmseqs2_taxon,
    read_soft_label_taxa)
from q2_taxdistill._kraken2 import Kraken2ContigsDirectoryFormat, contigs_directory_taxonomy
from q2_taxdistill.engine.soft_labels import SoftLabels
from q2_taxdistill.engine.student import Student
from q2_taxdistill.engine.taxonomy import (
    N_RANKS, RANKS, TaxonomyTree, format_lineage, parse_lineage)
from q2_taxdistill.engine.teacher import Embeddings
from q2_taxdistill.plugin_setup import CONTIG_COLLECTION_FORMATS, plugin

_SUM_TOLERANCE = 1e-4


def _check_text(values, what):
    """Tabs and line breaks would break the TSV layout, and empty IDs are not IDs."""
    values = pd.Series(values, dtype=object).astype(str)
    bad = values[values.str.contains(r"[\t\r\n]", regex=True) | (values.str.strip() == "")]
    if len(bad):
        raise ValueError(f"{what} must be non-empty and free of tabs and line breaks: "
                         f"{', '.join(repr(v) for v in bad.unique()[:5])}")


# --- soft labels -------------------------------------------------------------------------------

@plugin.register_transformer
def _soft_labels_to_df(ff: SoftLabelsFormat) -> pd.DataFrame:
    df = pd.read_csv(str(ff), sep="\t", dtype=str, keep_default_na=False, na_filter=False,
                     quoting=csv.QUOTE_NONE)
    df["probability"] = df["probability"].astype(float)
    df["confidence"] = df["confidence"].astype(float)
    return df


def _checked_soft_frame(df):
    """The long table with its columns checked and typed, each contig's rows together."""
    columns = list(SoftLabelsFormat.HEADER)
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"soft labels need the column(s) {', '.join(missing)}")
    out = pd.DataFrame({c: df[c].to_numpy() for c in columns})
    for col in ("feature-id", "rank", "taxon"):
        # Before the cast: pandas < 3 turns a missing value into the text "nan", pandas 3
        # keeps it missing; either way it is not an ID, rank or taxon.
        if out[col].isna().any():
            raise ValueError(f"soft labels have missing values in column {col!r}")
        out[col] = out[col].astype(str)
    _check_text(out["feature-id"], "feature IDs")
    bad_ranks = sorted(set(out["rank"]) - set(RANKS))
    if bad_ranks:
        raise ValueError(f"unknown rank(s) {', '.join(map(str, bad_ranks))}; use {', '.join(RANKS)}")
    _check_text(out["taxon"].unique(), "taxa")
    for taxon, rank in out[["taxon", "rank"]].drop_duplicates().itertuples(index=False):
        problem = check_lineage(taxon, rank)
        if problem:
            raise ValueError(f"taxon {taxon!r} at rank {rank!r}: {problem}")
    for col in ("probability", "confidence"):
        out[col] = pd.to_numeric(out[col], errors="raise").astype(float)
        outside = ~out[col].between(0.0, 1.0)
        if outside.any():
            first = float(out.loc[outside, col].iloc[0])
            raise ValueError(f"{col} must lie in [0, 1]; found {first!r}")
    groups = out.groupby(["feature-id", "rank"], sort=False)
    sums = groups["probability"].sum()
    if (sums > 1.0 + _SUM_TOLERANCE).any():
        fid, rank = sums[sums > 1.0 + _SUM_TOLERANCE].index[0]
        raise ValueError(f"the probabilities of feature {fid!r} at rank {rank!r} sum to > 1")
    spread = groups["confidence"].max() - groups["confidence"].min()
    if (spread > 1e-6).any():
        fid, rank = spread[spread > 1e-6].index[0]
        raise ValueError(f"feature {fid!r} at rank {rank!r} has more than one confidence")
    if out.duplicated(["feature-id", "rank", "taxon"]).any():
        fid, rank, taxon = out.loc[out.duplicated(["feature-id", "rank", "taxon"]),
                                   ["feature-id", "rank", "taxon"]].iloc[0]
        raise ValueError(f"taxon {taxon!r} appears twice for feature {fid!r} at rank {rank!r}")
    codes = pd.factorize(out["feature-id"])[0]
    return out.iloc[np.argsort(codes, kind="stable")]


@plugin.register_transformer
def _df_to_soft_labels(df: pd.DataFrame) -> SoftLabelsFormat:
    ff = SoftLabelsFormat()
    _checked_soft_frame(df).to_csv(str(ff), sep="\t", index=False, quoting=csv.QUOTE_NONE)
    return ff


def _read_feature_ids(root):
    """The IDs of a directory format's feature-ids.tsv (header `feature-id`), in row order."""
    with open(os.path.join(root, "feature-ids.tsv"), encoding="utf-8") as fh:
        fh.readline()
        return [line.rstrip("\r\n") for line in fh]


def _write_feature_ids(root, ids):
    with open(os.path.join(root, "feature-ids.tsv"), "w", encoding="utf-8") as fh:
        fh.write("feature-id\n")
        fh.writelines(f"{i}\n" for i in ids)


def _write_soft_label_arrays(soft: SoftLabels) -> SoftLabelsArraysDirectoryFormat:
    ff = SoftLabelsArraysDirectoryFormat()
    root = str(ff.path)
    tree = soft.tree
    offsets = np.cumsum([0] + [tree.n_classes(r) for r in range(N_RANKS)])
    with open(os.path.join(root, "taxa.tsv"), "w", encoding="utf-8") as fh:
        fh.write("rank\ttaxon\n")
        for r in range(N_RANKS):
            fh.writelines(f"{RANKS[r]}\t{format_lineage(tree.lineage(r, j))}\n"
                          for j in range(tree.n_classes(r)))
    codes = np.where(soft.codes >= 0, soft.codes + offsets[:-1][None, :, None], -1)
    np.save(os.path.join(root, "taxa.npy"), codes.astype("<i4"), allow_pickle=False)
    np.save(os.path.join(root, "probabilities.npy"), soft.probabilities.astype("<f4"),
            allow_pickle=False)
    np.save(os.path.join(root, "confidence.npy"), soft.confidence.astype("<f4"),
            allow_pickle=False)
    ids = pd.Index(soft.ids).astype(str)
    _check_text(ids, "feature IDs")
    _write_feature_ids(root, ids)
    return ff


@plugin.register_transformer
def _soft_labels_to_arrays(soft: SoftLabels) -> SoftLabelsArraysDirectoryFormat:
    return _write_soft_label_arrays(soft)


@plugin.register_transformer
def _soft_label_arrays_to_soft_labels(ff: SoftLabelsArraysDirectoryFormat) -> SoftLabels:
    root = str(ff.path)
    taxa = read_soft_label_taxa(SoftLabelTaxaFormat(os.path.join(root, "taxa.tsv"), mode="r"))
    lineages = [parse_lineage(taxon) for _, taxon in taxa]
    tree = TaxonomyTree.from_lineages(lineages)
    ranks = np.array([RANKS.index(rank) for rank, _ in taxa], dtype=np.int64)
    class_of = np.append(tree.encode(lineages).reshape(len(taxa), N_RANKS)[
        np.arange(len(taxa)), ranks], -1).astype(np.int32)
    codes = np.load(os.path.join(root, "taxa.npy"), allow_pickle=False)
    ids = _read_feature_ids(root)
    return SoftLabels(ids, tree, class_of[codes],
                      np.load(os.path.join(root, "probabilities.npy"), allow_pickle=False),
                      np.load(os.path.join(root, "confidence.npy"), allow_pickle=False))


@plugin.register_transformer
def _soft_label_arrays_to_df(ff: SoftLabelsArraysDirectoryFormat) -> pd.DataFrame:
    return _soft_label_arrays_to_soft_labels(ff).to_frame()


@plugin.register_transformer
def _df_to_soft_label_arrays(df: pd.DataFrame) -> SoftLabelsArraysDirectoryFormat:
    return _write_soft_label_arrays(SoftLabels.from_frame(_checked_soft_frame(df)))


@plugin.register_transformer
def _soft_labels_tsv_to_soft_labels(ff: SoftLabelsFormat) -> SoftLabels:
    return SoftLabels.from_frame(_soft_labels_to_df(ff))


@plugin.register_transformer
def _soft_labels_tsv_to_arrays(ff: SoftLabelsFormat) -> SoftLabelsArraysDirectoryFormat:
    return _write_soft_label_arrays(_soft_labels_tsv_to_soft_labels(ff))


# --- embeddings --------------------------------------------------------------------------------

def _json_default(value):
    """numpy scalars and arrays in teacher metadata become plain JSON values."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


@plugin.register_transformer
def _embeddings_to_df(ff: EmbeddingsDirectoryFormat) -> pd.DataFrame:
    embeddings = _embeddings_to_engine(ff)
    values = np.array(embeddings.values, dtype=np.float32)
    df = pd.DataFrame(values, index=pd.Index(embeddings.ids, name="feature-id"),
                      columns=[str(i) for i in range(values.shape[1])])
    df.attrs["teacher"] = embeddings.teacher
    return df


@plugin.register_transformer
def _embeddings_to_engine(ff: EmbeddingsDirectoryFormat) -> Embeddings:
    """Memory-mapped: teach reads the rows it needs a block at a time."""
    root = str(ff.path)
    ids = _read_feature_ids(root)
    with open(os.path.join(root, "teacher.json"), encoding="utf-8") as fh:
        teacher = json.load(fh)
    values = np.load(os.path.join(root, "embeddings.npy"), mmap_mode="r", allow_pickle=False)
    return Embeddings(ids, values, teacher)


@plugin.register_transformer
def _df_to_embeddings(df: pd.DataFrame) -> EmbeddingsDirectoryFormat:
    ids = pd.Index(df.index).astype(str)
    _check_text(ids, "feature IDs")
    if ids.has_duplicates:
        dup = ids[ids.duplicated()].unique()[:5]
        raise ValueError(f"feature IDs must be unique; repeated: {', '.join(dup)}")
    try:
        values = df.to_numpy(dtype=np.float32)
    except (TypeError, ValueError) as err:
        raise ValueError(f"embeddings must be numeric: {err}") from None
    if values.ndim != 2 or not np.isfinite(values).all():
        raise ValueError("embeddings must be a finite 2-D table (no NaN or infinity)")
    teacher = df.attrs.get("teacher")
    if isinstance(teacher, str):
        teacher = {"teacher": teacher}
    teacher = dict(teacher) if isinstance(teacher, dict) else {}
    teacher.setdefault("teacher", "unknown")
    ff = EmbeddingsDirectoryFormat()
    root = str(ff.path)
    np.save(os.path.join(root, "embeddings.npy"), np.ascontiguousarray(values),
            allow_pickle=False)
    _write_feature_ids(root, ids)
    with open(os.path.join(root, "teacher.json"), "w", encoding="utf-8") as fh:
        json.dump(teacher, fh, indent=2, sort_keys=True, default=_json_default)
        fh.write("\n")
    return ff


# --- student model -----------------------------------------------------------------------------

@plugin.register_transformer
def _student_dir_to_student(ff: StudentModelDirectoryFormat) -> Student:
    return Student.from_pretrained(str(ff.path))


@plugin.register_transformer
def _student_to_student_dir(student: Student) -> StudentModelDirectoryFormat:
    ff = StudentModelDirectoryFormat()
    student.save_pretrained(str(ff.path))
    return ff


# --- MMseqs2 LCA import ------------------------------------------------------------------------

def mmseqs2_lineage_to_qiime(lineage):
    """`-_cellular organisms;-_Bacteria;k_Bacillati;p_Bacillota` -> `d__Bacteria; p__Bacillota`
    (the engine's parser: `taxonomy.parse_lineage`); None when no rank is named."""
    taxon = format_lineage(parse_lineage(lineage))
    return None if taxon == "Unassigned" else taxon


def _read_mmseqs2(ff):
    """(feature IDs, QIIME taxa, support or None) from an LCA table."""
    ids, taxa, support = [], [], []
    shape = None
    with ff.open() as fh:
        for lineno, line in enumerate(fh, start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            fields = line.split("\t")
            if shape is None:
                shape = mmseqs2_shape(len(fields), lineno)
            ids.append(fields[0])
            taxa.append(mmseqs2_taxon(fields))
            if shape == "vote":
                support.append(fields[7])
    return ids, taxa, (support if shape == "vote" else None)


def _mmseqs2_frame(ff):
    ids, taxa, support = _read_mmseqs2(ff)
    df = pd.DataFrame({"Taxon": taxa}, index=pd.Index(ids, name="Feature ID"), dtype=object)
    if support is not None:
        df["Confidence"] = pd.Series(support, index=df.index, dtype=object)
    return df


@plugin.register_transformer
def _mmseqs2_to_taxonomy(ff: MMseqs2LCAFormat) -> TSVTaxonomyFormat:
    df = _mmseqs2_frame(ff)
    out = TSVTaxonomyFormat()
    df.to_csv(str(out), sep="\t", header=True, index=True, quoting=csv.QUOTE_NONE)
    return out


@plugin.register_transformer
def _mmseqs2_to_df(ff: MMseqs2LCAFormat) -> pd.DataFrame:
    return _mmseqs2_frame(ff)


# --- contigs: FeatureData[Sequence], and SampleData[Contigs] / FeatureData[MAG] where q2-types
# has them (registered in plugin_setup only when they import) ----------------------------------

def fasta_files(directory):
    """The FASTA files of a directory format (per-sample contigs, MAG bins), sorted by name."""
    return sorted(p for p in Path(str(directory)).rglob("*")
                  if p.is_file() and p.suffix in (".fa", ".fasta", ".fna"))


def concatenate_fasta(paths) -> ContigsFASTAFormat:
    """One FASTA from several, in the order given (each file ends on a new line)."""
    ff = ContigsFASTAFormat()
    with ff.open() as out:
        for path in paths:
            with open(path) as src:
                last = ""
                for chunk in iter(lambda: src.read(1 << 20), ""):
                    out.write(chunk)
                    last = chunk[-1]
                if last and last != "\n":
                    out.write("\n")
    return ff


@plugin.register_transformer
def _dna_sequences_to_contigs(ff: DNASequencesDirectoryFormat) -> ContigsFASTAFormat:
    return ContigsFASTAFormat(os.path.join(str(ff), "dna-sequences.fasta"), mode="r")


def _register_collection(directory_format):
    def transformer(ff):
        return concatenate_fasta(fasta_files(ff))
    transformer.__name__ = f"_{directory_format.__name__}_to_contigs"
    transformer.__annotations__ = {"ff": directory_format, "return": ContigsFASTAFormat}
    plugin.register_transformer(transformer)


for _format in CONTIG_COLLECTION_FORMATS:
    _register_collection(_format)


# --- Kraken2 contig results: one run's --output + --report (see _kraken2) ---------------------

def _write_taxonomy(df, path):
    """Unassigned rows have no Confidence: written as an empty field, as QIIME does."""
    df.to_csv(path, sep="\t", header=True, index=True, na_rep="", quoting=csv.QUOTE_NONE)


@plugin.register_transformer
def _kraken2_to_taxonomy_directory(ff: Kraken2ContigsDirectoryFormat) -> TSVTaxonomyDirectoryFormat:
    out = TSVTaxonomyDirectoryFormat()
    _write_taxonomy(contigs_directory_taxonomy(ff), os.path.join(str(out.path), "taxonomy.tsv"))
    return out


@plugin.register_transformer
def _kraken2_to_taxonomy(ff: Kraken2ContigsDirectoryFormat) -> TSVTaxonomyFormat:
    out = TSVTaxonomyFormat()
    _write_taxonomy(contigs_directory_taxonomy(ff), str(out))
    return out


@plugin.register_transformer
def _kraken2_to_df(ff: Kraken2ContigsDirectoryFormat) -> pd.DataFrame:
    return contigs_directory_taxonomy(ff)
