"""The prepared GPU throughput run (benchmarks/gpu_throughput.sh), checked on CPU with a small config."""

import importlib.util
import os
import re
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _benchmark():
    path = os.path.join(REPO, "benchmarks", "teacher_throughput.py")
    spec = importlib.util.spec_from_file_location("teacher_throughput", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_dense_bf16_peaks_of_known_gpus():
    bench = _benchmark()
    assert bench.dense_bf16_peak("NVIDIA H200") == 989.4
    assert bench.dense_bf16_peak("NVIDIA H100 80GB HBM3") == 989.4
    assert bench.dense_bf16_peak("NVIDIA H100 PCIe") == 756.0
    assert bench.dense_bf16_peak("NVIDIA A100-SXM4-80GB") == 312.0
    assert bench.dense_bf16_peak("Some New Accelerator") is None


def test_gpu_script_writes_the_readme_table_on_cpu(tmp_path):
    env = dict(os.environ, OUT=str(tmp_path), CONFIG="small", DEVICE="cpu", N="3",
               PY=sys.executable, OMP_NUM_THREADS="1")
    done = subprocess.run(["bash", os.path.join(REPO, "benchmarks", "gpu_throughput.sh")],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    table = (tmp_path / "throughput.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| (")]
    assert [r.split(" | ")[0] for r in rows] == ["| (a) reference TaxDistill",
                                                 "| (b) official-genomeocean style", "| (c) ours"]
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert float(cells[3].replace(",", "")) > 0          # tokens/s
        assert re.fullmatch(r"\d+\.\d%", cells[5])            # MFU
        assert float(cells[6].replace(",", "")) > 0          # peak memory
    assert rows[-1].rstrip().endswith("| 1 |")
    assert "3 synthetic contigs" in table and "on one CPU" in table
    assert (tmp_path / "throughput.log").read_text().count("speed-up in bp/s") == 1
