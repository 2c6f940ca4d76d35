"""The QIIME 2 plugin: every registration lives here, the behaviour lives in the engine."""
import importlib

import qiime2.plugin
from q2_types.feature_data import FeatureData

import q2_taxdistill
from q2_taxdistill import _formats, _types

plugin = qiime2.plugin.Plugin(
    name="taxdistill",
    version=q2_taxdistill.__version__,
    website="https://github.com/q2-taxdistill/q2-taxdistill",
    package="q2_taxdistill",
    description=(
        "Correct noisy taxonomic labels of metagenomic contigs (from MMseqs2, Kraken2, "
        "BLAST or q2-annotate) by distilling a teacher (a genomic language model such as "
        "GenomeOcean, or a built-in k-mer composition teacher) into a small, fast student "
        "network on contig composition and multi-sample abundance."
    ),
    short_description="Contig taxonomy correction by knowledge distillation.",
    citations=qiime2.plugin.Citations.load("citations.bib", package="q2_taxdistill"),
)

# --- types and formats ---
plugin.register_semantic_types(_types.SoftLabels, _types.Embeddings, _types.StudentModel)
plugin.register_formats(
    _formats.SoftLabelsFormat, _formats.SoftLabelsDirectoryFormat,
    _formats.EmbeddingsDirectoryFormat,
    _formats.StudentModelConfigFormat, _formats.SafetensorsFormat,
    _formats.StudentModelDirectoryFormat,
    _formats.MMseqs2LCAFormat, _formats.MMseqs2LCADirectoryFormat,
)


def _register_artifact_class(semantic_type, directory_format, description):
    """register_artifact_class (QIIME 2 >= 2023.5) or the older two-call API of 2022.11."""
    if hasattr(plugin, "register_artifact_class"):
        plugin.register_artifact_class(semantic_type, directory_format=directory_format,
                                       description=description)
    else:
        plugin.register_semantic_type_to_format(semantic_type, artifact_format=directory_format)


_register_artifact_class(
    FeatureData[_types.SoftLabels], _formats.SoftLabelsDirectoryFormat,
    "Per-contig, per-rank probability distributions over taxa from the teacher, "
    "with the teacher's confidence.")
_register_artifact_class(
    FeatureData[_types.Embeddings], _formats.EmbeddingsDirectoryFormat,
    "One embedding vector per contig from a teacher model.")
_register_artifact_class(
    _types.StudentModel, _formats.StudentModelDirectoryFormat,
    "A trained student network (safetensors weights + JSON description).")

# --- actions (lead) ---

# --- visualizers ---

importlib.import_module("q2_taxdistill._transformers")
