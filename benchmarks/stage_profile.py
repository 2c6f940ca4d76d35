#!/usr/bin/env python3
"""Where the time and memory of teach -> distill -> correct go, stage by stage (run by hand).

Runs the engine (no QIIME 2) with refine-taxonomy's defaults on one folder laid out like
`../shared/bench/dev` (contigs.fna or contigs.fna.gz, counts.tsv, the label file) and prints
one table: per stage, wall seconds and peak resident memory. The stages are the process's
start (interpreter up to this script), the imports (numpy, pandas, torch and the engine),
reading the inputs, and every progress stage the engine reports inside teach, distill and
correct (`teacher: k-mer spectra`, `student: fold 2/5 epoch`, ...; a stage runs from its
first report to the next stage's). Peak memory per stage is the kernel's high-water mark
(VmHWM), reset at the start of each of the steps (/proc/self/clear_refs), and a 20 ms
sample of VmRSS for the stages inside a step.

    .venv/bin/python benchmarks/stage_profile.py /tmp/sub1500 --labels mmseqs2_taxonomy.tsv
    .venv/bin/python benchmarks/stage_profile.py /tmp/sub1500 --threads 1 --cprofile /tmp/prof.out

`--cprofile FILE` also writes a cProfile of the three steps (read it with `python -m pstats`).
"""
import argparse
import os
import re
import sys
import threading
import time
import warnings
from pathlib import Path

STARTED = time.perf_counter()
ROOT = Path(__file__).resolve().parent.parent
# This file's folder is first on the path, and its name would hide the standard library's
# `profile` (which cProfile imports).
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
sys.path.insert(0, str(ROOT))


def process_age():
    """Seconds since this process started (from /proc), or None."""
    try:
        with open("/proc/self/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        with open("/proc/uptime") as fh:
            uptime = float(fh.read().split()[0])
        return uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


START_AGE = process_age()


def status_mb(field):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak():
    """Reset the kernel's high-water mark of resident memory (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


class Stages:
    """Wall time and peak RSS per stage; `mark(name)` starts a stage (ends the last one)."""

    def __init__(self):
        self.rows = []  # [name, start, end, peak MB]
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.sampler = threading.Thread(target=self._sample, daemon=True)

    def mark(self, name, now=None):
        now = time.perf_counter() if now is None else now
        rss = status_mb("VmRSS")
        with self.lock:
            if self.rows:
                self.rows[-1][2] = now
                self.rows[-1][3] = max(self.rows[-1][3], rss)
            if name is not None:
                self.rows.append([name, now, None, rss])

    def step(self, name):
        """A step (imports, teach, ...): the kernel's peak is reset and read at its end."""
        self.mark(name)
        reset_peak()

    def end_step(self):
        peak = status_mb("VmHWM")
        with self.lock:
            self.step_peak = peak

    def _sample(self):
        while not self.done.wait(0.02):
            rss = status_mb("VmRSS")
            with self.lock:
                if self.rows and self.rows[-1][2] is None:
                    self.rows[-1][3] = max(self.rows[-1][3], rss)

    def reporter(self):
        fold = re.compile(r"^student: fold (\d+)/\d+ epoch$")
        pid = os.getpid()

        def _report(stage, done, total, message):
            if os.getpid() != pid:
                return  # a forked worker (student folds): its copy of this table is lost
            name = stage
            match = fold.match(stage)
            if match:
                name = "student: folds (training)"
            if message and done is None and not self.rows[-1][0].startswith(name):
                return  # one-line messages do not start a stage
            if name != self.rows[-1][0]:
                self.mark(name)

        return _report


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("bench", type=Path)
    parser.add_argument("--labels", default="mmseqs2_taxonomy.tsv")
    parser.add_argument("--threads", type=int, default=None,
                        help="student folds trained side by side (default: the engine's)")
    parser.add_argument("--no-counts", action="store_true", help="without read counts")
    parser.add_argument("--cprofile", type=Path, help="write a cProfile of the three steps")
    args = parser.parse_args()
    stages = Stages()
    stages.sampler.start()
    steps = []  # (name, wall s, peak MB)

    stages.step("imports")
    t0 = time.perf_counter()
    import numpy as np  # noqa: F401
    import pandas as pd

    from q2_taxdistill.engine import workflow
    from q2_taxdistill.engine.progress import reporting
    from q2_taxdistill.engine.sequences import Contigs
    from q2_taxdistill.engine.student import StudentConfig
    stages.end_step()
    steps.append(("imports", time.perf_counter() - t0, stages.step_peak))

    stages.step("read inputs")
    t0 = time.perf_counter()
    bench = args.bench.resolve()
    fasta = next(bench / n for n in ("contigs.fna.gz", "contigs.fna") if (bench / n).exists())
    contigs = Contigs.from_fasta(str(fasta), stream=True)
    taxonomy = pd.read_csv(bench / args.labels, sep="\t", index_col=0, dtype=str,
                           keep_default_na=False, na_values=[""])
    counts = None if args.no_counts else pd.read_csv(bench / "counts.tsv", sep="\t", index_col=0)
    stages.end_step()
    steps.append(("read inputs", time.perf_counter() - t0, stages.step_peak))

    config = StudentConfig()
    if args.threads is not None:
        if not hasattr(config, "threads"):
            sys.exit("this engine's StudentConfig has no `threads`")
        config.threads = args.threads
    profiler = None
    if args.cprofile:
        import cProfile
        profiler = cProfile.Profile()
    with reporting(stages.reporter()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if profiler:
            profiler.enable()
        for name, call in (
                ("teach", lambda: workflow.teach(contigs, taxonomy)),
                ("distill", lambda: workflow.distill(contigs, taxonomy, results["teach"],
                                                     counts, config=config)),
                ("correct", lambda: workflow.correct(results["distill"], contigs, counts,
                                                     taxonomy))):
            if name == "teach":
                results = {}
            stages.step(name)
            t0 = time.perf_counter()
            results[name] = call()
            stages.end_step()
            steps.append((name, time.perf_counter() - t0, stages.step_peak))
        if profiler:
            profiler.disable()
            profiler.dump_stats(str(args.cprofile))
    stages.mark(None)
    stages.done.set()
    total = time.perf_counter() - STARTED + (START_AGE or 0.0)
    corrected = results["correct"]

    print(f"# {bench.name} ({len(contigs)} contigs, labels {args.labels}, "
          f"{os.cpu_count()} cores, student threads "
          f"{getattr(config, 'threads', 'n/a')})\n")
    print("| stage | wall s | peak RSS MB |")
    print("|---|---|---|")
    if START_AGE is not None:
        print(f"| interpreter start | {START_AGE:.2f} | |")
    step_of = {name: (wall, peak) for name, wall, peak in steps}
    for name, start, end, peak in stages.rows:
        if name in step_of:
            wall, step_peak = step_of[name]
            print(f"| **{name}** (step) | {wall:.2f} | {step_peak:.0f} |")
            if name in ("teach", "distill", "correct"):
                print(f"| &nbsp;&nbsp;({name}: set-up) | {end - start:.2f} | {peak:.0f} |")
        else:
            print(f"| &nbsp;&nbsp;{name} | {end - start:.2f} | {peak:.0f} |")
    print(f"| **total** | {total:.2f} | {max(p for _, _, p in steps):.0f} |")
    print(f"\n{len(corrected)} corrected labels")


if __name__ == "__main__":
    main()
