"""Teachers turn contig sequences into embeddings; soft labels are fitted on those.

- `composition`: canonical k-mer spectra, k = 1..6 (2,772 dimensions), no weights, runs
  anywhere. It sees sequence only, like a language model, so the student (which adds
  co-abundance) still learns something the teacher could not.
- a language model (GenomeOcean or any Hugging Face causal DNA LM), loaded from a local
  directory or the local Hugging Face cache; see `language_model`.
"""
import difflib
import os
from dataclasses import dataclass, field
from typing import List

import numpy as np
import pandas as pd

from ..errors import InputError, ModelLoadError, preview
from ..kmers import canonical_index, iter_kmer_spectra, kmer_spectra
from ..progress import report
from .projection import ArrayRows

COMPOSITION = "composition"


class CompositionTeacher:
    name = COMPOSITION
    ks = (1, 2, 3, 4, 5, 6)

    def describe(self):
        return {"teacher": self.name, "features": "canonical k-mer frequencies",
                "k": list(self.ks)}

    def embed(self, sequences):
        return kmer_spectra(sequences, ks=self.ks, progress=self._progress)

    def rows(self, contigs):
        """The spectra as a source of row blocks (see `projection`, which reports the
        progress), counted as they are read: 10^6 contigs never hold their 11 GB of spectra
        at once. The projection reads them twice (its fitting sample, then every row), so
        the sampled contigs are counted twice, time traded for that memory bound, except
        where every contig is in the sample and their spectra are small
        (`projection.KEEP_BYTES`): those are counted once."""
        return SpectraRows(contigs, self.ks)

    @staticmethod
    def _progress(done, total):
        report("teacher: k-mer spectra", done, total)


class SpectraRows:
    """k-mer spectra of `contigs`, block by block, as `projection` reads rows."""

    counted = True  # each pass counts them again (see `projection.KEEP_BYTES`)

    def __init__(self, contigs, ks):
        self.contigs = contigs
        self.ks = ks
        self.ids = list(contigs.ids)
        self.n_rows = len(contigs)
        self.n_columns = sum(canonical_index(k)[1] for k in ks)

    def blocks(self, select=None):
        return iter_kmer_spectra(self.contigs, self.ks, select=select)


@dataclass
class Embeddings:
    """Stored teacher embeddings (`embed`'s output): `ids`, `values` (n, d), an array or a
    memory map read a block of rows at a time, and the `teacher` that made them."""

    ids: List[str]
    values: np.ndarray
    teacher: dict = field(default_factory=dict)

    @classmethod
    def from_frame(cls, frame):
        """From a table indexed by contig ID (one column per dimension)."""
        return cls([str(i) for i in frame.index], frame.to_numpy(np.float32),
                   dict(frame.attrs.get("teacher") or {}))

    def rows(self, ids):
        """The rows of `ids`, in that order, as a source of row blocks; InputError names
        contigs without an embedding."""
        positions = pd.Index(self.ids).get_indexer(list(ids))
        if (positions < 0).any():
            missing = [c for c, p in zip(ids, positions) if p < 0]
            raise InputError(f"{len(missing)} contig(s) have no teacher embedding: "
                             f"{preview(missing)}; embed these contigs first.")
        return ArrayRows(self.values, rows=positions, ids=list(ids))


class LanguageModelTeacher:
    """A causal DNA language model; the embedding is the masked mean of its last hidden state."""

    def __init__(self, spec, device=None, token_budget=None):
        from .language_model import LanguageModelEmbedder

        def progress(done, total):
            report("teacher: embedding windows", done, total)

        self.spec = str(spec)
        self.embedder = LanguageModelEmbedder.from_pretrained(
            self.spec, device=device, token_budget=token_budget, progress=progress)
        self.name = self.spec

    def describe(self):
        info = {"teacher": self.name, "pooling": "masked mean of the last hidden state"}
        describe = getattr(self.embedder, "describe", None)
        if describe is not None:
            info.update(describe())
        return info

    def embed(self, sequences):
        seqs = sequences.sequences if hasattr(sequences, "iter_sequences") else list(sequences)
        return np.asarray(self.embedder.embed(seqs), dtype=np.float32)

    def rows(self, contigs):
        """The embeddings (computed once, in memory) as a source of row blocks."""
        return ArrayRows(self.embed(contigs), ids=list(contigs.ids))


def load_teacher(spec, device=None, token_budget=None):
    """`composition`, or a local model directory / Hugging Face id present in the local cache."""
    if str(spec).strip().lower() == COMPOSITION:
        return CompositionTeacher()
    if not os.path.exists(str(spec)) and difflib.get_close_matches(
            str(spec).strip().lower(), [COMPOSITION], n=1, cutoff=0.75):
        raise ModelLoadError(f"teacher {spec!r} is neither a model directory nor a known "
                             f"teacher; did you mean {COMPOSITION!r}?")
    return LanguageModelTeacher(spec, device=device, token_budget=token_budget)
