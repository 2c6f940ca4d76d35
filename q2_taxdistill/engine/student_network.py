"""The student's networks and their training: everything of the student that needs torch.

`student.Student` holds the networks with the taxonomy and features they speak and imports this
module only to train, predict or load them, so loading the plugin (every q2cli command does)
does not import torch. The training scheme (cross-fitting, per-fold generators, forked
workers) is described in `student`.
"""
import math
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from typing import Optional

import numpy as np
import torch
from torch import nn

from .labels import EncodedLabels
from .processors import can_fork, free_processors
from .progress import report
from .soft_labels import SoftLabels
from .taxonomy import N_RANKS

CALIBRATION_ROWS = 50_000
# Targets of all contigs and ranks built once when they fit: 2^24 float32, 64 MB.
DENSE_TARGET_CELLS = 1 << 24


def fold_seed(seed, fold):
    """The seed of fold `fold`'s generator: one stream per (seed, fold), independent of the
    others and of the order the folds run in."""
    state = np.random.SeedSequence([int(seed), int(fold)]).generate_state(1, np.uint64)
    return int(state[0]) & ((1 << 63) - 1)


@contextmanager
def single_thread():
    """Run the student's small tensors on one thread. Its layers are too small to gain from
    more, and on a busy machine torch's worker threads wait on each other: 300 training steps
    of this network took 24 s on one thread and over 600 s on two, side by side on a
    2-core machine with a load of ~15."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class SeededDropout(nn.Module):
    """`nn.Dropout` whose masks come from `generator` (set per fold while training) rather
    than torch's global generator, which folds training side by side would share."""

    def __init__(self, p=0.5):
        super().__init__()
        self.p = float(p)
        self.generator = None

    def forward(self, x):
        if not self.training or self.p == 0.0:
            return x
        keep = torch.empty_like(x).bernoulli_(1.0 - self.p, generator=self.generator)
        return x * keep / (1.0 - self.p)

    def extra_repr(self):
        return f"p={self.p}"


class StudentNetwork(nn.Module):
    def __init__(self, n_inputs, n_classes, hidden, dropout):
        super().__init__()
        self.body = nn.Sequential(
            nn.Linear(n_inputs, hidden), nn.ReLU(), SeededDropout(dropout),
            nn.Linear(hidden, hidden), nn.ReLU(), SeededDropout(dropout),
        )
        self.heads = nn.ModuleList(nn.Linear(hidden, c + 1) for c in n_classes)

    def forward(self, x):
        h = self.body(x)
        return [head(h) for head in self.heads]

    def seed_dropout(self, generator):
        for module in self.modules():
            if isinstance(module, SeededDropout):
                module.generator = generator


class _Targets:
    """Training targets per batch: the hard label's and the teacher's distribution per rank.

    Built from the labels' codes and the soft labels' top taxa. Where all ranks' targets of
    all contigs fit in `DENSE_TARGET_CELLS` they are built once and a batch indexes them
    (building them per batch was a quarter of distill's time on 7,555 contigs); above that
    each batch builds its own, so memory stays at the inputs' size, not contigs x taxa."""

    def __init__(self, labels: EncodedLabels, soft: Optional[SoftLabels], n_classes, temperature):
        self.codes = torch.from_numpy(labels.codes.astype(np.int64))
        self.weights = torch.from_numpy(labels.weights.astype(np.float32))
        self.n_classes = n_classes
        self.temperature = temperature
        self.soft = None
        if soft is not None:
            self.soft = (torch.from_numpy(soft.codes.astype(np.int64)),
                         torch.from_numpy(soft.probabilities.astype(np.float64)),
                         torch.from_numpy(soft.confidence.astype(np.float32)))
        self._dense_hard = self._dense_teacher = None
        n = len(self.codes)
        if n * sum(c + 1 for c in n_classes) * (2 if soft is not None else 1) \
                <= DENSE_TARGET_CELLS:
            every = torch.arange(n)
            self._dense_hard = []
            for r in range(N_RANKS):
                named, target = self.build_hard(r, every)
                full = torch.zeros(n, n_classes[r] + 1)
                full[named] = target
                self._dense_hard.append((named, full))
            if soft is not None:
                self._dense_teacher = [self.build_teacher(r, every) for r in range(N_RANKS)]

    def hard(self, r, rows):
        """(rows with a name at rank r, their target over C_r + 1)."""
        if self._dense_hard is None:
            return self.build_hard(r, rows)
        named, full = self._dense_hard[r]
        named = named[rows]
        return named, full[rows[named]]

    def teacher(self, r, rows):
        """(teacher distribution over C_r + 1 at temperature T, confidence weight) of `rows`."""
        if self._dense_teacher is None:
            return self.build_teacher(r, rows)
        q, confidence = self._dense_teacher[r]
        return q[rows], confidence[rows]

    def build_hard(self, r, rows):
        """The hard targets of `rows`: the label's trust on its taxon, the rest on
        "unnamed"."""
        codes = self.codes[rows, r]
        named = codes >= 0
        target = torch.zeros(int(named.sum()), self.n_classes[r] + 1)
        index = torch.arange(len(target))
        weights = self.weights[rows, r][named]
        target[index, codes[named]] = weights
        target[index, self.n_classes[r]] = 1.0 - weights
        return named, target

    def build_teacher(self, r, rows):
        """The teacher targets of `rows`: the kept taxa, the rest of the mass on "unnamed"."""
        codes, probabilities, confidence = (a[rows, r] for a in self.soft)
        p = torch.zeros(len(rows), self.n_classes[r] + 1, dtype=torch.float64)
        kept = codes >= 0
        p.scatter_add_(1, codes.clamp(min=0), torch.where(kept, probabilities.clamp(0, 1), 0.0))
        p[:, -1] = (1.0 - p[:, :-1].sum(1)).clamp(0.0, 1.0)
        p = (p + 1e-8) ** (1.0 / self.temperature)
        return (p / p.sum(1, keepdim=True)).float(), confidence


