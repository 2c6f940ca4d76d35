"""Usage examples on the bundled synthetic example data (executed by the test suite).

Each example runs one action: q2galaxy turns each into a self-contained Galaxy test, so
inputs that other actions would make (soft labels, a student) come from factories that
compute them with the engine on the bundled example, never from earlier actions.
"""
import functools
import importlib.resources
import shutil
import tempfile
from pathlib import Path

import pandas as pd
from q2_taxdistill._framework import framework
from q2_taxdistill.engine import workflow
from q2_taxdistill.engine.sequences import Contigs
from q2_taxdistill.engine.student import StudentConfig

# Small enough for a quick example and Galaxy test, the same engine code as the defaults.
_EXAMPLE_STUDENT = StudentConfig(n_folds=2, max_epochs=5)


def _example_file(name):
    return str(importlib.resources.files("q2_taxdistill") / "data" / "example" / name)


def _contigs():
    return framework.Artifact.import_data("FeatureData[Sequence]", _example_file("contigs.fna"))


def _taxonomy():
    return framework.Artifact.import_data("FeatureData[Taxonomy]", _example_file("taxonomy.tsv"))


def _truth():
    return framework.Artifact.import_data("FeatureData[Taxonomy]", _example_file("truth.tsv"))


def _counts():
    """Contigs x samples read counts, as the engine takes them."""
    return pd.read_csv(_example_file("counts.tsv"), sep="\t", index_col=0).astype(float)


def _abundance():
    return framework.Artifact.import_data("FeatureTable[Frequency]", _counts().T)


def _engine_inputs():
    contigs = Contigs.from_fasta(_example_file("contigs.fna"), stream=True)
    return contigs, _taxonomy().view(pd.DataFrame)


@functools.lru_cache(maxsize=1)
def _soft_label_frame():
    """What `teach` makes of the example with its defaults (computed once per process)."""
    contigs, taxonomy = _engine_inputs()
    return workflow.teach(contigs, taxonomy, teacher="composition").to_frame()


@functools.lru_cache(maxsize=1)
def _student_model():
    """What `distill` makes of the example and its soft labels (computed once per process)."""
    contigs, taxonomy = _engine_inputs()
    return workflow.distill(contigs, taxonomy, _soft_label_frame(), _counts(),
                            config=_EXAMPLE_STUDENT)


def _soft_labels():
    return framework.Artifact.import_data("FeatureData[SoftLabels]", _soft_label_frame())


def _student():
    return framework.Artifact.import_data("StudentModel", _student_model())


def _inputs(use, abundance=False):
    contigs = use.init_artifact("contigs", _contigs)
    taxonomy = use.init_artifact("taxonomy", _taxonomy)
    if not abundance:
        return contigs, taxonomy
    return contigs, taxonomy, use.init_artifact("abundance", _abundance)


def _action(use, action_id, output_names, /, **inputs):
    """Positional-only first arguments: an action may have an input named `outputs`."""
    return use.action(use.UsageAction(plugin_id="taxdistill", action_id=action_id),
                      use.UsageInputs(**inputs), use.UsageOutputNames(**output_names))


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


def distill(use):
    contigs, taxonomy, abundance = _inputs(use, abundance=True)
    soft_labels = use.init_artifact("soft_labels", _soft_labels)
    student, = _action(use, "distill", {"student": "student"}, contigs=contigs,
                       taxonomy=taxonomy, soft_labels=soft_labels, abundance=abundance,
                       n_folds=_EXAMPLE_STUDENT.n_folds, max_epochs=_EXAMPLE_STUDENT.max_epochs)
    student.assert_output_type("StudentModel")


def correct_taxonomy(use):
    contigs, taxonomy, abundance = _inputs(use, abundance=True)
    student = use.init_artifact("student", _student)
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
        contigs=contigs, taxonomy=taxonomy, abundance=abundance, teacher="composition",
        n_folds=_EXAMPLE_STUDENT.n_folds, max_epochs=_EXAMPLE_STUDENT.max_epochs)
    corrected.assert_output_type("FeatureData[Taxonomy]")


