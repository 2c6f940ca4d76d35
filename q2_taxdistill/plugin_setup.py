"""The QIIME 2 plugin: every registration lives here, the behaviour lives in the engine."""
import importlib

from q2_taxdistill._framework import plugin_api
from q2_types.feature_data import FeatureData

import q2_taxdistill
from q2_taxdistill import _formats, _kraken2, _types
from q2_taxdistill.engine.parameters import PARAMETERS

citations = plugin_api.Citations.load("citations.bib", package="q2_taxdistill")

plugin = plugin_api.Plugin(
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
    citations=[citations["taxdistill2026"], citations["bolyen2019"]],
)

# --- types and formats ---
plugin.register_semantic_types(_types.SoftLabels, _types.Embeddings, _types.StudentModel)
plugin.register_formats(
    _formats.SoftLabelsFormat, _formats.SoftLabelsDirectoryFormat,
    _formats.SoftLabelTaxaFormat, _formats.SoftLabelArrayFormat,
    _formats.SoftLabelsArraysDirectoryFormat,
    _formats.EmbeddingsDirectoryFormat,
    _formats.StudentModelConfigFormat, _formats.SafetensorsFormat,
    _formats.StudentModelDirectoryFormat,
    _formats.MMseqs2LCAFormat, _formats.MMseqs2LCADirectoryFormat,
    _formats.ContigsFASTAFormat,
    _kraken2.Kraken2ContigOutputFormat, _kraken2.Kraken2ContigReportFormat,
    _kraken2.Kraken2ContigsDirectoryFormat,
)


def _register_artifact_class(semantic_type, directory_format, description):
    """register_artifact_class (QIIME 2 >= 2023.5) or the older two-call API of 2022.11."""
    if hasattr(plugin, "register_artifact_class"):
        plugin.register_artifact_class(semantic_type, directory_format=directory_format,
                                       description=description)
    else:
        plugin.register_semantic_type_to_format(semantic_type, artifact_format=directory_format)


_register_artifact_class(
    FeatureData[_types.SoftLabels], _formats.SoftLabelsArraysDirectoryFormat,
    "The teacher's most probable taxa (up to 3) per contig and rank with their "
    "probabilities and the teacher's confidence, stored as arrays.")
_register_artifact_class(
    FeatureData[_types.Embeddings], _formats.EmbeddingsDirectoryFormat,
    "One embedding vector per contig from a teacher model.")
_register_artifact_class(
    _types.StudentModel, _formats.StudentModelDirectoryFormat,
    "A trained student network (safetensors weights + JSON description).")

# --- contig inputs: FeatureData[Sequence], plus the contig types of newer q2-types (2024+)
# where they import; their files are concatenated into one FASTA (see _transformers) ---
from q2_types.feature_data import BLAST6, Sequence, Taxonomy  # noqa: E402

CONTIG_INPUTS = FeatureData[Sequence]
CONTIG_COLLECTION_FORMATS = []
try:
    from q2_types.per_sample_sequences import Contigs as _SampleContigs, ContigSequencesDirFmt
    from q2_types.sample_data import SampleData
except ImportError:
    pass
else:
    CONTIG_INPUTS = CONTIG_INPUTS | SampleData[_SampleContigs]
    CONTIG_COLLECTION_FORMATS.append(ContigSequencesDirFmt)
try:
    from q2_types.feature_data_mag import MAG, MAGSequencesDirFmt
except ImportError:
    pass
else:
    CONTIG_INPUTS = CONTIG_INPUTS | FeatureData[MAG]
    CONTIG_COLLECTION_FORMATS.append(MAGSequencesDirFmt)

# --- actions (lead) ---
Choices, Float, Int, Range, Str = (plugin_api.Choices, plugin_api.Float, plugin_api.Int,
                                   plugin_api.Range, plugin_api.Str)
from q2_types.feature_table import FeatureTable, Frequency  # noqa: E402

from q2_taxdistill import _actions, _examples, _pipeline  # noqa: E402

