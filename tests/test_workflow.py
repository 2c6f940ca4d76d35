"""The engine's teach -> distill -> correct path, its cross-fitting and its bad-input errors."""
import numpy as np
import pandas as pd
import pytest
import torch

from q2_taxdistill.engine import workflow
from q2_taxdistill.engine.errors import InputError
from q2_taxdistill.engine.labels import encode_labels
from q2_taxdistill.engine.metrics import score_taxonomy
from q2_taxdistill.engine.sequences import Contigs
from q2_taxdistill.engine.soft_labels import SoftLabels, neighbour_vote
from q2_taxdistill.engine.student import Student, StudentConfig
from q2_taxdistill.engine.taxonomy import RANKS, TaxonomyTree, parse_lineage

FAST = StudentConfig(n_folds=3, max_epochs=15, patience=3)


@pytest.fixture(scope="module")
def trained(example_soft, example_student):
    """The example's soft labels and a FAST student (shared: tests/conftest.py)."""
    return example_soft, example_student


def test_partial_support_weighs_the_deepest_rank_only():
    lineages = [parse_lineage("d__B; p__P; g__G; s__S")] * 3
    tree = TaxonomyTree.from_lineages(lineages)
    labels = encode_labels(tree, lineages, support=np.array([1.0, 1.0, 0.9]))
    assert labels.weights[0].tolist() == [1, 1, 0, 0, 0, 1, 1]
    assert labels.weights[2].tolist() == pytest.approx([1, 1, 0, 0, 0, 1, 0.9])
    assert labels.deepest_rank.tolist() == [6, 6, 6]


def test_neighbour_vote_never_uses_a_contigs_own_label():
    lineages = [parse_lineage(t) for t in ["d__A; p__X", "d__A; p__Y", "d__A; p__Y"]]
    tree = TaxonomyTree.from_lineages(lineages)
    labels = encode_labels(tree, lineages)
    neighbours = np.array([[1, 2], [0, 2], [0, 1]])
    soft = neighbour_vote(neighbours, labels, tree, ["a", "b", "c"])
    x, y = tree.encode([parse_lineage("d__A; p__X")])[0, 1], tree.encode([lineages[1]])[0, 1]
    phylum = soft.dense(1)
    assert phylum[0, y] == 1.0 and phylum[0, x] == 0.0
    assert phylum[1, x] == 0.5 and phylum[1, y] == 0.5
    assert np.allclose(soft.confidence[:, 1], 2 / 7)
    # the most probable taxon first; ties in class order
    assert soft.codes[1, 1, :2].tolist() == [x, y] and soft.codes[0, 1, 1] == -1


def test_neighbour_vote_keeps_the_top_taxa_above_the_floor():
    lineages = [parse_lineage(f"d__A; p__P{i}") for i in range(6)] + [parse_lineage("d__A")]
    tree = TaxonomyTree.from_lineages(lineages)
    labels = encode_labels(tree, lineages)
    neighbours = np.array([[0, 0, 0, 1, 1, 2, 3, 4]])  # P0 3/8, P1 2/8, P2, P3, P4 1/8 each
    soft = neighbour_vote(neighbours, labels, tree, ["q"], top=3, min_probability=0.2)
    names = [tree.lineage(1, c)[1] for c in soft.codes[0, 1] if c >= 0]
    assert names == ["P0", "P1"]  # P2 reaches the top 3 but not the floor of 0.2
    assert np.allclose(soft.probabilities[0, 1], [3 / 8, 2 / 8, 0.0])


def test_soft_labels_round_trip_through_the_long_table(trained):
    soft, _ = trained
    frame = soft.to_frame()
    assert list(frame.columns) == ["feature-id", "rank", "taxon", "probability", "confidence"]
    back = SoftLabels.from_frame(frame, tree=soft.tree, ids=soft.ids)
    for r in range(7):
        assert np.allclose(soft.dense(r), back.dense(r), atol=1e-5)
        assert np.allclose(soft.confidence[:, r], back.confidence[:, r], atol=1e-5)
    assert (frame.groupby(["feature-id", "rank"])["probability"].sum() <= 1 + 1e-5).all()
    # a contig's rows are together, its ranks in order, most probable first
    ids = frame["feature-id"]
    assert (ids != ids.shift()).sum() == ids.nunique()
    rank = frame["rank"].map({r: i for i, r in enumerate(RANKS)})
    for _, rows in frame.assign(rank=rank).groupby("feature-id", sort=False):
        assert rows["rank"].is_monotonic_increasing
        for _, taxa in rows.groupby("rank"):
            assert taxa["probability"].is_monotonic_decreasing


