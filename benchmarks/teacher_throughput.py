#!/usr/bin/env python
"""Teacher embedding throughput: three ways to embed the same contigs with a GenomeOcean-shaped model.

(a) reference TaxDistill path: fp32, eager attention, a sequence-classification model's forward
    (all hidden states returned), every input padded/truncated to 512 tokens, batch 64. To embed the
    same bases as the other paths, contigs longer than 512 tokens are cut into 512-token chunks and
    every chunk is embedded (the reference truncates, which would embed far fewer bases).
(b) official-genomeocean style: bf16 on CUDA, SDPA, AutoModel, windows sorted by length, batch 25,
    left padding='longest' with an attention mask, hidden states copied to the host and mean-pooled
    there. Contigs are cut into windows of the model context (the official code truncates).
(c) ours: q2_taxdistill.engine.teacher.language_model.LanguageModelEmbedder (token-budget batches, right
    padding with no mask so SDPA uses its causal kernel, fp32 pooling on the device).

Weights are random (same weights in every path); throughput does not depend on them. Contigs are
synthetic: log-normal lengths clipped to 2-100 kb, per-contig GC drawn from U(0.3, 0.7), seeded.
Tokens come from a BPE tokenizer trained on the fly on 1 Mbp of that DNA (vocab 4096 for the 500M
config gives ~4.8 bp/token on such DNA, close to GenomeOcean's 4-5 bp/token on real contigs).

MFU = achieved FLOP/s / peak, with forward FLOPs = 2 * N * T + 4 * L * d * sum_w(len_w^2), where N
is the non-embedding parameter count, T the real (non-padding) tokens, L layers, d hidden size, and
the sum runs over the windows (chunks) each path actually embeds. Padding is not counted as useful
work, so padding waste shows up as a lower MFU.

    python benchmarks/teacher_throughput.py --config small --device cpu --n-contigs 40
    python benchmarks/teacher_throughput.py --config 500m --device cuda --n-contigs 2000

`--markdown FILE` also writes the README's throughput table (GPU name, date, versions, targets);
`benchmarks/gpu_throughput.sh` is the one prepared run for a lent GPU.
"""

import argparse
import copy
import datetime
import os
import subprocess
import resource
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from q2_taxdistill.engine.teacher.language_model import (  # noqa: E402
    LanguageModelEmbedder,
    attention_implementation,
    split_windows,
)

CONFIGS = {
    "500m": dict(hidden_size=1536, intermediate_size=6144, num_hidden_layers=14,
                 num_attention_heads=8, num_key_value_heads=8, vocab_size=4096, rope_theta=1e6,
                 max_position_embeddings=1024),
    "small": dict(hidden_size=128, intermediate_size=512, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=4, vocab_size=512, rope_theta=1e6,
                  max_position_embeddings=1024),
}
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
REFERENCE_LENGTH, REFERENCE_BATCH, OFFICIAL_BATCH = 512, 64, 25
# Dense (no sparsity) bf16 tensor-core peaks from the vendor's data sheets, TFLOP/s; the first
# name found in torch.cuda.get_device_name() wins, so the PCIe variants come first.
DENSE_BF16_TFLOPS = (("H100 PCIe", 756.0), ("H100 NVL", 835.0), ("H200", 989.4), ("H100", 989.4),
                     ("GH200", 989.4), ("A100", 312.0), ("L40S", 362.0), ("A10G", 70.0))
# The goals of the teacher work: MFU of ours, and bp/s of ours over each reference path.
TARGETS = {"MFU": 0.50, "(a)": 3.0, "(b)": 1.5}


def dense_bf16_peak(device_name):
    """The peak for MFU, or None for a GPU not in the table (pass --peak-tflops then)."""
    for name, tflops in DENSE_BF16_TFLOPS:
        if name.lower() in device_name.lower():
            return tflops
    return None


