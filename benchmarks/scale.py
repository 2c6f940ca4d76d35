#!/usr/bin/env python3
"""Time and memory of refine-taxonomy (through q2cli) as the number of contigs grows.

For each size N, builds an instance from `../shared/bench/dev` with `../shared/bench/scale_bench.py`
(`--piece-length 3000 --replicas R`: ~17.9k contigs per replica, each replica a 3%-divergent
strain of every genome; R is the fewest replicas that hold N contigs, of which a seeded
random N are kept), imports it (timed apart), runs `refine-taxonomy --verbose` and splits its
wall time into stages at the progress lines `teach started`, `distill started` and
`correct-taxonomy started`, while the process's resident memory is sampled every 0.2 s
(/proc/PID/status) and its peak read from the kernel at the end (wait4). Prints one table:
per size and stage, wall seconds and peak resident memory, and the growth exponent between
consecutive sizes, log(t2 / t1) / log(n2 / n1) (1 = linear).

    .venv/bin/python benchmarks/scale.py                          # 25k, 100k, 400k, 10^6
    .venv/bin/python benchmarks/scale.py --sizes 25000,100000     # a quick look

Stages: `load` is q2cli's start and the reading of the input artifacts, `teach`, `distill` and
`correct` the three actions (each from its start line to the next one's), `save` writing the
outputs. Instances, artifacts and logs stay in --workdir (about 9 GB for the 10^6 instance);
delete it afterwards.
"""
import argparse
import math
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
STAGES = ["load", "teach", "distill", "correct", "save"]
STARTS = {"teach": "teach", "distill": "distill", "correct-taxonomy": "correct"}
LINE = re.compile(r"\[taxdistill\] (teach|distill|correct-taxonomy) (started|finished)")


def run(cmd, log, env):
    with open(log, "w") as out:
        start = time.perf_counter()
        proc = subprocess.Popen([str(c) for c in cmd], stdout=out, stderr=subprocess.STDOUT,
                                env=env)
        _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status):
        sys.exit(f"command failed, see {log}: {' '.join(map(str, cmd))}")
    return time.perf_counter() - start, usage.ru_maxrss / 1024


def fasta_ids(path):
    with open(path, "rb") as fh:
        return [line[1:].split()[0].decode() for line in fh if line.startswith(b">")]


def build(source, work, n, labels, seed):
    """The instance of `n` contigs (cached): contigs.fna, counts.tsv and the label file."""
    out = work / f"n{n}"
    if (out / "done").exists():
        return out
    pieces = work / "replicas-1"
    if not (pieces / "counts.tsv").exists():
        scale_bench(source, pieces, 1)
    per_replica = sum(1 for _ in open(pieces / "counts.tsv")) - 1
    replicas = math.ceil(n / per_replica)
    folder = work / f"replicas-{replicas}"
    if not (folder / "counts.tsv").exists():
        scale_bench(source, folder, replicas)
    ids = fasta_ids(folder / "contigs.fna")
    if n > len(ids):
        sys.exit(f"{replicas} replicas hold {len(ids)} contigs, fewer than {n}")
    keep = set(np.asarray(ids)[np.sort(np.random.default_rng(seed).choice(len(ids), n,
                                                                           replace=False))])
    out.mkdir(parents=True, exist_ok=True)
    with open(folder / "contigs.fna") as src, open(out / "contigs.fna", "w") as dst:
        writing = False
        for line in src:
            if line.startswith(">"):
                writing = line[1:].split()[0] in keep
            if writing:
                dst.write(line)
    for name in ("counts.tsv", labels):
        with open(folder / name) as src, open(out / name, "w") as dst:
            dst.write(src.readline())
            dst.writelines(line for line in src if line.split("\t", 1)[0] in keep)
    (out / "done").write_text(f"{n} contigs of {folder.name}\n")
    return out


def scale_bench(source, folder, replicas):
    script = source.parent / "scale_bench.py"
    subprocess.run([sys.executable, str(script), str(source), str(folder), "--replicas",
                    str(replicas), "--piece-length", "3000"], check=True)


def import_inputs(folder, labels, qiime, env):
    steps = [
        [qiime, "tools", "import", "--type", "FeatureData[Sequence]", "--input-path",
         folder / "contigs.fna", "--output-path", folder / "contigs.qza"],
        ["biom", "convert", "-i", folder / "counts.tsv", "-o", folder / "counts.biom",
         "--to-hdf5", "--table-type=OTU table"],
        [qiime, "tools", "import", "--type", "FeatureTable[Frequency]", "--input-path",
         folder / "counts.biom", "--output-path", folder / "abundance.qza"],
        [qiime, "tools", "import", "--type", "FeatureData[Taxonomy]", "--input-path",
         folder / labels, "--output-path", folder / "labels.qza"],
    ]
    if (folder / "labels.qza").exists():
        return None
    return sum(run(cmd, folder / f"import-{i}.log", env)[0] for i, cmd in enumerate(steps))


