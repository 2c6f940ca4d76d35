"""Embed a whole assembly on many GPUs, resumably: a shard plan, one file per finished shard,
and a merge into the `FeatureData[Embeddings]` directory format that `teach --i-embeddings` takes.

    python -m q2_taxdistill.engine.teacher --contigs contigs.qza \\
        --teacher /models/GenomeOcean-500M --work-dir embed-work --output embeddings

The work directory holds the plan (`plan.json`, the IDs to embed, the shard of each), the contigs
split into one FASTA per shard (a copy of the input: each worker reads only its shards) and one
`.npz` per finished shard, written under a temporary name and renamed, so a shard file that exists
is complete. A crashed or pre-empted run started again with the same command embeds only the
shards that have no file yet; the merge checks that the IDs out are exactly the IDs in.

Shards are balanced by bases (greedy longest-first, `language_model.shard_assignment`): BPE tokens
per base are nearly constant over a metagenome, and counting bases needs no tokenizer pass.

How the shards are run:

* one process (`--workers 1`, the default without a GPU);
* one worker process per GPU of this node (`--workers N`, default: every visible GPU);
* under `torchrun --nproc-per-node N` (RANK / WORLD_SIZE / LOCAL_RANK set): rank r embeds shards
  r, r + N, ... on cuda:LOCAL_RANK and rank 0 merges once every shard is written; no collective
  is needed, so no process group is created;
* many nodes: `--parsl-config` (see `parsl_embedding`).

No QIIME 2 import: this runs on a GPU machine with Python, torch and transformers only.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError, TaxDistillError, preview
from ..parameters import DEFAULTS
from ..progress import report, reporting, stderr_reporter
from ..sequences import Contigs, clean_sequence, read_fasta
from .language_model import shard_assignment
from .teachers import load_teacher

PLAN_VERSION = 1
DEFAULT_SHARD_BASES = 50_000_000
CONTIG_TYPES = ("FeatureData[Sequence]", "SampleData[Contigs]", "FeatureData[MAG]")
FASTA_SUFFIXES = (".fa", ".fasta", ".fna", ".fa.gz", ".fasta.gz", ".fna.gz")
_FLUSH_BYTES = 64 << 20
_POLL_SECONDS = 2.0


def _fasta_members(names):
    return sorted(n for n in names if n.lower().endswith(FASTA_SUFFIXES))


def _artifact_type(archive, path):
    """The semantic type in an artifact's metadata.yaml (read as text: no QIIME 2, no YAML)."""
    meta = [n for n in archive.namelist() if n.count("/") == 1 and n.endswith("/metadata.yaml")]
    if not meta:
        raise InputError(f"{path} is a zip file but not a QIIME 2 artifact (no metadata.yaml).")
    for line in archive.read(meta[0]).decode("utf-8", "replace").splitlines():
        if line.startswith("type:"):
            return line.split(":", 1)[1].strip(), meta[0].split("/")[0]
    raise InputError(f"{path}: metadata.yaml names no type.")


def _concatenate(sources, target):
    """Copy byte streams one after the other into one FASTA, each ending on a new line."""
    tmp = target.with_name(target.name + ".tmp")
    with open(tmp, "wb") as out:
        for open_source in sources:
            last = b""
            with open_source() as src:
                for chunk in iter(lambda: src.read(1 << 20), b""):
                    out.write(chunk)
                    last = chunk[-1:]
            if last and last != b"\n":
                out.write(b"\n")
    os.replace(tmp, target)
    return target


