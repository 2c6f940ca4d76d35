"""Embed contigs with a Hugging Face causal genomic language model (GenomeOcean).

Everything here runs offline: models come from a local directory or the local Hugging Face cache,
never from the network. transformers is imported lazily so the rest of the engine works without it.

Pooling matches the official GenomeOcean embedding code: the masked mean of the last hidden state
of the base model (no LM head), with the tokenizer's default special tokens around every window.
What differs is only how the work is scheduled:

* Windows are right-padded and run WITHOUT an attention mask. Attention is causal, so a real token
  at position i only sees positions <= i, which are all real; padded positions produce outputs that
  the pooling mask drops. Every window therefore sits at positions 0..n-1 whatever the batch, so
  results do not depend on batch composition (the official left padding shifts the positions with
  the padding, which RoPE, being relative, absorbs up to rounding), and SDPA can use its fused
  causal kernel instead of materialising a padding mask.
* Contigs longer than one window are split into near-equal windows; the contig embedding is the
  token-count-weighted mean of the windows' masked means, i.e. the mean over every token of every
  window (each window's special tokens included).
* Windows are sorted by length, longest first, and packed into batches of at most `token_budget`
  padded tokens, so padding waste is small and an out-of-memory error shows up on the first batch.
"""

from __future__ import annotations

import contextlib
import heapq
import json
import math
import os
from pathlib import Path

import numpy as np
import torch

from ..errors import InputError, ModelLoadError, preview

ALIASES = {"pgenomeocean": "DOEJGI", "doejgi": "pGenomeOcean"}

# Context lengths the GenomeOcean authors document; a config may advertise more positions than the
# model was trained on, so windows for these checkpoints never exceed the documented length.
DOCUMENTED_CONTEXT = {"genomeocean-100m": 1024, "genomeocean-500m": 1024, "genomeocean-4b": 10240}

WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "tokenizer.model")

CPU_TOKEN_BUDGET = 8192
MAX_CUDA_TOKEN_BUDGET = 1 << 17
_TOKENIZE_CHUNK = 256
_FLUSH_ROWS = 4096


def _download_hint(spec):
    """The exact commands that make `spec` available offline."""
    repo = spec if _looks_like_repo_id(spec) else "pGenomeOcean/GenomeOcean-500M"
    return (
        "Models are never downloaded at run time. On a machine with network access run\n"
        f"    huggingface-cli download {repo} --local-dir DIR\n"
        "(or `hf download ...` with newer huggingface_hub), copy DIR here and pass --p-teacher DIR; "
        "alternatively pre-populate the Hugging Face cache (HF_HUB_CACHE or HF_HOME) with "
        f"`huggingface-cli download {repo}` and pass the model id."
    )


def _looks_like_repo_id(spec):
    parts = str(spec).split("/")
    return (
        len(parts) == 2
        and all(parts)
        and not str(spec).startswith((".", "~"))
        and all(c.isalnum() or c in "-_." for c in "".join(parts))
    )


def _cache_dirs(cache_dir):
    """Candidate hub caches, read from the environment at call time (not import time)."""
    dirs = []
    if cache_dir is not None:
        dirs.append(Path(cache_dir).expanduser())
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "TRANSFORMERS_CACHE"):
        if os.environ.get(var):
            dirs.append(Path(os.environ[var]).expanduser())
    if os.environ.get("HF_HOME"):
        dirs.append(Path(os.environ["HF_HOME"]).expanduser() / "hub")
    xdg = os.environ.get("XDG_CACHE_HOME")
    dirs.append((Path(xdg) if xdg else Path.home() / ".cache") / "huggingface" / "hub")
    unique = []
    for d in dirs:
        if d not in unique:
            unique.append(d)
    return unique


def _repo_variants(repo_id):
    """The id itself, then its alias (pGenomeOcean <-> DOEJGI), since both names are in use."""
    org, name = repo_id.split("/")
    variants = [repo_id]
    alias = ALIASES.get(org.lower())
    if alias:
        variants.append(f"{alias}/{name}")
    return variants


