import itertools

import numpy as np
import pytest

from q2_taxdistill.engine import kmers
from q2_taxdistill.engine.sequences import Contigs

COMPLEMENT = str.maketrans("ACGT", "TGCA")


def revcomp(seq):
    return seq.translate(COMPLEMENT)[::-1]


def naive_canonical_counts(seq, k):
    """Reference: count canonical k-mers by string slicing, classes in lexicographic order."""
    classes = sorted({min("".join(p), revcomp("".join(p)))
                      for p in itertools.product("ACGT", repeat=k)})
    position = {c: i for i, c in enumerate(classes)}
    counts = np.zeros(len(classes), dtype=np.int64)
    for i in range(len(seq) - k + 1):
        window = seq[i:i + k]
        if set(window) <= set("ACGT"):
            counts[position[min(window, revcomp(window))]] += 1
    return counts


def random_seq(rng, n, n_rate=0.0):
    seq = rng.choice(list("ACGT"), size=n)
    seq[rng.random(n) < n_rate] = "N"
    return "".join(seq)


@pytest.mark.parametrize("k,expected", [(1, 2), (2, 10), (3, 32), (4, 136), (5, 512), (6, 2080)])
def test_canonical_class_counts(k, expected):
    class_of, n_classes = kmers.canonical_index(k)
    assert n_classes == expected
    assert class_of.shape == (4 ** k,) and set(class_of.tolist()) == set(range(expected))
    assert not class_of.flags.writeable


def test_canonical_index_pairs_reverse_complements():
    class_of, _ = kmers.canonical_index(3)
    code = {b: i for i, b in enumerate("ACGT")}

    def index(kmer):
        return sum(code[b] * 4 ** (len(kmer) - 1 - i) for i, b in enumerate(kmer))

    assert class_of[index("AAG")] == class_of[index("CTT")]
    assert class_of[index("AAA")] == 0 and class_of[index("TTT")] == 0
    assert class_of[index("AAC")] == 1
    assert class_of[index("ACG")] == class_of[index("CGT")] != class_of[index("AAG")]


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 6])
def test_counts_match_naive_reference(k):
    rng = np.random.default_rng(k)
    for n in (0, 1, k - 1, k, 37, 400):
        seq = random_seq(rng, n, n_rate=0.05)
        np.testing.assert_array_equal(kmers.kmer_counts(seq, k), naive_canonical_counts(seq, k))


def test_spectra_equal_per_k_frequencies_and_reference():
    rng = np.random.default_rng(7)
    seqs = [random_seq(rng, n, 0.03) for n in (300, 57, 1000)]
    spectra = kmers.kmer_spectra(seqs)
    assert spectra.dtype == np.float32 and spectra.shape == (3, 2 + 10 + 32 + 136 + 512 + 2080)
    start = 0
    for k in range(1, 7):
        n_classes = kmers.canonical_index(k)[1]
        block = spectra[:, start:start + n_classes]
        np.testing.assert_allclose(block, kmers.kmer_frequencies(seqs, k), rtol=1e-6)
        ref = np.stack([naive_canonical_counts(s, k) for s in seqs]).astype(float)
        np.testing.assert_allclose(block, ref / ref.sum(axis=1, keepdims=True), rtol=1e-5)
        start += n_classes
    # ks in any order, concatenated in that order
    swapped = kmers.kmer_spectra(seqs, ks=(4, 2))
    np.testing.assert_allclose(swapped[:, :136], kmers.tnf(seqs))
    np.testing.assert_allclose(swapped[:, 136:], kmers.kmer_frequencies(seqs, 2))


def test_windows_touching_n_are_excluded():
    counts = kmers.kmer_counts("AAAANAAAA", 4)
    assert counts.sum() == 2 and counts[0] == 2
    assert kmers.kmer_counts("ACGTRYACGT", 4).sum() == 2
    assert kmers.kmer_counts("acgt", 4).sum() == 1  # lowercase is still a base


def test_tnf_reverse_complement_invariant_and_normalised():
    rng = np.random.default_rng(3)
    seqs = [random_seq(rng, n, 0.01) for n in (50, 500, 5000)]
    forward = kmers.tnf(seqs)
    reverse = kmers.tnf([revcomp(s) for s in seqs])
    assert forward.shape == (3, 136) and forward.dtype == np.float32
    np.testing.assert_allclose(forward, reverse, atol=1e-7)
    np.testing.assert_allclose(forward.sum(axis=1), 1.0, rtol=1e-6)