def contigs_fasta(source, work_dir) -> Path:
    """One FASTA of the contigs in `source`: a FASTA file (plain or gzip) as it is, or the FASTA
    files of a `.qza` (FeatureData[Sequence], SampleData[Contigs], FeatureData[MAG]) or of a
    directory (an exported artifact) concatenated in name order into the work directory, as the
    plugin's actions read them."""
    path = Path(source)
    if not path.exists():
        raise InputError(f"the contigs {str(path)!r} do not exist.")
    target = Path(work_dir) / "input.fasta"
    if path.is_dir():
        files = _fasta_members(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file())
        if not files:
            raise InputError(f"the directory {str(path)!r} holds no FASTA file "
                             f"({', '.join(FASTA_SUFFIXES)}).")
        return _concatenate([lambda f=f: open(path / f, "rb") for f in files], target)
    if not zipfile.is_zipfile(path):
        return path
    with zipfile.ZipFile(path) as archive:
        kind, root = _artifact_type(archive, path)
        if kind not in CONTIG_TYPES:
            raise InputError(f"{str(path)!r} is a {kind} artifact; give contigs as "
                             f"{', '.join(CONTIG_TYPES)} or a FASTA file.")
        files = _fasta_members(n for n in archive.namelist() if n.startswith(f"{root}/data/"))
        if not files:
            raise InputError(f"the {kind} artifact {str(path)!r} holds no FASTA file.")
        if any(f.endswith(".gz") for f in files):
            import gzip

            return _concatenate([lambda f=f: gzip.open(archive.open(f)) for f in files], target)
        return _concatenate([lambda f=f: archive.open(f) for f in files], target)


