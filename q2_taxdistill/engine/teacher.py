"""Teachers turn contig sequences into embeddings; soft labels are fitted on those.

- `composition`: canonical k-mer spectra, k = 1..6 (2,772 dimensions), no weights, runs
  anywhere. It sees sequence only, like a language model, so the student (which adds
  co-abundance) still learns something the teacher could not.
- a language model (GenomeOcean or any Hugging Face causal DNA LM), loaded from a local
  directory or the local Hugging Face cache; see `language_model`.
"""
import difflib
import os

import numpy as np

from .errors import ModelLoadError
from .kmers import kmer_spectra
from .progress import report

COMPOSITION = "composition"


class CompositionTeacher:
    name = COMPOSITION
    ks = (1, 2, 3, 4, 5, 6)

    def describe(self):
        return {"teacher": self.name, "features": "canonical k-mer frequencies",
                "k": list(self.ks)}

    def embed(self, sequences):
        def progress(done, total):
            report("teacher: k-mer spectra", done, total)
        return kmer_spectra(sequences, ks=self.ks, progress=progress)


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


def load_teacher(spec, device=None, token_budget=None):
    """`composition`, or a local model directory / Hugging Face id present in the local cache."""
    if str(spec).strip().lower() == COMPOSITION:
        return CompositionTeacher()
    if not os.path.exists(str(spec)) and difflib.get_close_matches(
            str(spec).strip().lower(), [COMPOSITION], n=1, cutoff=0.75):
        raise ModelLoadError(f"teacher {spec!r} is neither a model directory nor a known "
                             f"teacher; did you mean {COMPOSITION!r}?")
    return LanguageModelTeacher(spec, device=device, token_budget=token_budget)
