"""Neighbour graphs (exact and approximate) and the block-wise principal components."""
import numpy as np
import pytest

from q2_taxdistill.engine import neighbours
from q2_taxdistill.engine.errors import InputError
from q2_taxdistill.engine.neighbours import nearest_neighbours
from q2_taxdistill.engine.teacher.projection import ArrayRows, fit_projection, principal_components


def genomes(n, dims, n_genomes=60, seed=0):
    """Rows around genome centres of unequal size and spread, like contigs of a metagenome."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 2.0, (n_genomes, dims))
    sizes = rng.lognormal(0.0, 1.0, n_genomes)
    member = rng.choice(n_genomes, n, p=sizes / sizes.sum())
    spread = rng.uniform(0.5, 1.5, n_genomes)[member, None]
    return (centres[member] + rng.normal(0.0, 1.0, (n, dims)) * spread).astype(np.float32)


def brute_force(x, k):
    d = ((x[:, None, :].astype(np.float64) - x[None, :, :]) ** 2).sum(2)
    np.fill_diagonal(d, np.inf)
    return np.argsort(d, axis=1, kind="stable")[:, :k]


def recall(found, truth):
    return np.mean([len(set(a) & set(b)) / len(b) for a, b in zip(found, truth)])


def test_exact_graph_matches_brute_force_and_never_holds_the_row_itself():
    x = genomes(300, 8)
    found = nearest_neighbours(x, 7, method="exact")
    assert found.shape == (300, 7) and found.dtype == np.int64
    assert not (found == np.arange(300)[:, None]).any()
    assert recall(found, brute_force(x, 7)) == 1.0


@pytest.mark.parametrize("dims,k", [(64, 50), (150, 20)])
def test_approximate_graph_finds_the_exact_neighbours_on_dev_sized_data(dims, k):
    """The teacher's graph (64 components, 50 neighbours) and the correction's (~150
    dimensions, 20 neighbours) on 6,000 rows, a dev-sized input: recall@k >= 0.95."""
    x = genomes(6000, dims, seed=dims)
    exact = nearest_neighbours(x, k, method="exact")
    approximate = nearest_neighbours(x, k, method="approximate")
    assert approximate.shape == exact.shape
    assert not (approximate == np.arange(len(x))[:, None]).any()
    assert (np.sort(approximate, 1)[:, 1:] != np.sort(approximate, 1)[:, :-1]).all()
    assert recall(approximate, exact) >= 0.95


def test_approximate_graph_is_the_same_for_the_same_seed():
    x = genomes(3000, 16, seed=4)
    first = nearest_neighbours(x, 10, method="approximate", seed=3)
    assert np.array_equal(first, nearest_neighbours(x, 10, method="approximate", seed=3))


def test_auto_is_exact_for_small_inputs_and_approximate_above(monkeypatch):
    x = genomes(400, 8, seed=5)
    calls = []
    monkeypatch.setattr(neighbours, "_approximate", lambda *a: calls.append(a) or "ann")
    assert isinstance(nearest_neighbours(x, 5), np.ndarray) and not calls
    monkeypatch.setattr(neighbours, "EXACT_MAX_ROWS", 100)
    assert nearest_neighbours(x, 5) == "ann"


def test_duplicate_rows_and_tiny_inputs():
    x = np.zeros((30, 4), np.float32)  # every row at distance 0 from every other
    for method in ("exact", "approximate"):
        found = nearest_neighbours(x, 5, method=method)
        assert found.shape == (30, 5) and not (found == np.arange(30)[:, None]).any()
    assert nearest_neighbours(x[:1], 5).shape == (1, 0)
    assert nearest_neighbours(x[:3], 5, method="approximate").shape == (3, 2)
    with pytest.raises(ValueError, match="method must be one of"):
        nearest_neighbours(x, 5, method="fast")


def test_components_equal_an_in_memory_pca_block_by_block(monkeypatch):
    rng = np.random.default_rng(7)
    x = (genomes(5000, 40, seed=7) @ rng.normal(size=(40, 120))).astype(np.float32)
    x[:, 3] = 0.25  # a constant column is left out, not divided by zero
    monkeypatch.setattr("q2_taxdistill.engine.teacher.projection.BLOCK_ROWS", 700)
    z = principal_components(ArrayRows(x), 10)
    assert z.shape == (5000, 10) and z.dtype == np.float32
    std = x.std(0)
    standard = (x - x.mean(0)) / np.where(std > 1e-8, std, 1.0)
    _, _, vt = np.linalg.svd(standard.astype(np.float64), full_matrices=False)
    expected = standard @ vt[:10].T
    for j in range(10):  # the same components up to sign
        assert abs(np.corrcoef(z[:, j], expected[:, j])[0, 1]) > 0.999


def test_components_fitted_on_a_sample_span_the_same_space():
    x = genomes(8000, 30, seed=8)
    whole = fit_projection(ArrayRows(x), 5)
    sampled = fit_projection(ArrayRows(x), 5, fit_rows=2000)
    overlap = np.linalg.svd(whole.components.T @ sampled.components, compute_uv=False)
    assert overlap.min() > 0.95


def test_components_keep_distances_when_there_are_few_columns():
    x = genomes(500, 6, seed=9)
    z = principal_components(ArrayRows(x), 64)
    std = (x - x.mean(0)) / x.std(0)
    d = lambda a: ((a[:50, None] - a[None, :50]) ** 2).sum(2)
    assert z.shape == (500, 6) and np.allclose(d(z), d(std), rtol=1e-3, atol=1e-3)


def test_rows_in_another_order_and_bad_values_named():
    x = genomes(50, 4, seed=10)
    order = np.arange(50)[::-1]
    assert np.allclose(principal_components(ArrayRows(x, rows=order), 2),
                       principal_components(ArrayRows(x[order]), 2), atol=1e-5)
    x[7, 2] = np.nan
    ids = [f"c{i}" for i in range(50)]
    with pytest.raises(InputError, match="'c7'"):
        principal_components(ArrayRows(x, ids=ids), 2)


def test_spectra_counted_once_project_as_counted_twice(example, monkeypatch):
    """Where every contig is in the fitting sample, the projection reuses the spectra of the
    fitting pass: the components are the same, byte for byte, as counting them again."""
    from q2_taxdistill.engine import kmers
    from q2_taxdistill.engine.teacher import SpectraRows

    contigs = example["contigs"]
    calls = []
    count = kmers.iter_kmer_spectra
    monkeypatch.setattr("q2_taxdistill.engine.teacher.teachers.iter_kmer_spectra",
                        lambda *a, **k: calls.append(1) or count(*a, **k))
    once = principal_components(SpectraRows(contigs, (1, 2, 3, 4, 5, 6)), 16)
    assert len(calls) == 1
    twice_rows = SpectraRows(contigs, (1, 2, 3, 4, 5, 6))
    twice_rows.counted = False
    twice = principal_components(twice_rows, 16)
    assert len(calls) == 3
    assert once.tobytes() == twice.tobytes()
