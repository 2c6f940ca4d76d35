"""The three steps of TaxDistill on plain Python inputs: teach, distill, correct.

The QIIME 2 actions are thin wrappers around these; a GPU machine without QIIME 2 can call
them directly. Inputs: `Contigs`, a taxonomy table (index = feature ID, column `Taxon`,
optional `Confidence`), read counts as a contigs x samples table.
"""
import numpy as np
import pandas as pd

from .abundance import depth_from_counts
from .correction import decide, decode, label_evidence, neighbourhood, smooth
from .errors import InputError, preview
from .labels import encode_labels
from .memory import release_large_blocks
from .progress import report
from .soft_labels import SoftLabels, fit_soft_labels
from .student import FeatureSpec, Student, StudentConfig
from .taxonomy import TaxonomyTree, format_lineage, parse_lineage, parse_taxonomy
from .teacher import load_teacher

DEFAULT_MIN_LENGTH = 1000
DEFAULT_GENOME_NEIGHBOURS = 20


def _normalised(taxon):
    return format_lineage(parse_lineage(taxon))


def _usable(contigs, min_length):
    """Contigs long enough to score; the rest are reported and keep their input label."""
    lengths = contigs.lengths
    short = [c for c, n in zip(contigs.ids, lengths) if n < min_length]
    if short:
        report("input", message=f"{len(short)} contig(s) shorter than {min_length} bp are "
                                f"not scored and keep their input label: {preview(short)}")
    usable = [c for c, n in zip(contigs.ids, lengths) if n >= min_length]
    if not usable:
        raise InputError(f"no contig is at least {min_length} bp long; lower min_length.")
    return contigs.subset(usable) if short else contigs


def _labels(contigs, taxonomy):
    """Input lineages (7-tuples) and support aligned to `contigs`; counts what does not match."""
    if "Taxon" not in taxonomy.columns:
        raise InputError("the taxonomy table has no 'Taxon' column.")
    index = taxonomy.index.astype(str)
    if index.duplicated().any():
        raise InputError(f"the taxonomy has duplicated feature IDs: "
                         f"{preview(pd.unique(index[index.duplicated()]))}.")
    taxonomy = taxonomy.set_axis(index, axis=0)
    extra = index[~index.isin(contigs.ids)]
    if len(extra):
        report("input", message=f"{len(extra)} taxonomy ID(s) are not among the contigs and are "
                                f"ignored: {preview(extra)}")
    unlabelled = [c for c in contigs.ids if c not in taxonomy.index]
    if unlabelled:
        report("input", message=f"{len(unlabelled)} contig(s) have no input label and are "
                                f"treated as unlabelled: {preview(unlabelled)}")
    present = taxonomy.reindex(contigs.ids)
    taxa = present["Taxon"].where(present["Taxon"].notna(), "Unassigned")
    lineages = list(parse_taxonomy(taxa))
    support = np.full(len(contigs), np.nan)
    if "Confidence" in present.columns:
        support = pd.to_numeric(present["Confidence"], errors="coerce").to_numpy(np.float64)
        bad = np.isfinite(support) & ((support < 0) | (support > 1))
        if bad.any():
            raise InputError(f"taxonomy Confidence values must lie in [0, 1]; contig(s) "
                             f"{preview(np.asarray(contigs.ids)[bad])} have others.")
    return lineages, support


def _depth(contigs, counts):
    if counts is None:
        return None, None
    abundance = depth_from_counts(counts, contigs.lengths_series())
    if abundance.dropped:
        report("input", message=f"{len(abundance.dropped)} contig(s) in the read counts are "
                                f"not scored and are ignored: {preview(abundance.dropped)}")
    return abundance.depth.to_numpy(), abundance.samples


def embed(contigs, teacher="composition", min_length=DEFAULT_MIN_LENGTH, device=None):
    """Teacher embeddings (contigs x dimensions) as a DataFrame indexed by contig ID."""
    release_large_blocks()
    contigs = _usable(contigs, min_length)
    model = load_teacher(teacher, device=device)
    vectors = model.embed(contigs)
    frame = pd.DataFrame(vectors, index=pd.Index(contigs.ids, name="feature-id"),
                         columns=[str(i) for i in range(vectors.shape[1])])
    frame.attrs["teacher"] = model.describe()
    return frame


def teach(contigs, taxonomy, teacher="composition", embeddings=None, n_neighbours=50,
          min_support=1.0, min_length=DEFAULT_MIN_LENGTH, seed=0):
    """Cross-fitted soft labels for every contig at least `min_length` long."""
    release_large_blocks()
    contigs = _usable(contigs, min_length)
    lineages, support = _labels(contigs, taxonomy)
    tree = TaxonomyTree.from_lineages(lineages)
    labels = encode_labels(tree, lineages, support, min_support)
    if not (labels.codes >= 0).any():
        raise InputError("no contig has an input label: there is nothing to learn from.")
    if embeddings is None:
        vectors = load_teacher(teacher).embed(contigs)
    else:
        missing = [c for c in contigs.ids if c not in embeddings.index]
        if missing:
            raise InputError(f"{len(missing)} contig(s) have no teacher embedding: "
                             f"{preview(missing)}; embed these contigs first.")
        vectors = embeddings.loc[contigs.ids].to_numpy(np.float32, copy=True)
    # overwrite: the vectors are this run's largest array and are not used again.
    return fit_soft_labels(contigs.ids, vectors, labels, tree, n_neighbours=n_neighbours,
                           seed=seed, overwrite=True)