def _loss(logits, rows, targets, alpha, temperature):
    total = torch.zeros(())
    for r, z in enumerate(logits):
        named, target = targets.hard(r, rows)
        if named.any():
            ce = -(target * torch.log_softmax(z[named], 1)).sum(1).mean()
            total = total + alpha * ce
        if targets.soft is not None and alpha < 1.0:
            q, weight = targets.teacher(r, rows)
            if weight.sum() > 0:
                log_s = torch.log_softmax(z / temperature, 1)
                kl = (q * (torch.log(q) - log_s)).sum(1)
                total = total + (1.0 - alpha) * temperature ** 2 * (weight * kl).sum() / weight.sum()
    return total


class _FoldJob:
    """What training one fold needs; forked workers inherit it (`_train_forked`)."""

    def __init__(self, x, fold, targets, config, nets):
        self.x, self.fold, self.targets, self.config, self.nets = x, fold, targets, config, nets

    def train(self, f):
        """Train network `f` in place; its history entry."""
        config = self.config
        g = torch.Generator().manual_seed(fold_seed(config.seed, f))
        train = np.flatnonzero(self.fold != f)
        perm = torch.randperm(len(train), generator=g).numpy()
        n_val = max(1, min(config.max_validation,
                           int(round(config.validation_fraction * len(train)))))
        val = torch.from_numpy(train[perm[:n_val]])
        fit_rows = torch.from_numpy(train[perm[n_val:]])
        net = self.nets[f]
        net.seed_dropout(g)
        epochs, best = train_network(net, self.x, fit_rows, val, self.targets, config, g, f)
        net.seed_dropout(None)
        net.eval()
        return {"fold": f, "epochs": epochs, "validation_loss": best}


_JOB = None  # the job a forked worker trains folds of


def _forked_fold(f):
    torch.set_num_threads(1)
    entry = _JOB.train(f)
    weights = {k: v.detach().numpy().copy() for k, v in _JOB.nets[f].state_dict().items()}
    return f, entry, weights


def _train_forked(job, workers):
    """Train every fold of `job` on `workers` forked processes; the networks get the weights
    the workers found, and the history comes back in fold order."""
    global _JOB
    _JOB = job
    try:
        with ProcessPoolExecutor(max_workers=workers,
                                 mp_context=multiprocessing.get_context("fork")) as pool:
            results = list(pool.map(_forked_fold, range(job.config.n_folds)))
    finally:
        _JOB = None
    history = []
    for f, entry, weights in results:
        job.nets[f].load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()})
        job.nets[f].eval()
        history.append(entry)
    return history


