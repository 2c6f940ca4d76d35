"""Sharded, resumable embedding against the one-process `embed`, on a tiny random Mistral.

Multi-process runs start from a fresh interpreter (`python -m q2_taxdistill.engine.teacher`), as a user
would: the pytest process (QIIME 2, torch thread pools of earlier tests) is a poor parent.
"""

import json
import os
import re
import signal
import subprocess
import sys
import zipfile

import numpy as np
import pandas as pd
import pytest

from q2_taxdistill.engine import workflow
from q2_taxdistill.engine.errors import InputError, TaxDistillError
from q2_taxdistill.engine.sequences import Contigs
from q2_taxdistill.engine.teacher.__main__ import main
from q2_taxdistill.engine.teacher.language_model import shard_assignment, shard_indices
from q2_taxdistill.engine.teacher.parsl_embedding import load_config
from q2_taxdistill.engine.teacher.sharded_embedding import ShardPlan, merge_shards, plan_shards

from .conftest import example_path
from .test_language_model import _random_dna

MIN_LENGTH = 100
N_SHARDS = 6
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENTRY = [sys.executable, "-m", "q2_taxdistill.engine.teacher"]


@pytest.fixture(scope="module")
def model_dir(tiny_model_dir):
    return tiny_model_dir


@pytest.fixture(scope="module")
def fasta(tmp_path_factory):
    """Contigs of one to many windows (window 64 tokens), two of them too short to embed."""
    rng = np.random.default_rng(11)
    path = tmp_path_factory.mktemp("contigs") / "contigs.fna"
    with open(path, "w") as fh:
        lengths = rng.integers(100, 1500, 30)
        lengths[[3, 17]] = 40, 99
        for i, n in enumerate(lengths):
            fh.write(f">contig_{i} sample A\n{_random_dna(rng, int(n))}\n")
    return path


@pytest.fixture(scope="module")
def expected(model_dir, fasta):
    """The one-process `embed` (what `qiime taxdistill embed` computes)."""
    contigs = Contigs.from_fasta(str(fasta), stream=True)
    return workflow.embed(contigs, teacher=str(model_dir), min_length=MIN_LENGTH, device="cpu")


