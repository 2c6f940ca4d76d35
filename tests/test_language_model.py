"""The GenomeOcean embedder against a tiny random Mistral built on the spot (no download)."""

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from q2_taxdistill.engine.errors import ModelLoadError
from q2_taxdistill.engine.teacher.language_model import (
    LanguageModelEmbedder,
    embed_distributed,
    resolve_model_path,
    shard_indices,
)

WINDOW = 64


def _random_dna(rng, n):
    return "".join(rng.choice(list("ACGT"), n))


def build_tiny_model(directory):
    """A 2-layer Mistral and a BPE tokenizer with GenomeOcean's [CLS] ... [SEP] template."""
    from tokenizers import Tokenizer, models, processors, trainers
    from transformers import MistralConfig, MistralForCausalLM, PreTrainedTokenizerFast

    rng = np.random.default_rng(0)
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    bpe = Tokenizer(models.BPE(unk_token="[UNK]"))
    trainer = trainers.BpeTrainer(vocab_size=96, special_tokens=specials,
                                  initial_alphabet=list("ACGTN"), show_progress=False)
    bpe.train_from_iterator([_random_dna(rng, 300) for _ in range(200)], trainer)
    cls_id, sep_id = bpe.token_to_id("[CLS]"), bpe.token_to_id("[SEP]")
    bpe.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, unk_token="[UNK]", pad_token="[PAD]",
                                        cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")
    torch.manual_seed(0)
    config = MistralConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2,
                           num_attention_heads=4, num_key_value_heads=2, intermediate_size=64,
                           max_position_embeddings=WINDOW, pad_token_id=tokenizer.pad_token_id,
                           bos_token_id=cls_id, eos_token_id=sep_id)
    model = MistralForCausalLM(config)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.5)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def model_dir(tiny_model_dir):
    """Skips the tests that need it where the [teacher] extra is not installed (built once:
    tests/conftest.py)."""
    return tiny_model_dir


@pytest.fixture(scope="module")
def reference(model_dir):
    from transformers import AutoModel, AutoTokenizer

    model = AutoModel.from_pretrained(model_dir, attn_implementation="eager").eval()
    return model, AutoTokenizer.from_pretrained(model_dir)


@pytest.fixture(scope="module")
def embedder(model_dir):
    return LanguageModelEmbedder.from_pretrained(str(model_dir), device="cpu")


def reference_embed(reference, seqs):
    """The official recipe: tokenizer defaults, padding='longest', masked mean of the last layer."""
    model, tok = reference
    enc = tok(seqs, padding="longest", return_tensors="pt")
    with torch.no_grad():
        hidden = model(**enc, output_hidden_states=True).hidden_states[-1]
    mask = enc["attention_mask"].unsqueeze(-1).float()
    return ((hidden * mask).sum(1) / mask.sum(1)).numpy()


def short_contigs(tok, n, seed):
    """Contigs that fit one window (with [CLS]/[SEP]) but vary in length."""
    rng = np.random.default_rng(seed)
    seqs = []
    while len(seqs) < n:
        s = _random_dna(rng, int(rng.integers(5, 140)))
        if len(tok(s)["input_ids"]) <= WINDOW:
            seqs.append(s)
    return seqs


def test_loads_from_local_directory(embedder, model_dir):
    assert resolve_model_path(str(model_dir)) == model_dir
    assert embedder.window_tokens == WINDOW
    assert embedder.hidden_size == 32
    assert embedder.prefix != [] and embedder.suffix != []
    assert embedder.embed([]).shape == (0, 32)


def test_resolves_fake_hub_cache_without_network(model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    repo = tmp_path / "hub" / "models--pGenomeOcean--GenomeOcean-500M"
    snapshot = repo / "snapshots" / "0123abcd"
    shutil.copytree(model_dir, snapshot)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abcd")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    assert resolve_model_path("pGenomeOcean/GenomeOcean-500M") == snapshot
    assert resolve_model_path("DOEJGI/GenomeOcean-500M") == snapshot
    (repo / "refs" / "main").unlink()
    monkeypatch.delenv("HF_HUB_CACHE")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    assert resolve_model_path("pGenomeOcean/GenomeOcean-500M") == snapshot
    emb = LanguageModelEmbedder.from_pretrained("DOEJGI/GenomeOcean-500M", device="cpu")
    assert emb.embed(["ACGTACGTAC"]).shape == (1, 32)


def test_missing_model_says_how_to_download(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "empty"))
    with pytest.raises(ModelLoadError, match="huggingface-cli download pGenomeOcean/GenomeOcean-4B"):
        resolve_model_path("pGenomeOcean/GenomeOcean-4B")
    with pytest.raises(ModelLoadError, match="--p-teacher DIR"):
        resolve_model_path(str(tmp_path / "no-such-dir"))