def synthetic_contigs(n, seed):
    rng = np.random.default_rng(seed)
    lengths = np.clip(rng.lognormal(np.log(8000), 1.0, n), 2000, 100_000).astype(int)
    letters = np.frombuffer(b"ACGT", dtype=np.uint8)
    contigs = []
    for length in lengths:
        gc = rng.uniform(0.3, 0.7)
        probs = [(1 - gc) / 2, gc / 2, gc / 2, (1 - gc) / 2]
        contigs.append(letters[rng.choice(4, size=length, p=probs)].tobytes().decode())
    return contigs


def train_tokenizer(vocab_size, seed):
    """BPE on 1 Mbp of the same synthetic DNA, with GenomeOcean's [CLS] ... [SEP] template."""
    from tokenizers import Tokenizer, models, processors, trainers
    from transformers import PreTrainedTokenizerFast

    rng = np.random.default_rng(seed + 1)
    letters = np.frombuffer(b"ACGT", dtype=np.uint8)
    corpus = [letters[rng.integers(0, 4, 500)].tobytes().decode() for _ in range(2000)]
    bpe = Tokenizer(models.BPE(unk_token="[UNK]"))
    bpe.train_from_iterator(corpus, trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIALS, initial_alphabet=list("ACGTN"),
        show_progress=False))
    bpe.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        special_tokens=[("[CLS]", bpe.token_to_id("[CLS]")), ("[SEP]", bpe.token_to_id("[SEP]"))])
    return PreTrainedTokenizerFast(tokenizer_object=bpe, unk_token="[UNK]", pad_token="[PAD]",
                                   cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_memory(device):
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


class RssSampler(threading.Thread):
    """Peak resident memory during one path on CPU (ru_maxrss only ever grows over the process)."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak, self.stop = current_rss_mib(), threading.Event()

    def run(self):
        while not self.stop.wait(0.02):
            self.peak = max(self.peak, current_rss_mib())


def current_rss_mib():
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def framed_windows(tokenizer, contigs, length):
    """All contigs' tokens cut into near-equal windows of <= length tokens including the
    [CLS]/[SEP] frame; returns (windows, owner: the contig index of each window)."""
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    encoded = tokenizer(contigs, add_special_tokens=False, verbose=False)["input_ids"]
    windows, owner = [], []
    for i, ids in enumerate(encoded):
        for start, end in split_windows(len(ids), length - 2):
            windows.append([cls, *ids[start:end], sep])
            owner.append(i)
    return windows, owner


def pool_windows(owner, sizes, means, n):
    sums = np.zeros((n, means.shape[1]))
    np.add.at(sums, owner, means * sizes[:, None])
    return sums / np.bincount(owner, weights=sizes, minlength=n)[:, None]


def run_reference(model, tokenizer, contigs, device):
    """(a): 512-token chunks padded to 512, batch 64, fp32, eager, all hidden states."""
    chunks, owner = framed_windows(tokenizer, contigs, REFERENCE_LENGTH)
    means = []
    with torch.no_grad():
        for start in range(0, len(chunks), REFERENCE_BATCH):
            batch = tokenizer.pad({"input_ids": chunks[start:start + REFERENCE_BATCH]},
                                  padding="max_length", max_length=REFERENCE_LENGTH,
                                  return_tensors="pt")
            ids, mask = batch["input_ids"].to(device), batch["attention_mask"].to(device)
            out = model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
            hidden = out.hidden_states[-1]
            m = mask.unsqueeze(-1).to(hidden.dtype)
            means.append(((hidden * m).sum(1) / m.sum(1)).float().cpu())
    sizes = np.array([len(c) for c in chunks], dtype=float)
    emb = pool_windows(np.array(owner), sizes, torch.cat(means).numpy(), len(contigs))
    return emb, [len(c) for c in chunks]


def run_official(model, tokenizer, contigs, device, window):
    """(b): sorted windows, batch 25, left padding='longest' + mask, pooled on the host."""
    windows, owner = framed_windows(tokenizer, contigs, window)
    order = np.argsort([len(w) for w in windows], kind="stable")
    tokenizer.padding_side = "left"
    means = [None] * len(windows)
    with torch.no_grad():
        for start in range(0, len(order), OFFICIAL_BATCH):
            idx = order[start:start + OFFICIAL_BATCH]
            batch = tokenizer.pad({"input_ids": [windows[i] for i in idx]}, padding="longest",
                                  return_tensors="pt")
            ids, mask = batch["input_ids"].to(device), batch["attention_mask"].to(device)
            hidden = model(input_ids=ids, attention_mask=mask)[0].detach().cpu()
            m = mask.unsqueeze(-1).cpu()
            pooled = torch.sum(hidden * m, dim=1) / torch.sum(m, dim=1)
            for j, i in enumerate(idx):
                means[i] = pooled[j].float().numpy()
    tokenizer.padding_side = "right"
    sizes = np.array([len(w) for w in windows], dtype=float)
    emb = pool_windows(np.array(owner), sizes, np.stack(means), len(contigs))
    return emb, [len(w) for w in windows]


def window_lengths_ours(embedder, contigs):
    affix = len(embedder.prefix) + len(embedder.suffix)
    encoded = embedder.tokenizer(contigs, add_special_tokens=False, verbose=False)["input_ids"]
    return [e - s + affix for ids in encoded for s, e in split_windows(len(ids), embedder.body_tokens)]


def flops(n_params, cfg, window_lengths):
    lengths = np.asarray(window_lengths, dtype=np.float64)
    return 2 * n_params * lengths.sum() + 4 * cfg.num_hidden_layers * cfg.hidden_size * (lengths**2).sum()


def timed(fn, device):
    """(result, seconds, peak MiB): CUDA allocator peak on GPU, sampled process RSS on CPU."""
    reset_memory(device)
    sampler = RssSampler() if device.type == "cpu" else None
    if sampler:
        sampler.start()
    sync(device)
    start = time.perf_counter()
    result = fn()
    sync(device)
    seconds = time.perf_counter() - start
    if sampler:
        sampler.stop.set()
        sampler.join()
        return result, seconds, sampler.peak
    return result, seconds, torch.cuda.max_memory_allocated(device) / 2**20


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", choices=sorted(CONFIGS), default="500m")
    parser.add_argument("--device", choices=["cpu", "cuda"],
                        default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--n-contigs", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help="peak dense TFLOP/s for MFU (default on cuda: the GPU's dense bf16 "
                             "peak from a table of known GPUs; 0 = MFU not shown)")
    parser.add_argument("--markdown", default=None,
                        help="also write the results as a Markdown table to this file")
    parser.add_argument("--token-budget", type=int, default=None,
                        help="padded tokens per batch for path (c) (default: sized to free memory)")
    parser.add_argument("--torch-compile", action="store_true",
                        help="torch.compile(dynamic=True) the model of path (c); compile time is excluded "
                             "by a warm-up pass over all contigs")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (pin this on a shared machine for steadier timings)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    from transformers import MistralConfig, MistralForSequenceClassification, MistralModel

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda but CUDA is not available")
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    peak = args.peak_tflops
    if peak is None:
        peak = (dense_bf16_peak(device_name) or 0.0) if device.type == "cuda" else 0.0
    fast_dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    fast_name = "bf16" if fast_dtype == torch.bfloat16 else "fp32"

    torch.manual_seed(args.seed)
    contigs = synthetic_contigs(args.n_contigs, args.seed)
    tokenizer = train_tokenizer(CONFIGS[args.config]["vocab_size"], args.seed)
    config = MistralConfig(**CONFIGS[args.config], pad_token_id=tokenizer.pad_token_id,
                           bos_token_id=tokenizer.cls_token_id, eos_token_id=tokenizer.sep_token_id,
                           sliding_window=None, num_labels=2)
    config.vocab_size = max(config.vocab_size, len(tokenizer))
    base_state = MistralModel(config).state_dict()
    n_params = sum(v.numel() for k, v in base_state.items() if "embed_tokens" not in k)
    total_bp = sum(map(len, contigs))
    n_tok = sum(len(ids) for ids in tokenizer(contigs, add_special_tokens=False)["input_ids"])
    print(f"config={args.config} device={device} contigs={len(contigs)} bases={total_bp:,} "
          f"body tokens={n_tok:,} ({total_bp / n_tok:.2f} bp/token) "
          f"non-embedding params={n_params / 1e6:.1f}M window={config.max_position_embeddings}")

    def build(cls, dtype, attn):
        cfg = copy.deepcopy(config)
        cfg._attn_implementation = attn
        model = cls(cfg)
        target = model.model if hasattr(model, "score") else model
        target.load_state_dict(base_state)
        return model.to(device=device, dtype=dtype).eval()

    warm = contigs[:2]
    rows = []

    model = build(MistralForSequenceClassification, torch.float32, "eager")
    run_reference(model, tokenizer, warm, device)
    (emb_a, lens_a), secs, mem = timed(lambda: run_reference(model, tokenizer, contigs, device), device)
    rows.append(("(a) reference TaxDistill", "fp32", "eager", lens_a, secs, mem))
    del model
    reset_memory(device)

    model = build(MistralModel, fast_dtype, "sdpa")
    window = config.max_position_embeddings
    run_official(model, tokenizer, warm, device, window)
    (emb_b, lens_b), secs, mem = timed(lambda: run_official(model, tokenizer, contigs, device, window),
                                       device)
    rows.append(("(b) official-genomeocean style", fast_name, "sdpa", lens_b, secs, mem))
    del model
    reset_memory(device)

    attn = attention_implementation(device, fast_dtype)
    model = build(MistralModel, fast_dtype, attn)
    if args.torch_compile:
        model = torch.compile(model, dynamic=True)
    embedder = LanguageModelEmbedder(model, tokenizer, device=device, token_budget=args.token_budget)
    if args.torch_compile:
        _, compile_secs, _ = timed(lambda: embedder.embed(contigs), device)
        print(f"torch.compile warm-up over every batch shape: {compile_secs:.1f} s (not counted below)")
    else:
        embedder.embed(warm)
    emb_c, secs, mem = timed(lambda: embedder.embed(contigs), device)
    lens_c = window_lengths_ours(embedder, contigs)
    label = "(c) ours" + (" +compile" if args.torch_compile else "")
    rows.append((label, fast_name, attn, lens_c, secs, mem))

    mem_label = "peak GPU MiB" if device.type == "cuda" else "peak RSS MiB*"
    header = f"{'path':<32}{'dtype':>9}{'attn':>7}{'windows':>9}{'tokens':>11}{'seconds':>9}" \
             f"{'tokens/s':>11}{'bp/s':>12}{'MFU':>8}{mem_label:>15}"
    print(header)
    print("-" * len(header))
    bp_rate, mfus = {}, {}
    for name, dtype, attn_name, lens, secs, mem in rows:
        tokens = sum(lens)
        mfus[name[:3]] = flops(n_params, config, lens) / secs / (peak * 1e12) if peak > 0 else None
        mfu = f"{100 * mfus[name[:3]]:.1f}%" if peak > 0 else "-"
        bp_rate[name[:3]] = total_bp / secs
        print(f"{name:<32}{dtype:>9}{attn_name:>7}{len(lens):>9}{tokens:>11,}{secs:>9.2f}"
              f"{tokens / secs:>11,.0f}{total_bp / secs:>12,.0f}{mfu:>8}{mem:>15,.0f}")
    print(f"speed-up in bp/s: ours/(a) = {bp_rate['(c)'] / bp_rate['(a)']:.2f}x, "
          f"ours/(b) = {bp_rate['(c)'] / bp_rate['(b)']:.2f}x")
    cos = np.sum(emb_b * emb_c, 1) / (np.linalg.norm(emb_b, axis=1) * np.linalg.norm(emb_c, axis=1))
    print(f"median cosine(ours, official-style) over contigs = {np.median(cos):.4f} "
          "(same windows; RoPE is relative, so (b)'s left padding changes results only by rounding)")
    print("FLOPs = 2*N_nonembedding*real_tokens + 4*layers*hidden*sum(window_len^2); padding not counted; "
          f"peak = {peak:g} TFLOP/s" + (" (MFU not shown)" if peak <= 0 else ""))
    print("(a) embeds every 512-token chunk of each contig (the reference truncates at 512), "
          "so all paths embed the same bases.")
    if device.type != "cuda":
        print("* peak resident memory of the whole process while the path ran (sampled every 20 ms), "
              "model and inputs included.")
    if args.markdown:
        summary = dict(config=args.config, device_name=device_name, peak=peak,
                       contigs=len(contigs), bases=total_bp, tokens=n_tok, mem_label=mem_label,
                       compile=args.torch_compile)
        Path(args.markdown).write_text(markdown_table(rows, summary, bp_rate, mfus, n_params, config))
        print(f"Markdown table written to {args.markdown}")
    return 0


def _commit():
    """TAXDISTILL_COMMIT when set (a copied work tree may have no .git), else git's HEAD."""
    if os.environ.get("TAXDISTILL_COMMIT"):
        return os.environ["TAXDISTILL_COMMIT"]
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).resolve().parents[1], timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _goal(label, value, goal, unit):
    shown = f"{100 * value:.1f}%" if unit == "%" else f"{value:.2f}x"
    wanted = f"{100 * goal:.0f}%" if unit == "%" else f"{goal:g}x"
    return f"{label} {shown} (goal >= {wanted}: {'met' if value >= goal else 'not met'})"