def run_entry(args, env=None, timeout=600):
    full_env = dict(os.environ, OMP_NUM_THREADS="1", **(env or {}))
    return subprocess.run(ENTRY + [str(a) for a in args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO, env=full_env)


def common_args(fasta, model_dir, work, out):
    return ["--contigs", fasta, "--teacher", model_dir, "--work-dir", work, "--output", out,
            "--min-length", MIN_LENGTH, "--shards", N_SHARDS]


def assert_same_as_embed(out, expected):
    ids = (out / "feature-ids.tsv").read_text().splitlines()
    assert ids[0] == "feature-id"
    assert ids[1:] == list(expected.index)
    got = np.load(out / "embeddings.npy", allow_pickle=False)
    assert got.dtype == np.float32 and got.shape == expected.shape
    assert np.abs(got - expected.to_numpy()).max() < 1e-5
    teacher = json.loads((out / "teacher.json").read_text())
    assert teacher["pooling"] == expected.attrs["teacher"]["pooling"]
    assert teacher["shards"] == N_SHARDS


def test_shard_assignment_is_the_split_of_shard_indices():
    lengths = np.random.default_rng(3).lognormal(7, 1, 300).astype(int) + 1
    shard = shard_assignment(lengths, 5)
    for r in range(5):
        assert np.array_equal(np.flatnonzero(shard == r), shard_indices(lengths, 5, r))
    loads = np.bincount(shard, weights=lengths)
    assert loads.max() - loads.min() <= lengths.max()


def test_two_local_workers_match_one_process_embed(fasta, model_dir, expected, tmp_path):
    done = run_entry(common_args(fasta, model_dir, tmp_path / "work", tmp_path / "out")
                     + ["--workers", 2, "--devices", "cpu"])
    assert done.returncode == 0, done.stderr[-3000:]
    assert_same_as_embed(tmp_path / "out", expected)
    assert "worker 0 (cpu)" in done.stderr and "worker 1 (cpu)" in done.stderr
    assert "2 contig(s) shorter than 100 bp are not embedded" in done.stderr


def test_torchrun_ranks_match_one_process_embed(fasta, model_dir, expected, tmp_path):
    """Two ranks as torchrun starts them (RANK, WORLD_SIZE, LOCAL_RANK); rank 0 merges."""
    args = common_args(fasta, model_dir, tmp_path / "work", tmp_path / "out")
    full = ENTRY + [str(a) for a in args]
    ranks = [subprocess.Popen(full, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=dict(os.environ, OMP_NUM_THREADS="1", RANK=str(r),
                                                  LOCAL_RANK=str(r), WORLD_SIZE="2"))
             for r in (1, 0)]
    outputs = [p.communicate(timeout=600) for p in ranks]
    for p, (_, err) in zip(ranks, outputs):
        assert p.returncode == 0, err[-3000:]
    assert_same_as_embed(tmp_path / "out", expected)
    written = {int(k) for k in re.findall(r"rank 1: shards .*shard (\d+) written", outputs[0][1])}
    assert written == {1, 3, 5}


def test_parsl_local_executor_matches_one_process_embed(fasta, model_dir, expected, tmp_path):
    done = run_entry(common_args(fasta, model_dir, tmp_path / "work", tmp_path / "out")
                     + ["--parsl-config", "local:2"])
    assert done.returncode == 0, done.stderr[-3000:]
    assert_same_as_embed(tmp_path / "out", expected)


KILLER = """
import os, signal, sys
from q2_taxdistill.engine.teacher import sharded_embedding as se
from q2_taxdistill.engine.teacher.__main__ import main
real, written = se.write_shard, []
def write_then_die(path, ids, vectors, teacher):
    if len(written) == {after}:
        # die halfway through writing the next shard, as a pre-empted job would
        path.with_name("." + path.name + ".node.1.tmp").write_bytes(b"PK partial")
        os.kill(os.getpid(), signal.SIGKILL)
    real(path, ids, vectors, teacher)
    written.append(path.name)
se.write_shard = write_then_die
sys.exit(main(sys.argv[1:]))
"""


def test_killed_run_resumes_and_embeds_every_contig_once(fasta, model_dir, expected, tmp_path):
    work, out = tmp_path / "work", tmp_path / "out"
    args = [str(a) for a in common_args(fasta, model_dir, work, out)]
    killed = subprocess.run([sys.executable, "-c", KILLER.format(after=2)] + args + ["--workers", "1"],
                            capture_output=True, text=True, timeout=600, cwd=REPO,
                            env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    finished = sorted(p.name for p in (work / "shards").glob("shard-*.npz"))
    assert len(finished) == 2 and not out.exists()
    stamps = {name: (work / "shards" / name).stat().st_mtime_ns for name in finished}

    resumed = run_entry(args + ["--workers", 2, "--devices", "cpu"])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming: 2 of 6 shards were already embedded" in resumed.stderr
    embedded_now = re.findall(r"shard (\d+) written", resumed.stderr)
    assert len(embedded_now) == len(set(embedded_now)) == N_SHARDS - 2
    assert not {f"shard-{int(k):05d}.npz" for k in embedded_now} & set(finished)
    for name, stamp in stamps.items():
        assert (work / "shards" / name).stat().st_mtime_ns == stamp
    assert_same_as_embed(out, expected)
    ids = (out / "feature-ids.tsv").read_text().splitlines()[1:]
    assert len(ids) == len(set(ids))

    again = run_entry(args[:-2] + ["--output", tmp_path / "out2"] + args[-2:])
    assert not list((work / "shards").glob(".*.tmp"))
    assert again.returncode == 0 and "6 of 6 shards were already embedded" in again.stderr
    assert not re.findall(r"shard (\d+) written", again.stderr)
    assert np.array_equal(np.load(out / "embeddings.npy"), np.load(tmp_path / "out2" / "embeddings.npy"))


def test_embeds_the_contigs_that_embed_scores(tmp_path, capsys):
    """One rule for both: long enough, and enough A/C/G/T (a long run of N is not sequence)."""
    rng = np.random.default_rng(3)
    records = {"plain": _random_dna(rng, 300), "short": _random_dna(rng, 60),
               "mostly-n": _random_dna(rng, 40) + "N" * 200, "plain-2": _random_dna(rng, 150)}
    fasta = tmp_path / "mixed.fna"
    fasta.write_text("".join(f">{k}\n{v}\n" for k, v in records.items()))
    plan = plan_shards(fasta, tmp_path / "work", "composition", n_shards=1, min_length=MIN_LENGTH)
    with pytest.warns(Warning):
        direct = workflow.embed(Contigs.from_fasta(str(fasta)), min_length=MIN_LENGTH)
    assert plan.ids == list(direct.index) == ["plain", "plain-2"]
    assert (plan.info["n_short"], plan.info["n_thin"]) == (1, 1)


def test_resume_refuses_other_inputs_and_damaged_shards(fasta, tmp_path, capsys):
    work = tmp_path / "work"
    plan = plan_shards(fasta, work, "composition", n_shards=3, min_length=MIN_LENGTH)
    assert plan.n_shards == 3 and len(plan.ids) == 28 and plan.pending() == [0, 1, 2]
    assert sorted(sum((plan.shard_ids(k) for k in range(3)), [])) == sorted(plan.ids)
    with pytest.raises(InputError, match="min_length"):
        plan_shards(fasta, work, "composition", min_length=500)
    with pytest.raises(InputError, match="teacher"):
        plan_shards(fasta, work, "/some/other/model", min_length=MIN_LENGTH)
    changed = tmp_path / "changed.fna"
    changed.write_text(fasta.read_text().replace("contig_3 ", "contig_x "))
    with pytest.raises(InputError, match="source_bytes|source_sha256"):
        plan_shards(changed, work, "composition", min_length=MIN_LENGTH)
    with pytest.raises(TaxDistillError, match="3 of 3 shards are not embedded"):
        merge_shards(plan, tmp_path / "out")

    assert main(["--contigs", str(fasta), "--teacher", "composition", "--work-dir", str(work),
                 "--output", str(tmp_path / "out"), "--min-length", str(MIN_LENGTH)]) == 0
    (work / "shards" / "shard-00001.npz").write_bytes(b"not a zip")
    with pytest.raises(TaxDistillError, match="damaged .* removed"):
        merge_shards(ShardPlan.load(work), tmp_path / "out-again")
    assert ShardPlan.load(work).pending() == [1]
    assert main(["--contigs", str(fasta), "--teacher", "composition", "--work-dir", str(work),
                 "--output", str(tmp_path / "out")]) == 1
    assert "exists and is not an empty directory" in capsys.readouterr().err


def _fake_artifact(path, kind, files):
    """The layout of a .qza: <uuid>/metadata.yaml and <uuid>/data/... (what we read)."""
    root = "0f2b4c1e-0000-4000-8000-000000000000"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{root}/metadata.yaml", f"uuid: {root}\ntype: {kind}\nformat: X\n")
        archive.writestr(f"{root}/VERSION", "QIIME 2\narchive: 5\n")
        for name, text in files.items():
            archive.writestr(f"{root}/data/{name}", text)
    return path


def test_reads_artifacts_without_qiime2(tmp_path):
    samples = {"s2_contigs.fa": ">b1\nACGTACGTAA\n>b2\nGGGCCCAAAT", "s1_contigs.fa": ">a1\nTTTT\n",
               "MANIFEST": "sample-id,filename\n"}
    contigs = _fake_artifact(tmp_path / "contigs.qza", "SampleData[Contigs]", samples)
    plan = plan_shards(contigs, tmp_path / "work", "composition", n_shards=2, min_length=1)
    assert plan.ids == ["a1", "b1", "b2"]
    assert not (tmp_path / "work" / "input.fasta").exists()
    taxonomy = _fake_artifact(tmp_path / "tax.qza", "FeatureData[Taxonomy]",
                              {"taxonomy.tsv": "Feature ID\tTaxon\n"})
    with pytest.raises(InputError, match="FeatureData\\[Taxonomy\\] artifact"):
        plan_shards(taxonomy, tmp_path / "work2", "composition")
    duplicated = _fake_artifact(tmp_path / "dup.qza", "SampleData[Contigs]",
                                {"s1_contigs.fa": ">a1\nACGT\n", "s2_contigs.fa": ">a1\nACGT\n"})
    with pytest.raises(InputError, match="duplicated contig ID"):
        plan_shards(duplicated, tmp_path / "work3", "composition", min_length=1)


def test_output_is_an_embeddings_artifact_that_teach_takes(tmp_path, example_soft):
    """Composition teacher on the example: import the directory with QIIME 2, teach from it; the
    soft labels are those `teach` gives without stored embeddings (the suite's shared ones)."""
    import qiime2
    from qiime2.plugins import taxdistill

    contigs = qiime2.Artifact.import_data("FeatureData[Sequence]", example_path("contigs.fna"))
    contigs.save(str(tmp_path / "contigs.qza"))
    assert main(["--contigs", str(tmp_path / "contigs.qza"), "--teacher", "composition",
                 "--work-dir", str(tmp_path / "work"), "--output", str(tmp_path / "emb"),
                 "--shards", "4"]) == 0
    embeddings = qiime2.Artifact.import_data("FeatureData[Embeddings]", str(tmp_path / "emb"))
    frame = embeddings.view(pd.DataFrame)
    direct = workflow.embed(Contigs.from_fasta(example_path("contigs.fna"), stream=True))
    assert list(frame.index) == list(direct.index)
    assert np.abs(frame.to_numpy() - direct.to_numpy()).max() < 1e-6
    taxonomy = qiime2.Artifact.import_data("FeatureData[Taxonomy]", example_path("taxonomy.tsv"))
    from_shards, = taxdistill.actions.teach(contigs=contigs, taxonomy=taxonomy,
                                            embeddings=embeddings)
    in_one = qiime2.Artifact.import_data("FeatureData[SoftLabels]", example_soft.to_frame())
    a, b = from_shards.view(pd.DataFrame), in_one.view(pd.DataFrame)
    assert a[["feature-id", "rank", "taxon"]].equals(b[["feature-id", "rank", "taxon"]])
    assert np.abs(a["probability"].to_numpy() - b["probability"].to_numpy()).max() < 1e-6


def test_parsl_configurations(tmp_path):
    from parsl.config import Config
    from parsl.providers import SlurmProvider

    slurm, label = load_config(os.path.join(REPO, "recipes", "parsl_slurm_gpu.py"), tmp_path)
    assert isinstance(slurm, Config) and label is None
    executor, = slurm.executors
    assert isinstance(executor.provider, SlurmProvider)
    assert len(executor.available_accelerators) == executor.max_workers_per_node == 4
    assert load_config("local:2", tmp_path)[0].executors[0].max_workers_per_node == 2
    with pytest.raises(InputError, match="local:N"):
        load_config("local:0", tmp_path)
    empty = tmp_path / "empty.py"
    empty.write_text("x = 1\n")
    with pytest.raises(InputError, match="must define `config`"):
        load_config(str(empty), tmp_path)


QIIME2_TOML = """
[parsl]
strategy = "None"

[[parsl.executors]]
class = "ThreadPoolExecutor"
label = "tpool"
max_threads = 2

[[parsl.executors]]
class = "HighThroughputExecutor"
label = "default"
max_workers_per_node = 3

[parsl.executors.provider]
class = "SlurmProvider"
partition = "gpu"
max_blocks = 4

[parsl.executors.provider.launcher]
class = "SrunLauncher"
"""


def test_qiime2_toml_parallel_configuration(fasta, tmp_path):
    from parsl.launchers import SrunLauncher

    from q2_taxdistill.engine.teacher.parsl_embedding import run_parsl

    toml = tmp_path / "qiime2_config.toml"
    toml.write_text(QIIME2_TOML)
    config, label = load_config(str(toml), tmp_path)
    assert label == "default" and config.strategy == "none"
    slurm, = config.executors
    assert slurm.max_workers_per_node == 3 and slurm.provider.max_blocks == 4
    assert isinstance(slurm.provider.launcher, SrunLauncher)
    toml.write_text(QIIME2_TOML + '\n[parsl.executor_mapping.taxdistill]\nembed = "tpool"\n')
    config, label = load_config(str(toml), tmp_path)
    assert label == "tpool" and [e.label for e in config.executors] == ["tpool"]
    plan = plan_shards(fasta, tmp_path / "work", "composition", n_shards=3, min_length=MIN_LENGTH)
    run_parsl(plan, str(toml))
    assert plan.pending() == []
    merge_shards(plan, tmp_path / "out")
    direct = workflow.embed(Contigs.from_fasta(str(fasta)), min_length=MIN_LENGTH)
    assert np.abs(np.load(tmp_path / "out" / "embeddings.npy") - direct.to_numpy()).max() < 1e-6
    toml.write_text(QIIME2_TOML.replace('"default"', '"gpu"'))
    with pytest.raises(InputError, match="label one 'default'"):
        load_config(str(toml), tmp_path)
    toml.write_text(QIIME2_TOML.replace("SlurmProvider", "NoSuchProvider"))
    with pytest.raises(InputError, match="'NoSuchProvider' is not in parsl.providers"):
        load_config(str(toml), tmp_path)


def test_the_earlier_command_name_still_runs():
    """`python -m q2_taxdistill.engine.sharded_embedding`, as job scripts of 0.1 name it."""
    done = subprocess.run([sys.executable, "-m", "q2_taxdistill.engine.sharded_embedding", "--help"],
                          capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.returncode == 0 and "--parsl-config" in done.stdout, done.stderr


def test_engine_side_imports_no_qiime2():
    code = ("import sys, q2_taxdistill.engine.teacher.__main__;"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('qiime2', 'rachis', 'q2cli', "
            "'q2_types', 'parsl')]; print(bad); sys.exit(bool(bad))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_missing_model_is_reported_before_any_work(fasta, tmp_path, capsys):
    assert main(["--contigs", str(fasta), "--teacher", str(tmp_path / "no-model"),
                 "--work-dir", str(tmp_path / "work"), "--output", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "no-model" in err and "does not exist" in err and "Traceback" not in err
    assert not (tmp_path / "work").exists()


def test_failed_parsl_tasks_are_named_and_the_rest_kept(fasta, tmp_path):
    """parsl's thread executor in this process: one shard's input is gone, the others finish."""
    from q2_taxdistill.engine.teacher.parsl_embedding import run_parsl

    config = tmp_path / "threads.py"
    config.write_text("from parsl.config import Config\n"
                      "from parsl.executors import ThreadPoolExecutor\n"
                      "config = Config(executors=[ThreadPoolExecutor(max_threads=2)])\n")
    plan = plan_shards(fasta, tmp_path / "work", "composition", n_shards=4, min_length=MIN_LENGTH)
    plan.shard_fasta(2).unlink()
    with pytest.raises(TaxDistillError, match=r"1 shard\(s\) failed \('2'; the first: "
                                              r"InputError: .*shard-00002.fasta is missing"):
        run_parsl(plan, str(config))
    assert plan.pending() == [2]
