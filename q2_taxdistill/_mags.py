"""classify-mags and summarize-mags: the QIIME 2 side of `engine.mags`.

Bins come as a metadata column (contig ID -> bin ID), which every QIIME 2 has, or, where
q2-types has it (2024 and later), as q2-mag's `FeatureMap[MAGtoContigs]`. The contamination
table is `ImmutableMetadata` where q2-types has it, else this plugin's `MAGContamination`
(a QIIME 2 metadata TSV): either is viewed as Metadata (`qiime metadata tabulate`).
"""
import os

import numpy as np
import pandas as pd

from q2_taxdistill._formats import ContigsFASTAFormat
from q2_taxdistill._pages import render as _render
from q2_taxdistill._framework import framework, model, plugin_api
from q2_taxdistill.engine import mags
from q2_taxdistill.engine.errors import InputError
from q2_taxdistill.engine.parameters import DEFAULTS
from q2_taxdistill.engine.progress import reporting, stderr_reporter
from q2_taxdistill.engine.sequences import Contigs
from q2_taxdistill.engine.taxonomy import RANKS

_SHOWN_MAGS = 2000
_SHOWN_CONTIGS = 2000

MAGContamination = plugin_api.SemanticType("MAGContamination")


class MAGContaminationFormat(model.TextFileFormat):
    """A QIIME 2 metadata TSV, one row per MAG."""

    def _validate_(self, level):
        try:
            framework.Metadata.load(str(self))
        except framework.metadata.MetadataFileError as error:
            raise plugin_api.ValidationError(str(error)) from None


MAGContaminationDirectoryFormat = model.SingleFileDirectoryFormat(
    "MAGContaminationDirectoryFormat", "contamination.tsv", MAGContaminationFormat)


def metadata_to_format(data: framework.Metadata) -> MAGContaminationFormat:
    ff = MAGContaminationFormat()
    data.save(str(ff))
    return ff


def format_to_metadata(ff: MAGContaminationFormat) -> framework.Metadata:
    return framework.Metadata.load(str(ff))


def format_to_dataframe(ff: MAGContaminationFormat) -> pd.DataFrame:
    return framework.Metadata.load(str(ff)).to_dataframe()


TRANSFORMERS = (metadata_to_format, format_to_metadata, format_to_dataframe)


def _bins(bins, mag_map, map_available):
    if bins is not None and mag_map is not None:
        raise InputError("give the bins either as a metadata column (bins) or as a "
                         "FeatureMap[MAGtoContigs] (mag_map), not both.")
    if mag_map is not None:
        return mags.bins_from_map(mag_map)
    if bins is not None:
        return bins.to_series()
    if map_available:
        raise InputError("give the bins: a FeatureMap[MAGtoContigs] from q2-mag binning "
                         "(mag_map), or a metadata column of contig IDs -> bin IDs (bins).")
    raise InputError("give the bins as a metadata column of contig IDs -> bin IDs (bins, e.g. "
                     "--m-bins-file bins.tsv --m-bins-column bin). This QIIME 2's q2-types has "
                     "no FeatureMap[MAGtoContigs] (q2-mag's binning output, q2-types 2024 and "
                     "later), so that input is not offered here.")


def _classify(taxonomy, contigs, bins, mag_map, majority, map_available):
    lengths = Contigs.from_fasta(str(contigs), stream=True).lengths_series()
    return mags.classify_mags(taxonomy, lengths, _bins(bins, mag_map, map_available),
                              majority=majority)


def _metadata(summary):
    frame = summary.copy()
    for column in ("rank", "judged rank"):
        frame[column] = frame[column].replace("", np.nan)
    frame.index = frame.index.rename("id")
    return framework.Metadata(frame)


def _signature(function, map_format, returns):
    """Annotations for the QIIME 2 signature; `mag_map` only where q2-types has the type."""
    annotations = {"taxonomy": pd.DataFrame, "contigs": ContigsFASTAFormat,
                   "bins": framework.CategoricalMetadataColumn, "majority": float}
    if map_format is not None:
        annotations["mag_map"] = dict
    if returns is not None:
        annotations["return"] = returns
    function.__annotations__ = annotations
    function.__module__ = __name__
    return function


def classify_mags_action(map_available):
    """`classify_mags`, with a `mag_map` input where FeatureMap[MAGtoContigs] exists."""
    if map_available:
        def classify_mags(taxonomy, contigs, bins=None, mag_map=None,
                          majority=DEFAULTS.majority):
            with reporting(stderr_reporter()):
                calls = _classify(taxonomy, contigs, bins, mag_map, majority, True)
            return calls.taxonomy, _metadata(calls.summary)
    else:
        def classify_mags(taxonomy, contigs, bins=None, majority=DEFAULTS.majority):
            with reporting(stderr_reporter()):
                calls = _classify(taxonomy, contigs, bins, None, majority, False)
            return calls.taxonomy, _metadata(calls.summary)
    return _signature(classify_mags, dict if map_available else None,
                      (pd.DataFrame, framework.Metadata))


def summarize_mags_action(map_available):
    """`summarize_mags`, with a `mag_map` input where FeatureMap[MAGtoContigs] exists."""
    if map_available:
        def summarize_mags(output_dir, taxonomy, contigs, bins=None, mag_map=None,
                           majority=DEFAULTS.majority):
            _summarize(output_dir, _classify(taxonomy, contigs, bins, mag_map, majority, True),
                       majority)
    else:
        def summarize_mags(output_dir, taxonomy, contigs, bins=None, majority=DEFAULTS.majority):
            _summarize(output_dir, _classify(taxonomy, contigs, bins, None, majority, False),
                       majority)
    function = _signature(summarize_mags, dict if map_available else None, None)
    function.__annotations__ = {"output_dir": str, **function.__annotations__,
                                "return": None}
    return function