_CONTIGS = {"contigs": "Assembled contigs (nucleotide FASTA). IUPAC codes are accepted "
                       "(non-ACGT bases are treated as N; a contig with fewer than min_length "
                       "A/C/G/T bases is not scored and keeps its input label). Lowercase "
                       "(soft-masked) FASTA imports with `qiime tools import --type "
                       "'FeatureData[Sequence]' --input-format MixedCaseDNAFASTAFormat`, "
                       "which uppercases it. Where the installed q2-types "
                       "has them, SampleData[Contigs] (all samples' contigs; IDs must be unique "
                       "across samples) and FeatureData[MAG] (the contigs of all bins) are "
                       "accepted too."}
_TAXONOMY = {"taxonomy": "Noisy contig labels from a similarity search (MMseqs2, Kraken2 via "
                         "q2-annotate, BLAST...). A numeric Confidence column, when present, is "
                         "read as the label's support (MMseqs2's fraction of agreeing fragments)."}
_HITS = {"hits": "The contigs' best hits from the similarity search behind the labels "
                 "(optional; BLAST6 columns: MMseqs2 easy-taxonomy's _tophit_aln, mmseqs "
                 "convertalis, BLAST -outfmt 6, DIAMOND --outfmt 6; several rows per contig, "
                 "identities as percent or MMseqs2's 0-1 fident). Their identity tells a "
                 "strain of a reference species (above species_identity) from a novel "
                 "species named after its sibling (below it), which labels cannot. Import a "
                 "file with `qiime tools import --type 'FeatureData[BLAST6]' --input-format "
                 "BLAST6Format`."}
_REFERENCE = {"reference_taxonomy": "The taxonomy of the database the hits were searched "
                                    "against (optional, with hits; target IDs as in the hits' "
                                    "second column, e.g. the reference taxonomy of "
                                    "q2-feature-classifier or the database's taxonomy "
                                    "table). A label that stops above its contig's best "
                                    "target's lineage, naming nothing the target "
                                    "contradicts, is extended to it where the contig aligns "
                                    "at species_identity or above: lowest-common-ancestor "
                                    "labels stop at the family when hits to two genera tie "
                                    "at E-value 0 although one aligns better."}
_ABUNDANCE = {"abundance": "Read counts of the contigs (features) in each sample. Contigs of one "
                           "genome share a profile across samples, which the student uses."}
def _qiime_type(p):
    """The QIIME 2 type of an engine parameter, its range included."""
    if p.kind is str:
        return Str % Choices(*p.choices) if p.choices else Str
    base = Int if p.kind is int else Float
    if p.low is None and p.high is None:
        return base
    return base % Range(p.low, p.high, inclusive_start=not p.low_open,
                        inclusive_end=p.high is not None and not p.high_open)


_PARAMS = {name: p.description for name, p in PARAMETERS.items()}
_PARAM_TYPES = {name: _qiime_type(p) for name, p in PARAMETERS.items()}


def _parameters(*names, **types):
    """An action's `parameters` and `parameter_descriptions` from the two tables above, so a
    parameter shared by several actions is typed and described once; `types` overrides."""
    return {"parameters": {n: types.get(n, _PARAM_TYPES[n]) for n in names},
            "parameter_descriptions": {n: _PARAMS[n] for n in names}}


plugin.methods.register_function(
    function=_actions.embed,
    inputs={"contigs": CONTIG_INPUTS},
    **_parameters("teacher", "min_length", "device"),
    outputs=[("embeddings", FeatureData[_types.Embeddings])],
    input_descriptions=_CONTIGS,
    output_descriptions={"embeddings": "One teacher embedding per contig."},
    name="Embed contigs with a teacher",
    description=("Embed contigs once (e.g. with GenomeOcean on a GPU) and re-use the embeddings "
                 "in 'teach' on any machine. device: 'auto' picks a GPU when one is present."),
    citations=[citations["genomeocean2025"], citations["taxdistill2026"]],
    examples={"embed_composition": _examples.embed},
)