def _fit_temperature(logits, targets, max_rows=CALIBRATION_ROWS):
    """Per-rank temperature minimising the out-of-fold cross-entropy (grid search: robust,
    deterministic, and cheap for one scalar), on at most `max_rows` contigs (a fixed
    random draw): one number per rank needs no more, and the grid costs rows x taxa x 41."""
    grid = np.exp(np.linspace(np.log(0.25), np.log(8.0), 41))
    every = torch.arange(len(logits[0]))
    if len(every) > max_rows:
        every = torch.randperm(len(every), generator=torch.Generator().manual_seed(0))[:max_rows]
    temperatures = []
    for r in range(N_RANKS):
        named, t = targets.hard(r, every)
        if not named.any():
            temperatures.append(1.0)
            continue
        z = logits[r][every][named]
        losses = [float(-(t * torch.log_softmax(z / T, 1)).sum(1).mean()) for T in grid]
        temperatures.append(float(grid[int(np.argmin(losses))]))
    return temperatures


def fit_networks(x, labels, soft, n_classes, config):
    """Train `config.n_folds` cross-fitted networks on the normalised features `x`; returns
    (networks, fold of each contig, per-rank temperatures, training history)."""
    with single_thread():
        x = torch.from_numpy(x)
        n = len(x)
        targets = _Targets(labels, soft, n_classes, config.temperature)

        generator = torch.Generator().manual_seed(config.seed)
        fold = (torch.randperm(n, generator=generator) % config.n_folds).numpy()
        # Every network's initial weights, drawn in fold order before any training starts.
        nets = []
        for f in range(config.n_folds):
            torch.manual_seed(config.seed * 1000 + f)
            nets.append(StudentNetwork(x.shape[1], n_classes, config.hidden, config.dropout))

        job = _FoldJob(x, fold, targets, config, nets)
        workers = min(config.n_folds, config.threads or free_processors())
        if can_fork():
            # Also one worker is a forked process: what training allocates (autograd buffers,
            # ~65 MB on 7,839 contigs) goes with it, instead of staying in this process's
            # heap for correct-taxonomy to add to (peak 550 MB in-process, 486 MB forked).
            report("student", message=f"{config.n_folds} folds on {workers} "
                                      f"process{'es' if workers > 1 else ''}")
            history = _train_forked(job, workers)
        else:
            history = [job.train(f) for f in range(config.n_folds)]
        out_of_fold = [torch.zeros(n, c + 1) for c in n_classes]
        with torch.no_grad():
            for f, net in enumerate(nets):
                held_out = torch.from_numpy(np.flatnonzero(fold == f))
                for r, z in enumerate(net(x[held_out])):
                    out_of_fold[r][held_out] = z
        return nets, fold, _fit_temperature(out_of_fold, targets), history


def train_network(net, x, rows, val, targets, config, generator, fold):
    """Train `net` on `rows` until the loss on `val` stops improving; (epochs, best loss)."""
    optimiser = torch.optim.AdamW(net.parameters(), lr=config.learning_rate, foreach=True,
                                  weight_decay=config.weight_decay)
    best_loss, best_state, stale, epoch = math.inf, None, 0, 0
    # Small data still get a dozen or more updates per epoch.
    batch_size = max(16, min(config.batch_size, len(rows) // 16))
    for epoch in range(1, config.max_epochs + 1):
        net.train()
        order = rows[torch.randperm(len(rows), generator=generator)][:config.epoch_contigs]
        for batch in order.split(batch_size):
            loss = _loss(net(x[batch]), batch, targets, config.alpha, config.temperature)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        net.eval()
        with torch.no_grad():
            val_loss = float(_loss(net(x[val]), val, targets, config.alpha, config.temperature))
        report(f"student: fold {fold + 1}/{config.n_folds} epoch", epoch, config.max_epochs,
               f"validation loss {val_loss:.4f}")
        if val_loss < best_loss - 1e-4:
            best_loss, stale = val_loss, 0
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        else:
            stale += 1
            if stale >= config.patience:
                break
    net.load_state_dict(best_state)
    return epoch, best_loss


def predict_proba(networks, x, folds, temperatures, n_classes):
    """Per rank (n, C_r + 1) probabilities from the fold networks (`Student.predict_proba`)."""
    x = torch.from_numpy(x)
    out = [torch.zeros(len(x), c + 1) for c in n_classes]
    with torch.no_grad(), single_thread():
        for f, net in enumerate(networks):
            net.eval()
            logits = net(x)
            seen = folds == f
            unseen = folds < 0
            for r, z in enumerate(logits):
                p = torch.softmax(z / temperatures[r], 1)
                out[r][torch.from_numpy(seen)] = p[torch.from_numpy(seen)]
                out[r][torch.from_numpy(unseen)] += p[torch.from_numpy(unseen)] / len(networks)
    return [p.numpy() for p in out]

