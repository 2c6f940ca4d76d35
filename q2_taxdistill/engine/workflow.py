"""The three steps of TaxDistill on plain Python inputs: teach, distill, correct.

The QIIME 2 actions are thin wrappers around these; a GPU machine without QIIME 2 can call
them directly. Inputs: `Contigs`, a taxonomy table (index = feature ID, column `Taxon`,
optional `Confidence`), read counts as a contigs x samples table.
"""

import numpy as np
import pandas as pd

from .abundance import depth_from_counts
from .correction import (decide, decode, genome_steps, judged_ranks, label_evidence,
                         neighbour_space, neighbourhood, refute_species, smooth,
                         weigh_species_by_identity)
from .errors import InputError, preview
from .hits import best_hits, extend_by_hits, genome_identity
from .parameters import DEFAULTS, check
from .labels import encode_labels
from .memory import release_large_blocks
from .progress import notice, report
from .soft_labels import SoftLabels, fit_soft_labels
from .student import FeatureSpec, Student, StudentConfig, min_student_contigs
from .taxonomy import (
    N_RANKS, TaxonomyTree, format_lineage, parse_lineage, parse_taxonomy, skips_ranks)
from .teacher import Embeddings, load_teacher



def _normalised(taxon):
    return format_lineage(parse_lineage(taxon))


def _usable(contigs, min_length, required=False):
    """Contigs with enough sequence to judge: at least `min_length` unambiguous bases (A, C,
    G, T; k-mers and models read nothing else). The rest are not scored and keep their
    input label and confidence; the run says how many and why. When none is left the
    result is None (every input label is kept), an error only where a result needs
    contigs (`required`: embed)."""
    ids = np.asarray(contigs.ids, dtype=object)
    short, thin = contigs.unscored(min_length)
    if short.any():
        notice("input", f"{short.sum()} contig(s) shorter than {min_length} bp are not scored "
                        f"and keep their input label: {preview(ids[short])}")
    if thin.any():
        notice("input", f"{thin.sum()} contig(s) have fewer than {min_length} unambiguous bases "
                        f"(A, C, G, T; the rest is N or other IUPAC codes) and are not scored: "
                        f"they keep their input label: {preview(ids[thin])}")
    usable = ~(short | thin)
    if not usable.any():
        message = (f"no contig has at least {min_length} unambiguous bases (A, C, G, T): "
                   f"nothing can be scored; lower min_length")
        if required:
            raise InputError(message + ".")
        notice("input", message + " to score them; every contig keeps its input label")
        return None
    return contigs.subset(ids[usable].tolist()) if not usable.all() else contigs


def _id_style(ids, limit=3):
    return ", ".join(repr(str(i)) for i in list(ids)[:limit])


def _confidence(present):
    """The Confidence column as numbers (NaN where empty: unassigned); text is an error."""
    column = present["Confidence"]
    values = pd.to_numeric(column, errors="coerce")
    text = column.astype(str).str.strip()
    empty = column.isna() | text.isin(["", "nan", "NaN"])
    bad = values.isna() & ~empty
    if bad.any():
        rows = [f"{i}: {v!r}" for i, v in column[bad].items()]
        raise InputError(f"taxonomy Confidence must be a number in [0, 1] or empty; "
                         f"{bad.sum()} row(s) hold text: {preview(rows)}.")
    return values.to_numpy(np.float64)


def _labels(contigs, taxonomy, every=None):
    """Input lineages (7-tuples) and support aligned to `contigs`; counts what does not match.
    `every`: all input contig IDs (`contigs` may be the scored subset of them)."""
    if "Taxon" not in taxonomy.columns:
        raise InputError("the taxonomy table has no 'Taxon' column.")
    index = taxonomy.index.astype(str)
    if index.duplicated().any():
        raise InputError(f"the taxonomy has duplicated feature IDs: "
                         f"{preview(pd.unique(index[index.duplicated()]))}.")
    taxonomy = taxonomy.set_axis(index, axis=0)
    every = list(contigs.ids) if every is None else list(every)
    extra = index[~index.isin(every)]
    if len(index) and len(extra) == len(index):
        raise InputError(
            f"the contigs and the taxonomy have no feature IDs in common: contig IDs look like "
            f"{_id_style(every)}, taxonomy IDs like {_id_style(index)}. Label the contigs "
            f"that were searched (the same IDs in both).")
    if len(extra):
        notice("input", f"{len(extra)} taxonomy ID(s) are not among the contigs and are "
                        f"ignored: {preview(extra)}")
    unlabelled = [c for c in contigs.ids if c not in taxonomy.index]
    if unlabelled:
        notice("input", f"{len(unlabelled)} contig(s) have no input label and are treated "
                        f"as unlabelled: {preview(unlabelled)}")
    present = taxonomy.reindex(contigs.ids)
    taxa = present["Taxon"].where(present["Taxon"].notna(), "Unassigned")
    lineages = list(parse_taxonomy(taxa))
    skipping = [f"{c}: {t!r}" for c, t, lineage in zip(contigs.ids, taxa, lineages)
                if skips_ranks(lineage)]
    if skipping:
        notice("input", f"{len(skipping)} label(s) name a rank below an unnamed one and are "
                        f"kept as given (their taxa have no name at the skipped ranks): "
                        f"{preview(skipping, limit=3)}")
    support = np.full(len(contigs), np.nan)
    if "Confidence" in present.columns:
        support = _confidence(present)
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
        notice("input", f"{len(abundance.dropped)} contig(s) in the read counts are not "
                        f"scored and are ignored: {preview(abundance.dropped)}")
    return abundance.depth.to_numpy(), abundance.samples