plugin.methods.register_function(
    function=_actions.teach,
    inputs={"contigs": CONTIG_INPUTS, "taxonomy": FeatureData[Taxonomy],
            "embeddings": FeatureData[_types.Embeddings]},
    **_parameters("teacher", "n_neighbours", "min_support", "min_length", "seed"),
    outputs=[("soft_labels", FeatureData[_types.SoftLabels])],
    input_descriptions={**_CONTIGS, **_TAXONOMY,
                        "embeddings": "Teacher embeddings from 'embed'; when given, no teacher "
                                      "model is run and 'teacher' is ignored."},
    output_descriptions={"soft_labels": "Per contig and rank, the teacher's probabilities of "
                                        "the most likely taxa and its confidence."},
    name="Teach: soft labels from a teacher",
    description=("Embed contigs with the teacher and turn the noisy labels into cross-fitted "
                 "soft labels: each contig's distribution comes from the labels of its most "
                 "similar other contigs (leave-one-out), never from its own label, so wrong "
                 "labels can be overturned."),
    citations=[citations["taxdistill2026"], citations["genomeocean2025"]],
    examples={"teach_composition": _examples.teach},
)

plugin.methods.register_function(
    function=_actions.distill,
    inputs={"contigs": CONTIG_INPUTS, "taxonomy": FeatureData[Taxonomy],
            "soft_labels": FeatureData[_types.SoftLabels], "abundance": FeatureTable[Frequency]},
    **_parameters("alpha", "temperature", "n_folds", "max_epochs", "patience", "hidden",
                  "min_support", "min_length", "seed", "threads"),
    outputs=[("student", _types.StudentModel)],
    input_descriptions={**_CONTIGS, **_TAXONOMY,
                        "soft_labels": "Soft labels from 'teach' for these contigs.",
                        **_ABUNDANCE},
    output_descriptions={"student": "The trained student (a cross-fitted ensemble of small "
                                    "networks on TNF, length and abundance)."},
    name="Distill: train the student",
    description=("Train a small network on tetranucleotide frequencies, contig length and (when "
                 "read counts are given) the co-abundance profile, on the noisy labels and the "
                 "teacher's soft labels (distillation loss), cross-fitted over folds, with "
                 "early stopping and per-rank temperature calibration."),
    citations=[citations["taxdistill2026"], citations["taxometer2024"]],
    examples={"distill_with_abundance": _examples.distill},
)

plugin.methods.register_function(
    function=_actions.correct_taxonomy,
    inputs={"student": _types.StudentModel, "contigs": CONTIG_INPUTS,
            "abundance": FeatureTable[Frequency], "taxonomy": FeatureData[Taxonomy],
            "hits": FeatureData[BLAST6], "reference_taxonomy": FeatureData[Taxonomy]},
    **_parameters("confidence", "genome_neighbours", "min_support", "min_length",
                  "species_identity"),
    outputs=[("corrected_taxonomy", FeatureData[Taxonomy])],
    input_descriptions={"student": "A student from 'distill'.", **_CONTIGS,
                        "abundance": "Read counts of the contigs in the same samples the "
                                     "student was trained on (required if it used abundance).",
                        "taxonomy": "The input labels (recommended): each is kept, changed or "
                                    "cut on the evidence of the contig's genome neighbourhood, "
                                    "and contigs the student cannot score (too short) keep "
                                    "them. Without it, lineages come from the student alone "
                                    "and such contigs become Unassigned.",
                        **_HITS, **_REFERENCE},
    output_descriptions={"corrected_taxonomy": "Every input contig's corrected lineage with the "
                                               "Confidence of its deepest rank: the share of "
                                               "the evidence that supports it."},
    name="Correct contig taxonomy with a student",
    description=("Judge every contig's input label on the evidence of its genome "
                 "neighbourhood (nearest contigs in composition and co-abundance space): their "
                 "input labels and the student's predictions. Top-down, an input name is kept "
                 "while at least half of the evidence supports it, changed (or a missing rank "
                 "filled) only when another taxon reaches 'confidence', and cut otherwise, so "
                 "weak evidence never costs a label."),
    citations=[citations["taxdistill2026"]],
    examples={"correct_taxonomy": _examples.correct_taxonomy},
)