def resident_mb(pid):
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def refine(folder, qiime, env):
    """Wall seconds and peak resident MB per stage, and of the whole process."""
    out = folder / "refined"
    shutil.rmtree(out, ignore_errors=True)
    cmd = [qiime, "taxdistill", "refine-taxonomy", "--i-contigs", folder / "contigs.qza",
           "--i-taxonomy", folder / "labels.qza", "--i-abundance", folder / "abundance.qza",
           "--p-teacher", "composition", "--output-dir", out, "--verbose"]
    log = open(folder / "refine-taxonomy.log", "w")
    start = time.perf_counter()
    proc = subprocess.Popen([str(c) for c in cmd], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env=env, text=True)
    marks = [("load", 0.0)]

    def read():
        for line in proc.stdout:
            log.write(line)
            match = LINE.search(line)
            if match and match.group(2) == "started":
                marks.append((STARTS[match.group(1)], time.perf_counter() - start))
            elif match and match.group(1) == "correct-taxonomy":
                marks.append(("save", time.perf_counter() - start))

    reader = threading.Thread(target=read)
    reader.start()
    peaks = {stage: 0.0 for stage in STAGES}
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        rss = resident_mb(proc.pid)
        if rss is not None:
            stage = marks[-1][0]
            peaks[stage] = max(peaks[stage], rss)
        time.sleep(0.2)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    reader.join()
    log.close()
    if proc.returncode:
        sys.exit(f"refine-taxonomy failed, see {folder / 'refine-taxonomy.log'}")
    ends = [t for _, t in marks[1:]] + [wall]
    walls = {stage: end - begin for (stage, begin), end in zip(marks, ends)}
    # The kernel's peak catches what a 0.2 s sample can miss; it belongs to the stage whose
    # sampled peak is highest.
    top = max(peaks, key=peaks.get)
    peaks[top] = max(peaks[top], usage.ru_maxrss / 1024)
    return walls, peaks, wall


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="25000,100000,400000,1000000")
    parser.add_argument("--source", type=Path, default=ROOT.parent / "shared" / "bench" / "dev")
    parser.add_argument("--labels", default="mmseqs2_taxonomy.tsv")
    parser.add_argument("--workdir", type=Path, default=ROOT / "bench-output" / "scale")
    parser.add_argument("--qiime", default=str(ROOT / ".venv" / "bin" / "qiime"))
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    work = args.workdir.resolve()
    (work / "tmp").mkdir(parents=True, exist_ok=True)
    # A private TMPDIR: q2cli extracts artifacts there, and a shared one mixes runs.
    env = dict(os.environ, CONDA_PREFIX=str(ROOT / ".venv"), TMPDIR=str(work / "tmp"))
    sizes = [int(s) for s in args.sizes.split(",")]
    results = []
    for n in sizes:
        folder = build(args.source.resolve(), work, n, args.labels, args.seed)
        imported = import_inputs(folder, args.labels, args.qiime, env)
        walls, peaks, wall = refine(folder, args.qiime, env)
        results.append((n, imported, walls, peaks, wall))
        print(f"{n} contigs: refine-taxonomy {wall:.0f} s, peak {max(peaks.values()):.0f} MB "
              f"({', '.join(f'{s} {walls.get(s, 0):.0f} s' for s in STAGES)})", flush=True)

    print(f"\n# refine-taxonomy through q2cli ({time.strftime('%Y-%m-%d')}, teacher: "
          f"composition, {os.cpu_count()} cores, labels {args.labels})\n")
    header = ["contigs", "import s"] + [f"{s} s" for s in STAGES] + ["total s", "peak RSS MB"]
    rows = []
    for n, imported, walls, peaks, wall in results:
        rows.append([f"{n:,}", "-" if imported is None else f"{imported:.0f}"]
                    + [f"{walls.get(s, 0):.0f}" for s in STAGES]
                    + [f"{wall:.0f}", f"{max(peaks.values()):.0f}"])
    for a, b in zip(results, results[1:]):
        growth = math.log(b[0] / a[0])
        exponent = lambda x, y: f"{math.log(max(y, 1e-9) / max(x, 1e-9)) / growth:.2f}"
        rows.append([f"exponent {a[0]:,}->{b[0]:,}", ""]
                    + [exponent(a[2].get(s, 0), b[2].get(s, 0)) for s in STAGES]
                    + [exponent(a[4], b[4]),
                       exponent(max(a[3].values()), max(b[3].values()))])
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print("\npeak RSS per stage (MB):")
    for n, _, _, peaks, _ in results:
        print(f"  {n:,}: " + ", ".join(f"{s} {peaks[s]:.0f}" for s in STAGES))


if __name__ == "__main__":
    main()
