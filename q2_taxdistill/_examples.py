"""Usage examples on the bundled synthetic example data (executed by the test suite)."""
import importlib.resources

import pandas as pd
from q2_taxdistill._framework import framework


def _example_file(name):
    return str(importlib.resources.files("q2_taxdistill") / "data" / "example" / name)


def _contigs():
    return framework.Artifact.import_data("FeatureData[Sequence]", _example_file("contigs.fna"))


def _taxonomy():
    return framework.Artifact.import_data("FeatureData[Taxonomy]", _example_file("taxonomy.tsv"))


def _abundance():
    counts = pd.read_csv(_example_file("counts.tsv"), sep="\t", index_col=0)
    return framework.Artifact.import_data("FeatureTable[Frequency]", counts.T.astype(float))


def _inputs(use, abundance=False):
    contigs = use.init_artifact("contigs", _contigs)
    taxonomy = use.init_artifact("taxonomy", _taxonomy)
    if not abundance:
        return contigs, taxonomy
    return contigs, taxonomy, use.init_artifact("abundance", _abundance)


def _action(use, action_id, outputs, **inputs):
    return use.action(use.UsageAction(plugin_id="taxdistill", action_id=action_id),
                      use.UsageInputs(**inputs), use.UsageOutputNames(**outputs))


def embed(use):
    contigs = use.init_artifact("contigs", _contigs)
    embeddings, = _action(use, "embed", {"embeddings": "embeddings"},
                          contigs=contigs, teacher="composition")
    embeddings.assert_output_type("FeatureData[Embeddings]")


def teach(use):
    contigs, taxonomy = _inputs(use)
    soft_labels, = _action(use, "teach", {"soft_labels": "soft_labels"},
                           contigs=contigs, taxonomy=taxonomy, teacher="composition")
    soft_labels.assert_output_type("FeatureData[SoftLabels]")


def _student(use):
    """teach then distill on the example: the steps that distill and correct-taxonomy share."""
    contigs, taxonomy, abundance = _inputs(use, abundance=True)
    soft_labels, = _action(use, "teach", {"soft_labels": "soft_labels"},
                           contigs=contigs, taxonomy=taxonomy)
    student, = _action(use, "distill", {"student": "student"}, contigs=contigs,
                       taxonomy=taxonomy, soft_labels=soft_labels, abundance=abundance)
    return contigs, taxonomy, abundance, student


def distill(use):
    *_, student = _student(use)
    student.assert_output_type("StudentModel")


def correct_taxonomy(use):
    contigs, taxonomy, abundance, student = _student(use)
    corrected, = _action(use, "correct_taxonomy", {"corrected_taxonomy": "corrected_taxonomy"},
                         student=student, contigs=contigs, abundance=abundance,
                         taxonomy=taxonomy)
    corrected.assert_output_type("FeatureData[Taxonomy]")


def refine_taxonomy(use):
    contigs, taxonomy, abundance = _inputs(use, abundance=True)
    soft_labels, student, corrected = _action(
        use, "refine_taxonomy",
        {"soft_labels": "soft_labels", "student": "student",
         "corrected_taxonomy": "corrected_taxonomy"},
        contigs=contigs, taxonomy=taxonomy, abundance=abundance, teacher="composition")
    corrected.assert_output_type("FeatureData[Taxonomy]")