plugin.pipelines.register_function(
    function=_pipeline.refine_taxonomy,
    inputs={"contigs": CONTIG_INPUTS, "taxonomy": FeatureData[Taxonomy],
            "abundance": FeatureTable[Frequency], "embeddings": FeatureData[_types.Embeddings],
            "hits": FeatureData[BLAST6], "reference_taxonomy": FeatureData[Taxonomy]},
    **_parameters("teacher", "n_neighbours", "min_support", "alpha", "temperature", "n_folds",
                  "max_epochs", "confidence", "genome_neighbours", "min_length",
                  "species_identity", "seed", "threads"),
    outputs=[("soft_labels", FeatureData[_types.SoftLabels]),
             ("student", _types.StudentModel),
             ("corrected_taxonomy", FeatureData[Taxonomy])],
    input_descriptions={**_CONTIGS, **_TAXONOMY, **_ABUNDANCE,
                        "embeddings": "Teacher embeddings from 'embed' (optional).", **_HITS,
                        **_REFERENCE},
    output_descriptions={"soft_labels": "The teacher's soft labels.",
                         "student": "The trained student.",
                         "corrected_taxonomy": "The corrected taxonomy of every input contig."},
    name="Refine contig taxonomy (teach, distill, correct)",
    description=("The whole TaxDistill workflow in one step: teach -> distill -> "
                 "correct-taxonomy, each recorded in provenance."),
    citations=[citations["taxdistill2026"], citations["taxometer2024"], citations["mmseqs2"]],
    examples={"refine_taxonomy": _examples.refine_taxonomy},
)

# --- Kraken2 contig results from q2-annotate (a q2-types with the Kraken2 types; not 2022.11);
# a plain kraken2 --output + --report pair imports with Kraken2ContigsDirectoryFormat ---
try:
    from q2_types.kraken2 import (Kraken2OutputDirectoryFormat, Kraken2Outputs,
                                  Kraken2ReportDirectoryFormat, Kraken2Reports)
    from q2_types.sample_data import SampleData as _SampleData
except ImportError:
    KRAKEN2_TYPES = False
else:
    KRAKEN2_TYPES = True
    plugin.methods.register_function(
        function=_kraken2.kraken2_action(Kraken2ReportDirectoryFormat,
                                         Kraken2OutputDirectoryFormat),
        inputs={"reports": _SampleData[Kraken2Reports % plugin_api.Properties("contigs")],
                "outputs": _SampleData[Kraken2Outputs % plugin_api.Properties("contigs")]},
        parameters={},
        outputs=[("taxonomy", FeatureData[Taxonomy])],
        input_descriptions={
            "reports": "Kraken2 reports of contigs, e.g. from q2-annotate classify-kraken2 on "
                       "SampleData[Contigs]: their taxonomy trees give the lineages.",
            "outputs": "The Kraken2 outputs of the same run (one line per contig): the taxid "
                       "and k-mer LCA mapping of each contig."},
        parameter_descriptions={},
        output_descriptions={
            "taxonomy": "One lineage per contig from the report's taxonomy (Unassigned for "
                        "unclassified contigs), with Kraken2's confidence score as Confidence: "
                        "the share of the contig's unambiguous k-mers in the assigned taxon's "
                        "clade."},
        name="Contig taxonomy from Kraken2 outputs and reports",
        description=(
            "Turn q2-annotate's per-contig Kraken2 results into the FeatureData[Taxonomy] "
            "that teach, distill, correct-taxonomy and refine-taxonomy take. Each sample's "
            "output is read with that sample's report; contig IDs must be unique across "
            "samples. The Confidence is Kraken2's own score (the share of the contig's k-mers "
            "in the clade); the correction reads it on its own scale (see min_support)."),
        citations=[citations["kraken2"]],
        examples={"kraken2_to_taxonomy": _examples.kraken2_to_taxonomy},
    )

