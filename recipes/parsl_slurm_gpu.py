"""parsl configuration for `--parsl-config`: GPU nodes of a Slurm cluster.

Each Slurm job (a parsl "block") takes one node and starts one worker per GPU; parsl pins each
worker to its GPU (CUDA_VISIBLE_DEVICES) and hands it shards as it finishes them. Up to
MAX_NODES jobs run at once. Edit the values below for your site (or set them in the
environment); `worker_init` must make this venv's python (with q2-taxdistill, torch,
transformers and parsl) the one on PATH on the compute nodes. For PBS Pro use
`parsl.providers.PBSProProvider(queue=..., account=..., select_options="ngpus=4", ...)` with
`parsl.launchers.MpiExecLauncher` or `SingleNodeLauncher` instead of SlurmProvider.
"""
import os
import sys

from parsl.config import Config
from parsl.executors import HighThroughputExecutor
from parsl.launchers import SrunLauncher
from parsl.providers import SlurmProvider

GPUS_PER_NODE = int(os.environ.get("TAXDISTILL_GPUS_PER_NODE", 4))
MAX_NODES = int(os.environ.get("TAXDISTILL_MAX_NODES", 16))
VENV = os.environ.get("TAXDISTILL_VENV", os.path.dirname(os.path.dirname(sys.executable)))

config = Config(
    executors=[HighThroughputExecutor(
        label="taxdistill-gpu",
        available_accelerators=GPUS_PER_NODE,
        max_workers_per_node=GPUS_PER_NODE,
        provider=SlurmProvider(
            partition=os.environ.get("TAXDISTILL_SLURM_PARTITION", "gpu"),
            account=os.environ.get("TAXDISTILL_SLURM_ACCOUNT"),
            nodes_per_block=1,
            init_blocks=1,
            max_blocks=MAX_NODES,
            walltime=os.environ.get("TAXDISTILL_WALLTIME", "04:00:00"),
            scheduler_options=f"#SBATCH --gpus-per-node={GPUS_PER_NODE}",
            worker_init=f"source {VENV}/bin/activate",
            launcher=SrunLauncher(),
        ),
    )],
    retries=1,
)
