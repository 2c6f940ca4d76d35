"""How many processors a step may use: those this process may run on, and those idle now.

The student's folds (torch, one intra-op thread each) and the k-mer counting blocks run in
forked worker processes; their number never changes a result, only the time.
"""
import math
import multiprocessing
import os
import sys
import time


def can_fork():
    """Whether worker processes can be forked (Linux): they then share the parent's inputs
    copy-on-write instead of receiving a pickled copy."""
    return sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods()


def available_processors():
    """The processors this process may run on (its CPU affinity), at most OMP_NUM_THREADS
    when that is set."""
    try:
        available = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        available = os.cpu_count() or 1
    limit = os.environ.get("OMP_NUM_THREADS", "").strip()
    if limit.isdigit() and int(limit) > 0:
        available = min(available, int(limit))
    return available


def _cpu_times():
    """(all, idle) jiffies of every processor together, from /proc/stat's first line."""
    with open("/proc/stat") as handle:
        fields = [int(v) for v in handle.readline().split()[1:9]]
    return sum(fields), fields[3] + fields[4]


def busy_processors(window=0.2):
    """Processors other work keeps busy: the machine's non-idle share over `window` seconds
    (this process sleeps meanwhile) times its processors. Not the load average, which lags:
    a minute after a 2-core job ended it still read 2.3 on the idle machine, and the folds
    then ran on one worker (distill 11.9 s against ~7 s on two). Where /proc/stat is missing,
    the 1-minute load average less this process."""
    try:
        total0, idle0 = _cpu_times()
        time.sleep(window)
        total1, idle1 = _cpu_times()
        if total1 > total0:
            return (1.0 - (idle1 - idle0) / (total1 - total0)) * (os.cpu_count() or 1)
    except (OSError, ValueError, IndexError):
        pass
    try:
        return max(0.0, os.getloadavg()[0] - 1.0)
    except (AttributeError, OSError):
        return 0.0


def free_processors():
    """`available_processors` that other work is not using now (`busy_processors`), at
    least 1. A second torch worker on a processor another job keeps busy costs more than it
    gains: on a 2-core machine under a load of ~6, 2 fold workers took 1.24x the wall time
    of one (median of 4 runs side by side, benchmarks/stage_profile.py on 1,500 contigs)."""
    available = available_processors()
    return int(max(1, min(available, math.floor(available - busy_processors() + 0.5))))