# --- MAGs: taxonomy and contamination from the contigs' labels (engine/mags.py). Bins are a
# metadata column everywhere, and q2-mag's FeatureMap[MAGtoContigs] where q2-types has it; the
# contamination table is ImmutableMetadata where q2-types has it, else our MAGContamination ---
from q2_taxdistill import _mags  # noqa: E402

try:
    from q2_types.feature_map import FeatureMap, MAGtoContigs
except ImportError:
    MAG_MAP = None
else:
    MAG_MAP = FeatureMap[MAGtoContigs]
try:
    from q2_types.metadata import ImmutableMetadata
except ImportError:
    plugin.register_semantic_types(_mags.MAGContamination)
    plugin.register_formats(_mags.MAGContaminationFormat, _mags.MAGContaminationDirectoryFormat)
    _register_artifact_class(
        _mags.MAGContamination, _mags.MAGContaminationDirectoryFormat,
        "Per MAG: its taxonomy, size, labelled share and contamination per rank (a QIIME 2 "
        "metadata table).")
    for _transformer in _mags.TRANSFORMERS:
        plugin.register_transformer(_transformer)
    CONTAMINATION = _mags.MAGContamination
else:
    CONTAMINATION = ImmutableMetadata

_MAG_INPUTS = {"taxonomy": FeatureData[Taxonomy], "contigs": CONTIG_INPUTS}
_MAG_INPUT_DESCRIPTIONS = {
    "taxonomy": "Contig labels, best the corrected taxonomy from refine-taxonomy or "
                "correct-taxonomy. Its Confidence (the support of each label's deepest rank, "
                "in [0, 1]; empty: trusted) weighs the contig's vote at that rank.",
    "contigs": "The binned contigs (their lengths in bp weigh the vote). Where the installed "
               "q2-types has them, SampleData[Contigs] and FeatureData[MAG] are accepted too.",
}
_MAG_PARAMETERS = {"bins": plugin_api.MetadataColumn[plugin_api.Categorical],
                   "majority": _PARAM_TYPES["majority"]}
_MAG_PARAMETER_DESCRIPTIONS = {
    "bins": "Contig ID -> bin (MAG) ID, one column of a metadata file whose IDs are the contig "
            "IDs (declare it '#q2:types categorical' when the bin IDs are numbers). Contigs "
            "without a bin are not used." + (
                "" if MAG_MAP else " This QIIME 2's q2-types has no FeatureMap[MAGtoContigs] "
                "(q2-mag's binning output), so the bins are given this way."),
    "majority": _PARAMS["majority"],
}
if MAG_MAP is not None:
    _MAG_INPUTS["mag_map"] = MAG_MAP
    _MAG_INPUT_DESCRIPTIONS["mag_map"] = (
        "MAG ID -> its contig IDs, from q2-mag binning (e.g. bin-contigs-metabat); give this "
        "or bins.")

plugin.methods.register_function(
    function=_mags.classify_mags_action(MAG_MAP is not None),
    inputs=_MAG_INPUTS,
    parameters=_MAG_PARAMETERS,
    outputs=[("mag_taxonomy", FeatureData[Taxonomy]), ("contamination", CONTAMINATION)],
    input_descriptions=_MAG_INPUT_DESCRIPTIONS,
    parameter_descriptions=_MAG_PARAMETER_DESCRIPTIONS,
    output_descriptions={
        "mag_taxonomy": "One lineage per MAG (IDs: the bin IDs), with Confidence = the share "
                        "of the MAG's labelled bp whose labels back its deepest rank named.",
        "contamination": "Per MAG: lineage, deepest rank, Confidence, contigs, bp, labelled bp "
                         "share, the reference lineage contamination is judged against (the "
                         "name, continued below it where one taxon outweighs the rest) and "
                         "the rank it is judged to, contamination at each rank (share of the "
                         "labelled bp whose label names, with Confidence >= 0.7, another "
                         "taxon at that rank or above, or one where the MAG is a new taxon; "
                         "empty below the judged rank) and at the judged rank, flagged "
                         "contigs. A metadata table: 'qiime metadata tabulate' (q2-metadata) "
                         "shows it, 'qiime tools export' writes it as TSV.",
    },
    name="MAG taxonomy and contamination from contig labels",
    description=(
        "Name each MAG by a top-down vote of its own contigs, weighted by length and label "
        "confidence: a rank is named when one taxon has more than 'majority' of the vote of "
        "the contigs that agree with the name so far, so a few stray contigs leave the name "
        "standing (strict LCA would drop it) and a MAG whose contigs mostly name no species "
        "gets none. The contigs whose confident labels (Confidence >= 0.7) conflict with the "
        "MAG's lineage, continued below its name where one taxon outweighs the rest, measure "
        "its contamination. No reference database or marker genes; summarize-mags shows the "
        "flagged contigs."),
    citations=[citations["taxdistill2026"]],
    examples={"classify_mags": _examples.classify_mags},
)

