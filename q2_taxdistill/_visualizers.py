"""Visualizers: how good is a taxonomy against a truth, and what would the teacher change."""
import os

import numpy as np
import pandas as pd

from q2_taxdistill.engine.metrics import (
    RANKS, f1_by_threshold, lineage_elements, normalise_name, score_taxonomy)
from q2_taxdistill._pages import render as _render
from q2_taxdistill.engine.soft_labels import SoftLabels


def _figure(**kwargs):
    """A matplotlib figure; matplotlib is imported here, when a visualizer draws, not when the
    plugin loads (every q2cli command loads it)."""
    from matplotlib.figure import Figure as MatplotlibFigure

    return MatplotlibFigure(**kwargs)


# Okabe-Ito colours: distinguishable with the common colour-vision deficiencies.
_OUTCOME_COLOURS = {"correct": "#009E73", "wrong": "#D55E00", "unlabelled": "#BBBBBB"}
_SET_COLOURS = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00",
                "#F0E442", "#000000"]
_LINE_STYLES = ["-", "--", "-.", ":"]
_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
_TABLE_CLASSES = ("table", "table-striped", "table-hover")
_CONFIDENT = 0.9


def _taxon_column(df, what):
    """The Taxon column of a FeatureData[Taxonomy] view, as strings indexed by feature ID."""
    if "Taxon" not in df.columns:
        raise ValueError(f"{what} has no 'Taxon' column")
    taxa = df["Taxon"]
    if taxa.index.has_duplicates:
        raise ValueError(f"{what} lists some feature IDs more than once")
    return taxa


def _numeric_confidence(df):
    """The Confidence column as numbers when it holds any usable score, else None."""
    column = next((c for c in df.columns if str(c).lower() == "confidence"), None)
    if column is None:
        return None
    values = pd.to_numeric(df[column], errors="coerce")
    if not (values >= 0).any():
        return None
    return values


def _thresholds(confidence):
    """Thresholds spanning the scores: steps of 0.02 for probabilities, 51 steps otherwise."""
    usable = confidence[confidence >= 0]
    low, high = float(usable.min()), float(usable.max())
    if high <= 1.0:
        return np.round(np.linspace(0.0, 1.0, 51), 4)
    return np.linspace(min(0.0, low), high, 51)


def _check_names(names, n):
    if names is None:
        return [f"taxonomy {i + 1}" for i in range(n)]
    names = [str(name) for name in names]
    if len(names) != n:
        raise ValueError(f"{len(names)} names were given for {n} taxonomies; give one name "
                         "per taxonomy, in the same order")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"names must be distinct; repeated: {', '.join(repeated)}")
    return names


def _html_table(df, table_id):
    """A bootstrap-styled table with numbers right-aligned and text left-aligned."""
    numeric = [i + 1 for i, column in enumerate(df.columns)
               if pd.api.types.is_numeric_dtype(df[column])]
    rules = "".join(f"#{table_id} td:nth-child({i}), #{table_id} th:nth-child({i}) "
                    "{ text-align: right; }" for i in numeric)
    html = df.to_html(classes=_TABLE_CLASSES, border=0, index=False, table_id=table_id,
                      float_format=lambda x: f"{x:.3f}", na_rep="", justify="left")
    return f"<style>{rules}</style>\n{html}"


def _save(fig, output_dir, stem):
    fig.savefig(os.path.join(output_dir, f"{stem}.png"), dpi=110, bbox_inches="tight")
    fig.savefig(os.path.join(output_dir, f"{stem}.svg"), bbox_inches="tight")
    return f"{stem}.png"


def _outcome_plot(tables, output_dir):
    """Correct / wrong / unlabelled shares per rank, one panel per taxonomy."""
    n = len(tables)
    cols = min(n, 3)
    rows = -(-n // cols)
    fig = _figure(figsize=(4.6 * cols, 3.6 * rows + 0.8))
    axes = fig.subplots(rows, cols, squeeze=False, sharey=True)
    x = np.arange(len(RANKS))
    for ax, (name, table) in zip(axes.flat, tables.items()):
        total = table[["correct", "wrong", "unlabelled"]].sum(axis=1).to_numpy(dtype=float)
        bottom = np.zeros(len(RANKS))
        for outcome, colour in _OUTCOME_COLOURS.items():
            share = np.divide(table[outcome].to_numpy(dtype=float), total,
                              out=np.zeros(len(RANKS)), where=total > 0)
            ax.bar(x, share, bottom=bottom, color=colour, label=outcome, width=0.75)
            bottom += share
        ax.set_title(name)
        ax.set_xticks(x)
        ax.set_xticklabels(RANKS, rotation=35, ha="right")
        ax.set_ylim(0, 1)
        ax.set_xlabel("rank")
    for ax in axes[:, 0]:
        ax.set_ylabel("share of contigs with a true label")
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=3, frameon=False,
               bbox_to_anchor=(0.5, 1.0))
    fig.suptitle("Outcome per rank", y=1.06)
    return _save(fig, output_dir, "outcomes")


