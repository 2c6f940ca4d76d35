#!/usr/bin/env python3
"""Approximate nearest-neighbour libraries side by side: recall, time, memory, determinism.

Run by hand to re-check the choice behind `engine/neighbours.py`. Each method runs in its own
child process (peak memory from the kernel, VmHWM) on the same rows, twice, so the
table shows whether a seed gives the same graph. Recall@k is measured against the exact graph
of `--queries` random rows (exact search of those rows against all rows).

    .venv/bin/python benchmarks/neighbour_libraries.py ROWS.npy --k 50
    .venv/bin/python benchmarks/neighbour_libraries.py --synthetic 200000 --dims 64 --k 50

ROWS.npy: float32 (n, d), e.g. the 64 principal components teach computes, or the correction
space. `--synthetic N` draws N rows around 400 clusters of unequal size and spread instead
(genomes of a metagenome). Methods whose library is missing are skipped.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

METHODS = {
    "taxdistill": "what engine/neighbours.py does: faiss IndexIVFFlat, lists of ~250 rows, "
                  "16 probed",
    "faiss-ivf-sqrt": "faiss IndexIVFFlat, nlist = 4 sqrt(n) (faiss' usual advice), nprobe 32",
    "faiss-hnsw": "faiss IndexHNSWFlat M=32, efConstruction 80, efSearch 128",
    "hnswlib": "hnswlib M=32, ef_construction 100, ef 128 (1 thread: deterministic)",
    "hnswlib-mt": "hnswlib as above, 2 threads",
    "pynndescent": "pynndescent NNDescent, random_state 0",
}


def synthetic(n, dims, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 3.0, (400, dims))
    sizes = rng.lognormal(0.0, 1.0, 400)
    members = rng.choice(400, n, p=sizes / sizes.sum())
    spread = rng.uniform(0.5, 1.5, 400)[members, None]
    return (centres[members] + rng.normal(0.0, 1.0, (n, dims)) * spread).astype(np.float32)


def child(method, path, k, out):
    """Build and search in this process; write the graph and timings."""
    x = np.load(path, mmap_mode="r")
    x = np.ascontiguousarray(x, dtype=np.float32)
    n, d = x.shape
    start = time.perf_counter()
    if method == "taxdistill":
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
        from q2_taxdistill.engine.neighbours import nearest_neighbours
        built = time.perf_counter()
        graph = nearest_neighbours(x, k, method="approximate")
    elif method.startswith("faiss"):
        import faiss
        faiss.omp_set_num_threads(os.cpu_count())
        if method == "faiss-ivf-sqrt":
            nlist = int(4 * np.sqrt(n))
            quantiser = faiss.IndexFlatL2(d)
            index = faiss.IndexIVFFlat(quantiser, d, nlist)
            index.cp.seed = 0
            index.train(x)
            index.add(x)
            index.nprobe = 32
        else:
            index = faiss.IndexHNSWFlat(d, 32)
            index.hnsw.efConstruction = 80
            index.add(x)
            index.hnsw.efSearch = 128
        built = time.perf_counter()
        _, graph = index.search(x, k + 1)
    elif method.startswith("hnswlib"):
        import hnswlib
        index = hnswlib.Index(space="l2", dim=d)
        index.init_index(max_elements=n, M=32, ef_construction=100, random_seed=0)
        threads = 2 if method.endswith("mt") else 1
        index.add_items(x, np.arange(n), num_threads=threads)
        built = time.perf_counter()
        index.set_ef(128)
        graph, _ = index.knn_query(x, k=k + 1, num_threads=threads)
    else:
        import pynndescent
        index = pynndescent.NNDescent(x, n_neighbors=k + 1, random_state=0)
        built = time.perf_counter()
        graph, _ = index.neighbor_graph
    done = time.perf_counter()
    np.save(out, np.asarray(graph, dtype=np.int64))
    print(json.dumps({"build": built - start, "search": done - built, "peak_mb": _peak_mb()}))


def _peak_mb():
    """This process's own peak resident memory (VmHWM; ru_maxrss would include the fork)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024


def exact(x, rows, k):
    import torch
    ref = torch.from_numpy(np.ascontiguousarray(x))
    q = ref[torch.from_numpy(rows)]
    d = (ref * ref).sum(1)[None, :] - 2.0 * q @ ref.T
    d[torch.arange(len(rows)), torch.from_numpy(rows)] = float("inf")
    return torch.topk(d, k, dim=1, largest=False).indices.numpy()


def recall(graph, truth, rows):
    hits = 0
    for i, r in enumerate(rows):
        found = [j for j in graph[r] if j != r][:truth.shape[1]]
        hits += len(set(found) & set(truth[i]))
    return hits / truth.size


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("rows", nargs="?")
    p.add_argument("--synthetic", type=int)
    p.add_argument("--dims", type=int, default=64)
    p.add_argument("--k", type=int, default=50)
    p.add_argument("--queries", type=int, default=2000)
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        child(a.child[0], a.child[1], a.k, a.child[2])
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = a.rows
        if a.synthetic:
            path = os.path.join(tmp, "rows.npy")
            np.save(path, synthetic(a.synthetic, a.dims))
        x = np.load(path)
        rows = np.random.default_rng(1).choice(len(x), min(a.queries, len(x)), replace=False)
        truth = exact(x, rows, a.k)
        print(f"{len(x)} rows x {x.shape[1]} dims, k = {a.k}, recall on {len(rows)} queries\n")
        print("| method | build s | search s | peak RSS MB | recall@k | same graph twice |")
        print("|---|---|---|---|---|---|")
        for method in a.methods.split(","):
            graphs, times, rss = [], [], []
            for run in range(2):
                out = os.path.join(tmp, f"{method}-{run}.npy")
                cmd = [sys.executable, __file__, "--k", str(a.k), "--child", method, path, out]
                proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                _, status, _ = os.wait4(proc.pid, 0)
                text, err = proc.stdout.read().decode(), proc.stderr.read().decode()
                if os.waitstatus_to_exitcode(status) != 0:
                    print(f"| {method} | failed: {err.strip().splitlines()[-1] if err.strip() else '?'} |")
                    break
                times.append(json.loads(text.strip().splitlines()[-1]))
                rss.append(times[-1]["peak_mb"])
                graphs.append(np.load(out))
            if len(graphs) < 2:
                continue
            same = bool(np.array_equal(graphs[0], graphs[1]))
            print(f"| {method} | {times[0]['build']:.1f} | {times[0]['search']:.1f} | "
                  f"{rss[0]:.0f} | {recall(graphs[0], truth, rows):.3f} | {'yes' if same else 'no'} |")
        print("\n" + "\n".join(f"- {m}: {METHODS[m]}" for m in a.methods.split(",")))


if __name__ == "__main__":
    main()