def embed(contigs, teacher=DEFAULTS.teacher, min_length=DEFAULTS.min_length, device=None):
    """Teacher embeddings (contigs x dimensions) as a DataFrame indexed by contig ID."""
    check(teacher=teacher, min_length=min_length)
    release_large_blocks()
    contigs = _usable(contigs, min_length, required=True)
    model = load_teacher(teacher, device=device)
    vectors = model.embed(contigs)
    frame = pd.DataFrame(vectors, index=pd.Index(contigs.ids, name="feature-id"),
                         columns=[str(i) for i in range(vectors.shape[1])])
    frame.attrs["teacher"] = model.describe()
    return frame


def teach(contigs, taxonomy, teacher=DEFAULTS.teacher, embeddings=None,
          n_neighbours=DEFAULTS.n_neighbours, min_support=DEFAULTS.min_support,
          min_length=DEFAULTS.min_length, seed=DEFAULTS.seed, neighbour_search="auto"):
    """Cross-fitted soft labels for every scored contig (see `_usable`). `embeddings`: stored
    teacher embeddings (an `Embeddings` or a table indexed by contig ID) instead of running
    the teacher. `neighbour_search`: see `neighbours.nearest_neighbours`."""
    check(teacher=teacher, n_neighbours=n_neighbours, min_support=min_support,
          min_length=min_length, seed=seed)
    release_large_blocks()
    every = contigs.ids
    contigs = _usable(contigs, min_length)
    if contigs is None:  # no contig reaches min_length (said by _usable)
        return SoftLabels.empty([], TaxonomyTree.from_lineages([]))
    lineages, support = _labels(contigs, taxonomy, every)
    tree = TaxonomyTree.from_lineages(lineages)
    labels = encode_labels(tree, lineages, support, min_support)
    n_labelled = int((labels.codes >= 0).any(1).sum())
    if n_labelled == 0:
        raise InputError("no contig has an input label (among those scored): there is "
                         "nothing to learn from.")
    if len(contigs) < 2:
        notice("teacher", "a single scored contig has no other contig to vote for it: the soft "
                          "labels are empty (a student cannot be trained; correction keeps the "
                          "input label)")
        return SoftLabels.empty(contigs.ids, tree)
    if n_labelled <= n_neighbours:
        notice("teacher", f"only {n_labelled} labelled contig(s) for n_neighbours={n_neighbours}: "
                          f"each vote spans all the other labelled contigs, not the contig's "
                          f"genome; a local vote needs more than n_neighbours labelled contigs "
                          f"per genome")
    if embeddings is None:
        rows = load_teacher(teacher).rows(contigs)
    else:
        if isinstance(embeddings, pd.DataFrame):
            embeddings = Embeddings.from_frame(embeddings)
        rows = embeddings.rows(contigs.ids)
    return fit_soft_labels(contigs.ids, rows, labels, tree, n_neighbours=n_neighbours,
                           seed=seed, neighbour_search=neighbour_search)