def _snapshot_in_cache(cache, repo_id):
    """The snapshot directory holding config.json for `repo_id` in one cache, or None."""
    repo_dir = cache / ("models--" + repo_id.replace("/", "--"))
    if not repo_dir.is_dir():
        return None
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        try_to_load_from_cache = None
    if try_to_load_from_cache is not None:
        found = try_to_load_from_cache(repo_id, "config.json", cache_dir=str(cache))
        if isinstance(found, str) and Path(found).is_file():
            return Path(found).parent
    ref = repo_dir / "refs" / "main"
    if ref.is_file():
        snap = repo_dir / "snapshots" / ref.read_text().strip()
        if (snap / "config.json").is_file():
            return snap
    snapshots = [s for s in (repo_dir / "snapshots").glob("*") if (s / "config.json").is_file()]
    if snapshots:
        return max(snapshots, key=lambda s: s.stat().st_mtime)
    return None


def _check_model_dir(path, spec):
    """Reject directories that are not a causal LM with weights and a tokenizer, naming the path."""
    config_file = path / "config.json"
    if not config_file.is_file():
        raise ModelLoadError(
            f"{str(path)!r} (from {spec!r}) is not a model directory: it has no config.json.\n"
            + _download_hint(str(spec))
        )
    try:
        config = json.loads(config_file.read_text())
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"{str(config_file)!r} is not readable JSON: {exc}") from exc
    if not isinstance(config, dict):
        raise ModelLoadError(f"{str(config_file)!r} does not hold a model configuration.")
    architectures = config.get("architectures") or []
    if architectures:
        causal = any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in architectures)
    else:
        try:
            from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
        except ImportError:
            MODEL_FOR_CAUSAL_LM_MAPPING_NAMES = None
        causal = (
            MODEL_FOR_CAUSAL_LM_MAPPING_NAMES is None
            or config.get("model_type") in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
        )
    if not causal:
        raise ModelLoadError(
            f"{str(path)!r} holds a {', '.join(architectures) or config.get('model_type')!r} model, "
            "not a causal language model such as GenomeOcean (MistralForCausalLM)."
        )
    if not any((path / f).is_file() for f in WEIGHT_FILES) and not any(path.glob("*.safetensors")):
        raise ModelLoadError(
            f"{str(path)!r} has a config.json but no weights (model.safetensors or "
            "pytorch_model.bin); the download is incomplete.\n" + _download_hint(str(spec))
        )
    if not any((path / f).is_file() for f in TOKENIZER_FILES):
        raise ModelLoadError(
            f"{str(path)!r} has no tokenizer (tokenizer.json / tokenizer_config.json); "
            "download the full model repository, not only the weights."
        )
    return path


def resolve_model_path(spec, cache_dir=None) -> Path:
    """Find a model on this machine: a local directory, or a Hugging Face id in the local cache.

    Never touches the network; raises ModelLoadError saying how to fetch the weights otherwise.
    """
    spec = str(spec)
    path = Path(spec).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelLoadError(
                f"{spec!r} is a file; pass the model directory that holds config.json, "
                "the weights and the tokenizer."
            )
        return _check_model_dir(path, spec)
    if _looks_like_repo_id(spec):
        for repo_id in _repo_variants(spec):
            for cache in _cache_dirs(cache_dir):
                snapshot = _snapshot_in_cache(cache, repo_id)
                if snapshot is not None:
                    return _check_model_dir(snapshot, spec)
        searched = ", ".join(str(c) for c in _cache_dirs(cache_dir))
        raise ModelLoadError(
            f"{spec!r} is neither an existing directory nor a model in the local Hugging Face "
            f"cache (searched {searched}).\n"
            + _download_hint(spec)
        )
    raise ModelLoadError(f"Model directory {spec!r} does not exist.\n" + _download_hint(spec))


