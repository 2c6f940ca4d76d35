"""File and directory formats of q2-taxdistill, plus the MMseqs2 LCA table as an import format.

Every text format is validated line by line with the line number in the message, because the
files are large and users need to find the bad row. `min` checks the first rows, `max` all of them.
"""
import ast
import json
import math
import os
import re
import struct

import numpy as np
from q2_taxdistill._framework import model, plugin_api
from q2_taxdistill.engine.errors import InputError
from q2_taxdistill.engine.taxonomy import (
    RANK_LETTERS, RANK_OF_LETTER, RANKS, format_lineage, is_placeholder, parse_lineage)

ValidationError = plugin_api.ValidationError

_MIN_ROWS = 100
# Slack for the (contig, rank) probability sum: written decimals are rounded.
_SUM_TOLERANCE = 1e-4


def _rows(level):
    """How many data rows a validation level reads: all of them for `max`."""
    return None if level == "max" else _MIN_ROWS


def _float_in_unit(text, what, lineno):
    """Parse a float in [0, 1] or fail naming the line."""
    try:
        value = float(text)
    except ValueError:
        raise ValidationError(f"line {lineno}: {what} {text!r} is not a number") from None
    if not (0.0 <= value <= 1.0):
        raise ValidationError(f"line {lineno}: {what} {text!r} is not in [0, 1]")
    return value


def check_lineage(taxon, rank):
    """Return why `taxon` is not a QIIME lineage that ends at `rank`, or None when it is.

    The lineage is prefixed (`d__`, `p__`, ...), in rank order, and names the taxon at `rank`
    in its last element; intermediate ranks may be skipped or empty (`c__`) so that names
    shared by two parents stay distinct through their ancestors.
    """
    parts = [p.strip() for p in taxon.split(";")]
    last_level = -1
    for part in parts:
        if len(part) < 3 or part[1:3] != "__" or part[0] not in RANK_OF_LETTER:
            return f"element {part!r} has no rank prefix such as 'd__' or 'g__'"
        level = RANK_OF_LETTER[part[0]]
        if level <= last_level:
            return f"element {part!r} is out of rank order"
        last_level = level
    if parts[-1][0] != RANK_LETTERS[RANKS.index(rank)]:
        return f"the last element {parts[-1]!r} is not at rank {rank!r}"
    if is_placeholder(parts[-1][3:]):
        return f"the last element {parts[-1]!r} has no name"
    return None


class SoftLabelsFormat(model.TextFileFormat):
    """The teacher's per-rank distributions: `feature-id rank taxon probability confidence`.

    One row per (contig, rank, taxon) for the teacher's most probable taxa. The rows of one
    contig are contiguous; per (contig, rank) the probabilities sum to at most 1 (the rest is
    other taxa or no name at that rank) and every row carries the same confidence.
    """

    HEADER = ("feature-id", "rank", "taxon", "probability", "confidence")

    def _validate_(self, level):
        limit = _rows(level)
        finished = set()
        current, groups = None, {}
        n_rows = 0
        with self.open() as fh:
            header = fh.readline().rstrip("\r\n")
            if tuple(header.split("\t")) != self.HEADER:
                raise ValidationError(
                    f"line 1: the header must be {chr(9).join(self.HEADER)!r} "
                    f"(tab-separated), found {header[:200]!r}")
            for lineno, line in enumerate(fh, start=2):
                if limit is not None and n_rows >= limit:
                    break
                fields = line.rstrip("\r\n").split("\t")
                if len(fields) != 5:
                    raise ValidationError(
                        f"line {lineno}: expected 5 tab-separated fields, found {len(fields)}")
                fid, rank, taxon, prob_text, conf_text = fields
                if not fid.strip():
                    raise ValidationError(f"line {lineno}: empty feature-id")
                if rank not in RANKS:
                    raise ValidationError(
                        f"line {lineno}: rank {rank!r} is not one of {', '.join(RANKS)}")
                problem = check_lineage(taxon, rank)
                if problem:
                    raise ValidationError(f"line {lineno}: taxon {taxon!r}: {problem}")
                prob = _float_in_unit(prob_text, "probability", lineno)
                conf = _float_in_unit(conf_text, "confidence", lineno)
                if fid != current:
                    if fid in finished:
                        raise ValidationError(
                            f"line {lineno}: the rows of feature {fid!r} are not contiguous")
                    if current is not None:
                        finished.add(current)
                    current, groups = fid, {}
                group = groups.setdefault(rank, [0.0, conf, set()])
                if taxon in group[2]:
                    raise ValidationError(
                        f"line {lineno}: taxon {taxon!r} appears twice for feature {fid!r} "
                        f"at rank {rank!r}")
                group[2].add(taxon)
                group[0] += prob
                if group[0] > 1.0 + _SUM_TOLERANCE:
                    raise ValidationError(
                        f"line {lineno}: the probabilities of feature {fid!r} at rank {rank!r} "
                        f"sum to {group[0]:.6g} > 1")
                if not math.isclose(conf, group[1], rel_tol=0, abs_tol=1e-6):
                    raise ValidationError(
                        f"line {lineno}: confidence {conf_text} of feature {fid!r} at rank "
                        f"{rank!r} differs from {group[1]:.6g} on its other rows")
                n_rows += 1