def test_non_model_paths_are_named(tmp_path, model_dir):
    with pytest.raises(ModelLoadError, match="no config.json") as err:
        resolve_model_path(str(tmp_path))
    assert str(tmp_path) in str(err.value)
    not_causal = tmp_path / "bert"
    not_causal.mkdir()
    (not_causal / "config.json").write_text('{"architectures": ["BertForMaskedLM"], "model_type": "bert"}')
    with pytest.raises(ModelLoadError, match="not a causal language model"):
        resolve_model_path(str(not_causal))
    no_weights = tmp_path / "partial"
    no_weights.mkdir()
    shutil.copy(model_dir / "config.json", no_weights / "config.json")
    with pytest.raises(ModelLoadError, match="no weights"):
        resolve_model_path(str(no_weights))
    a_file = tmp_path / "model.bin"
    a_file.write_bytes(b"")
    with pytest.raises(ModelLoadError, match="is a file"):
        resolve_model_path(str(a_file))


def test_weights_that_do_not_match_the_config_are_rejected(model_dir, tmp_path):
    from safetensors.torch import load_file, save_file

    broken = tmp_path / "broken"
    shutil.copytree(model_dir, broken)
    state = load_file(broken / "model.safetensors")
    state.pop("model.layers.1.mlp.up_proj.weight")
    save_file(state, broken / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ModelLoadError, match="missing 'layers.1.mlp.up_proj.weight'"):
        LanguageModelEmbedder.from_pretrained(str(broken), device="cpu")


def test_tokenizer_json_alone_is_enough_when_autotokenizer_fails(model_dir, reference, tmp_path,
                                                                monkeypatch):
    import transformers

    def broken(*args, **kwargs):
        raise ValueError("Tokenizer class GenomeOceanTokenizer does not exist")

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", broken)
    bare = tmp_path / "bare"
    shutil.copytree(model_dir, bare)
    (bare / "tokenizer_config.json").unlink()
    emb = LanguageModelEmbedder.from_pretrained(str(bare), device="cpu")
    seqs = short_contigs(reference[1], 4, seed=7)
    assert np.abs(emb.embed(seqs) - reference_embed(reference, seqs)).max() < 1e-4


def test_matches_reference_independent_of_order_and_budget(embedder, reference):
    seqs = short_contigs(reference[1], 24, seed=1)
    expected = reference_embed(reference, seqs)
    assert np.abs(embedder.embed(seqs) - expected).max() < 1e-4
    perm = np.random.default_rng(2).permutation(len(seqs))
    for budget in (WINDOW, 3 * WINDOW, 10_000):
        embedder.token_budget = budget
        got = embedder.embed([seqs[i] for i in perm])
        assert got.dtype == np.float32
        assert np.abs(got - expected[perm]).max() < 1e-4
    embedder.token_budget = 8192


def test_long_contig_is_token_weighted_mean_of_windows(embedder, reference):
    model, tok = reference
    rng = np.random.default_rng(3)
    seqs = [_random_dna(rng, 900), _random_dna(rng, 40), _random_dna(rng, 431).lower()]
    got = embedder.embed(seqs)
    for seq, row in zip(seqs, got):
        body = tok(seq.upper(), add_special_tokens=False)["input_ids"]
        n_windows = math.ceil(len(body) / (WINDOW - 2))
        total, weight = 0.0, 0
        for chunk in np.array_split(np.asarray(body), n_windows):
            ids = torch.tensor([[tok.cls_token_id, *chunk.tolist(), tok.sep_token_id]])
            assert ids.shape[1] <= WINDOW
            with torch.no_grad():
                hidden = model(input_ids=ids).last_hidden_state[0]
            total = total + hidden.sum(0).numpy()
            weight += ids.shape[1]
        assert np.abs(row - total / weight).max() < 1e-4
    assert math.ceil(len(tok(seqs[0], add_special_tokens=False)["input_ids"]) / (WINDOW - 2)) > 1


def test_oom_halves_the_batch_and_gives_the_same_embeddings(embedder, reference, monkeypatch):
    seqs = short_contigs(reference[1], 12, seed=4)
    expected = embedder.embed(seqs)
    real_forward = embedder._forward
    batch_sizes, failed = [], []

    def flaky(ids, lengths):
        batch_sizes.append(ids.shape[0])
        if not failed:
            failed.append(True)
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_forward(ids, lengths)

    monkeypatch.setattr(embedder, "_forward", flaky)
    progress = []
    embedder.progress = lambda done, total: progress.append((done, total))
    try:
        got = embedder.embed(seqs)
    finally:
        embedder.progress = None
    assert batch_sizes[0] == len(seqs) and batch_sizes[1] == len(seqs) // 2
    assert np.abs(got - expected).max() < 1e-5
    assert progress[-1] == (len(seqs), len(seqs))

    def always_oom(ids, lengths):
        raise RuntimeError("CUDA error: out of memory")

    monkeypatch.setattr(embedder, "_forward", always_oom)
    with pytest.raises(ModelLoadError, match="single window"):
        embedder.embed(seqs[:3])