def test_soft_labels_align_to_other_contigs_and_a_larger_tree(trained):
    soft, _ = trained
    extra = parse_lineage("d__Archaea; p__Z; c__Z; o__Z; f__Z; g__Z; s__Z z")
    tree = TaxonomyTree.from_lineages([extra] + [soft.tree.lineage(6, j)
                                                 for j in range(soft.tree.n_classes(6))])
    ids = ["not-a-contig", soft.ids[5], soft.ids[0]]
    aligned = soft.aligned(ids, tree)
    assert (aligned.codes[0] == -1).all() and (aligned.confidence[0] == 0).all()
    for r in range(7):
        mine = soft.dense(r)[[5, 0]]
        theirs = aligned.dense(r)[1:]
        for row in range(2):
            named = {soft.tree.lineage(r, j): p for j, p in enumerate(mine[row]) if p > 0}
            again = {tree.lineage(r, j): p for j, p in enumerate(theirs[row]) if p > 0}
            assert named == again


def test_refinement_beats_the_input_labels_on_the_example(example, trained):
    _, student = trained
    # ~60 contigs per example genome: a neighbourhood of 10 stays inside one genome
    corrected = workflow.correct(student, example["contigs"], example["counts"],
                                 example["taxonomy"], n_neighbours=10)
    assert list(corrected.index) == example["contigs"].ids
    before = score_taxonomy(example["taxonomy"]["Taxon"], example["truth"]["Taxon"])
    after = score_taxonomy(corrected["Taxon"], example["truth"]["Taxon"])
    for rank in ("order", "family", "genus"):
        assert after.loc[rank, "f1"] > before.loc[rank, "f1"], rank
    assert after.loc["species", "precision"] >= before.loc["species", "precision"]
    assert corrected["Confidence"].between(0, 1).all()


def test_student_round_trip_and_cross_fitting(tmp_path, example, trained):
    _, student = trained
    student.save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]
    loaded = Student.from_pretrained(tmp_path)
    raw = student.spec.raw_features(example["contigs"].sequences[:20],
                                    example["counts"].iloc[:20].to_numpy() /
                                    example["contigs"].lengths[:20, None])
    ids = example["contigs"].ids[:20]
    for a, b in zip(student.predict_proba(ids, raw), loaded.predict_proba(ids, raw)):
        assert np.allclose(a, b, atol=1e-6)
    # a training contig is predicted by the one network that never saw it, a new one by all
    seen = student.predict_proba(ids[:1], raw[:1])
    unseen = student.predict_proba(["new-contig"], raw[:1])
    assert not np.allclose(seen[6], unseen[6])


def test_same_seed_same_student(example):
    contigs = example["contigs"].subset(example["contigs"].ids[:120])
    soft = workflow.teach(contigs, example["taxonomy"])
    config = StudentConfig(n_folds=2, max_epochs=2, hidden=16)
    a = workflow.distill(contigs, example["taxonomy"], soft.to_frame(), config=config)
    b = workflow.distill(contigs, example["taxonomy"], soft.to_frame(), config=config)
    for na, nb in zip(a.networks, b.networks):
        for (ka, va), (kb, vb) in zip(na.state_dict().items(), nb.state_dict().items()):
            assert ka == kb and np.array_equal(va.numpy(), vb.numpy())


def test_one_or_two_threads_train_the_same_student(tmp_path, example):
    """Folds trained side by side give the student one thread gives: the same weights,
    predictions and stored files, byte for byte."""
    contigs = example["contigs"].subset(example["contigs"].ids[:150])
    soft = workflow.teach(contigs, example["taxonomy"])
    students = {}
    for threads in (1, 2):
        config = StudentConfig(n_folds=3, max_epochs=3, hidden=16, threads=threads)
        student = workflow.distill(contigs, example["taxonomy"], soft, example["counts"],
                                   config=config)
        student.save_pretrained(tmp_path / str(threads))
        students[threads] = student
    raw = students[1].spec.raw_features(contigs, example["counts"].loc[contigs.ids].to_numpy()
                                        / contigs.lengths[:, None])
    ids = list(contigs.ids[:100]) + ["new-contig"]
    raw = np.concatenate([raw[:100], raw[:1]])
    for a, b in zip(students[1].predict_proba(ids, raw), students[2].predict_proba(ids, raw)):
        assert a.tobytes() == b.tobytes()
    for name in ("config.json", "model.safetensors"):
        assert (tmp_path / "1" / name).read_bytes() == (tmp_path / "2" / name).read_bytes()
    assert "threads" not in (tmp_path / "1" / "config.json").read_text()