@contextlib.contextmanager
def _quiet_transformers():
    """Hide the weight-loading progress bar and the expected 'lm_head unexpected' load report."""
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def _documented_context(spec):
    name = str(spec).rstrip("/").replace("--", "/").lower()
    for key, length in DOCUMENTED_CONTEXT.items():
        if key in name:
            return length
    return None


def _load_tokenizer(path):
    """AutoTokenizer first; GenomeOcean's config can defeat it under transformers >= 5."""
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    failures = []
    attempts = [
        lambda: AutoTokenizer.from_pretrained(path, use_fast=True, local_files_only=True),
        lambda: PreTrainedTokenizerFast.from_pretrained(path, local_files_only=True),
    ]
    if (path / "tokenizer.json").is_file():
        attempts.append(lambda: PreTrainedTokenizerFast(tokenizer_file=str(path / "tokenizer.json")))
    for attempt in attempts:
        try:
            return attempt()
        except Exception as exc:  # noqa: BLE001 - every failure is reported below
            failures.append(f"{type(exc).__name__}: {exc}")
    raise ModelLoadError(
        f"Cannot load the tokenizer in {str(path)!r}:\n  " + "\n  ".join(failures)
    )


def _as_dtype(dtype):
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    names = {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp16": torch.float16,
             "float16": torch.float16, "half": torch.float16, "fp32": torch.float32,
             "float32": torch.float32, "float": torch.float32}
    try:
        return names[str(dtype).lower().replace("torch.", "")]
    except KeyError:
        raise InputError(f"Unknown dtype {dtype!r}; use bfloat16, float16 or float32.") from None


def _default_device():
    if torch.cuda.is_available():
        local_rank = os.environ.get("LOCAL_RANK")
        return torch.device(f"cuda:{int(local_rank)}" if local_rank else "cuda")
    return torch.device("cpu")


def attention_implementation(device, dtype):
    """flash_attention_2 when installed (it needs half precision), else PyTorch SDPA."""
    if device.type == "cuda" and dtype in (torch.bfloat16, torch.float16):
        try:
            from transformers.utils import is_flash_attn_2_available

            if is_flash_attn_2_available():
                return "flash_attention_2"
        except ImportError:
            pass
    return "sdpa"


def _is_oom(exc):
    """CUDA OOM arrives as torch.cuda.OutOfMemoryError, or as a RuntimeError from some kernels."""
    return isinstance(exc, torch.cuda.OutOfMemoryError) or (
        isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()
    )


def _special_affixes(tokenizer):
    """The ids the tokenizer adds before and after a sequence by default (e.g. [CLS] ... [SEP])."""
    probe = "ACGTACGTTGCA"
    plain = list(tokenizer(probe, add_special_tokens=False)["input_ids"])
    full = list(tokenizer(probe)["input_ids"])
    for start in range(len(full) - len(plain) + 1):
        if full[start:start + len(plain)] == plain:
            return full[:start], full[start + len(plain):]
    raise ModelLoadError(
        "The tokenizer's default special tokens could not be separated from the sequence tokens, "
        "so long contigs cannot be windowed consistently."
    )


def split_windows(n_tokens, body_max):
    """(start, end) of near-equal windows of at most body_max tokens, as numpy.array_split does.

    Equal windows avoid a short tail window with little context and pack into batches better.
    """
    n_windows = max(1, math.ceil(n_tokens / body_max))
    base, extra = divmod(n_tokens, n_windows)
    bounds, start = [], 0
    for w in range(n_windows):
        end = start + base + (1 if w < extra else 0)
        bounds.append((start, end))
        start = end
    return bounds