def test_shard_indices_balance_tokens_and_cover_everything():
    lengths = np.random.default_rng(5).lognormal(8, 1, 501).astype(int) + 1
    for world in (1, 2, 3, 8):
        shards = [shard_indices(lengths, world, r) for r in range(world)]
        together = np.concatenate(shards)
        assert sorted(together.tolist()) == list(range(len(lengths)))
        loads = [lengths[s].sum() for s in shards]
        assert max(loads) - min(loads) <= lengths.max()
    with pytest.raises(ValueError):
        shard_indices(lengths, 2, 2)


def _distributed_worker(rank, world, port, model_dir, seqs, out_dir):
    import torch.distributed as dist

    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        emb = LanguageModelEmbedder.from_pretrained(model_dir, device="cpu")
        np.save(os.path.join(out_dir, f"rank{rank}.npy"), embed_distributed(emb, seqs))
        dist.barrier()
    except BaseException:
        dist.destroy_process_group()
        raise
    # gloo's background threads abort now and then when torch tears them down at exit
    # (SIGABRT, "terminate called without an active exception", also after a barrier and
    # destroy_process_group); both ranks have written their result, so leave at once.
    os._exit(0)


def test_two_process_gloo_matches_single_process(embedder, model_dir, tmp_path):
    import socket

    rng = np.random.default_rng(6)
    seqs = [_random_dna(rng, int(n)) for n in rng.integers(20, 400, 9)]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # Spawn from a fresh interpreter: the pytest process (QIIME 2, torch thread pools loaded
    # by earlier tests) is a poor parent for gloo workers.
    (tmp_path / "seqs.json").write_text(json.dumps(seqs))
    root = str(Path(__file__).resolve().parents[1])  # the repository, where tests/ lives
    code = (f"import json, sys, torch.multiprocessing as mp; sys.path.insert(0, {root!r});"
            "from tests.test_language_model import _distributed_worker;"
            f"seqs = json.load(open({str(tmp_path / 'seqs.json')!r}));"
            f"mp.spawn(_distributed_worker, args=(2, {port}, {str(model_dir)!r}, seqs, "
            f"{str(tmp_path)!r}), nprocs=2)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    expected = embedder.embed(seqs)
    for rank in (0, 1):
        got = np.load(tmp_path / f"rank{rank}.npy")
        assert got.shape == expected.shape
        assert np.abs(got - expected).max() < 1e-5


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="needs a CUDA GPU (CI has none; benchmarks/gpu_checks.sh "
                                       "runs these on a lent one)")


@needs_cuda
def test_cuda_fp32_matches_cpu_and_bf16_default_stays_close(embedder, model_dir, reference):
    rng = np.random.default_rng(8)
    seqs = short_contigs(reference[1], 16, seed=8) + [_random_dna(rng, 900)]
    expected = embedder.embed(seqs)
    fp32 = LanguageModelEmbedder.from_pretrained(str(model_dir), device="cuda", dtype="float32")
    assert np.abs(fp32.embed(seqs) - expected).max() < 1e-3
    default = LanguageModelEmbedder.from_pretrained(str(model_dir), device="cuda")
    assert next(default.model.parameters()).dtype == torch.bfloat16
    got = default.embed(seqs)
    cosine = (got * expected).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(expected,
                                                                                  axis=1)
    assert cosine.min() > 0.98, cosine


@needs_cuda
def test_cuda_embeddings_repeat_exactly_and_do_not_depend_on_order_or_budget(model_dir,
                                                                             reference):
    gpu = LanguageModelEmbedder.from_pretrained(str(model_dir), device="cuda", dtype="float32")
    seqs = short_contigs(reference[1], 24, seed=9)
    first = gpu.embed(seqs)
    assert np.array_equal(gpu.embed(seqs), first)
    perm = np.random.default_rng(10).permutation(len(seqs))
    for budget in (WINDOW, 10_000):
        gpu.token_budget = budget
        assert np.abs(gpu.embed([seqs[i] for i in perm]) - first[perm]).max() < 1e-4


@needs_cuda
def test_cuda_command_line_matches_cpu(model_dir, tmp_path):
    from q2_taxdistill.engine.teacher.__main__ import main

    rng = np.random.default_rng(11)
    fasta = tmp_path / "contigs.fna"
    fasta.write_text("".join(f">c{i}\n{_random_dna(rng, int(n))}\n"
                             for i, n in enumerate(rng.integers(1000, 3000, 12))))
    out = {}
    for device in ("cpu", "cuda:0"):
        args = ["--contigs", str(fasta), "--teacher", str(model_dir),
                "--work-dir", str(tmp_path / f"work-{device}"),
                "--output", str(tmp_path / f"out-{device}"), "--devices", device]
        assert main(args) == 0
        out[device] = np.load(tmp_path / f"out-{device}" / "embeddings.npy")
    assert out["cpu"].shape == out["cuda:0"].shape == (12, 32)
    cosine = (out["cpu"] * out["cuda:0"]).sum(1) / (
        np.linalg.norm(out["cpu"], axis=1) * np.linalg.norm(out["cuda:0"], axis=1))
    assert cosine.min() > 0.98, cosine
