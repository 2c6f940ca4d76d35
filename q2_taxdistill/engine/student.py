"""The student: a small network on contig composition (+ co-abundance) distilled from the teacher.

Inputs per contig: TNF (136 canonical tetramer frequencies), log length and, when read
counts are given, the normalised abundance profile across samples (see `abundance`). One
softmax head per rank over that rank's taxa plus an "unnamed" output, so the student can
say "genus X, species unknown" for a relative of the reference species.

Training is cross-fitted: contigs are split into `n_folds`; network f never sees fold f,
and predicts it. Each network minimises, per rank,

    alpha * CE(hard target) + (1 - alpha) * confidence * T^2 * KL(teacher_T || student_T)

where the hard target puts the label's trust (see `labels`) on the labelled taxon and the
rest on "unnamed", and teacher_T is the teacher distribution sharpened/softened by T.
Early stopping watches a held-out split of the training folds. The folds train side by side
(`StudentConfig.threads` workers, each torch on one intra-op thread, so every reduction runs
the same way): each fold draws its validation split, epoch orders and dropout masks from its
own generator, seeded from (seed, fold), and its network starts from weights drawn in fold
order before any training, so the result does not depend on the number of workers. The
workers are forked processes (Linux): a training step of these small layers is mostly
Python, so threads hold the GIL in turn (measured: 2 threads, CPU time = wall time, no
faster than one); a forked worker shares the inputs and targets copy-on-write and sends
back only its network's weights. An epoch is at most
`epoch_contigs` contigs, so training costs at most `max_epochs` such epochs per fold however
many contigs there are; predicting is linear in them. A per-rank temperature, fitted on the
out-of-fold predictions, calibrates the probabilities.
"""
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import List, Optional

import numpy as np

from . import __version__
from .abundance import abundance_features
from .errors import InputError, ModelLoadError, preview
from .kmers import N_TNF, tnf
from .labels import EncodedLabels
from .parameters import DEFAULTS, check
from .progress import report
from .soft_labels import SoftLabels
from .taxonomy import N_RANKS, RANKS, TaxonomyTree

FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


@dataclass
class StudentConfig:
    """The student's training settings; those users set (`parameters.PARAMETERS`) are checked."""
    hidden: int = DEFAULTS.hidden
    dropout: float = 0.2
    n_folds: int = DEFAULTS.n_folds
    alpha: float = DEFAULTS.alpha
    temperature: float = DEFAULTS.temperature
    max_epochs: int = DEFAULTS.max_epochs
    patience: int = DEFAULTS.patience
    batch_size: int = 256
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    validation_fraction: float = 0.1
    # At most this many contigs make an epoch (a fresh random draw each epoch) and judge
    # early stopping: more would repeat genomes already seen, so the updates (and the cost)
    # of training stop growing with the number of contigs.
    epoch_contigs: int = 50_000
    max_validation: int = 10_000
    seed: int = DEFAULTS.seed
    # Folds trained side by side (worker processes); 0: the processors this process may run
    # on that other work leaves free (`processors.free_processors`). Results do not depend on it, so it
    # is not stored with the model (`NOT_STORED`).
    threads: int = DEFAULTS.threads

    def __post_init__(self):
        check(hidden=self.hidden, n_folds=self.n_folds, alpha=self.alpha,
              temperature=self.temperature, max_epochs=self.max_epochs,
              patience=self.patience, seed=self.seed, threads=self.threads)


# How a student was trained, as stored with it: every StudentConfig field but `threads`
# (the same model comes out with any number of them).
NOT_STORED = ("threads",)


@dataclass
class FeatureSpec:
    """What the student reads and how it was normalised (stored with the model)."""

    samples: Optional[List[str]]
    mean: List[float] = field(default_factory=list)
    std: List[float] = field(default_factory=list)
    tnf: str = "136 canonical tetramer frequencies"

    def raw_features(self, sequences, depth):
        """Unnormalised inputs: TNF, log length (and abundance features when `samples`).
        `sequences`: a `Contigs` (streamed) or a list of strings."""
        composition = tnf(sequences, progress=lambda d, t: report("student: TNF", d, t))
        if hasattr(sequences, "lengths"):
            lengths = np.asarray(sequences.lengths, dtype=np.float32)
        else:
            lengths = np.array([len(s) for s in sequences], dtype=np.float32)
        parts = [composition, np.log(np.maximum(lengths, 1.0))[:, None]]
        if self.samples is not None:
            if depth is None:
                raise InputError(
                    "this student was trained with abundance from samples "
                    f"{preview(self.samples)}; give the read counts of the same samples.")
            parts.append(abundance_features(np.asarray(depth, dtype=np.float64)))
        return np.concatenate(parts, axis=1).astype(np.float32)

    def normalise(self, raw):
        return (raw - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)

    @property
    def tnf_columns(self):
        return slice(0, N_TNF)

    @property
    def profile_columns(self):
        """The abundance profile's columns of `raw_features` (after TNF and log length)."""
        return slice(N_TNF + 1, N_TNF + 1 + len(self.samples or ()))

    @property
    def depth_columns(self):
        """The log-depth column of `raw_features` (after the profile)."""
        start = self.profile_columns.stop
        return slice(start, start + 1)