# --- visualizers ---
_visualizers = importlib.import_module("q2_taxdistill._visualizers")

plugin.visualizers.register_function(
    function=_visualizers.evaluate_taxonomy,
    inputs={"predictions": plugin_api.List[FeatureData[Taxonomy]],
            "truth": FeatureData[Taxonomy]},
    parameters={"names": plugin_api.List[plugin_api.Str]},
    input_descriptions={
        "predictions": "One or more contig taxonomies to score, e.g. the MMseqs2 labels and "
                       "their corrected version. A numeric Confidence column, when present, "
                       "gives the F1-versus-confidence-threshold curves.",
        "truth": "The true taxonomy of the contigs. Only contigs listed here are scored; at "
                 "each rank only those whose true lineage names that rank.",
    },
    parameter_descriptions={
        "names": "A distinct name for each taxonomy in `predictions`, in the same order, "
                 "used in the tables and plots. Default: 'taxonomy 1', 'taxonomy 2', ...",
    },
    name="Evaluate contig taxonomies against a truth",
    description=(
        "Per-rank precision, recall and F1 of one or more taxonomies against a known truth, "
        "counted as correct, wrong or unlabelled per contig as in the Taxometer and TaxDistill "
        "benchmarks, with stacked outcome bars, F1 per rank, F1 against a confidence threshold "
        "and a downloadable table."),
    citations=[citations["taxometer2024"], citations["taxdistill2026"]],
    examples={"evaluate_input_labels": _examples.evaluate_taxonomy},
)

plugin.visualizers.register_function(
    function=_visualizers.summarize_soft_labels,
    inputs={"soft_labels": FeatureData[_types.SoftLabels],
            "taxonomy": FeatureData[Taxonomy]},
    parameters={},
    input_descriptions={
        "soft_labels": "The teacher's per-rank probabilities and confidences for the contigs.",
        "taxonomy": "The input (noisy) taxonomy of the contigs that the teacher was trained on.",
    },
    parameter_descriptions={},
    name="Summarize the teacher's soft labels",
    description=(
        "Per rank: the distribution of the teacher's confidence, how often its most probable "
        "taxon contradicts the input label, and which input taxa it would relabel most often."),
    citations=[citations["taxdistill2026"]],
    examples={"summarize_soft_labels": _examples.summarize_soft_labels},
)


plugin.visualizers.register_function(
    function=_mags.summarize_mags_action(MAG_MAP is not None),
    inputs=_MAG_INPUTS,
    parameters=_MAG_PARAMETERS,
    input_descriptions=_MAG_INPUT_DESCRIPTIONS,
    parameter_descriptions=_MAG_PARAMETER_DESCRIPTIONS,
    name="Summarize MAG taxonomy and contamination",
    description=(
        "The classify-mags vote as tables: per MAG its lineage, Confidence, contamination and "
        "bp by taxon at the rank where it splits (its first conflicting rank, or where the "
        "vote stopped), sortable by any column; and every flagged contig with its label and "
        "its MAG's lineage."),
    citations=[citations["taxdistill2026"]],
    examples={"summarize_mags": _examples.summarize_mags},
)

importlib.import_module("q2_taxdistill._transformers")