# The layout of soft labels before the arrays (a long TSV): artifacts made then still read.
SoftLabelsDirectoryFormat = model.SingleFileDirectoryFormat(
    "SoftLabelsDirectoryFormat", "soft-labels.tsv", SoftLabelsFormat)


_NPY_MAGIC = b"\x93NUMPY"


def read_npy_header(fh):
    """Parse a .npy header without numpy's pickle-capable loader: (dtype, shape, fortran, offset).

    The header is a Python literal, read with `ast.literal_eval`, so nothing is executed.
    """
    magic = fh.read(8)
    if len(magic) < 8 or magic[:6] != _NPY_MAGIC:
        raise ValidationError("not a .npy file (bad magic bytes)")
    major = magic[6]
    if major == 1:
        size_bytes, fmt = 2, "<H"
    elif major in (2, 3):
        size_bytes, fmt = 4, "<I"
    else:
        raise ValidationError(f"unsupported .npy format version {major}.{magic[7]}")
    raw = fh.read(size_bytes)
    if len(raw) < size_bytes:
        raise ValidationError("truncated .npy header")
    (header_len,) = struct.unpack(fmt, raw)
    text = fh.read(header_len)
    if len(text) < header_len:
        raise ValidationError("truncated .npy header")
    try:
        header = ast.literal_eval(text.decode("utf-8" if major == 3 else "latin1"))
    except (ValueError, SyntaxError, UnicodeDecodeError):
        raise ValidationError("unreadable .npy header") from None
    if not isinstance(header, dict) or set(header) != {"descr", "fortran_order", "shape"}:
        raise ValidationError("the .npy header must hold exactly descr, fortran_order and shape")
    if not isinstance(header["descr"], str):
        raise ValidationError("structured .npy arrays are not embeddings")
    try:
        dtype = np.dtype(header["descr"])
    except TypeError:
        raise ValidationError(f"unknown .npy dtype {header['descr']!r}") from None
    shape = header["shape"]
    if not (isinstance(shape, tuple) and all(isinstance(n, int) and n >= 0 for n in shape)):
        raise ValidationError(f"bad .npy shape {shape!r}")
    return dtype, shape, bool(header["fortran_order"]), 8 + size_bytes + header_len