def min_student_contigs(n_folds):
    """Labelled contigs a cross-fitted student needs: two per fold (one to train on, one to
    stop early on, in every other fold)."""
    return 2 * n_folds


class Student:
    """A fold ensemble of `StudentNetwork`s with the taxonomy and feature spec they speak."""

    def __init__(self, tree, spec, config, networks, fold_of, temperatures, history=None,
                 untrained=None):
        self.tree = tree
        self.spec = spec
        self.config = config
        self.networks = networks
        self.fold_of = fold_of
        self.temperatures = temperatures
        self.history = history or []
        # Why no network was trained (too little data); such a student keeps input labels.
        self.untrained = untrained

    @classmethod
    def without_training(cls, tree, spec, config, reason):
        """A student that learnt nothing because the input was too small (`reason`):
        correcting with it keeps every input label."""
        return cls(tree, spec, config, [], {}, [1.0] * N_RANKS, untrained=str(reason))

    @property
    def n_classes(self):
        return [self.tree.n_classes(r) for r in range(N_RANKS)]

    @classmethod
    def fit(cls, ids, raw_features, spec: FeatureSpec, labels: EncodedLabels,
            soft: Optional[SoftLabels], tree: TaxonomyTree, config=None):
        config = config or StudentConfig()
        n = len(ids)
        if n < min_student_contigs(config.n_folds):
            raise InputError(f"{n} labelled contigs are too few to train a student with "
                             f"{config.n_folds} folds (need at least {min_student_contigs(config.n_folds)}).")
        spec.mean = raw_features.mean(0).tolist()
        std = raw_features.std(0)
        spec.std = np.where(std > 1e-8, std, 1.0).tolist()
        from .student_network import fit_networks

        n_classes = [tree.n_classes(r) for r in range(N_RANKS)]
        networks, fold, temperatures, history = fit_networks(
            spec.normalise(raw_features), labels, soft, n_classes, config)
        fold_of = {c: int(k) for c, k in zip(ids, fold)}
        return cls(tree, spec, config, networks, fold_of, temperatures, history)

    def predict_proba(self, ids, raw_features):
        """Per rank (n, C_r + 1) calibrated probabilities, last column = unnamed.

        A contig the student was trained on is predicted only by the network that never saw
        its label (cross-fitting); any other contig by the mean of all networks."""
        from .student_network import predict_proba

        folds = np.array([self.fold_of.get(c, -1) for c in ids])
        return predict_proba(self.networks, self.spec.normalise(
            np.asarray(raw_features, np.float32)), folds, self.temperatures, self.n_classes)

    def save_pretrained(self, path):
        from safetensors.torch import save_file

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        tensors = {f"fold{f}.{k}": v.contiguous() for f, net in enumerate(self.networks)
                   for k, v in net.state_dict().items()}
        save_file(tensors, str(path / WEIGHTS_FILE))
        ids = list(self.fold_of)
        config = {
            "format_version": FORMAT_VERSION,
            "architecture": {"name": "StudentNetwork", "n_inputs": len(self.spec.mean),
                             "n_classes": self.n_classes, "hidden": self.config.hidden,
                             "dropout": self.config.dropout, "n_folds": len(self.networks),
                             "outputs": "per rank: taxa of that rank, then 'unnamed'"},
            "taxonomy": self.tree.to_dict(),
            "features": asdict(self.spec),
            "calibration": {"temperatures": dict(zip(RANKS, self.temperatures))},
            "training": {"parameters": {k: v for k, v in asdict(self.config).items()
                                        if k not in NOT_STORED},
                         "history": self.history,
                         "contigs": ids, "folds": [self.fold_of[c] for c in ids],
                         "untrained": self.untrained},
            "versions": _versions(),
        }
        (path / CONFIG_FILE).write_text(json.dumps(config, indent=1))

    @classmethod
    def from_pretrained(cls, path):
        from safetensors.torch import load_file

        from .student_network import StudentNetwork

        path = Path(path)
        try:
            config = json.loads((path / CONFIG_FILE).read_text())
            tensors = load_file(str(path / WEIGHTS_FILE))
        except (OSError, ValueError) as error:
            raise ModelLoadError(f"cannot read a student model from {path}: {error}") from None
        if config.get("format_version") != FORMAT_VERSION:
            raise ModelLoadError(f"student model format {config.get('format_version')!r} "
                                 f"is not supported (expected {FORMAT_VERSION}).")
        arch = config["architecture"]
        tree = TaxonomyTree.from_dict(config["taxonomy"])
        spec = FeatureSpec(**config["features"])
        params = StudentConfig(**config["training"]["parameters"])
        networks = []
        for f in range(arch["n_folds"]):
            net = StudentNetwork(arch["n_inputs"], arch["n_classes"], arch["hidden"], arch["dropout"])
            prefix = f"fold{f}."
            net.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
            net.eval()
            networks.append(net)
        training = config["training"]
        fold_of = dict(zip(training["contigs"], training["folds"]))
        temperatures = [config["calibration"]["temperatures"][r] for r in RANKS]
        return cls(tree, spec, params, networks, fold_of, temperatures, training.get("history"),
                   untrained=training.get("untrained"))


def _versions():
    import torch

    return {"q2_taxdistill": __version__, "torch": torch.__version__.split("+")[0],
            "numpy": np.__version__}
