import numpy as np
import pandas as pd
import pytest

from q2_taxdistill.engine.abundance import Abundance, abundance_features, depth_from_counts
from q2_taxdistill.engine.errors import InputError


def _counts():
    return pd.DataFrame(
        {"S1": [100, 10, 0, 5], "S2": [300, 30, 0, 7], "S3": [50, 5, 2, 0]},
        index=pd.Index(["c1", "c2", "c3", "extra"], name="feature-id"),
    )


def _lengths(ids=("c2", "c1", "c3"), values=(1000, 2000, 500)):
    return pd.Series(values, index=list(ids))


def test_depth_is_counts_over_length_in_lengths_order():
    result = depth_from_counts(_counts(), _lengths())
    assert isinstance(result, Abundance)
    assert result.samples == ["S1", "S2", "S3"] and result.dropped == ["extra"]
    assert result.depth.index.tolist() == ["c2", "c1", "c3"]
    np.testing.assert_allclose(result.depth.loc["c1"], [100 / 2000, 300 / 2000, 50 / 2000])
    np.testing.assert_allclose(result.depth.loc["c3"], [0, 0, 2 / 500])


def test_missing_contigs_named_with_count():
    lengths = _lengths(("c1", "m1", "m2"), (10, 10, 10))
    with pytest.raises(InputError, match=r"2 of 3 contigs have no row.*'m1', 'm2'"):
        depth_from_counts(_counts(), lengths)


def test_transposed_table_hint():
    with pytest.raises(InputError, match="transposed"):
        depth_from_counts(_counts().T, _lengths())


@pytest.mark.parametrize("value", [-1, np.nan, np.inf])
def test_bad_count_values(value):
    counts = _counts().astype(float)
    counts.loc["c2", "S3"] = value
    with pytest.raises(InputError, match="c2/S3"):
        depth_from_counts(counts, _lengths())


def test_bad_values_in_dropped_contigs_are_ignored():
    counts = _counts().astype(float)
    counts.loc["extra", "S1"] = np.nan
    assert depth_from_counts(counts, _lengths()).dropped == ["extra"]


def test_all_zero_sample_named():
    counts = _counts()
    counts["S4"] = [0, 0, 0, 9]  # reads only on a contig that is not requested
    with pytest.raises(InputError, match="sample\\(s\\) 'S4' have no reads"):
        depth_from_counts(counts, _lengths())


def test_structure_errors():
    with pytest.raises(InputError, match="no samples"):
        depth_from_counts(_counts()[[]], _lengths())
    with pytest.raises(InputError, match="duplicated sample names: 'S1'"):
        depth_from_counts(_counts().rename(columns={"S2": "S1"}), _lengths())
    with pytest.raises(InputError, match="duplicated contig IDs: 'c1'"):
        depth_from_counts(_counts().rename(index={"c2": "c1"}), _lengths(("c1",), (5,)))
    with pytest.raises(InputError, match="non-numeric.*'S2'"):
        depth_from_counts(_counts().astype({"S2": str}), _lengths())
    with pytest.raises(InputError, match="not positive.*'c3'"):
        depth_from_counts(_counts(), _lengths(values=(10, 10, 0)))


def test_features_formula():
    depth = np.array([[1.0, 4.0], [3.0, 4.0], [0.0, 0.0], [4.0, 8.0]])
    out = abundance_features(depth)
    assert out.dtype == np.float32 and out.shape == (4, 3)
    # each sample scaled to total n=4 -> sample 1 totals 8, sample 2 totals 16
    x = depth * np.array([4 / 8, 4 / 16])
    rows = [0, 1, 3]
    np.testing.assert_allclose(out[rows, :2], x[rows] / x[rows].sum(1, keepdims=True), rtol=1e-6)
    np.testing.assert_allclose(out[2, :2], [0.5, 0.5])
    a = np.log1p(x.mean(axis=1))
    np.testing.assert_allclose(out[:, 2], (a - a.mean()) / a.std(), rtol=1e-5)
    assert out[:, 2].mean() == pytest.approx(0, abs=1e-6)
    assert out[:, 2].std() == pytest.approx(1, abs=1e-5)


def test_features_ignore_sequencing_depth_and_keep_coabundance():
    rng = np.random.default_rng(0)
    depth = rng.gamma(2.0, 1.0, size=(50, 4))
    scaled = depth * np.array([1.0, 10.0, 0.1, 3.0])  # samples sequenced to different depths
    np.testing.assert_allclose(abundance_features(depth), abundance_features(scaled), rtol=1e-5)
    # same genome at another depth: same relative profile, higher total abundance
    pair = np.vstack([depth, depth[0] * 5])
    out = abundance_features(pair)
    np.testing.assert_allclose(out[0, :4], out[-1, :4], rtol=1e-5)
    assert out[-1, 4] > out[0, 4]
    np.testing.assert_allclose(out[:, :4].sum(axis=1), 1.0, rtol=1e-5)


def test_features_accept_dataframe_and_validate():
    frame = depth_from_counts(_counts(), _lengths()).depth
    np.testing.assert_array_equal(abundance_features(frame), abundance_features(frame.to_numpy()))
    with pytest.raises(InputError, match="'S2'"):
        abundance_features(frame.assign(S2=0.0))
    with pytest.raises(InputError, match="'c1'"):
        abundance_features(frame.assign(S1=[0.0, -1.0, 0.0]))
    with pytest.raises(InputError, match="shape"):
        abundance_features(np.ones(3))
    # one contig: every sample is scaled to it, so the profile is flat and z is 0
    single = abundance_features(np.array([[2.0, 3.0]]))
    np.testing.assert_allclose(single, [[0.5, 0.5, 0.0]], rtol=1e-6)
    assert abundance_features(np.zeros((0, 2))).shape == (0, 3)
