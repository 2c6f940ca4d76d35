"""The teacher: contig sequences -> embeddings -> principal components (the soft labels' input).

- `teachers`: the built-in `composition` teacher (k-mer spectra), the language-model teacher,
  `load_teacher(spec)` and `Embeddings` (stored embeddings, memory-mapped);
- `language_model`: the Hugging Face causal-LM embedder (GenomeOcean), loaded locally;
- `projection`: standardised principal components, fitted and applied in row blocks;
- `sharded_embedding` and `parsl_embedding`: embedding at cluster scale (shards on one node's
  GPUs, under torchrun, or as parsl tasks on many nodes), whose command line is this package's
  `__main__`: `python -m q2_taxdistill.engine.teacher --help`.

Importing this package loads neither transformers nor parsl: each is
imported where it is used.
"""
from .teachers import (  # noqa: F401
    COMPOSITION, CompositionTeacher, Embeddings, LanguageModelTeacher, SpectraRows, load_teacher)