def evaluate_taxonomy(use):
    taxonomy = use.init_artifact("taxonomy", _taxonomy)
    truth = use.init_artifact("truth", _truth)
    evaluation, = _action(use, "evaluate_taxonomy", {"visualization": "evaluation"},
                          predictions=[taxonomy], names=["input"], truth=truth)
    evaluation.assert_output_type("Visualization")


def summarize_soft_labels(use):
    soft_labels = use.init_artifact("soft_labels", _soft_labels)
    taxonomy = use.init_artifact("taxonomy", _taxonomy)
    summary, = _action(use, "summarize_soft_labels", {"visualization": "soft_label_summary"},
                       soft_labels=soft_labels, taxonomy=taxonomy)
    summary.assert_output_type("Visualization")


def _kraken2_collection(kind, type_name):
    """The bundled Kraken2 run as q2-annotate stores it: one sample, `<sample>/<kind>.txt`."""
    with tempfile.TemporaryDirectory(prefix="taxdistill-kraken2-") as folder:
        sample = Path(folder) / "example"
        sample.mkdir()
        shutil.copy(_example_file(f"kraken2/{kind}.txt"), sample / f"{kind}.txt")
        return framework.Artifact.import_data(
            f"SampleData[{type_name} % Properties('contigs')]", folder)


def kraken2_to_taxonomy(use):
    reports = use.init_artifact("kraken2_reports",
                                lambda: _kraken2_collection("report", "Kraken2Report"))
    outputs = use.init_artifact("kraken2_outputs",
                                lambda: _kraken2_collection("output", "Kraken2Output"))
    taxonomy, = _action(use, "kraken2_to_taxonomy", {"taxonomy": "kraken2_taxonomy"},
                        reports=reports, outputs=outputs)
    taxonomy.assert_output_type("FeatureData[Taxonomy]")


@functools.lru_cache(maxsize=1)
def _corrected_frame():
    """What `correct-taxonomy` (the last step of refine-taxonomy) makes of the example."""
    contigs, taxonomy = _engine_inputs()
    return workflow.correct(_student_model(), contigs, _counts(), taxonomy)


def _corrected_taxonomy():
    return framework.Artifact.import_data("FeatureData[Taxonomy]", _corrected_frame())


def example_bins():
    """Small bins from the example, as a binner would leave them: one bin per genome (its
    true species, bin01 to bin12 in lineage order) and 4 stray contigs of bin12's genome
    (another phylum) in bin01."""
    truth = pd.read_csv(_example_file("truth.tsv"), sep="\t", index_col=0)["Taxon"]
    species = sorted(truth.unique())
    bins = truth.map({s: f"bin{i + 1:02d}" for i, s in enumerate(species)})
    bins[truth.index[truth == species[-1]][:4]] = "bin01"
    return bins.rename("bin")


def _bins():
    bins = example_bins()
    return framework.Metadata(bins.to_frame().rename_axis("id"))


def _mag_inputs(use):
    taxonomy = use.init_artifact("corrected_taxonomy", _corrected_taxonomy)
    contigs = use.init_artifact("contigs", _contigs)
    bins = use.init_metadata("bins", _bins)
    return taxonomy, contigs, use.get_metadata_column("bin", "bin", bins)


def classify_mags(use):
    taxonomy, contigs, bins = _mag_inputs(use)
    mag_taxonomy, contamination = _action(
        use, "classify_mags", {"mag_taxonomy": "mag_taxonomy", "contamination": "contamination"},
        taxonomy=taxonomy, contigs=contigs, bins=bins)
    mag_taxonomy.assert_output_type("FeatureData[Taxonomy]")


def summarize_mags(use):
    taxonomy, contigs, bins = _mag_inputs(use)
    summary, = _action(use, "summarize_mags", {"visualization": "mag_summary"},
                       taxonomy=taxonomy, contigs=contigs, bins=bins)
    summary.assert_output_type("Visualization")