def test_short_contigs_keep_their_input_label(example, trained):
    _, student = trained
    ids = example["contigs"].ids[:30]
    seqs = list(example["contigs"].sequences[:30])
    seqs[0] = seqs[0][:500]
    contigs = Contigs(ids, seqs)
    corrected = workflow.correct(student, contigs, example["counts"].loc[ids],
                                 example["taxonomy"], n_neighbours=5)
    original = parse_lineage(example["taxonomy"].loc[ids[0], "Taxon"])
    assert parse_lineage(corrected.loc[ids[0], "Taxon"]) == original
    corrected = workflow.correct(student, contigs, example["counts"].loc[ids], None,
                                 n_neighbours=5)
    assert corrected.loc[ids[0], "Taxon"] == "Unassigned"
    assert len(corrected) == 30


def test_unlabelled_and_unknown_ids_are_counted_not_fatal(example, capsys):
    from q2_taxdistill.engine.progress import reporting, stderr_reporter
    taxonomy = example["taxonomy"].drop(index=example["contigs"].ids[:7])
    taxonomy.loc["not-a-contig"] = ["d__Bacteria", 1.0]
    with reporting(stderr_reporter()):
        soft = workflow.teach(example["contigs"], taxonomy)
    err = capsys.readouterr().err
    assert "7 contig(s) have no input label" in err
    assert "1 taxonomy ID(s) are not among the contigs" in err and "not-a-contig" in err
    assert len(soft.ids) == len(example["contigs"])


def test_abundance_from_other_samples_is_rejected(example, trained):
    _, student = trained
    counts = example["counts"].rename(columns={example["counts"].columns[0]: "other"})
    with pytest.raises(InputError, match="other samples.*unexpected 'other'"):
        workflow.correct(student, example["contigs"], counts)
    with pytest.raises(InputError, match="trained with abundance"):
        workflow.correct(student, example["contigs"], None)


def test_bad_inputs_name_the_problem(example, trained):
    contigs = example["contigs"]
    with pytest.raises(InputError, match="no contig has an input label"):
        workflow.teach(contigs, pd.DataFrame({"Taxon": ["Unassigned"] * len(contigs)},
                                             index=contigs.ids))
    counts = example["counts"].copy()
    counts.iloc[:, 2] = 0
    soft, _ = trained
    with pytest.raises(InputError, match="no reads"):
        workflow.distill(contigs, example["taxonomy"], soft.to_frame(), counts, config=FAST)
    with pytest.raises(InputError, match="have no row in the read-count table"):
        workflow.distill(contigs, example["taxonomy"], soft.to_frame(),
                         example["counts"].iloc[5:], config=FAST)
    bad = example["taxonomy"].copy()
    bad.iloc[3, 0] = "d__A; d__B"
    with pytest.raises(InputError, match=bad.index[3]):
        workflow.teach(contigs, bad)
    with pytest.raises(InputError, match="soft labels belong to"):
        frame = soft.to_frame()
        frame["feature-id"] = "x" + frame["feature-id"]
        workflow.distill(contigs, example["taxonomy"], frame, config=FAST)


def test_an_epoch_draws_at_most_epoch_contigs(example, trained, monkeypatch):
    """Training cost stops growing with the contig count: each epoch is a fresh draw of at
    most `epoch_contigs` training contigs."""
    import torch

    soft, _ = trained
    steps = []
    step = torch.optim.AdamW.step
    monkeypatch.setattr(torch.optim.AdamW, "step",
                        lambda self, *a, **k: steps.append(1) or step(self, *a, **k))
    # Training in this process (as where fork is missing), so its optimiser steps are counted.
    from q2_taxdistill.engine import student_network

    monkeypatch.setattr(student_network, "can_fork", lambda: False)
    config = StudentConfig(n_folds=2, max_epochs=2, patience=5, batch_size=16, epoch_contigs=64,
                           threads=1)
    workflow.distill(example["contigs"], example["taxonomy"], soft, example["counts"],
                     config=config)
    assert len(steps) == 2 * 2 * 64 // 16