def _file_digest(path):
    """size and sha256 of a file: what a resumed run checks its input against."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(8 << 20), b""):
            digest.update(chunk)
    return os.path.getsize(path), digest.hexdigest()


@dataclass
class ShardPlan:
    """Which contigs are embedded (in input order) and in which shard; read back from disk."""

    work_dir: Path
    ids: list
    shard: np.ndarray
    info: dict

    @property
    def n_shards(self):
        return int(self.info["n_shards"])

    def shard_fasta(self, k):
        return self.work_dir / "contigs" / f"shard-{k:05d}.fasta"

    def shard_file(self, k):
        return self.work_dir / "shards" / f"shard-{k:05d}.npz"

    def shard_rows(self, k):
        """Positions (ascending) of shard k's contigs; all shards' computed in one sort."""
        if not hasattr(self, "_rows"):
            order = np.argsort(self.shard, kind="stable")
            bounds = np.cumsum(np.bincount(self.shard, minlength=self.n_shards))[:-1]
            self._rows = np.split(order, bounds)
        return self._rows[k]

    def shard_ids(self, k):
        return [self.ids[i] for i in self.shard_rows(k)]

    def pending(self):
        """Shards without a finished file (a file that exists was renamed into place whole)."""
        return [k for k in range(self.n_shards) if not self.shard_file(k).is_file()]

    @classmethod
    def load(cls, work_dir):
        work_dir = Path(work_dir)
        info = json.loads((work_dir / "plan.json").read_text())
        if info.get("version") != PLAN_VERSION:
            raise InputError(f"{work_dir} holds a plan of another version; use a new --work-dir.")
        with open(work_dir / "feature-ids.tsv", encoding="utf-8") as fh:
            fh.readline()
            ids = [line.rstrip("\n") for line in fh]
        shard = np.load(work_dir / "shard-of-contig.npy", allow_pickle=False)
        if len(ids) != len(shard) or len(ids) != info["n_contigs"]:
            raise InputError(f"the plan in {work_dir} is damaged; use a new --work-dir.")
        return cls(work_dir, ids, shard, info)


def plan_shards(source, work_dir, teacher, n_shards=None, shard_bases=DEFAULT_SHARD_BASES,
                min_length=DEFAULTS.min_length) -> ShardPlan:
    """The plan of `work_dir`, made on the first run and checked on every later one.

    A later run must name the same input (same bytes), teacher and min_length: its shard files
    would otherwise mix embeddings of different contigs or models.
    """
    work_dir = Path(work_dir).resolve()
    source = Path(source).resolve()
    if Path(str(teacher)).expanduser().exists():
        teacher = Path(str(teacher)).expanduser().resolve()
    if not source.exists():
        raise InputError(f"the contigs {str(source)!r} do not exist.")
    report("plan", message=f"checking {source}")
    size, digest = _file_digest(source)
    wanted = {"source_bytes": size, "source_sha256": digest, "teacher": str(teacher),
              "min_length": int(min_length)}
    if (work_dir / "plan.json").is_file():
        plan = ShardPlan.load(work_dir)
        differ = [k for k, v in wanted.items() if plan.info.get(k) != v]
        if differ:
            raise InputError(
                f"{work_dir} holds a run for other inputs ({', '.join(differ)} differ: e.g. "
                f"{differ[0]} {plan.info.get(differ[0])!r} there, {wanted[differ[0]]!r} now); "
                "give the same inputs to resume it, or a new --work-dir.")
        if n_shards is not None and n_shards != plan.n_shards:
            report("plan", message=f"resuming the plan of {plan.n_shards} shards in {work_dir} "
                                   f"(--shards {n_shards} applies to new work directories)")
        return plan

    for stale in ("contigs", "shards"):
        shutil.rmtree(work_dir / stale, ignore_errors=True)
    work_dir.mkdir(parents=True, exist_ok=True)
    fasta = contigs_fasta(source, work_dir)
    contigs = Contigs.from_fasta(fasta, stream=True)
    short, thin = contigs.unscored(min_length)
    keep = ~(short | thin)
    if not keep.any():
        raise InputError(f"no contig in {str(source)!r} has at least {min_length} unambiguous "
                         "bases (A, C, G, T); lower --min-length.")
    short, thin = ([c for c, out in zip(contigs.ids, mask) if out] for mask in (short, thin))
    if short:
        report("plan", message=f"{len(short)} contig(s) shorter than {min_length} bp are not "
                               f"embedded (as in `embed`): {preview(short)}")
    if thin:
        report("plan", message=f"{len(thin)} contig(s) have fewer than {min_length} unambiguous "
                               f"bases (A, C, G, T) and are not embedded (as in `embed`): "
                               f"{preview(thin)}")
    lengths = contigs.lengths[keep]
    ids = [c for c, k in zip(contigs.ids, keep) if k]
    if n_shards is None:
        n_shards = int(np.ceil(lengths.sum() / shard_bases))
    n_shards = max(1, min(int(n_shards), len(ids)))
    shard = shard_assignment(lengths, n_shards)
    report("plan", message=f"splitting {len(ids)} contigs into {n_shards} shard FASTA files")
    _write_shard_fastas(fasta, keep, shard, work_dir / "contigs", n_shards)
    (work_dir / "shards").mkdir(exist_ok=True)
    with open(work_dir / "feature-ids.tsv", "w", encoding="utf-8") as fh:
        fh.write("feature-id\n")
        fh.writelines(f"{i}\n" for i in ids)
    np.save(work_dir / "shard-of-contig.npy", shard.astype(np.int32), allow_pickle=False)
    info = dict(wanted, version=PLAN_VERSION, source=str(source), n_contigs=len(ids),
                n_short=len(short), n_thin=len(thin), n_shards=n_shards, bases=int(lengths.sum()))
    tmp = work_dir / "plan.json.tmp"
    tmp.write_text(json.dumps(info, indent=2) + "\n")
    os.replace(tmp, work_dir / "plan.json")
    if fasta != source:
        fasta.unlink()
    report("plan", message=f"{len(ids)} contigs, {int(lengths.sum()):,} bp in {n_shards} shards "
                           f"under {work_dir}")
    return ShardPlan.load(work_dir)


def _write_shard_fastas(fasta, keep, shard, directory, n_shards):
    """Split the input into one FASTA per shard in one pass, buffering writes."""
    directory.mkdir(parents=True)
    buffers, buffered = {}, 0

    def flush():
        for k, parts in buffers.items():
            with open(directory / f"shard-{k:05d}.fasta", "a", encoding="utf-8") as out:
                out.write("".join(parts))
        buffers.clear()

    kept = 0
    for n, (record_id, seq) in enumerate(read_fasta(fasta)):
        if not keep[n]:
            continue
        k = int(shard[kept])
        kept += 1
        text = f">{record_id}\n{clean_sequence(seq)}\n"
        buffers.setdefault(k, []).append(text)
        buffered += len(text)
        if buffered >= _FLUSH_BYTES:
            flush()
            buffered = 0
    flush()
    for k in range(n_shards):
        if not (directory / f"shard-{k:05d}.fasta").is_file():
            raise InputError(f"{fasta} changed while it was being split (shard {k} is empty).")


_TEACHERS = {}


def _teacher(spec, device, token_budget):
    """One loaded teacher per worker process, kept for every shard the worker embeds."""
    key = (str(spec), None if device is None else str(device), token_budget)
    if key not in _TEACHERS:
        _TEACHERS.clear()
        _TEACHERS[key] = load_teacher(spec, device=device, token_budget=token_budget)
    return _TEACHERS[key]


def embed_shard(plan, k, device=None, token_budget=None):
    """Embed shard k and write its file; the file appears only once it is complete."""
    expected = plan.shard_ids(k)
    if not plan.shard_fasta(k).is_file():
        raise InputError(f"{plan.shard_fasta(k)} is missing; the work directory was changed, "
                         "use a new --work-dir.")
    contigs = Contigs.from_fasta(plan.shard_fasta(k))
    if contigs.ids != expected:
        raise InputError(f"{plan.shard_fasta(k)} does not hold the contigs the plan gives shard "
                         f"{k}; the work directory was changed, use a new --work-dir.")
    model = _teacher(plan.info["teacher"], device, token_budget)
    vectors = np.ascontiguousarray(model.embed(contigs), dtype=np.float32)
    if vectors.shape[0] != len(expected) or not np.isfinite(vectors).all():
        raise TaxDistillError(f"the teacher returned {vectors.shape[0]} rows (some not finite?) "
                              f"for the {len(expected)} contigs of shard {k}.")
    write_shard(plan.shard_file(k), expected, vectors, model.describe())


def write_shard(path, ids, vectors, teacher):
    """Write under a name unique to this process, flush to disk, then rename into place."""
    tmp = path.with_name(f".{path.name}.{socket.gethostname()}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        np.savez(fh, ids=np.asarray(ids, dtype=str), embeddings=vectors,
                 teacher=np.asarray(json.dumps(teacher, sort_keys=True, default=str)))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def embed_shards(plan, shards, device=None, token_budget=None, worker="worker"):
    """Embed the given shards one after the other (skipping any another worker has finished)."""
    for n, k in enumerate(shards, start=1):
        if plan.shard_file(k).is_file():
            continue
        embed_shard(plan, k, device=device, token_budget=token_budget)
        report(f"{worker}: shards", n, len(shards), message=f"shard {k} written")


def _read_shard(plan, k):
    path = plan.shard_file(k)
    try:
        with np.load(path, allow_pickle=False) as data:
            ids, vectors = data["ids"].tolist(), data["embeddings"]
            teacher = json.loads(str(data["teacher"]))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        path.unlink(missing_ok=True)
        raise TaxDistillError(f"{path} is damaged ({exc}) and was removed; run the same command "
                              "again to embed that shard anew.") from None
    if ids != plan.shard_ids(k) or vectors.shape[0] != len(ids):
        raise TaxDistillError(f"{path} holds other contigs than the plan gives shard {k}; the "
                              "work directory was changed, use a new --work-dir.")
    return vectors, teacher


def check_output_dir(output):
    output = Path(output)
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise InputError(f"the output {str(output)!r} exists and is not an empty directory.")
    return output


def merge_shards(plan, output) -> Path:
    """The Embeddings directory format (embeddings.npy, feature-ids.tsv, teacher.json) from the
    shard files, rows in input order; every planned contig exactly once, or an error."""
    pending = plan.pending()
    if pending:
        raise TaxDistillError(f"{len(pending)} of {plan.n_shards} shards are not embedded yet "
                              f"(shards {preview(pending)}); run the same command again.")
    output = check_output_dir(output)
    tmp = output.with_name(output.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    filled = np.zeros(len(plan.ids), dtype=bool)
    array, teacher = None, None
    for k in range(plan.n_shards):
        vectors, described = _read_shard(plan, k)
        rows = plan.shard_rows(k)
        if array is None:
            teacher = described
            array = np.lib.format.open_memmap(tmp / "embeddings.npy", mode="w+",
                                               dtype=np.float32,
                                               shape=(len(plan.ids), vectors.shape[1]))
        elif described != teacher or vectors.shape[1] != array.shape[1]:
            raise TaxDistillError(f"shard {k} was embedded by another teacher ({described}) than "
                                  f"shard 0 ({teacher}); use a new --work-dir.")
        if filled[rows].any():
            raise TaxDistillError(f"shard {k} repeats contigs of another shard.")
        array[rows] = vectors
        filled[rows] = True
    if not filled.all():
        missing = [plan.ids[i] for i in np.flatnonzero(~filled)]
        raise TaxDistillError(f"{len(missing)} contig(s) were not embedded: {preview(missing)}.")
    array.flush()
    del array
    with open(tmp / "feature-ids.tsv", "w", encoding="utf-8") as fh:
        fh.write("feature-id\n")
        fh.writelines(f"{i}\n" for i in plan.ids)
    teacher = dict(teacher, shards=plan.n_shards)
    (tmp / "teacher.json").write_text(json.dumps(teacher, indent=2, sort_keys=True) + "\n")
    if output.exists():
        output.rmdir()
    os.replace(tmp, output)
    for partial in (plan.work_dir / "shards").glob(".shard-*.tmp"):
        partial.unlink()
    left_out = plan.info["n_short"] + plan.info.get("n_thin", 0)  # older plans: no n_thin
    report("merge", message=f"{len(plan.ids)} embeddings ({left_out} contigs too short to embed "
                            f"left out) in {output}; import with: qiime tools import --type "
                            f"'FeatureData[Embeddings]' --input-path {output} --output-path "
                            f"embeddings.qza")
    return output


def _worker_main(work_dir, shards, device, token_budget, threads, worker):
    """A spawned worker: its own progress lines, a clean message instead of a traceback."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    with reporting(stderr_reporter()):
        try:
            embed_shards(ShardPlan.load(work_dir), shards, device=device,
                         token_budget=token_budget, worker=worker)
        except TaxDistillError as exc:
            print(f"error: {worker}: {exc}", file=sys.stderr, flush=True)
            sys.exit(2)


