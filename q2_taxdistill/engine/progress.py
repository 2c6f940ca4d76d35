"""Progress reporting for long work: silent unless a reporter is installed.

The engine calls `report(stage, done, total)`; the QIIME 2 layer installs a reporter that
prints to stderr (what a q2cli user sees), tests leave it silent. `notice` is for what a
user must know about the result (inputs ignored, labels kept as they came): it is reported
and also raised as a `TaxDistillWarning`, which Python and the Artifact API show by default.
"""
import sys
import time
import warnings
from contextlib import contextmanager

from .errors import TaxDistillWarning

_reporter = None


def report(stage, done=None, total=None, message=None):
    if _reporter is not None:
        _reporter(stage, done, total, message)


def notice(stage, message):
    """Something about the inputs or the result the user must be told, even when quiet."""
    report(stage, message=message)
    warnings.warn(f"{stage}: {message}", TaxDistillWarning, stacklevel=2)


def stderr_reporter(stream=None, min_interval=2.0):
    """A reporter that writes one line per stage change and at most one per `min_interval` s."""
    state = {"stage": None, "last": 0.0}

    def _report(stage, done, total, message):
        now = time.monotonic()
        finished = done is not None and total is not None and done >= total
        if stage == state["stage"] and not finished and message is None \
                and now - state["last"] < min_interval:
            return
        state["stage"], state["last"] = stage, now
        parts = [f"[taxdistill] {stage}"]
        if done is not None and total:
            parts.append(f"{done}/{total} ({100.0 * done / total:.0f}%)")
        if message:
            parts.append(message)
        print(" ".join(parts), file=stream or sys.stderr, flush=True)

    return _report


@contextmanager
def reporting(reporter):
    """Install `reporter` for the duration of a block (None keeps things silent)."""
    global _reporter
    previous, _reporter = _reporter, reporter
    try:
        yield
    finally:
        _reporter = previous