def _line_style(i):
    """Colour, marker, dash and width of the i-th taxonomy: near-equal taxonomies overlap, so
    earlier lines are drawn wider and every line has its own dash and marker."""
    return {"color": _SET_COLOURS[i % len(_SET_COLOURS)], "marker": _MARKERS[i % len(_MARKERS)],
            "linestyle": _LINE_STYLES[i % len(_LINE_STYLES)], "linewidth": max(1.2, 3.4 - 0.8 * i),
            "markersize": max(4.0, 9.0 - 1.5 * i)}


def _f1_rank_plot(tables, output_dir):
    """F1 per rank, one line per taxonomy, to compare them at a glance."""
    fig = _figure(figsize=(11, 4.6))
    ax = fig.subplots()
    x = np.arange(len(RANKS))
    for i, (name, table) in enumerate(tables.items()):
        ax.plot(x, table["f1"], label=name, **_line_style(i))
    ax.set_xticks(x)
    ax.set_xticklabels(RANKS)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("rank")
    ax.set_ylabel("F1")
    ax.set_title("F1 per rank")
    ax.grid(alpha=0.3)
    ax.legend(title="taxonomy", loc="lower left")
    return _save(fig, output_dir, "f1-by-rank")


def _threshold_plot(curves, positions, output_dir):
    """F1 against the confidence threshold, one panel per rank, one line per taxonomy."""
    fig = _figure(figsize=(14, 7))
    axes = fig.subplots(2, 4, sharey=True, gridspec_kw={"hspace": 0.4})
    for r, (ax, rank) in enumerate(zip(axes.flat, RANKS)):
        for name, curve in curves.items():
            style = _line_style(positions[name])
            style["markevery"] = max(1, len(curve) // 10)
            ax.plot(curve.index, curve[rank], label=name, **style)
        ax.set_title(rank)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        if r >= 3:
            ax.set_xlabel("confidence threshold")
        if r % 4 == 0:
            ax.set_ylabel("F1")
    legend_ax = axes.flat[-1]
    legend_ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    legend_ax.legend(handles, labels, title="taxonomy", loc="center", frameon=False)
    fig.suptitle("F1 when labels below a confidence threshold count as unlabelled")
    return _save(fig, output_dir, "f1-by-threshold")


def evaluate_taxonomy(output_dir: str, predictions: pd.DataFrame, truth: pd.DataFrame,
                      names: list = None) -> None:
    """Score each taxonomy against the truth per rank, as the benchmark scorer does."""
    predictions = list(predictions)
    if not predictions:
        raise ValueError("give at least one taxonomy to evaluate")
    names = _check_names(names, len(predictions))
    truth_taxa = _taxon_column(truth, "the truth")
    tables, curves, summary = {}, {}, []
    positions = {name: i for i, name in enumerate(names)}
    for name, prediction in zip(names, predictions):
        taxa = _taxon_column(prediction, f"taxonomy {name!r}")
        shared = taxa.index.intersection(truth_taxa.index)
        if len(shared) == 0:
            raise ValueError(
                f"taxonomy {name!r} shares no feature IDs with the truth (its first IDs: "
                f"{', '.join(map(str, taxa.index[:3]))}; the truth's: "
                f"{', '.join(map(str, truth_taxa.index[:3]))})")
        confidence = _numeric_confidence(prediction)
        tables[name] = score_taxonomy(taxa, truth_taxa, confidence)
        if confidence is not None:
            curves[name] = f1_by_threshold(taxa, truth_taxa, confidence,
                                           _thresholds(confidence))
        summary.append({"taxonomy": name, "contigs": len(taxa),
                        "in truth": len(shared),
                        "truth contigs missing": len(truth_taxa) - len(shared),
                        "not in truth": len(taxa) - len(shared),
                        "confidence scores": "yes" if confidence is not None else "no"})

    long = pd.concat({name: table for name, table in tables.items()}, names=["taxonomy"])
    long = long.reset_index()
    long.insert(2, "n", long[["correct", "wrong", "unlabelled"]].sum(axis=1))
    long.to_csv(os.path.join(output_dir, "metrics.tsv"), sep="\t", index=False,
                float_format="%.6f")
    f1 = pd.DataFrame({name: table["f1"] for name, table in tables.items()})
    f1.insert(0, "contigs with a true label",
              tables[names[0]][["correct", "wrong", "unlabelled"]].sum(axis=1))
    f1.index.name = "rank"

    context = {
        "title": "Taxonomy evaluation",
        "n_truth": len(truth_taxa),
        "summary": _html_table(pd.DataFrame(summary), "inputs"),
        "f1_table": _html_table(f1.reset_index(), "f1"),
        "metrics_table": _html_table(long, "metrics"),
        "outcome_plot": _outcome_plot(tables, output_dir),
        "f1_plot": _f1_rank_plot(tables, output_dir),
        "threshold_plot": _threshold_plot(curves, positions, output_dir) if curves else None,
        "without_confidence": [n for n in names if n not in curves],
    }
    if curves:
        pd.concat(curves, names=["taxonomy"]).reset_index().to_csv(
            os.path.join(output_dir, "f1-by-threshold.tsv"), sep="\t", index=False,
            float_format="%.6f")
    _render("evaluate_taxonomy", output_dir, context)


def _input_accounting(top, taxa):
    """What the soft labels cover of the input taxonomy, so that nothing left out is silent:
    labelled contigs without soft labels (not scored, or not among the contigs) and
    contigs with soft labels but no input label."""
    soft_ids = pd.Index(top["feature-id"].unique())
    named = taxa.map(lambda t: isinstance(t, str) and any(
        e is not None for e in lineage_elements(t)))
    labelled = taxa.index[named.to_numpy(dtype=bool)]
    rows = [
        ("contigs with soft labels", len(soft_ids)),
        ("input taxonomy entries", len(taxa)),
        ("labelled input contigs without soft labels (not scored: shorter than min_length, "
         "too few A/C/G/T bases, or not among the contigs)", len(labelled.difference(soft_ids))),
        ("contigs with soft labels but no input label (unassigned or not in the taxonomy)",
         len(soft_ids.difference(labelled))),
    ]
    return pd.DataFrame(rows, columns=["what", "contigs"])


def _teacher_top(soft_labels):
    """The teacher's most probable taxon per (contig, rank) with its probability and confidence
    (from the soft labels, or from their long table)."""
    if isinstance(soft_labels, SoftLabels):
        soft_labels = soft_labels.to_frame(top=1)
    required = ["feature-id", "rank", "taxon", "probability", "confidence"]
    missing = [c for c in required if c not in soft_labels.columns]
    if missing:
        raise ValueError(f"soft labels lack the column(s) {', '.join(missing)}")
    ordered = soft_labels.sort_values("probability", ascending=False, kind="stable")
    top = ordered.drop_duplicates(["feature-id", "rank"]).copy()
    top["rank_index"] = top["rank"].map({rank: i for i, rank in enumerate(RANKS)})
    return top.dropna(subset=["rank_index"])


def _confidence_plot(top, output_dir):
    """Histogram of the teacher's confidence, one panel per rank."""
    fig = _figure(figsize=(14, 7))
    axes = fig.subplots(2, 4, sharex=True, gridspec_kw={"hspace": 0.3})
    bins = np.linspace(0, 1, 21)
    for r, (ax, rank) in enumerate(zip(axes.flat, RANKS)):
        values = top.loc[top["rank"] == rank, "confidence"].to_numpy(dtype=float)
        ax.hist(values, bins=bins, color="#0072B2", edgecolor="white")
        ax.set_title(f"{rank} (n = {len(values)})")
        if r >= 3:
            ax.set_xlabel("teacher confidence")
        if r % 4 == 0:
            ax.set_ylabel("contigs")
    axes.flat[-1].axis("off")
    fig.suptitle("Teacher confidence per rank")
    return _save(fig, output_dir, "confidence")


def _disagreement_plot(per_rank, output_dir):
    """Share of contigs whose input label the teacher contradicts, per rank."""
    fig = _figure(figsize=(7.5, 4.2))
    ax = fig.subplots()
    x = np.arange(len(RANKS))
    share = per_rank["disagreement"].to_numpy(dtype=float)
    confident = per_rank[f"disagreement (confidence >= {_CONFIDENT})"].to_numpy(dtype=float)
    ax.bar(x - 0.2, share, width=0.4, color="#D55E00", label="all contigs")
    ax.bar(x + 0.2, confident, width=0.4, color="#E69F00",
           label=f"teacher confidence >= {_CONFIDENT}")
    for xi, (value, n) in enumerate(zip(share, per_rank["disagree"])):
        if not np.isnan(value):
            ax.annotate(str(int(n)), (xi - 0.2, value), ha="center", va="bottom", fontsize=8)
    ax.set_xticks(x)
    ax.set_xticklabels(RANKS)
    ax.set_ylim(0, max(0.05, float(np.nanmax(np.concatenate([share, confident, [0]]))) * 1.2))
    ax.set_xlabel("rank")
    ax.set_ylabel("share of contigs where they differ")
    ax.set_title("Teacher's top taxon vs. the input label\n(contigs named at the rank by both)")
    ax.legend(loc="upper left")
    return _save(fig, output_dir, "disagreement")


def summarize_soft_labels(output_dir: str, soft_labels: SoftLabels,
                          taxonomy: pd.DataFrame) -> None:
    """What the teacher believes, how sure it is, and where it contradicts the input labels."""
    top = _teacher_top(soft_labels)
    if top.empty:
        raise ValueError("the soft labels hold no rows: the teacher had no other contig to "
                         "vote (a single scored contig), so there is nothing to summarise")
    taxa = _taxon_column(taxonomy, "the taxonomy")
    shared = pd.Index(top["feature-id"].unique()).intersection(taxa.index)
    if len(shared) == 0:
        raise ValueError("the soft labels and the taxonomy share no feature IDs")
    inputs = _input_accounting(top, taxa)
    inputs.to_csv(os.path.join(output_dir, "inputs.tsv"), sep="\t", index=False)
    input_elements = {}
    for value in taxa.unique():
        input_elements[value] = lineage_elements(value)
    ranks = top["rank_index"].astype(int).to_numpy()
    lineages = taxa.reindex(top["feature-id"]).to_numpy(dtype=object)
    teacher_names, input_names = [], []
    for taxon, lineage, r in zip(top["taxon"], lineages, ranks):
        teacher_names.append(lineage_elements(taxon)[r])
        elements = input_elements.get(lineage) if isinstance(lineage, str) else None
        input_names.append(elements[r] if elements is not None else None)
    top["teacher taxon"] = teacher_names
    top["input taxon"] = input_names
    both = top["teacher taxon"].notna() & top["input taxon"].notna()
    differ = both & (top["teacher taxon"].map(normalise_name, na_action="ignore")
                     != top["input taxon"].map(normalise_name, na_action="ignore"))
    top["both"], top["disagree"] = both, differ
    confident = top["confidence"] >= _CONFIDENT

    rows = []
    for rank in RANKS:
        at = top["rank"] == rank
        n_both = int((at & both).sum())
        n_differ = int((at & differ).sum())
        n_conf = int((at & both & confident).sum())
        rows.append({
            "rank": rank, "contigs": int(at.sum()),
            "mean confidence": top.loc[at, "confidence"].mean(),
            "median confidence": top.loc[at, "confidence"].median(),
            "mean top probability": top.loc[at, "probability"].mean(),
            "named by both": n_both, "disagree": n_differ,
            "disagreement": n_differ / n_both if n_both else np.nan,
            f"disagreement (confidence >= {_CONFIDENT})":
                int((at & differ & confident).sum()) / n_conf if n_conf else np.nan,
        })
    per_rank = pd.DataFrame(rows)
    per_rank.to_csv(os.path.join(output_dir, "per-rank.tsv"), sep="\t", index=False,
                    float_format="%.6f")

    changes = (top.loc[differ]
               .groupby(["rank", "input taxon", "teacher taxon"], sort=False)
               .agg(contigs=("feature-id", "size"), **{"mean confidence": ("confidence", "mean")})
               .reset_index())
    changes["rank_order"] = changes["rank"].map({rank: i for i, rank in enumerate(RANKS)})
    changes = (changes.sort_values(["contigs", "rank_order"], ascending=[False, True],
                                   kind="stable")
               .drop(columns="rank_order").reset_index(drop=True))
    changes.to_csv(os.path.join(output_dir, "label-changes.tsv"), sep="\t", index=False,
                   float_format="%.6f")

    context = {
        "title": "Soft-label summary",
        "n_contigs": int(top["feature-id"].nunique()),
        "n_shared": len(shared),
        "n_input": len(taxa),
        "per_rank": _html_table(per_rank, "per-rank"),
        "inputs": _html_table(inputs, "inputs"),
        "changes": _html_table(changes.head(30), "changes"),
        "n_changes": len(changes),
        "confidence_plot": _confidence_plot(top, output_dir),
        "disagreement_plot": _disagreement_plot(per_rank, output_dir),
        "confident": _CONFIDENT,
    }
    _render("summarize_soft_labels", output_dir, context)