def test_row_without_kmers_is_uniform_and_pseudocount():
    freqs = kmers.kmer_frequencies(["ACG", "NNNNNN", "AAAA"], 4)
    np.testing.assert_allclose(freqs[0], 1 / 136)
    np.testing.assert_allclose(freqs[1], 1 / 136)
    assert freqs[2, 0] == 1.0
    smoothed = kmers.kmer_frequencies(["AAAA"], 4, pseudocount=1.0)
    assert smoothed[0, 0] == pytest.approx(2 / 137)
    assert smoothed[0, 1] == pytest.approx(1 / 137)


def test_accepts_contigs_and_reports_progress():
    rng = np.random.default_rng(11)
    contigs = Contigs.from_pairs((f"c{i}", random_seq(rng, 30)) for i in range(1203))
    calls = []
    out = kmers.tnf(contigs, progress=lambda done, total: calls.append((done, total)))
    assert out.shape == (1203, 136)
    assert calls == [(kmers.BLOCK_ROWS, 1203), (1203, 1203)]


def test_spectra_in_blocks_equal_the_whole_and_select_rows():
    rng = np.random.default_rng(13)
    seqs = [random_seq(rng, int(n), 0.01) for n in rng.integers(5, 3000, 2500)]
    whole = kmers.kmer_spectra(seqs, ks=(2, 4))
    blocks = list(kmers.iter_kmer_spectra(seqs, ks=(2, 4)))
    assert len(blocks) > 1 and all(len(b) <= kmers.BLOCK_ROWS for b in blocks)
    assert np.array_equal(np.concatenate(blocks), whole)
    select = rng.random(len(seqs)) < 0.3
    chosen = np.concatenate(list(kmers.iter_kmer_spectra(seqs, ks=(2, 4), select=select)))
    assert np.array_equal(chosen, whole[select])
    with pytest.raises(ValueError, match="select has 3 entries"):
        next(kmers.iter_kmer_spectra(seqs, select=np.ones(3, bool)))


def test_k7_and_k8_supported_and_bad_k_rejected():
    rng = np.random.default_rng(5)
    seq = random_seq(rng, 300, 0.02)
    for k, n_classes in ((7, 8192), (8, 32896)):
        counts = kmers.kmer_counts(seq, k)
        valid_windows = sum(1 for i in range(len(seq) - k + 1) if "N" not in seq[i:i + k])
        assert counts.shape == (n_classes,) and counts.sum() == valid_windows
    for bad in (0, 9, 2.0, True):
        with pytest.raises(ValueError, match="k must be an integer"):
            kmers.kmer_counts("ACGT", bad)
    with pytest.raises(TypeError):
        kmers.tnf("ACGT")


def test_streamed_contigs_give_the_same_spectra(tmp_path):
    rng = np.random.default_rng(12)
    seqs = [random_seq(rng, int(n)) for n in rng.integers(5, 400, 40)]
    path = tmp_path / "c.fna"
    path.write_text("".join(f">c{i}\n{s}\n" for i, s in enumerate(seqs)))
    streamed = Contigs.from_fasta(path, stream=True)
    expected = kmers.kmer_spectra(seqs)
    assert np.array_equal(kmers.kmer_spectra(streamed), expected)
    assert expected.dtype == np.float32
    assert np.array_equal(kmers.kmer_spectra(iter(seqs)), expected)


def test_counting_in_worker_processes_gives_the_same_blocks_in_order(monkeypatch):
    """Blocks counted by forked workers come back in block order with the same numbers as
    counted here, with `select` and progress too; whole spectra likewise."""
    from q2_taxdistill.engine import kmers

    monkeypatch.setattr(kmers, "BLOCK_BASES", 2_000)
    rng = np.random.default_rng(4)
    seqs = ["".join(rng.choice(list("ACGTN"), int(n))) for n in rng.integers(50, 900, 60)]
    select = rng.random(60) < 0.7
    for kwargs in ({}, {"select": select}):
        runs = {}
        for workers in (1, 2, 3):
            steps = []
            blocks = list(kmers.iter_kmer_spectra(seqs, (1, 4, 6), workers=workers,
                                                  progress=lambda d, t: steps.append(d),
                                                  **kwargs))
            runs[workers] = (blocks, steps)
        assert len(runs[1][0]) > 3
        for workers in (2, 3):
            assert runs[workers][1] == runs[1][1]
            assert len(runs[workers][0]) == len(runs[1][0])
            assert all(np.array_equal(a, b) for a, b in zip(runs[workers][0], runs[1][0]))
    assert np.array_equal(kmers.kmer_spectra(seqs, workers=2), kmers.kmer_spectra(seqs, workers=1))
    from q2_taxdistill.engine.processors import available_processors

    # more than two blocks: as many workers as processors (at most MAX_WORKERS); one block: 1
    assert kmers._workers(seqs, None) == min(kmers.MAX_WORKERS, available_processors())
    assert kmers._workers(seqs[:1], None) == 1