def distill(contigs, taxonomy, soft_labels, counts=None, min_support=DEFAULTS.min_support,
            min_length=DEFAULTS.min_length, config=None):
    """Train the student on the noisy labels (hard) and the teacher's soft labels (a
    `SoftLabels` or its long table)."""
    check(min_support=min_support, min_length=min_length)
    release_large_blocks()
    every = contigs.ids
    contigs = _usable(contigs, min_length)
    config = config or StudentConfig()
    if contigs is None:  # no contig reaches min_length (said by _usable)
        return Student.without_training(
            TaxonomyTree.from_lineages([]), FeatureSpec(samples=None), config,
            f"no contig has at least {min_length} unambiguous bases (A, C, G, T)")
    lineages, support = _labels(contigs, taxonomy, every)
    if isinstance(soft_labels, pd.DataFrame):
        soft_labels = SoftLabels.from_frame(soft_labels)
    if len(soft_labels.ids) and not pd.Index(soft_labels.ids).isin(contigs.ids).any():
        raise InputError(f"none of the soft labels belong to these contigs (e.g. "
                         f"{preview(sorted(soft_labels.ids))}): were they made from other "
                         f"contigs?")
    taxa = [soft_labels.tree.lineage(r, j) for r in range(N_RANKS)
            for j in range(soft_labels.tree.n_classes(r))]
    tree = TaxonomyTree.from_lineages(list(lineages) + taxa)
    soft = soft_labels.aligned(contigs.ids, tree)
    labels = encode_labels(tree, lineages, support, min_support)
    n_labelled = int((labels.codes >= 0).any(1).sum())
    if n_labelled < min_student_contigs(config.n_folds):
        reason = (f"{n_labelled} labelled contig(s) were scored; a student with {config.n_folds} "
                  f"folds needs at least {min_student_contigs(config.n_folds)} (each fold "
                  f"trains on the others and stops early on a held-out part of them)")
        notice("student", f"{reason}: no network is trained and correcting with this student "
                          f"keeps every input label")
        return Student.without_training(tree, FeatureSpec(samples=None), config, reason)
    depth, samples = _depth(contigs, counts)
    spec = FeatureSpec(samples=samples)
    raw = spec.raw_features(contigs, depth)
    return Student.fit(contigs.ids, raw, spec, labels, soft, tree, config)


def _untrained(student, taxonomy):
    """Why this student cannot judge anything (it was not trained), or None."""
    if student.untrained is None:
        return None
    if taxonomy is None:
        raise InputError(f"this student was not trained ({student.untrained}); give the "
                         f"input taxonomy so its labels can be kept.")
    return f"the student was not trained: {student.untrained}"


def _input_labels(ids, taxonomy):
    """The input labels (normalised) and confidences of `ids`, for contigs kept as they came."""
    index = taxonomy.index.astype(str)
    known = taxonomy.set_axis(index, axis=0).reindex(ids)
    result = pd.DataFrame({"Taxon": known["Taxon"].fillna("Unassigned").map(_normalised),
                           "Confidence": np.nan}, index=pd.Index(ids, name="Feature ID"))
    if "Confidence" in known.columns:
        result["Confidence"] = _confidence(known)
    return result


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


def _extended(lineages, support, contig_hits, reference_taxonomy, boundary):
    """The input lineages extended by the hits' targets (`hits.extend_by_hits`); an extended
    label's support was the input's for a shallower name, so it is trusted fully."""
    if "Taxon" not in reference_taxonomy.columns:
        raise InputError("the reference taxonomy has no 'Taxon' column.")
    reference = dict(zip(reference_taxonomy.index.astype(str),
                         parse_taxonomy(reference_taxonomy["Taxon"].fillna("Unassigned"))))
    targets = {t for t in contig_hits.target if t is not None}
    if targets and targets.isdisjoint(reference):
        raise InputError(f"none of the hits' best targets are in the reference taxonomy "
                         f"(targets like {preview(sorted(targets))}, reference IDs like "
                         f"{preview(list(reference))}): give the taxonomy of the database "
                         f"that was searched.")
    lineages, extended, missing = extend_by_hits(lineages, contig_hits, reference, boundary)
    if missing:
        notice("correction", f"hits: {missing} contig(s) have a best target that is not in the "
                             f"reference taxonomy; their labels are not extended")
    report("correction", message=f"hits: {int(extended.sum())} label(s) that stop above their "
                                 f"best target's lineage are extended to it (identity >= "
                                 f"{boundary}%)")
    return lineages, np.where(extended, np.nan, support)


