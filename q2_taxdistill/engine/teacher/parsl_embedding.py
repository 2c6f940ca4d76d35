"""Many nodes: the shards of a `sharded_embedding` plan as parsl tasks.

parsl is the engine QIIME 2 (2024.2 and later) runs its parallel pipelines on, so a lab that
runs QIIME 2 on a cluster already has it and a configuration for its scheduler. Each pending
shard is one task; a HighThroughputExecutor keeps one worker process per GPU
(`available_accelerators`), each worker loads the model once and takes shards as they come, so
fast and slow nodes balance themselves. Shard files land in the shared work directory exactly as
on one node, so a pre-empted allocation is resumed by running the same command again, with the
same or another configuration.

`--parsl-config` takes a Python file that defines `config` (a `parsl.config.Config`; see
`recipes/parsl_slurm_gpu.py`), QIIME 2's own TOML parallel configuration (the file given to
`qiime ... --parallel-config`; the tasks run on the executor mapped to `taxdistill`'s `embed`
action, else on the one labelled `default`), or `local:N`: N worker processes on this machine.
"""

from __future__ import annotations

import os
import runpy
import sys
from pathlib import Path

from ..errors import InputError, TaxDistillError, preview
from ..progress import report
from .sharded_embedding import ShardPlan, embed_shard, pending_shards


_PLANS = {}


def embed_shard_task(work_dir, k, token_budget=None):
    """What one parsl worker runs: embed shard k of the plan in work_dir (the model stays loaded
    in the worker between tasks). Returns k."""
    if work_dir not in _PLANS:
        _PLANS.clear()
        _PLANS[work_dir] = ShardPlan.load(work_dir)
    plan = _PLANS[work_dir]
    if not plan.shard_file(k).is_file():
        embed_shard(plan, k, token_budget=token_budget)
    return k