def markdown_table(rows, summary, bp_rate, mfus, n_params, config):
    """The README table: one row per path, ratios of ours to each, and (on a GPU) the goals."""
    import transformers

    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    command = f"benchmarks/teacher_throughput.py --config {summary['config']}" + (
        " --torch-compile" if summary["compile"] else "")
    intro = (f"Measured {date} on one {summary['device_name']} (torch {torch.__version__}, "
             f"transformers {transformers.__version__}, code at commit {_commit() or 'unknown'}) "
             f"with `{command}`: the `{summary['config']}` model configuration at random weights "
             f"({n_params / 1e6:.3g}M non-embedding parameters, {config.num_hidden_layers} layers, "
             f"hidden {config.hidden_size}), {summary['contigs']:,} synthetic contigs, "
             f"{summary['bases']:,} bp ({summary['tokens']:,} tokens), the same bases in every path.")
    intro += (f" MFU against a dense peak of {summary['peak']:g} TFLOP/s." if summary["peak"]
              else " No MFU (no peak known for this device).")
    lines = [intro, "",
             f"| path | dtype | attention | tokens/s | bp/s | MFU | "
             f"{summary['mem_label'].rstrip('*')} | ours / path (bp/s) |",
             "|---|---|---|---|---|---|---|---|"]
    for name, dtype, attn_name, lens, secs, mem in rows:
        key = name[:3]
        mfu = f"{100 * mfus[key]:.1f}%" if mfus[key] is not None else "-"
        ratio = f"{bp_rate['(c)'] / bp_rate[key]:.2f}x" if key != "(c)" else "1"
        lines.append(f"| {name} | {dtype} | {attn_name} | {sum(lens) / secs:,.0f} | "
                     f"{bp_rate[key]:,.0f} | {mfu} | {mem:,.0f} | {ratio} |")
    if summary["device_name"] != "CPU":
        goals = [_goal("ours/(a)", bp_rate["(c)"] / bp_rate["(a)"], TARGETS["(a)"], "x"),
                 _goal("ours/(b)", bp_rate["(c)"] / bp_rate["(b)"], TARGETS["(b)"], "x")]
        if mfus["(c)"] is not None:
            goals.insert(0, _goal("MFU of ours", mfus["(c)"], TARGETS["MFU"], "%"))
        lines += ["", "Goals of the teacher work: " + "; ".join(goals) + "."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