def correct(student, contigs, counts=None, taxonomy=None, confidence=DEFAULTS.confidence,
            n_neighbours=DEFAULTS.genome_neighbours, min_support=DEFAULTS.min_support,
            min_length=DEFAULTS.min_length, neighbour_search="auto", hits=None,
            species_identity=DEFAULTS.species_identity, reference_taxonomy=None):
    """A lineage and its confidence for every input contig (QIIME Taxon/Confidence table).

    With `taxonomy` (the input labels), each input label is kept, changed or cut on the
    evidence of its genome neighbourhood (see `correction`); without it, the student's
    neighbourhood-averaged prediction is cut at the deepest rank reaching `confidence`.
    `neighbour_search`: see `neighbours.nearest_neighbours`. `hits`: the contigs' search
    hits (BLAST6 columns, see `hits`): a species name's votes count as much as the genome
    neighbourhood's best-hit identity says the genome is that species (`species_identity`,
    percent). `reference_taxonomy`: the searched database's taxonomy (Taxon per target ID):
    with it, labels that stop above their best target's lineage are extended to it where the
    contig aligns at `species_identity` or above (`hits.extend_by_hits`)."""
    if reference_taxonomy is not None and hits is None:
        raise InputError("a reference taxonomy names the hits' targets; give the hits too.")
    check(confidence=confidence, genome_neighbours=n_neighbours, min_support=min_support,
          min_length=min_length, species_identity=species_identity)
    release_large_blocks()
    scored = _usable(contigs, min_length)
    if scored is None:  # no contig reaches min_length (said by _usable)
        if taxonomy is not None:
            return _input_labels(list(contigs.ids), taxonomy)
        return pd.DataFrame({"Taxon": "Unassigned", "Confidence": np.nan},
                            index=pd.Index(list(contigs.ids), name="Feature ID"))
    untrained = _untrained(student, taxonomy)
    if untrained:
        notice("correction", f"{untrained}: all {len(contigs)} input labels are kept")
        return _input_labels(list(contigs.ids), taxonomy)
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
    rows = neighbourhood(neighbour_space(student.spec, raw), n_neighbours, neighbour_search)
    if taxonomy is not None:
        # Labels of contigs too short to score are kept as they are, not "unknown IDs".
        in_scored = taxonomy.index.astype(str).isin(set(scored.ids))
        lineages, support = _labels(scored, taxonomy[in_scored])
        inputs = lineages
        if hits is not None:
            contig_hits = best_hits(hits, scored.ids, scored.lengths)
            if reference_taxonomy is not None:
                lineages, support = _extended(lineages, support, contig_hits,
                                              reference_taxonomy, species_identity)
        labels = encode_labels(student.tree, lineages, support, min_support)
        unknown = [c for c, lineage, codes in zip(scored.ids, lineages, labels.codes)
                   if any(name is not None and code < 0 for name, code in zip(lineage, codes))]
        if unknown:
            notice("correction", f"{len(unknown)} contig(s) have input labels naming taxa the "
                                 f"student was not trained on; those ranks are judged as "
                                 f"unlabelled: {preview(unknown)}")
        if hits is not None:
            identity = genome_identity(contig_hits, rows)
            weigh_species_by_identity(labels, identity, species_identity)
            below = np.isfinite(identity) & (identity < species_identity)
            report("correction", message=f"hits: {int(below.sum())} contig(s) lie in genome "
                                         f"neighbourhoods below {species_identity}% identity "
                                         f"to their nearest reference")
        judged, why = judged_ranks(lineages, rows.shape[1] - 1, labels.codes, rows)
        if why:
            notice("correction", why)
        standing = labels.codes
        if hits is not None:
            standing, refuted = refute_species(labels.codes, judged, identity, species_identity)
            if refuted:
                notice("correction", f"hits: {refuted} contig(s) not judged at species lose "
                                     f"their species name: their genome neighbourhood lies "
                                     f"below {species_identity}% identity to it")
        steps = genome_steps(lineages, rows.shape[1] - 1)
        report("correction", message=f"genome neighbourhoods: {rows.shape[1]} contigs, "
                                     f"{steps} averaging step(s)")
        evidence = label_evidence(labels, probabilities, rows, steps=steps)
        decisions, _ = decide(evidence, student.tree, standing, confidence,
                              judged_ranks=judged,
                              checked_ranks=(N_RANKS - 1,) if hits is not None else ())
        notice("correction", "input labels of the scored contigs: " + ", ".join(
            f"{v} {k}" for k, v in _outcomes(inputs, decisions).items()))
    else:
        report("correction", message="no input taxonomy: lineages come from the student alone")
        if hits is not None:
            notice("correction", "the hits weigh the input labels' species names; without "
                                 "an input taxonomy they are not used")
        decisions = decode(smooth(probabilities, rows), student.tree, confidence)
    result = pd.DataFrame(
        {"Taxon": [d.taxon for d in decisions],
         "Confidence": [round(d.confidence, 4) for d in decisions]},
        index=pd.Index(scored.ids, name="Feature ID"))
    unscored = [c for c in contigs.ids if c not in result.index]
    if unscored:
        if taxonomy is not None:
            fallback = _input_labels(unscored, taxonomy)
        else:
            fallback = pd.DataFrame({"Taxon": "Unassigned", "Confidence": np.nan},
                                    index=pd.Index(unscored, name="Feature ID"))
        result = pd.concat([result, fallback]).reindex(contigs.ids)
        result.index.name = "Feature ID"
    report("correction", message=f"{len(result)} contigs: {len(result) - len(unscored)} "
                                 f"judged, {len(unscored)} not scored"
                                 + (" (input label kept)" if taxonomy is not None else ""))
    return result
