"""Every user-facing parameter: its default, its range and its description, in one place.

The engine's functions take their defaults from `DEFAULTS` and check what they are given
(`check`), so a call from Python (a notebook, a benchmark, a GPU machine without QIIME 2)
meets the same bounds as a QIIME 2 action; the QIIME 2 layer derives each parameter's type,
range, default and help text from `PARAMETERS` (as q2-feature-classifier derives its
signature from the estimator, and scikit-learn checks `_parameter_constraints` in `fit`).
"""
import math
from dataclasses import dataclass
from typing import Optional, Tuple

from .errors import InputError


@dataclass(frozen=True)
class Parameter:
    default: object
    kind: type
    description: str
    low: Optional[float] = None
    high: Optional[float] = None
    low_open: bool = False
    high_open: bool = False
    choices: Tuple[str, ...] = ()

    def bounds(self):
        """The allowed values in words, e.g. '(0, 1]' or 'auto, cpu or cuda'."""
        if self.choices:
            return ", ".join(self.choices[:-1]) + " or " + self.choices[-1]
        low = "-inf" if self.low is None else f"{self.low:g}"
        high = "inf" if self.high is None else f"{self.high:g}"
        closed = self.high is not None and not self.high_open
        return f"{'(' if self.low_open else '['}{low}, {high}{']' if closed else ')'}"

    def check(self, name, value):
        if self.kind is str:
            ok = isinstance(value, str) and (not self.choices or value in self.choices)
        elif self.kind is int:
            ok = isinstance(value, (int,)) and not isinstance(value, bool)
        else:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) \
                and math.isfinite(value)
        if ok and self.kind is not str:
            ok = (self.low is None or (value > self.low if self.low_open else value >= self.low)) \
                and (self.high is None or (value < self.high if self.high_open
                                           else value <= self.high))
        if not ok:
            kind = {int: "an integer", float: "a number", str: "a string"}[self.kind]
            allowed = f"one of {self.bounds()}" if self.choices else f"{kind} in {self.bounds()}"
            raise InputError(f"{name} must be {allowed}; got {value!r}.")


