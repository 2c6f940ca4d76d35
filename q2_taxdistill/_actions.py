"""Thin QIIME 2 actions: convert views to engine inputs, call the engine, convert back."""
import time
from contextlib import contextmanager

import pandas as pd

from ._formats import ContigsFASTAFormat
from .engine import workflow
from .engine.errors import InputError
from .engine.parameters import DEFAULTS as D
from .engine.progress import report, reporting, stderr_reporter
from .engine.sequences import Contigs
from .engine.soft_labels import SoftLabels
from .engine.student import Student, StudentConfig
from .engine.teacher import Embeddings


@contextmanager
def _progress(step):
    """Progress lines on stderr (q2cli shows them with --verbose, tests capture them), from
    `step: started` to `step: finished in N s`."""
    start = time.monotonic()
    with reporting(stderr_reporter()):
        report(step, message="started")
        yield
        report(step, message=f"finished in {time.monotonic() - start:.0f} s")


def _contigs(contigs):
    """Streamed: only IDs and lengths stay in memory; features are computed contig by contig."""
    return Contigs.from_fasta(str(contigs), stream=True)


def _counts(abundance):
    """FeatureTable[Frequency] (samples x contigs) -> contigs x samples read counts."""
    if abundance is None:
        return None
    if abundance.shape[1] == 0:
        raise InputError("the abundance table has no features (contigs).")
    return abundance.T.astype(float)


def embed(contigs: ContigsFASTAFormat, teacher: str = D.teacher, min_length: int = D.min_length,
          device: str = D.device) -> pd.DataFrame:
    with _progress("embed"):
        return workflow.embed(_contigs(contigs), teacher=teacher, min_length=min_length,
                              device=None if device == "auto" else device)


def teach(contigs: ContigsFASTAFormat, taxonomy: pd.DataFrame, embeddings: Embeddings = None,
          teacher: str = D.teacher, n_neighbours: int = D.n_neighbours, min_support: float = D.min_support,
          min_length: int = D.min_length, seed: int = D.seed) -> SoftLabels:
    with _progress("teach"):
        return workflow.teach(_contigs(contigs), taxonomy, teacher=teacher, embeddings=embeddings,
                              n_neighbours=n_neighbours, min_support=min_support,
                              min_length=min_length, seed=seed)


def distill(contigs: ContigsFASTAFormat, taxonomy: pd.DataFrame, soft_labels: SoftLabels,
            abundance: pd.DataFrame = None, alpha: float = D.alpha,
            temperature: float = D.temperature, n_folds: int = D.n_folds,
            max_epochs: int = D.max_epochs, patience: int = D.patience, hidden: int = D.hidden,
            min_support: float = D.min_support, min_length: int = D.min_length,
            seed: int = D.seed, threads: int = D.threads) -> Student:
    config = StudentConfig(alpha=alpha, temperature=temperature, n_folds=n_folds,
                           max_epochs=max_epochs, patience=patience, hidden=hidden, seed=seed,
                           threads=threads)
    with _progress("distill"):
        return workflow.distill(_contigs(contigs), taxonomy, soft_labels, _counts(abundance),
                                min_support=min_support, min_length=min_length, config=config)


def correct_taxonomy(student: Student, contigs: ContigsFASTAFormat, abundance: pd.DataFrame = None,
                     taxonomy: pd.DataFrame = None, confidence: float = D.confidence,
                     genome_neighbours: int = D.genome_neighbours, min_support: float = D.min_support,
                     min_length: int = D.min_length, hits: pd.DataFrame = None,
                     species_identity: float = D.species_identity,
                     reference_taxonomy: pd.DataFrame = None) -> pd.DataFrame:
    with _progress("correct-taxonomy"):
        return workflow.correct(student, _contigs(contigs), _counts(abundance), taxonomy,
                                confidence=confidence, n_neighbours=genome_neighbours,
                                min_support=min_support, min_length=min_length, hits=hits,
                                species_identity=species_identity,
                                reference_taxonomy=reference_taxonomy)