def local_config(workers, run_dir):
    """N worker processes on this machine (parsl's LocalProvider), threads shared among them."""
    from parsl.config import Config
    from parsl.executors import HighThroughputExecutor
    from parsl.providers import LocalProvider

    threads = max(1, (os.cpu_count() or 1) // workers)
    return Config(
        executors=[HighThroughputExecutor(
            label="taxdistill-local", max_workers_per_node=workers, cpu_affinity="none",
            provider=LocalProvider(
                init_blocks=1, max_blocks=1,
                worker_init=f"export OMP_NUM_THREADS={threads}"))],
        run_dir=str(run_dir), initialize_logging=False)


def _parsl_object(module, spec, what, path):
    """An executor, provider or launcher from a TOML table: `class` names it, the rest are its
    keyword arguments (a nested provider or launcher table is built first)."""
    import importlib

    spec = dict(spec)
    name = spec.pop("class", None)
    cls = getattr(importlib.import_module(module), str(name), None) if name else None
    if cls is None:
        raise InputError(f"{path}: {what} class {name!r} is not in {module}.")
    for key, sub_module in (("provider", "parsl.providers"), ("launcher", "parsl.launchers")):
        if isinstance(spec.get(key), dict):
            spec[key] = _parsl_object(sub_module, spec[key], key, path)
    try:
        return cls(**spec)
    except TypeError as exc:
        raise InputError(f"{path}: {what} {name}: {exc}") from None


def qiime2_toml_config(path, run_dir):
    """(Config, executor label) from QIIME 2's TOML parallel configuration."""
    try:
        import tomllib
    except ImportError:  # Python < 3.11
        try:
            import tomli as tomllib
        except ImportError:
            raise InputError("reading a TOML parsl configuration needs Python 3.11 or the "
                             "tomli package; or give a Python configuration file.") from None
    try:
        parsl_table = dict(tomllib.loads(Path(path).read_text()).get("parsl") or {})
    except (OSError, ValueError) as exc:
        raise InputError(f"the parsl configuration {str(path)!r} is not readable TOML: {exc}") \
            from None
    from parsl.config import Config

    tables = parsl_table.pop("executors", None) or []
    if not tables:
        raise InputError(f"{path} defines no [[parsl.executors]].")
    mapping = parsl_table.pop("executor_mapping", {}) or {}
    executors = [_parsl_object("parsl.executors", t, "executor", path) for t in tables]
    labels = [e.label for e in executors]
    label = (mapping.get("taxdistill") or {}).get("embed")
    if label is None:
        label = "default" if "default" in labels else (labels[0] if len(labels) == 1 else None)
    if label not in labels:
        raise InputError(f"{path}: no executor to run on among {', '.join(labels)}; label one "
                         "'default' or add embed = \"LABEL\" under [parsl.executor_mapping.taxdistill].")
    # QIIME 2 writes strategy = "None" (no scaling); parsl spells that "none".
    options = {k: ("none" if k == "strategy" and v == "None" else v) for k, v in parsl_table.items()}
    options.setdefault("run_dir", str(run_dir))
    chosen = [e for e in executors if e.label == label]  # the others are never started
    try:
        return Config(executors=chosen, **options), label
    except TypeError as exc:
        raise InputError(f"{path}: [parsl]: {exc}") from None


def load_config(spec, run_dir):
    """(parsl Config, executor label or None for any) from `local:N`, a Python file that
    defines `config`, or a QIIME 2 TOML parallel configuration."""
    try:
        from parsl.config import Config
    except ImportError:
        raise InputError("--parsl-config needs parsl: pip install parsl (the `cluster` extra of "
                         "q2-taxdistill).") from None
    spec = str(spec)
    if spec.startswith("local:"):
        try:
            workers = int(spec.split(":", 1)[1])
        except ValueError:
            workers = 0
        if workers < 1:
            raise InputError(f"--parsl-config {spec!r}: write local:N with N >= 1 workers.")
        return local_config(workers, run_dir), None
    path = Path(spec)
    if not path.is_file():
        raise InputError(f"the parsl configuration {spec!r} is neither local:N nor a file.")
    if path.suffix == ".toml":
        return qiime2_toml_config(path, run_dir)
    try:
        namespace = runpy.run_path(str(path))
    except Exception as exc:  # noqa: BLE001 - a user's file: report what broke, with its name
        raise InputError(f"the parsl configuration {spec!r} fails to run: "
                         f"{type(exc).__name__}: {exc}") from None
    config = namespace.get("config")
    if not isinstance(config, Config):
        raise InputError(f"{spec!r} must define `config`, a parsl.config.Config; it defines "
                         f"{type(config).__name__ if config is not None else 'no config'}.")
    return config, None


def run_parsl(plan, config_spec, token_budget=None):
    """Embed every pending shard as a parsl task; raise naming the shards that failed."""
    import parsl
    from parsl import python_app

    # parsl starts its interchange and local workers as scripts of the environment it is
    # installed in; an un-activated venv (python given by path) does not have them on PATH.
    bin_dir = os.path.dirname(sys.executable)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    config, label = load_config(config_spec, plan.work_dir / "parsl")
    if config.run_dir == "runinfo":  # parsl's default, in the current directory
        config.run_dir = str(plan.work_dir / "parsl")
    pending = pending_shards(plan)
    if not pending:
        return
    app = python_app(embed_shard_task, executors=[label] if label else "all")
    failures = []
    dfk = parsl.load(config)
    try:
        futures = {k: app(str(plan.work_dir), k, token_budget) for k in pending}
        for done, (k, future) in enumerate(futures.items(), start=1):
            try:
                future.result()
            except Exception as exc:  # noqa: BLE001 - every failed shard is reported below
                failures.append((k, f"{type(exc).__name__}: {exc}"))
            report("parsl: shards", done, len(futures))
    finally:
        dfk.cleanup()
        parsl.clear()
    if failures:
        first = failures[0][1].splitlines()[0] if failures[0][1] else ""
        raise TaxDistillError(
            f"{len(failures)} shard(s) failed ({preview(k for k, _ in failures)}; the first: "
            f"{first}). Run the same command again to embed them.")