def test_stored_embeddings_in_another_order_teach_the_same(example):
    from q2_taxdistill.engine.teacher import Embeddings

    contigs, taxonomy = example["contigs"], example["taxonomy"]
    frame = workflow.embed(contigs)
    reordered = frame.iloc[::-1]
    memory_mapped = Embeddings(list(reordered.index), np.asarray(reordered.to_numpy()))
    a = workflow.teach(contigs, taxonomy, embeddings=frame)
    b = workflow.teach(contigs, taxonomy, embeddings=memory_mapped)
    assert a.ids == b.ids and np.array_equal(a.codes, b.codes)
    assert np.allclose(a.probabilities, b.probabilities)
    with pytest.raises(InputError, match="have no teacher embedding"):
        workflow.teach(contigs, taxonomy, embeddings=frame.iloc[3:])


def test_student_targets_built_once_equal_those_built_per_batch():
    """Small inputs index targets built once for all contigs; large ones build each batch's:
    both give the same numbers, so training does not depend on the input's size."""
    from q2_taxdistill.engine.labels import EncodedLabels
    from q2_taxdistill.engine.student_network import _Targets

    rng = np.random.default_rng(3)
    n, n_classes = 400, [1, 2, 3, 4, 5, 6, 9]
    codes = np.stack([rng.integers(-1, c, n) for c in n_classes], 1)
    labels = EncodedLabels(codes, rng.uniform(0.2, 1.0, (n, 7)).astype(np.float32))
    soft_codes = np.stack([np.stack([rng.permutation(np.arange(-1, c))[:3] for _ in range(n)])
                           if c >= 2 else np.full((n, 3), -1) for c in n_classes], 1)
    probabilities = np.where(soft_codes >= 0, rng.dirichlet(np.ones(4), (n, 7))[..., :3], 0.0)
    soft = SoftLabels([f"c{i}" for i in range(n)], None, soft_codes.astype(np.int32),
                      probabilities.astype(np.float32), rng.uniform(0, 1, (n, 7)).astype(np.float32))
    targets = _Targets(labels, soft, n_classes, temperature=2.0)
    assert targets._dense_hard is not None and targets._dense_teacher is not None
    rows = torch.from_numpy(rng.permutation(n)[:97])
    for r in range(7):
        named, target = targets.hard(r, rows)
        built_named, built_target = targets.build_hard(r, rows)
        assert torch.equal(named, built_named) and torch.equal(target, built_target)
        q, weight = targets.teacher(r, rows)
        built_q, built_weight = targets.build_teacher(r, rows)
        assert torch.equal(q, built_q) and torch.equal(weight, built_weight)


def test_fold_workers_are_the_free_processors(monkeypatch):
    from q2_taxdistill.engine import processors as module

    monkeypatch.setattr(module.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    monkeypatch.setattr(module.os, "cpu_count", lambda: 4)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(module.time, "sleep", lambda seconds: None)
    ticks = []  # (all, idle) jiffies of /proc/stat, two readings per call

    monkeypatch.setattr(module, "_cpu_times", lambda: ticks.pop(0))
    ticks[:] = [(0, 0), (400, 400)]                     # an idle machine
    assert module.free_processors() == 4
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    ticks[:] = [(0, 0), (400, 400)]
    assert module.free_processors() == 2
    monkeypatch.delenv("OMP_NUM_THREADS")
    ticks[:] = [(0, 0), (400, 100)]                     # three processors busy
    assert module.free_processors() == 1
    ticks[:] = [(0, 0), (400, 200)]                     # two busy, two free
    assert module.free_processors() == 2

    def no_proc_stat():
        raise OSError("no /proc/stat")

    monkeypatch.setattr(module, "_cpu_times", no_proc_stat)
    monkeypatch.setattr(module.os, "getloadavg", lambda: (7.0, 7.0, 7.0))  # a busy machine
    assert module.free_processors() == 1
    monkeypatch.setattr(module.os, "getloadavg", lambda: (1.0, 1.0, 1.0))  # this process
    assert module.free_processors() == 4

