"""Kraken2 contig results as FeatureData[Taxonomy]: an import format for one kraken2 run's
`--output` + `--report`, and the action that reads q2-annotate's classify-kraken2 results on
contigs (registered only where q2-types has the Kraken2 types). The parsing is the engine's."""
import itertools
import os
from pathlib import Path

import pandas as pd
from q2_taxdistill._framework import model, plugin_api
from q2_taxdistill.engine.errors import InputError, preview
from q2_taxdistill.engine.kraken2 import KrakenTaxonomy, contig_taxonomy

ValidationError = plugin_api.ValidationError
_MIN_ROWS = 100


class Kraken2ContigOutputFormat(model.TextFileFormat):
    """kraken2 `--output`: C/U, sequence ID, taxid, length, k-mer LCA mapping (tab-separated)."""

    def _validate_(self, level):
        n = 0
        with self.open() as fh:
            for lineno, line in enumerate(fh, start=1):
                if level == "min" and n >= _MIN_ROWS:
                    break
                if not line.strip():
                    continue
                fields = line.rstrip("\r\n").split("\t")
                if len(fields) != 5:
                    raise ValidationError(
                        f"line {lineno}: expected 5 tab-separated columns (C/U, ID, taxid, "
                        f"length, k-mer LCA mapping), found {len(fields)}")
                if fields[0] not in ("C", "U"):
                    raise ValidationError(f"line {lineno}: the first column must be C or U, "
                                          f"found {fields[0]!r}")
                n += 1
        if n == 0:
            raise ValidationError("no contig lines")


class Kraken2ContigReportFormat(model.TextFileFormat):
    """kraken2 `--report` (standard, 6 columns or 8 with --report-minimizer-data)."""

    def _validate_(self, level):
        with self.open() as fh:
            try:
                KrakenTaxonomy.from_report(fh, source="report")
            except InputError as err:
                raise ValidationError(str(err)) from None


class Kraken2ContigsDirectoryFormat(model.DirectoryFormat):
    """One kraken2 run on contigs: `output.txt` (--output) and `report.txt` (--report).

    Validation reads the two files together (the first rows of the output at `min`, all at
    `max`), so that an output and a report of different runs (taxids missing from the
    report), and every other problem the import would meet, are format errors naming the
    file, line and first IDs, not errors of the transformer."""

    output = model.File("output.txt", format=Kraken2ContigOutputFormat)
    report = model.File("report.txt", format=Kraken2ContigReportFormat)

    def _validate_(self, level):
        root = str(self.path)
        try:
            read_run(os.path.join(root, "output.txt"), os.path.join(root, "report.txt"),
                     limit=None if level == "max" else _MIN_ROWS)
        except InputError as err:
            raise ValidationError(str(err)) from None


def read_run(output_path, report_path, limit=None):
    """Per-contig taxonomy (Taxon, Confidence) from an --output file and its --report
    (the first `limit` lines of the output, all without a limit)."""
    with open(report_path, encoding="utf-8") as fh:
        taxonomy = KrakenTaxonomy.from_report(fh, source=f"Kraken2 report {report_path}")
    with open(output_path, encoding="utf-8") as fh:
        lines = fh if limit is None else itertools.islice(fh, limit)
        return contig_taxonomy(lines, taxonomy, source=f"Kraken2 output {output_path}")


def contigs_directory_taxonomy(ff):
    root = str(ff.path)
    return read_run(os.path.join(root, "output.txt"), os.path.join(root, "report.txt"))


def _report_for(relative, rep_root):
    """q2-annotate names a sample's files `<sample>/output.txt` and `<sample>/report.txt`
    (`<sample>/<mag>_output.txt` for MAGs): the report has the output's name with `report`."""
    prefix = relative.name[:-len("output.txt")]
    candidates = [rep_root / relative.parent / f"{prefix}report{ext}" for ext in (".txt", ".tsv")]
    return next((c for c in candidates if c.is_file()), None), candidates[0].relative_to(rep_root)


def samples_taxonomy(reports, outputs):
    """Each sample's --output read with the same sample's --report, all samples in one table."""
    out_root, rep_root = Path(str(outputs.path)), Path(str(reports.path))
    files = sorted(p for p in out_root.rglob("*")
                   if p.is_file() and p.name.endswith(("output.txt", "output.tsv")))
    if not files:
        raise InputError("the Kraken2 outputs hold no *output.txt file")
    frames, origin = [], {}
    for path in files:
        relative = path.relative_to(out_root)
        report, expected = _report_for(relative, rep_root)
        if report is None:
            raise InputError(f"no Kraken2 report {str(expected)!r} for the output "
                             f"{str(relative)!r}: give the reports and outputs of the same "
                             "classify-kraken2 run.")
        frame = read_run(path, report)
        repeated = [c for c in frame.index if c in origin]
        if repeated:
            raise InputError(
                f"contig IDs must be unique across samples: {preview(repeated)} in "
                f"{str(relative)!r} also in {origin[repeated[0]]!r}")
        origin.update(dict.fromkeys(frame.index, str(relative)))
        frames.append(frame)
    return pd.concat(frames)


def kraken2_action(report_format, output_format):
    """`kraken2_to_taxonomy` typed with q2-types' Kraken2 directory formats, which only
    newer q2-types have (not 2022.11), so they are given here, not imported."""
    def kraken2_to_taxonomy(reports, outputs) -> pd.DataFrame:
        return samples_taxonomy(reports, outputs)
    kraken2_to_taxonomy.__annotations__ = {"reports": report_format, "outputs": output_format,
                                           "return": pd.DataFrame}
    kraken2_to_taxonomy.__module__ = __name__
    return kraken2_to_taxonomy