def visible_devices():
    import torch

    if torch.cuda.is_available():
        return [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    return ["cpu"]


def pending_shards(plan):
    """The shards still to embed, saying how many a restarted run finds done."""
    pending = plan.pending()
    if len(pending) < plan.n_shards:
        report("run", message=f"resuming: {plan.n_shards - len(pending)} of {plan.n_shards} "
                              "shards were already embedded")
    return pending


def run_workers(plan, workers=None, devices=None, token_budget=None):
    """Embed the pending shards with one process per device on this node (in this process when
    there is one worker); each worker gets every workers-th pending shard (shards are balanced)."""
    import multiprocessing

    devices = list(devices or visible_devices())
    workers = int(workers or (len(devices) if devices != ["cpu"] else 1))
    if workers < 1:
        raise InputError(f"--workers must be at least 1, not {workers}.")
    pending = pending_shards(plan)
    if not pending:
        return
    assigned = [pending[w::workers] for w in range(workers)]
    device_of = [devices[w % len(devices)] for w in range(workers)]
    cpu_workers = sum(d == "cpu" for d in device_of)
    threads = max(1, (os.cpu_count() or 1) // cpu_workers) if cpu_workers > 1 else None
    if workers == 1:
        embed_shards(plan, assigned[0], device=device_of[0], token_budget=token_budget)
        return
    context = multiprocessing.get_context("spawn")
    procs = []
    for w in range(workers):
        if not assigned[w]:
            continue
        # daemon: the workers end with this process, whatever stops it
        proc = context.Process(target=_worker_main, name=f"taxdistill-worker-{w}", daemon=True,
                               args=(str(plan.work_dir), assigned[w], device_of[w], token_budget,
                                     threads if device_of[w] == "cpu" else None,
                                     f"worker {w} ({device_of[w]})"))
        proc.start()
        procs.append(proc)
    for proc in procs:
        proc.join()
    failed = [p.name for p in procs if p.exitcode != 0]
    if failed:
        left = plan.pending()
        raise TaxDistillError(f"{', '.join(failed)} failed (see above); {len(left)} shard(s) are "
                              "not embedded. Run the same command again to resume.")


def run_rank(plan, rank, world, output, device=None, token_budget=None):
    """One rank of a torchrun launch: shards rank, rank + world, ...; rank 0 then waits for
    every shard file and merges (a failed rank makes torchrun stop the others)."""
    mine = [k for k in range(rank, plan.n_shards, world)]
    embed_shards(plan, mine, device=device, token_budget=token_budget, worker=f"rank {rank}")
    if rank != 0:
        return None
    while plan.pending():
        time.sleep(_POLL_SECONDS)
    return merge_shards(plan, output)


def wait_for_plan(work_dir):
    """Ranks other than 0 wait for rank 0 to write the plan (plan.json is written last)."""
    while not (Path(work_dir) / "plan.json").is_file():
        time.sleep(_POLL_SECONDS)
    return ShardPlan.load(work_dir)
