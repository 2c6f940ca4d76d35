"""The sharded embedding's command line: `python -m q2_taxdistill.engine.teacher --help`
(also under `torchrun --nproc-per-node N -m q2_taxdistill.engine.teacher`). What it runs is in
`sharded_embedding` (plan, shards, merge, one-node runners) and `parsl_embedding` (many nodes).
"""
import argparse
import os
import sys

from ..errors import TaxDistillError
from ..parameters import DEFAULTS
from ..progress import reporting, stderr_reporter
from .language_model import resolve_model_path
from .parsl_embedding import run_parsl
from .sharded_embedding import (
    DEFAULT_SHARD_BASES, check_output_dir, merge_shards, plan_shards,
    run_rank, run_workers, wait_for_plan)
from .teachers import COMPOSITION


def _parser():
    parser = argparse.ArgumentParser(
        prog="python -m q2_taxdistill.engine.teacher",
        description="Embed contigs with a teacher on many GPUs or nodes, resumably, into the "
                    "FeatureData[Embeddings] directory format (import it with `qiime tools "
                    "import --type 'FeatureData[Embeddings]'`, then `teach --i-embeddings`).")
    parser.add_argument("--contigs", required=True,
                        help="FASTA (plain or gzip), or a FeatureData[Sequence] / "
                             "SampleData[Contigs] / FeatureData[MAG] .qza or exported directory")
    parser.add_argument("--teacher", required=True,
                        help="model directory or Hugging Face id in the local cache, or "
                             "'composition'")
    parser.add_argument("--work-dir", required=True,
                        help="plan and shard files; run the same command again to resume")
    parser.add_argument("--output", required=True,
                        help="directory to write (embeddings.npy, feature-ids.tsv, teacher.json)")
    parser.add_argument("--min-length", type=int, default=DEFAULTS.min_length,
                        help="contigs with fewer bases, or fewer unambiguous bases (A, C, G, "
                             "T), are not embedded, as in `embed` (default %(default)s)")
    parser.add_argument("--shards", type=int, default=None,
                        help="number of shards (default: one per --shard-bases bases)")
    parser.add_argument("--shard-bases", type=int, default=DEFAULT_SHARD_BASES,
                        help="bases per shard when --shards is not given: a pre-empted worker "
                             "loses at most one shard (default %(default)s)")
    parser.add_argument("--workers", type=int, default=None,
                        help="worker processes on this node (default: one per visible GPU, "
                             "1 without a GPU); ignored under torchrun and --parsl-config")
    parser.add_argument("--devices", default=None,
                        help="comma-separated devices for the workers, e.g. cuda:0,cuda:1 or cpu "
                             "(default: every visible GPU, else cpu)")
    parser.add_argument("--token-budget", type=int, default=None,
                        help="padded tokens per batch (default: sized to free GPU memory)")
    parser.add_argument("--parsl-config", default=None,
                        help="run the shards as parsl tasks: a Python file defining `config` "
                             "(a parsl.config.Config, e.g. recipes/parsl_slurm_gpu.py) or "
                             "local:N for N local worker processes")
    return parser


def main(argv=None):
    args = _parser().parse_args(argv)
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    with reporting(stderr_reporter()):
        try:
            check_output_dir(args.output)
            if str(args.teacher).strip().lower() != COMPOSITION:
                resolve_model_path(args.teacher)
            if world > 1:
                if rank == 0:
                    plan = plan_shards(args.contigs, args.work_dir, args.teacher,
                                       n_shards=args.shards, shard_bases=args.shard_bases,
                                       min_length=args.min_length)
                else:
                    plan = wait_for_plan(args.work_dir)
                run_rank(plan, rank, world, args.output, token_budget=args.token_budget)
                return 0
            plan = plan_shards(args.contigs, args.work_dir, args.teacher, n_shards=args.shards,
                               shard_bases=args.shard_bases, min_length=args.min_length)
            if args.parsl_config:
                run_parsl(plan, args.parsl_config, token_budget=args.token_budget)
            else:
                devices = args.devices.split(",") if args.devices else None
                run_workers(plan, workers=args.workers, devices=devices,
                            token_budget=args.token_budget)
            merge_shards(plan, args.output)
        except TaxDistillError as exc:
            print(f"error: {exc}", file=sys.stderr, flush=True)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