class NpyEmbeddingsFormat(model.BinaryFileFormat):
    """A 2-D float16/float32 .npy array, loadable with `np.load(allow_pickle=False)`."""

    def _validate_(self, level):
        with self.open() as fh:
            dtype, shape, _, offset = read_npy_header(fh)
        if dtype.kind != "f" or dtype.itemsize not in (2, 4):
            raise ValidationError(f"embeddings must be float16 or float32, found {dtype}")
        if len(shape) != 2:
            raise ValidationError(f"embeddings must be a 2-D array, found shape {shape}")
        expected = offset + shape[0] * shape[1] * dtype.itemsize
        actual = os.path.getsize(str(self.path))
        if actual != expected:
            raise ValidationError(
                f"the file holds {actual} bytes, a {shape} {dtype} array needs {expected}")
        if level == "max" and shape[0] * shape[1]:
            array = np.load(str(self.path), mmap_mode="r", allow_pickle=False)
            step = max(1, (1 << 24) // max(1, shape[1]))
            for start in range(0, shape[0], step):
                block = np.asarray(array[start:start + step])
                if not np.isfinite(block).all():
                    row = start + int(np.argwhere(~np.isfinite(block))[0][0])
                    raise ValidationError(f"row {row} (0-based) holds NaN or infinity")
            del array


class FeatureIDsFormat(model.TextFileFormat):
    """A `feature-id` header and one unique, non-empty ID per line."""

    def _validate_(self, level):
        count_ids(self, level)


def count_ids(fmt, level):
    """Validate a feature-ids.tsv (all IDs at `max`, the first ones at `min`) and count its IDs."""
    limit = _rows(level)
    seen = set()
    n = 0
    with fmt.open() as fh:
        header = fh.readline().rstrip("\r\n")
        if header != "feature-id":
            raise ValidationError(
                f"line 1: the header must be 'feature-id', found {header[:200]!r}")
        for lineno, line in enumerate(fh, start=2):
            fid = line.rstrip("\r\n")
            n += 1
            if limit is not None and n > limit:
                continue
            if not fid.strip() or "\t" in fid:
                raise ValidationError(f"line {lineno}: feature IDs must be non-empty, without tabs")
            if fid in seen:
                raise ValidationError(f"line {lineno}: feature ID {fid!r} is repeated")
            seen.add(fid)
    return n


class JSONObjectFormat(model.TextFileFormat):
    """A JSON object; subclasses name the keys it must have."""

    REQUIRED = ()

    def _validate_(self, level):
        with self.open() as fh:
            try:
                data = json.load(fh)
            except (ValueError, UnicodeDecodeError) as err:
                raise ValidationError(f"not valid JSON: {err}") from None
        if not isinstance(data, dict):
            raise ValidationError("must be a JSON object")
        missing = [key for key in self.REQUIRED if key not in data]
        if missing:
            raise ValidationError(f"missing key(s): {', '.join(missing)}")


class TeacherJSONFormat(JSONObjectFormat):
    """The teacher's description: at least its name under `teacher`, free-form otherwise."""

    REQUIRED = ("teacher",)


class EmbeddingsDirectoryFormat(model.DirectoryFormat):
    """One embedding per contig: the array, its row IDs and the teacher that produced it."""

    embeddings = model.File("embeddings.npy", format=NpyEmbeddingsFormat)
    feature_ids = model.File("feature-ids.tsv", format=FeatureIDsFormat)
    teacher = model.File("teacher.json", format=TeacherJSONFormat)

    def _validate_(self, level):
        root = str(self.path)
        with open(os.path.join(root, "embeddings.npy"), "rb") as fh:
            _, shape, _, _ = read_npy_header(fh)
        ids = FeatureIDsFormat(os.path.join(root, "feature-ids.tsv"), mode="r")
        n_ids = count_ids(ids, "min")
        if n_ids != shape[0]:
            raise ValidationError(
                f"feature-ids.tsv lists {n_ids} IDs but embeddings.npy has {shape[0]} rows")


class SoftLabelTaxaFormat(model.TextFileFormat):
    """`rank<TAB>taxon` rows (header included): the taxa the soft labels name, row i = taxon i."""

    def _validate_(self, level):
        read_soft_label_taxa(self, level)


def read_soft_label_taxa(fmt, level="max"):
    """The (rank, taxon) rows of a taxa.tsv, validated (the first rows at `min`)."""
    limit = _rows(level)
    rows = []
    with fmt.open() as fh:
        header = fh.readline().rstrip("\r\n")
        if header != "rank\ttaxon":
            raise ValidationError(f"line 1: the header must be 'rank<TAB>taxon', found "
                                  f"{header[:200]!r}")
        for lineno, line in enumerate(fh, start=2):
            fields = line.rstrip("\r\n").split("\t")
            if limit is None or len(rows) < limit:
                if len(fields) != 2:
                    raise ValidationError(
                        f"line {lineno}: expected 2 tab-separated fields, found {len(fields)}")
                if fields[0] not in RANKS:
                    raise ValidationError(
                        f"line {lineno}: rank {fields[0]!r} is not one of {', '.join(RANKS)}")
                problem = check_lineage(fields[1], fields[0])
                if problem:
                    raise ValidationError(f"line {lineno}: taxon {fields[1]!r}: {problem}")
            rows.append(tuple(fields))
    return rows


class SoftLabelArrayFormat(model.BinaryFileFormat):
    """A .npy array (int32 taxa, float32 probabilities or confidences), read without pickle."""

    def _validate_(self, level):
        with self.open() as fh:
            dtype, shape, _, offset = read_npy_header(fh)
        if dtype not in (np.dtype("<i4"), np.dtype("<f4")):
            raise ValidationError(f"soft-label arrays are int32 or float32, found {dtype}")
        expected = offset + int(np.prod(shape)) * dtype.itemsize
        if os.path.getsize(str(self.path)) != expected:
            raise ValidationError(f"the file does not hold a {shape} {dtype} array")


class SoftLabelsArraysDirectoryFormat(model.DirectoryFormat):
    """The teacher's soft labels as arrays, compact for millions of contigs.

    - `feature-ids.tsv`: `feature-id` header, then one contig per row (row i of the arrays);
    - `taxa.tsv`: `rank<TAB>taxon` header, then the taxa named (QIIME lineages ending at that
      rank); row j is taxon j;
    - `taxa.npy`: int32 (contigs, 7, t): per contig and rank (domain..species) the t most
      probable taxa, as rows of taxa.tsv at that rank, most probable first; -1 where none;
    - `probabilities.npy`: float32 (contigs, 7, t): their probabilities (0 where none); a
      rank's probabilities sum to at most 1, the rest is other taxa or no name at that rank;
    - `confidence.npy`: float32 (contigs, 7): how much labelled evidence stands behind each
      rank's distribution (0 = none), its weight in distillation.
    `qiime tools export` gives these files; the long table (one row per contig, rank and
    taxon) is the `pandas.DataFrame` view and the `SoftLabelsFormat` import.
    """

    feature_ids = model.File("feature-ids.tsv", format=FeatureIDsFormat)
    taxa = model.File("taxa.tsv", format=SoftLabelTaxaFormat)
    taxon_codes = model.File("taxa.npy", format=SoftLabelArrayFormat)
    probabilities = model.File("probabilities.npy", format=SoftLabelArrayFormat)
    confidence = model.File("confidence.npy", format=SoftLabelArrayFormat)

    def _validate_(self, level):
        root = str(self.path)
        shapes = {}
        for name in ("taxa.npy", "probabilities.npy", "confidence.npy"):
            with open(os.path.join(root, name), "rb") as fh:
                dtype, shapes[name], _, _ = read_npy_header(fh)
            if (dtype.kind == "i") != (name == "taxa.npy"):
                raise ValidationError(f"{name} has dtype {dtype}")
        n_ids = count_ids(FeatureIDsFormat(os.path.join(root, "feature-ids.tsv"), mode="r"),
                          "min")
        codes, probabilities, confidence = (shapes[k] for k in ("taxa.npy", "probabilities.npy",
                                                                "confidence.npy"))
        if len(codes) != 3 or codes[:2] != (n_ids, len(RANKS)) or probabilities != codes \
                or confidence != (n_ids, len(RANKS)):
            raise ValidationError(
                f"for {n_ids} feature IDs the arrays must be taxa.npy and probabilities.npy "
                f"({n_ids}, {len(RANKS)}, t) and confidence.npy ({n_ids}, {len(RANKS)}); found "
                f"{codes}, {probabilities} and {confidence}")
        if level != "max":
            return
        taxa = read_soft_label_taxa(SoftLabelTaxaFormat(os.path.join(root, "taxa.tsv"),
                                                        mode="r"), "min")
        rank_of = np.array([RANKS.index(rank) for rank, _ in taxa] + [-1])
        codes = np.load(os.path.join(root, "taxa.npy"), mmap_mode="r", allow_pickle=False)
        probabilities = np.load(os.path.join(root, "probabilities.npy"), mmap_mode="r",
                                allow_pickle=False)
        confidence = np.load(os.path.join(root, "confidence.npy"), mmap_mode="r",
                             allow_pickle=False)
        step = 1 << 16
        for start in range(0, n_ids, step):
            c = np.asarray(codes[start:start + step])
            p = np.asarray(probabilities[start:start + step])
            q = np.asarray(confidence[start:start + step])
            if ((c < -1) | (c >= len(taxa))).any():
                raise ValidationError(f"taxa.npy names rows outside taxa.tsv ({len(taxa)} taxa)")
            wrong = (c >= 0) & (rank_of[c] != np.arange(len(RANKS))[None, :, None])
            if wrong.any():
                i, r, _ = np.argwhere(wrong)[0]
                raise ValidationError(f"contig row {start + i}: a taxon at rank {RANKS[r]} is "
                                      f"not a taxon of that rank in taxa.tsv")
            for what, a in (("probabilities", p), ("confidence", q)):
                if not (np.isfinite(a) & (a >= 0) & (a <= 1)).all():
                    raise ValidationError(f"{what} must lie in [0, 1]")
            if (p.sum(2) > 1.0 + _SUM_TOLERANCE).any():
                i, r = np.argwhere(p.sum(2) > 1.0 + _SUM_TOLERANCE)[0]
                raise ValidationError(f"contig row {start + i}: the probabilities at rank "
                                      f"{RANKS[r]} sum to more than 1")
            if ((c < 0) & (p > 0)).any():
                raise ValidationError("probabilities.npy gives a probability to no taxon")


class StudentModelConfigFormat(JSONObjectFormat):
    """The student's JSON description, enough to rebuild the network without code pickles."""

    REQUIRED = ("format_version", "architecture", "taxonomy", "features")


_SAFETENSORS_DTYPE_BYTES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1,
    "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8,
}
_SAFETENSORS_MAX_HEADER = 100_000_000