def _bar(parts):
    """A stacked bar of a MAG's bp by taxon (inline, so 10^4 MAGs need no image)."""
    colours = ["#0072B2", "#D55E00", "#E69F00", "#CC79A7", "#56B4E9", "#009E73"]
    grey = {"unlabelled": "#DDDDDD", "other taxa": "#999999"}
    segments, named = [], 0
    for taxon, share in parts:
        if taxon in grey or taxon.startswith("no "):
            colour = grey.get(taxon, "#BBBBBB")
        else:
            colour = colours[named % len(colours)]
            named += 1
        title = _escape(f"{taxon}: {100 * share:.1f}%")
        segments.append(f'<span class="q2td-seg" style="width:{100 * share:.2f}%;'
                        f'background:{colour}" title="{title}"></span>')
    return f'<span class="q2td-bar">{"".join(segments)}</span>'


def _escape(text):
    return (str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def _cell(value, kind):
    if kind == "number":
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return '<td data-sort="-1"></td>'
        text = f"{value:,}" if isinstance(value, (int, np.integer)) else f"{value:.3f}"
        return f'<td class="num" data-sort="{float(value)}">{text}</td>'
    return f"<td>{value}</td>"


def _sortable(frame, kinds, table_id):
    """A table whose headers sort it (numbers by value, text alphabetically; see the page)."""
    head = "".join(f'<th data-kind="{kinds.get(c, "text")}">{_escape(c)}</th>'
                   for c in frame.columns)
    body = []
    for row in frame.itertuples(index=False):
        cells = "".join(_cell(v, kinds.get(c, "text")) for c, v in zip(frame.columns, row))
        body.append(f"<tr>{cells}</tr>")
    return (f'<table id="{table_id}" class="table table-striped table-hover q2td-sortable">'
            f'<thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>')


def _summarize(output_dir, calls, majority):
    """Per MAG: name, contamination and bp by taxon where it splits; the flagged contigs."""
    summary = calls.summary
    composition = calls.composition()
    conflicts = calls.conflicts
    summary.to_csv(os.path.join(output_dir, "mags.tsv"), sep="\t", float_format="%.6f")
    composition.to_csv(os.path.join(output_dir, "composition.tsv"), sep="\t", index=False,
                       float_format="%.6f")
    conflicts.to_csv(os.path.join(output_dir, "flagged-contigs.tsv"), sep="\t",
                     float_format="%.4f")
    parts = {mag: list(zip(group["taxon"], group["share"]))
             for mag, group in composition.groupby("MAG", sort=False)}
    split_rank = composition.drop_duplicates("MAG").set_index("MAG")["rank"]
    shown = summary.sort_values(["contamination", "bp"], ascending=[False, False],
                                na_position="first", kind="stable").head(_SHOWN_MAGS)
    table = pd.DataFrame({
        "MAG": [_escape(m) for m in shown.index],
        "taxonomy": [_escape(t) for t in shown["Taxon"]],
        "Confidence": shown["Confidence"].to_numpy(),
        "bp": shown["bp"].to_numpy(),
        "contigs": shown["contigs"].to_numpy(),
        "labelled": shown["labelled bp share"].to_numpy(),
        "contamination": shown["contamination"].to_numpy(),
        "flagged contigs": shown["flagged contigs"].to_numpy(),
        "split rank": [split_rank.get(m, "") for m in shown.index],
        "bp by taxon at the split rank": [
            _bar(parts.get(m, [])) + "<br>" + "; ".join(
                f"{_escape(t)} {100 * s:.1f}%" for t, s in parts.get(m, []))
            for m in shown.index],
    })
    numbers = {c: "number" for c in ("Confidence", "bp", "contigs", "labelled",
                                     "contamination", "flagged contigs")}
    flagged = conflicts.sort_values(["MAG", "length"], ascending=[True, False],
                                    kind="stable").head(_SHOWN_CONTIGS)
    contig_table = pd.DataFrame({
        "contig": [_escape(c) for c in flagged.index],
        "MAG": [_escape(m) for m in flagged["MAG"]],
        "conflict rank": flagged["conflict rank"].to_numpy(),
        "bp": flagged["length"].to_numpy(),
        "Confidence": flagged["Confidence"].to_numpy(dtype=float),
        "contig taxonomy": [_escape(t) for t in flagged["Taxon"]],
        "MAG taxonomy": [_escape(t) for t in flagged["MAG taxon"]],
        "judged against": [_escape(t) for t in flagged["MAG reference"]],
    })
    named = summary["rank"].value_counts().reindex(list(RANKS), fill_value=0)
    context = {
        "title": "MAG taxonomy and contamination",
        "n_mags": len(summary), "n_shown": len(shown),
        "n_flagged": len(conflicts), "n_flagged_shown": len(flagged),
        "n_unassigned": int((summary["rank"] == "").sum()),
        "depths": ", ".join(f"{rank} {int(n)}" for rank, n in named.items() if n),
        "majority": majority,
        "confidence": DEFAULTS.confidence,
        "mag_table": _sortable(table, numbers, "mags"),
        "contig_table": _sortable(contig_table, {"bp": "number", "Confidence": "number"},
                                  "flagged"),
    }
    _render("summarize_mags", output_dir, context)