def distill(contigs, taxonomy, soft_labels, counts=None, min_support=1.0,
            min_length=DEFAULT_MIN_LENGTH, config=None):
    """Train the student on the noisy labels (hard) and the teacher's soft labels."""
    release_large_blocks()
    contigs = _usable(contigs, min_length)
    lineages, support = _labels(contigs, taxonomy)
    if isinstance(soft_labels, pd.DataFrame):
        soft_frame = soft_labels
    else:
        soft_frame = soft_labels.to_frame()
    unknown = set(soft_frame["feature-id"].astype(str)) - set(contigs.ids)
    if unknown and len(unknown) == soft_frame["feature-id"].nunique():
        raise InputError(f"none of the soft labels belong to these contigs (e.g. "
                         f"{preview(sorted(unknown))}): were they made from other contigs?")
    taxa = [parse_lineage(t) for t in soft_frame["taxon"].unique()]
    tree = TaxonomyTree.from_lineages(list(lineages) + taxa)
    soft = SoftLabels.from_frame(soft_frame, tree=tree, ids=contigs.ids)
    labels = encode_labels(tree, lineages, support, min_support)
    depth, samples = _depth(contigs, counts)
    spec = FeatureSpec(samples=samples)
    raw = spec.raw_features(contigs, depth)
    return Student.fit(contigs.ids, raw, spec, labels, soft, tree, config or StudentConfig())


def _outcomes(inputs, decisions):
    """Counts of how each corrected lineage relates to its input lineage."""
    counts = {"kept": 0, "extended": 0, "cut back": 0, "changed": 0}
    for before, decision in zip(inputs, decisions):
        after = decision.lineage
        if tuple(before) == tuple(after):
            counts["kept"] += 1
        elif all(a is None or a == b for a, b in zip(after, before)):
            counts["cut back"] += 1
        elif all(b is None or a == b for a, b in zip(after, before)):
            counts["extended"] += 1
        else:
            counts["changed"] += 1
    return counts


def correct(student, contigs, counts=None, taxonomy=None, confidence=0.7,
            n_neighbours=DEFAULT_GENOME_NEIGHBOURS, min_support=1.0,
            min_length=DEFAULT_MIN_LENGTH):
    """A lineage and its confidence for every input contig (QIIME Taxon/Confidence table).

    With `taxonomy` (the input labels), each input label is kept, changed or cut on the
    evidence of its genome neighbourhood (see `correction`); without it, the student's
    neighbourhood-averaged prediction is cut at the deepest rank reaching `confidence`."""
    release_large_blocks()
    scored = _usable(contigs, min_length)
    if student.spec.samples is not None:
        if counts is None:
            raise InputError(
                "this student was trained with abundance; give the read counts of samples "
                f"{preview(student.spec.samples)} to correct with it.")
        names = [str(c) for c in counts.columns]
        if sorted(names) != sorted(student.spec.samples):
            missing = [s for s in student.spec.samples if s not in names]
            extra = [s for s in names if s not in student.spec.samples]
            raise InputError(
                "the read counts have other samples than the student was trained on: "
                f"missing {preview(missing) or 'none'}, unexpected {preview(extra) or 'none'}.")
        counts = counts[student.spec.samples]
    elif counts is not None:
        report("correction", message="this student was trained without abundance; "
                                     "the read counts are not used")
        counts = None
    depth, _ = _depth(scored, counts)
    raw = student.spec.raw_features(scored, depth)
    probabilities = student.predict_proba(scored.ids, raw)
    rows = neighbourhood(student.spec.neighbour_space(raw), n_neighbours)
    if taxonomy is not None:
        # Labels of contigs too short to score are kept as they are, not "unknown IDs".
        in_scored = taxonomy.index.astype(str).isin(set(scored.ids))
        lineages, support = _labels(scored, taxonomy[in_scored])
        labels = encode_labels(student.tree, lineages, support, min_support)
        unknown = [c for c, lineage, codes in zip(scored.ids, lineages, labels.codes)
                   if any(name is not None and code < 0 for name, code in zip(lineage, codes))]
        if unknown:
            report("correction", message=f"{len(unknown)} contig(s) have input labels whose "
                                         f"taxa the student was not trained on; they are "
                                         f"judged as unlabelled: {preview(unknown)}")
        evidence = label_evidence(labels, probabilities, rows)
        decisions, _ = decide(evidence, student.tree, labels.codes, confidence)
        outcomes = _outcomes(lineages, decisions)
        report("correction", message="input labels " + ", ".join(
            f"{k}: {v}" for k, v in outcomes.items()))
    else:
        report("correction", message="no input taxonomy: lineages come from the student alone")
        decisions = decode(smooth(probabilities, rows), student.tree, confidence)
    result = pd.DataFrame(
        {"Taxon": [d.taxon for d in decisions],
         "Confidence": [round(d.confidence, 4) for d in decisions]},
        index=pd.Index(scored.ids, name="Feature ID"))
    unscored = [c for c in contigs.ids if c not in result.index]
    if unscored:
        fallback = pd.DataFrame({"Taxon": "Unassigned", "Confidence": np.nan},
                                index=pd.Index(unscored, name="Feature ID"))
        if taxonomy is not None:
            known = taxonomy.reindex(unscored)
            fallback["Taxon"] = known["Taxon"].fillna("Unassigned").map(_normalised)
            if "Confidence" in known.columns:
                fallback["Confidence"] = pd.to_numeric(known["Confidence"], errors="coerce")
        result = pd.concat([result, fallback]).reindex(contigs.ids)
        result.index.name = "Feature ID"
    changed = None
    if taxonomy is not None:
        before = taxonomy["Taxon"].reindex(result.index).fillna("Unassigned")
        changed = int((before.map(_normalised) != result["Taxon"]).sum())
    report("correction", message=f"{len(result)} contigs labelled, {len(unscored)} kept their "
                                 f"input label" + (f", {changed} labels changed" if changed is not None else ""))
    return result
