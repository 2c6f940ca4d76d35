import importlib.resources

import numpy as np
import pandas as pd
import pytest

from q2_taxdistill.engine.sequences import Contigs


def example_path(name):
    return str(importlib.resources.files("q2_taxdistill") / "data" / "example" / name)


@pytest.fixture(scope="session")
def example():
    """The bundled synthetic example: contigs, noisy labels, truth and read counts."""
    contigs = Contigs.from_fasta(example_path("contigs.fna"))
    taxonomy = pd.read_csv(example_path("taxonomy.tsv"), sep="\t", index_col=0)
    truth = pd.read_csv(example_path("truth.tsv"), sep="\t", index_col=0)
    counts = pd.read_csv(example_path("counts.tsv"), sep="\t", index_col=0)
    return {"contigs": contigs, "taxonomy": taxonomy, "truth": truth, "counts": counts}


def random_dna(n, seed=0):
    rng = np.random.default_rng(seed)
    return "".join(rng.choice(list("ACGT"), size=n))