class SafetensorsFormat(model.BinaryFileFormat):
    """Tensors in the safetensors layout: an 8-byte little-endian header size, a JSON header
    of dtypes, shapes and byte ranges, then the raw data, which must be covered exactly."""

    def _validate_(self, level):
        size = os.path.getsize(str(self.path))
        with self.open() as fh:
            raw = fh.read(8)
            if len(raw) < 8:
                raise ValidationError("shorter than the 8-byte header size")
            (header_len,) = struct.unpack("<Q", raw)
            if header_len > min(_SAFETENSORS_MAX_HEADER, size - 8):
                raise ValidationError(f"header size {header_len} exceeds the file")
            try:
                header = json.loads(fh.read(header_len).decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                raise ValidationError("the header is not valid UTF-8 JSON") from None
        if not isinstance(header, dict):
            raise ValidationError("the header must be a JSON object")
        spans = []
        for name, info in header.items():
            if name == "__metadata__":
                if not isinstance(info, dict):
                    raise ValidationError("__metadata__ must be an object")
                continue
            if not (isinstance(info, dict) and {"dtype", "shape", "data_offsets"} <= set(info)):
                raise ValidationError(f"tensor {name!r}: needs dtype, shape and data_offsets")
            shape, offsets = info["shape"], info["data_offsets"]
            if not (isinstance(shape, list) and all(isinstance(n, int) and n >= 0 for n in shape)):
                raise ValidationError(f"tensor {name!r}: bad shape {shape!r}")
            if not (isinstance(offsets, list) and len(offsets) == 2
                    and all(isinstance(n, int) for n in offsets) and 0 <= offsets[0] <= offsets[1]):
                raise ValidationError(f"tensor {name!r}: bad data_offsets {offsets!r}")
            itemsize = _SAFETENSORS_DTYPE_BYTES.get(info["dtype"])
            if itemsize is not None and offsets[1] - offsets[0] != math.prod(shape) * itemsize:
                raise ValidationError(
                    f"tensor {name!r}: {offsets[1] - offsets[0]} bytes for shape {shape} "
                    f"of {info['dtype']}")
            spans.append((offsets[0], offsets[1], name))
        end = 0
        for begin, stop, name in sorted(spans):
            if begin != end:
                raise ValidationError(f"tensor {name!r}: data does not start at byte {end}")
            end = stop
        if 8 + header_len + end != size:
            raise ValidationError(
                f"the header describes {end} data bytes, the file holds {size - 8 - header_len}")


class StudentModelDirectoryFormat(model.DirectoryFormat):
    """A trained student: `config.json` (architecture, taxonomy, features) + `model.safetensors`."""

    config = model.File("config.json", format=StudentModelConfigFormat)
    weights = model.File("model.safetensors", format=SafetensorsFormat)


# MMseqs2 `easy-taxonomy` / `createtsv` LCA tables. Plain LCA rows are
#   id, taxid, rank, name[, lca-ranks], lineage
# and contig-level votes (aggregatetax) add #fragments, #assigned, #agreeing, support after name.
# Unassigned rows are `0<TAB>no rank<TAB>unclassified` with an empty lineage.
_MMSEQS_PLAIN = (5, 6)
_MMSEQS_VOTE = (9, 10)
_MMSEQS_ELEMENT = re.compile(r"^[A-Za-z-]_")


def mmseqs2_shape(n_fields, lineno):
    """'plain' or 'vote' from the column count, or a message that says how to rerun MMseqs2."""
    if n_fields in _MMSEQS_PLAIN:
        return "plain"
    if n_fields in _MMSEQS_VOTE:
        return "vote"
    if n_fields in (4, 8):
        raise ValidationError(
            f"line {lineno}: {n_fields} columns and no lineage; run MMseqs2 with "
            "--tax-lineage 1 so the table carries the full lineage")
    raise ValidationError(
        f"line {lineno}: {n_fields} columns; expected 5 (id, taxid, rank, name, lineage) or "
        "9 (id, taxid, rank, name, #fragments, #assigned, #agreeing, support, lineage)")


def check_mmseqs2_row(fields, shape, lineno):
    """Validate one LCA row of a known shape."""
    if not fields[0].strip():
        raise ValidationError(f"line {lineno}: empty query ID")
    if not fields[1].isdigit():
        raise ValidationError(f"line {lineno}: taxid {fields[1]!r} is not a non-negative integer")
    if shape == "vote":
        for col, what in ((4, "#fragments"), (5, "#assigned"), (6, "#agreeing")):
            if not fields[col].isdigit():
                raise ValidationError(f"line {lineno}: {what} {fields[col]!r} is not a count")
        _float_in_unit(fields[7], "support", lineno)
    lineage = fields[-1].strip()
    if not lineage:
        return
    if all(part.strip().isdigit() for part in lineage.split(";")):
        raise ValidationError(
            f"line {lineno}: the lineage holds taxids (--tax-lineage 2); run MMseqs2 with "
            "--tax-lineage 1 for names")
    for part in lineage.split(";"):
        if not _MMSEQS_ELEMENT.match(part):
            raise ValidationError(
                f"line {lineno}: lineage element {part!r} lacks the rank prefix of "
                "--tax-lineage 1 (e.g. 'd_Bacteria', '-_cellular organisms')")
    try:
        mmseqs2_taxon(fields)
    except InputError as err:
        raise ValidationError(f"line {lineno}, query {fields[0]!r}: {err}") from None


def mmseqs2_taxon(fields):
    """The QIIME lineage of one LCA row, read by the engine's parser (the domain of NCBI's
    2025 taxonomy, which MMseqs2 writes `-_Bacteria`, included); `Unassigned` for
    unclassified rows and rows that name no rank. Raises InputError for a bad lineage."""
    if fields[1] == "0" or fields[3].strip().lower() == "unclassified":
        return "Unassigned"
    return format_lineage(parse_lineage(fields[-1].strip()))


class MMseqs2LCAFormat(model.TextFileFormat):
    """The `*_lca.tsv` of `mmseqs easy-taxonomy --tax-lineage 1` (or `taxonomy` + `createtsv`).

    No header; 5 columns (id, taxid, rank, name, lineage) or, for contigs voted from their
    ORFs, 9 (id, taxid, rank, name, #fragments, #assigned, #agreeing, support, lineage).
    """

    def _validate_(self, level):
        limit = _rows(level)
        shape, width = None, None
        seen = set()
        n = 0
        with self.open() as fh:
            for lineno, line in enumerate(fh, start=1):
                if limit is not None and n >= limit:
                    break
                line = line.rstrip("\r\n")
                if not line.strip():
                    continue
                fields = line.split("\t")
                if shape is None:
                    shape, width = mmseqs2_shape(len(fields), lineno), len(fields)
                elif len(fields) != width:
                    raise ValidationError(
                        f"line {lineno}: {len(fields)} columns, the first row has {width}")
                check_mmseqs2_row(fields, shape, lineno)
                if fields[0] in seen:
                    raise ValidationError(f"line {lineno}: query {fields[0]!r} is repeated")
                seen.add(fields[0])
                n += 1
        if n == 0:
            raise ValidationError("no rows")


MMseqs2LCADirectoryFormat = model.SingleFileDirectoryFormat(
    "MMseqs2LCADirectoryFormat", "lca.tsv", MMseqs2LCAFormat)


class ContigsFASTAFormat(model.TextFileFormat):
    """The contigs an action reads, as one FASTA: FeatureData[Sequence] as it is, or the
    per-sample files of SampleData[Contigs] / the bins of FeatureData[MAG] concatenated.
    Only a view for actions (never stored in an artifact); the engine validates records."""

    def _validate_(self, level):
        with self.open() as handle:
            for line in handle:
                if line.strip():
                    if not line.startswith(">"):
                        raise ValidationError("a FASTA file must start with a '>' header line.")
                    return