class LanguageModelEmbedder:
    """Contig embeddings from the last hidden state of a causal LM, scheduled for throughput."""

    def __init__(self, model, tokenizer, device=None, token_budget=None, max_window_tokens=None,
                 progress=None):
        self.model = model.eval()
        if hasattr(self.model.config, "use_cache"):
            self.model.config.use_cache = False
        self.tokenizer = tokenizer
        self.device = torch.device(device) if device is not None else next(model.parameters()).device
        self.hidden_size = int(model.config.hidden_size)
        self.progress = progress
        window = getattr(model.config, "max_position_embeddings", None) or max_window_tokens
        if window is None:
            raise ModelLoadError("The model config has no max_position_embeddings; pass max_window_tokens.")
        if max_window_tokens is not None:
            window = min(window, int(max_window_tokens))
        self.prefix, self.suffix = _special_affixes(tokenizer)
        self.window_tokens = int(window)
        self.body_tokens = self.window_tokens - len(self.prefix) - len(self.suffix)
        if self.body_tokens < 1:
            raise InputError(f"A window of {self.window_tokens} tokens leaves no room for sequence tokens.")
        pad = tokenizer.pad_token_id
        if pad is None:
            pad = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
        self.pad_id = int(pad)
        self.token_budget = max(int(token_budget or self._default_budget()), self.window_tokens)

    @classmethod
    def from_pretrained(cls, path_or_id, device=None, dtype=None, token_budget=None,
                        max_window_tokens=None, progress=None, cache_dir=None):
        """Load from a local directory or the local HF cache; bf16 + fused attention on CUDA."""
        path = resolve_model_path(path_or_id, cache_dir=cache_dir)
        device = torch.device(device) if device is not None else _default_device()
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ModelLoadError(f"Device {str(device)!r} was requested but CUDA is not available.")
        dtype = _as_dtype(dtype) or (torch.bfloat16 if device.type == "cuda" else torch.float32)
        documented = _documented_context(path_or_id) or _documented_context(path)
        if documented is not None:
            max_window_tokens = min(documented, max_window_tokens or documented)
        tokenizer = _load_tokenizer(path)
        model = cls._load_model(path, device, dtype)
        return cls(model, tokenizer, device=device, token_budget=token_budget,
                   max_window_tokens=max_window_tokens, progress=progress)

    @staticmethod
    def _load_model(path, device, dtype):
        """The base model (no LM head, so no vocab-sized logits), falling back to SDPA if needed."""
        import transformers
        from transformers import AutoModel

        dtype_kw = "dtype" if tuple(int(p) for p in transformers.__version__.split(".")[:2]) >= (4, 56) \
            else "torch_dtype"
        attn = attention_implementation(device, dtype)
        failures = []
        for implementation in dict.fromkeys([attn, "sdpa", "eager"]):
            try:
                with _quiet_transformers():
                    model, info = AutoModel.from_pretrained(
                        path, local_files_only=True, attn_implementation=implementation,
                        output_loading_info=True, **{dtype_kw: dtype},
                    )
            except Exception as exc:  # noqa: BLE001 - reported below if every attempt fails
                failures.append(f"{implementation}: {type(exc).__name__}: {exc}")
                continue
            missing = sorted(info.get("missing_keys") or [])
            mismatched = [k[0] if isinstance(k, tuple) else k for k in info.get("mismatched_keys") or []]
            if missing or mismatched:
                problems = [f"{label} {preview(keys)}" for label, keys in
                            (("missing", missing), ("wrong shape", mismatched)) if keys]
                raise ModelLoadError(
                    f"The weights in {str(path)!r} do not match its config.json ("
                    + "; ".join(problems) + "); the checkpoint is incomplete or for another model."
                )
            try:
                return model.to(device)
            except Exception as exc:  # noqa: BLE001 - only OOM gets a friendlier message
                if _is_oom(exc):
                    raise ModelLoadError(f"The model in {str(path)!r} does not fit on {device}.") from exc
                raise
        raise ModelLoadError(f"Cannot load the model in {str(path)!r}:\n  " + "\n  ".join(failures))

    def _default_budget(self):
        """Padded tokens per batch: what fits in ~60% of free GPU memory, a small batch on CPU."""
        if self.device.type != "cuda":
            return CPU_TOKEN_BUDGET
        free, _ = torch.cuda.mem_get_info(self.device)
        config = self.model.config
        dtype_bytes = torch.finfo(next(self.model.parameters()).dtype).bits // 8
        intermediate = getattr(config, "intermediate_size", 4 * self.hidden_size)
        per_token = dtype_bytes * (6 * self.hidden_size + 3 * intermediate) + 8 * self.hidden_size
        return min(MAX_CUDA_TOKEN_BUDGET, int(0.6 * free / per_token))

    def _tokenize(self, sequences):
        """Token ids of every contig (no special tokens), as compact int32 arrays."""
        empty = [i for i, s in enumerate(sequences) if not s]
        if empty:
            raise InputError(f"Cannot embed empty sequences (positions {preview(empty)}).")
        ids = []
        for start in range(0, len(sequences), _TOKENIZE_CHUNK):
            chunk = [s.upper() for s in sequences[start:start + _TOKENIZE_CHUNK]]
            encoded = self.tokenizer(chunk, add_special_tokens=False, return_attention_mask=False,
                                     verbose=False)["input_ids"]
            ids.extend(np.asarray(e, dtype=np.int32) for e in encoded)
        return ids

    def _forward(self, input_ids, lengths):
        """Masked mean of the last hidden state of each row, in fp32 (rows are right-padded)."""
        hidden = self.model(input_ids=input_ids, use_cache=False).last_hidden_state
        padding = torch.arange(input_ids.shape[1], device=input_ids.device)[None, :] >= lengths[:, None]
        hidden.masked_fill_(padding.unsqueeze(-1), 0)
        summed = hidden.sum(dim=1, dtype=torch.float32)
        return summed / lengths.unsqueeze(-1).to(torch.float32)

    def _batch_tensors(self, rows, length):
        """Padded ids and lengths, pinned and copied asynchronously when the model is on a GPU."""
        cuda = self.device.type == "cuda"
        ids = torch.full((len(rows), length), self.pad_id, dtype=torch.long, pin_memory=cuda)
        lens = torch.empty(len(rows), dtype=torch.long, pin_memory=cuda)
        view, lens_view = ids.numpy(), lens.numpy()
        affix_len = len(self.prefix) + len(self.suffix)
        for r, (tokens, start, end) in enumerate(rows):
            n = end - start + affix_len
            view[r, :n] = np.concatenate([self.prefix, tokens[start:end], self.suffix])
            lens_view[r] = n
        return ids.to(self.device, non_blocking=cuda), lens.to(self.device, non_blocking=cuda)

    def embed(self, sequences) -> np.ndarray:
        """float32 (n, hidden) embeddings, one row per input sequence, in input order."""
        sequences = list(sequences)
        if not sequences:
            return np.empty((0, self.hidden_size), dtype=np.float32)
        token_ids = self._tokenize(sequences)
        owner, rows, sizes = [], [], []
        affix_len = len(self.prefix) + len(self.suffix)
        for i, tokens in enumerate(token_ids):
            for start, end in split_windows(len(tokens), self.body_tokens):
                owner.append(i)
                rows.append((tokens, start, end))
                sizes.append(end - start + affix_len)
        owner = np.asarray(owner)
        sizes = np.asarray(sizes, dtype=np.int64)
        order = np.argsort(-sizes, kind="stable")
        total = len(order)

        sums = torch.zeros((len(sequences), self.hidden_size), dtype=torch.float64)
        pending, pending_rows = [], 0

        def flush():
            """Move finished window means to the host in one copy and add them to their contigs."""
            nonlocal pending, pending_rows
            if pending:
                means = torch.cat([p for p, _ in pending]).to("cpu", torch.float64)
                which = torch.from_numpy(np.concatenate([w for _, w in pending]))
                sums.index_add_(0, torch.from_numpy(owner)[which],
                                means * torch.from_numpy(sizes)[which, None].to(torch.float64))
            pending, pending_rows = [], 0

        budget, done = self.token_budget, 0
        with torch.inference_mode():
            while done < total:
                longest = int(sizes[order[done]])
                count = min(total - done, max(1, budget // longest))
                which = order[done:done + count]
                ids, lens = self._batch_tensors([rows[w] for w in which], longest)
                try:
                    means = self._forward(ids, lens)
                except Exception as exc:  # noqa: BLE001 - only OOM is handled, the rest re-raised
                    if not _is_oom(exc):
                        raise
                    means = None
                if means is None:
                    del ids, lens
                    if self.device.type == "cuda":
                        torch.cuda.empty_cache()
                    if count == 1:
                        raise ModelLoadError(
                            f"A single window of {longest} tokens does not fit in memory on "
                            f"{self.device}; pass a smaller max_window_tokens or use a larger GPU."
                        )
                    budget = (count // 2) * longest
                    continue
                pending.append((means, which))
                pending_rows += count
                if pending_rows >= _FLUSH_ROWS:
                    flush()
                done += count
                if self.progress is not None:
                    self.progress(done, total)
            flush()
        weights = np.bincount(owner, weights=sizes, minlength=len(sequences))
        return (sums.numpy() / weights[:, None]).astype(np.float32)


def shard_assignment(lengths, n_shards) -> np.ndarray:
    """The shard (0..n_shards-1) of every item under a greedy longest-first split that balances
    total length: each item, longest first, goes to the shard with the least length so far
    (ties to the lowest shard). Deterministic, so every rank or worker computes the same split
    without communicating; the loads differ by at most the longest item."""
    if n_shards < 1:
        raise InputError(f"cannot split into {n_shards} shards.")
    lengths = np.asarray(lengths, dtype=np.int64)
    loads = [(0, s) for s in range(n_shards)]
    heapq.heapify(loads)
    shard = np.empty(len(lengths), dtype=np.int64)
    for i in np.argsort(-lengths, kind="stable"):
        load, s = loads[0]
        shard[i] = s
        heapq.heapreplace(loads, (load + int(lengths[i]), s))
    return shard


def shard_indices(lengths, world_size, rank) -> np.ndarray:
    """This rank's items (ascending) under `shard_assignment` over `world_size` shards."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise InputError(f"rank {rank} is not in a world of size {world_size}.")
    return np.flatnonzero(shard_assignment(lengths, world_size) == rank).astype(np.int64)


def embed_distributed(embedder, sequences) -> np.ndarray:
    """Embed across the ranks of an initialised torch.distributed group; every rank gets all rows.

    Each rank embeds a length-balanced shard, then a padded all_gather assembles the rows in input
    order. Without an initialised process group this is just `embedder.embed(sequences)`.
    Under torchrun with NCCL, build the embedder on cuda:LOCAL_RANK (the default device).
    """
    import torch.distributed as dist

    sequences = list(sequences)
    if not (dist.is_available() and dist.is_initialized()):
        return embedder.embed(sequences)
    world, rank = dist.get_world_size(), dist.get_rank()
    if not sequences:
        return np.empty((0, embedder.hidden_size), dtype=np.float32)
    mine = shard_indices([len(s) for s in sequences], world, rank)
    local = embedder.embed([sequences[i] for i in mine])

    comm_device = torch.device("cpu")
    if dist.get_backend() == "nccl":
        comm_device = embedder.device
        torch.cuda.set_device(comm_device)
    counts = [torch.zeros(1, dtype=torch.long, device=comm_device) for _ in range(world)]
    dist.all_gather(counts, torch.tensor([len(mine)], dtype=torch.long, device=comm_device))
    counts = [int(c.item()) for c in counts]
    most = max(counts)
    padded = torch.zeros((most, embedder.hidden_size), dtype=torch.float32, device=comm_device)
    padded[:len(mine)] = torch.from_numpy(local).to(comm_device)
    gathered = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(gathered, padded)

    lengths = [len(s) for s in sequences]
    out = np.empty((len(sequences), embedder.hidden_size), dtype=np.float32)
    for r in range(world):
        out[shard_indices(lengths, world, r)] = gathered[r][:counts[r]].cpu().numpy()
    return out
