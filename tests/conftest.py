import importlib.resources

import numpy as np
import pandas as pd
import pytest

from q2_taxdistill.engine import workflow
from q2_taxdistill.engine.sequences import Contigs
from q2_taxdistill.engine.student import StudentConfig

# The student the tests share: trained in seconds, and well enough that the correction beats the
# input labels of the example (tests/test_workflow.py, tests/test_correction.py).
FAST = StudentConfig(n_folds=3, max_epochs=15, patience=3)


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


# Teaching and training on the example are what most of the suite's time went to: every module
# that needs them shares these (once per session, or per worker under pytest-xdist). Tests that
# need other soft labels or another student (a subset, other options) still make their own.
# Nothing may change them: they are read-only for the tests that take them.

@pytest.fixture(scope="session")
def example_soft(example):
    """`teach` on the example with its defaults (composition teacher): a SoftLabels."""
    return workflow.teach(example["contigs"], example["taxonomy"])


@pytest.fixture(scope="session")
def example_student(example, example_soft):
    """`distill` on the example, its soft labels and read counts, with FAST."""
    return workflow.distill(example["contigs"], example["taxonomy"], example_soft.to_frame(),
                            example["counts"], config=FAST)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A tiny GenomeOcean-like language model (tests/test_language_model.py builds it), saved
    once; skips the tests that need it where the [teacher] extra is not installed."""
    pytest.importorskip("transformers")
    pytest.importorskip("tokenizers")
    from tests.test_language_model import build_tiny_model
    return build_tiny_model(tmp_path_factory.mktemp("tiny-genomeocean"))


def random_dna(n, seed=0):
    rng = np.random.default_rng(seed)
    return "".join(rng.choice(list("ACGT"), size=n))


# `make test` runs the files in two pytest-xdist processes (--dist loadfile): the longest start
# first, so that none is left running alone at the end. The rest keep their order.
SLOW_FIRST = ["test_tutorial.py", "test_wheel.py", "test_sharded_embedding.py", "test_plugin.py"]


def pytest_collection_modifyitems(items):
    order = {name: i for i, name in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: order.get(item.path.name, len(order)))