PARAMETERS = {
    "teacher": Parameter(
        "composition", str,
        "Teacher: 'composition' (canonical k-mer spectra, k=1..6, no model weights, runs on a "
        "CPU) or a local directory / locally cached Hugging Face id of a causal DNA language "
        "model such as GenomeOcean (e.g. pGenomeOcean/GenomeOcean-500M). Models are never "
        "downloaded at run time."),
    "n_neighbours": Parameter(
        50, int,
        "Number of nearest contigs (in teacher-embedding space) whose labels vote for a "
        "contig's soft label; its own label never does. Above 20,000 contigs the nearest are "
        "found approximately (faiss), ~98% of them exactly.", low=1),
    "genome_neighbours": Parameter(
        20, int,
        "Number of nearest contigs (composition + co-abundance) that, spread one to three "
        "averaging steps along the neighbour graph (fewer in small inputs), form a contig's "
        "genome neighbourhood in the correction. Their input labels, with the student's "
        "prediction, decide whether a contig's label is kept, changed or cut. Contigs of one "
        "genome share composition and abundance, so a small number keeps genomes apart even "
        "in small assemblies and next to sister strains. Names of taxa with fewer than "
        "2 x (genome_neighbours + 1) contigs are kept as they came. 0 judges each contig on "
        "its own label and the student alone.", low=0),
    "min_support": Parameter(
        0.0, float,
        "A label's Confidence is read as its support: the share of the contig that backs its "
        "deepest name (MMseqs2's agreeing fragments, Kraken2's k-mers in the clade). On the "
        "input's own scale (relative to the median support of labels of that rank) it weighs "
        "the label's vote there, so a genome whose labels mostly back a name keeps it even "
        "when many of its contigs carry a few fragments of relatives, as real strains do. A "
        "label whose support is below min_support gives its deepest rank no vote; 0 (the "
        "default) never withdraws one. Labels without a Confidence are trusted.",
        low=0.0, high=1.0),
    "min_length": Parameter(
        1000, int,
        "Contigs shorter than this (bp), or with fewer A/C/G/T bases than this (the rest N), "
        "are not scored and keep their input label and confidence.", low=1),
    "seed": Parameter(0, int, "Random seed; results are deterministic for a given seed."),
    "alpha": Parameter(
        0.5, float,
        "Weight of the hard (input) labels in the student's loss; 1 - alpha weighs the "
        "teacher's soft labels.", low=0.0, high=1.0),
    "temperature": Parameter(
        2.0, float, "Distillation temperature applied to teacher and student distributions.",
        low=0.1, high=20.0),
    "n_folds": Parameter(
        5, int,
        "Cross-fitting folds: each contig is predicted by a network that never saw its own "
        "label; 3 trains faster. With fewer than 2 labelled contigs per fold no network is "
        "trained and correcting with the student keeps every input label.", low=2, high=20),
    "max_epochs": Parameter(
        25, int,
        "Maximum training epochs per fold (early stopping on a held-out split). An epoch is "
        "every training contig, or a fresh random 50,000 of them in larger inputs, so "
        "training time stops growing with the number of contigs.", low=1, high=1000),
    "patience": Parameter(3, int, "Epochs without validation improvement before a fold stops.",
                          low=1, high=100),
    "hidden": Parameter(128, int, "Width of the student's hidden layers.", low=8, high=4096),
    "threads": Parameter(
        0, int,
        "Worker processes training the student's folds side by side; 0: as many as the "
        "processors this process may use that other work leaves free. The same seed gives "
        "the same student with any number.", low=0),
    "confidence": Parameter(
        0.7, float,
        "With input labels: a label is changed, and a rank the input leaves unnamed is "
        "filled, only when the evidence (genome-neighbourhood labels + student) for the new "
        "taxon reaches this value; an input name is kept while at least half of the evidence "
        "supports it, and cut when less does. Without input labels: each lineage is cut at "
        "the deepest rank whose probability reaches it.", low=0.0, high=1.0, low_open=True),
    "device": Parameter(
        "auto", str,
        "Where the language-model teacher runs: auto (a GPU when present), cpu or cuda.",
        choices=("auto", "cpu", "cuda")),
    "species_identity": Parameter(
        95.0, float,
        "With hits: the best-hit identity (percent) at which a genome is as likely to be its "
        "nearest reference's species as not. A species name's votes are weighed by a "
        "logistic of the genome neighbourhood's identity around this value (1 point wide: "
        "97% keeps 0.88 of a vote, 93% 0.12); where the neighbour votes cannot judge a species "
        "name (its taxon's contigs are not cohesive) it falls below this value. 95 is the ANI species boundary (Jain et al. "
        "2018) for nucleotide hits; real strains at 93-96% to their reference lose their "
        "species more often than not, and sister species above it (some within the ANI "
        "boundary) keep it. Amino-acid identities (DIAMOND, MMseqs2 protein DBs) run on "
        "another scale: set it for them.", low=50.0, high=100.0),
    "majority": Parameter(
        0.5, float,
        "Share of the voting bp (the MAG's labelled contigs that agree with its name so far) "
        "that one taxon needs to name a rank. Above half: at most one taxon wins and more of "
        "the MAG backs it than not, the rule MMseqs2 and CAT use to name a contig from its "
        "fragments. 1 - majority is the foreign and unnamed share a name survives.",
        low=0.5, high=1.0, high_open=True),
}


class _Defaults:
    """`DEFAULTS.name` is `PARAMETERS[name].default`."""

    def __getattr__(self, name):
        try:
            return PARAMETERS[name].default
        except KeyError:
            raise AttributeError(name) from None


DEFAULTS = _Defaults()


def check(**values):
    """Raise `InputError` naming the first parameter outside its range (None: not given)."""
    for name, value in values.items():
        if value is not None:
            PARAMETERS[name].check(name, value)
