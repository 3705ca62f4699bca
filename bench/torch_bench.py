#!/usr/bin/python3
"""The PyTorch side of `make bench` (bench/run.sh); mirrors bench/bench.c.

  torch_bench.py grid --arch 784-256-128-10 --batch B [--clips none,norm,...]
                      [--threads T] [--reps R] [--rep-seconds S]
      Training throughput of the same MLP (tanh hidden layers, softmax
      cross-entropy, plain SGD, minibatches drawn with replacement from
      4096 synthetic examples) with each clipping rule written the way a
      PyTorch user would: clip_grad_norm_ for norm, per-tensor factors for
      adaptive-layer, unit-wise factors for AGC, and for per-sample the
      per-example norm trick (activations and output gradients from hooks,
      a second backward of the reweighted loss), as Opacus's ghost clipping.
  torch_bench.py fmnist [--dir /usr/share/datasets/fashion-mnist] [--threads T]
      The Fashion-MNIST run equivalent to
        clipnn train --data fashion-mnist --arch 256-128-10 --act relu
          --opt sgd --lr 0.05 --momentum 0.9 --batch 128 --epochs 10
          --clip norm-torch --lambda 1
      (pixels scaled to [0, 1] as clipnn's default --scale auto does for
      Fashion-MNIST, He init with zero biases, shuffled passes, test
      evaluation after every epoch).
  torch_bench.py rec --cell lstm|rnn --hidden H --seq-steps 50 --step-dim 32
                     --batch B [--threads T] [--reps R] [--rep-seconds S]
      Training throughput of a recurrent classifier, as bench_clipnn rec:
      nn.LSTM or nn.RNN (tanh, batch_first), the loss on the last step
      through nn.Linear(H, 10), clip_grad_norm_(1.0), plain SGD (lr 0.01),
      minibatches drawn with replacement from 1024 synthetic sequences.
  torch_bench.py fmnist-lstm [--dir ...] [--threads T]
      Row-sequential Fashion-MNIST (28 steps of 28 pixels / 255) with
      nn.LSTM(28, 128) and nn.Linear(128, 10) on the last step, as
        clipnn train --data fashion-mnist --arch lstm:128-10 --epochs 10
      (PyTorch's LSTM initialisation, Xavier-uniform head with zero bias,
      SGD lr 0.05 momentum 0.9, batch 32, clip_grad_norm_(1.0), the same
      shuffles as clipnn's seed 1: xoshiro256** and its Fisher-Yates pass).

Output: tab-separated lines, the same columns as bench_clipnn's.
"""
import argparse
import gzip
import math
import os
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# Croce and Hein's checkpoints: one definition, the reference's.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
from apgd_reference import checkpoints as apgd_checkpoints  # noqa: E402

N_EXAMPLES = 4096


def lambda_for(rule):
    # The same thresholds as bench/bench.c's clip_for().
    return {"adaptive-layer": 0.01, "agc": 0.01}.get(rule, 1.0)


def make_model(arch, act):
    sizes = [int(v) for v in arch.split("-")]
    layers = []
    for i in range(1, len(sizes)):
        lin = nn.Linear(sizes[i - 1], sizes[i])
        layers.append(lin)
        if i + 1 < len(sizes):
            layers.append(act())
    return nn.Sequential(*layers), sizes


def step_flops(sizes, batch):
    # Forward, weight gradient, and the input gradient of every layer but
    # the first: what both frameworks compute.
    f = 0.0
    for l in range(1, len(sizes)):
        mk = sizes[l - 1] * sizes[l]
        f += 2.0 * batch * mk * (2.0 if l == 1 else 3.0)
    return f


class PerSample:
    """DP-SGD clipping with per-example norms from ||a_i||^2 (||d_i||^2)."""

    def __init__(self, model, C):
        self.C = C
        self.linears = [m for m in model if isinstance(m, nn.Linear)]
        self.inputs = [None] * len(self.linears)
        self.outs = [None] * len(self.linears)
        for k, lin in enumerate(self.linears):
            lin.register_forward_hook(self._hook(k))

    def _hook(self, k):
        def f(mod, inp, out):
            self.inputs[k] = inp[0].detach()
            self.outs[k] = out
        return f

    def loss_and_backward(self, model, x, y):
        z = model(x)
        losses = F.cross_entropy(z, y, reduction="none")
        B = x.shape[0]
        deltas = torch.autograd.grad(losses.sum() / B, self.outs, retain_graph=True)
        sq = torch.zeros(B)
        for a, d in zip(self.inputs, deltas):
            sq += (d * d).sum(1) * ((a * a).sum(1) + 1.0)
        norms = B * sq.sqrt()
        factor = torch.clamp(self.C / norms, max=1.0)
        (losses * factor).sum().div(B).backward()
        return (factor < 1).any().item()


def clip_adaptive_layer(model, lam, eps=1e-3):
    clipped = False
    with torch.no_grad():
        for p in model.parameters():
            g = p.grad
            gn = torch.linalg.vector_norm(g)
            bound = lam * max(torch.linalg.vector_norm(p).item(), eps)
            if gn.item() > bound:
                g.mul_(bound / gn.item())
                clipped = True
    return clipped


def clip_agc(model, lam, eps=1e-3):
    # Unit-wise: rows of W, the whole bias vector (as clipnn's agc).
    clipped = False
    with torch.no_grad():
        for p in model.parameters():
            g = p.grad
            if p.dim() == 2:
                pn = torch.linalg.vector_norm(p, dim=1, keepdim=True).clamp(min=eps)
                gn = torch.linalg.vector_norm(g, dim=1, keepdim=True)
            else:
                pn = torch.linalg.vector_norm(p).clamp(min=eps)
                gn = torch.linalg.vector_norm(g)
            maxn = lam * pn
            scale = torch.where(gn > maxn, maxn / gn.clamp(min=1e-6), torch.ones_like(gn))
            clipped = clipped or bool((gn > maxn).any())
            g.mul_(scale)
    return clipped


def make_data(n_in, k, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(N_EXAMPLES, n_in, generator=g)
    w = torch.arange(n_in, dtype=torch.float64) * 31 % 17 - 8
    y = ((x.double() @ w).abs() * 7).long() % k
    return x, y


def train_steps(model, opt, rule, ps, x, y, batch, steps, gen):
    clipped = 0
    for _ in range(steps):
        idx = torch.randint(0, N_EXAMPLES, (batch,), generator=gen)
        xb, yb = x[idx], y[idx]
        opt.zero_grad(set_to_none=True)
        if rule == "per-sample":
            clipped += ps.loss_and_backward(model, xb, yb)
        else:
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            if rule == "norm":
                n = nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                clipped += n.item() > 1.0
            elif rule == "adaptive-layer":
                clipped += clip_adaptive_layer(model, lambda_for(rule))
            elif rule == "agc":
                clipped += clip_agc(model, lambda_for(rule))
        opt.step()
    return clipped


def grid(args):
    torch.manual_seed(1)
    clips = args.clips.split(",")
    models, opts, pss = [], [], []
    for rule in clips:
        torch.manual_seed(1)
        m, sizes = make_model(args.arch, nn.Tanh)
        for mod in m:
            if isinstance(mod, nn.Linear):
                nn.init.xavier_uniform_(mod.weight)
                nn.init.zeros_(mod.bias)
        models.append(m)
        opts.append(torch.optim.SGD(m.parameters(), lr=0.01))
        pss.append(PerSample(m, lambda_for(rule)) if rule == "per-sample" else None)
    x, y = make_data(sizes[0], sizes[-1])
    gen = torch.Generator().manual_seed(2)
    B = args.batch

    steps = 2
    while True:
        t0 = time.perf_counter()
        train_steps(models[0], opts[0], clips[0], pss[0], x, y, B, steps, gen)
        dt = time.perf_counter() - t0
        if dt >= 0.02 or steps >= 100000:
            break
        steps *= 4
    steps = max(2, math.ceil(args.rep_seconds / (dt / steps)))

    secs = [[0.0] * args.reps for _ in clips]
    frac = [0.0] * len(clips)
    for r in range(-1, args.reps):
        for c, rule in enumerate(clips):
            n = 2 if r < 0 else steps
            t0 = time.perf_counter()
            k = train_steps(models[c], opts[c], rule, pss[c], x, y, B, n, gen)
            dt = time.perf_counter() - t0
            if r >= 0:
                secs[c][r] = dt / n
                frac[c] += k / n / args.reps
    flops = step_flops(sizes, B)
    for c, rule in enumerate(clips):
        tm = statistics.median(secs[c])
        over = statistics.median((secs[c][r] - secs[0][r]) / secs[c][r] for r in range(args.reps))
        print("grid\t%s\t%d\t%s\t%d\t%.1f\t%.6g\t%.2f\t%.4f\t%.3f\t%d\t%d" %
              (args.arch, B, rule, torch.get_num_threads(), B / tm, tm * 1e3, flops / tm / 1e9,
               0.0 if c == 0 else over, frac[c], args.reps, steps))
        sys.stdout.flush()


def read_idx(path):
    with gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    return arr.reshape(dims)


def fmnist(args):
    t_start = time.perf_counter()
    d = args.dir
    xtr = read_idx(d + "/train-images-idx3-ubyte.gz").reshape(60000, -1).astype(np.float64)
    ytr = read_idx(d + "/train-labels-idx1-ubyte.gz").astype(np.int64)
    xte = read_idx(d + "/t10k-images-idx3-ubyte.gz").reshape(10000, -1).astype(np.float64)
    yte = read_idx(d + "/t10k-labels-idx1-ubyte.gz").astype(np.int64)
    # clipnn's default scaling of Fashion-MNIST (--scale auto = unit): pixels / 255.
    xtr = torch.from_numpy((xtr / 255.0).astype(np.float32))
    xte = torch.from_numpy((xte / 255.0).astype(np.float32))
    ytr, yte = torch.from_numpy(ytr), torch.from_numpy(yte)

    torch.manual_seed(args.seed)
    model, _ = make_model("784-256-128-10", nn.ReLU)
    for mod in model:
        if isinstance(mod, nn.Linear):
            nn.init.kaiming_normal_(mod.weight, nonlinearity="relu")
            nn.init.zeros_(mod.bias)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    n, B = xtr.shape[0], 128
    t_train = time.perf_counter()
    acc = float("nan")
    for epoch in range(10):
        perm = torch.randperm(n)
        for s in range(0, n, B):
            idx = perm[s:s + B]
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(xtr[idx]), ytr[idx])
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
        with torch.no_grad():
            correct = 0
            for s in range(0, xte.shape[0], 256):
                correct += (model(xte[s:s + 256]).argmax(1) == yte[s:s + 256]).sum().item()
            acc = correct / xte.shape[0]
    t_end = time.perf_counter()
    print("fmnist\ttorch\t%d\t%.2f\t%.2f\t%.4f" % (torch.get_num_threads(), t_end - t_start, t_end - t_train, acc))


class SeqClassifier(nn.Module):
    """One recurrent layer (batch_first), a dense layer on the last step."""

    def __init__(self, cell, step_dim, hidden, k):
        super().__init__()
        if cell == "lstm":
            self.rec = nn.LSTM(step_dim, hidden, batch_first=True)
        else:
            self.rec = nn.RNN(step_dim, hidden, nonlinearity="tanh", batch_first=True)
        self.head = nn.Linear(hidden, k)

    def forward(self, x):
        out, _ = self.rec(x)
        return self.head(out[:, -1])


def rec_steps(model, opt, x, y, batch, steps, gen):
    for _ in range(steps):
        idx = torch.randint(0, x.shape[0], (batch,), generator=gen)
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x[idx]), y[idx])
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()


def rec(args):
    torch.manual_seed(1)
    model = SeqClassifier(args.cell, args.step_dim, args.hidden, 10)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(1024, args.seq_steps, args.step_dim, generator=g)
    w = torch.arange(args.seq_steps * args.step_dim, dtype=torch.float64) * 31 % 17 - 8
    y = ((x.reshape(1024, -1).double() @ w).abs() * 7).long() % 10
    gen = torch.Generator().manual_seed(2)
    B = args.batch
    steps = 2
    while True:
        t0 = time.perf_counter()
        rec_steps(model, opt, x, y, B, steps, gen)
        dt = time.perf_counter() - t0
        if dt >= 0.02 or steps >= 100000:
            break
        steps *= 2
    per_step = dt / steps
    for _ in range(2):
        t0 = time.perf_counter()
        rec_steps(model, opt, x, y, B, steps, gen)
        per_step = min(per_step, (time.perf_counter() - t0) / steps)
    steps = max(2, math.ceil(args.rep_seconds / per_step))
    secs = []
    for _ in range(args.reps):
        t0 = time.perf_counter()
        rec_steps(model, opt, x, y, B, steps, gen)
        secs.append((time.perf_counter() - t0) / steps)
    tm = statistics.median(secs)
    print("rec\t%s\t%d\t%d\t%d\t%d\t%d\t%.1f\t%.6g\t%.3f\t%d\t%d" %
          (args.cell, args.hidden, args.seq_steps, args.step_dim, B, torch.get_num_threads(), B / tm, tm * 1e3,
           (max(secs) - min(secs)) / tm, args.reps, steps))


class ClipnnShuffle:
    """clipnn's minibatch order: xoshiro256** seeded through splitmix64,
    each pass a Fisher-Yates shuffle of the previous order in place, with
    rejection sampling for the draws below i."""

    M = (1 << 64) - 1

    def __init__(self, seed, n):
        x, self.s = seed, []
        for _ in range(4):
            x = (x + 0x9E3779B97F4A7C15) & self.M
            z = x
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & self.M
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & self.M
            self.s.append(z ^ (z >> 31))
        self.order = list(range(n))

    def _next(self):
        s, M = self.s, self.M
        r = (((s[1] * 5) & M) << 7 | ((s[1] * 5) & M) >> 57) & M
        result = (r * 9) & M
        t = (s[1] << 17) & M
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = ((s[3] << 45) | (s[3] >> 19)) & M
        return result

    def _below(self, n):
        limit = self.M - self.M % n
        while True:
            x = self._next()
            if x < limit:
                return x % n

    def next_pass(self):
        o = self.order
        for i in range(len(o), 1, -1):
            j = self._below(i)
            o[i - 1], o[j] = o[j], o[i - 1]
        return torch.tensor(o)


def fmnist_lstm(args):
    t_start = time.perf_counter()
    d = args.dir
    xtr = read_idx(d + "/train-images-idx3-ubyte.gz").reshape(60000, 28, 28).astype(np.float64)
    ytr = read_idx(d + "/train-labels-idx1-ubyte.gz").astype(np.int64)
    xte = read_idx(d + "/t10k-images-idx3-ubyte.gz").reshape(10000, 28, 28).astype(np.float64)
    yte = read_idx(d + "/t10k-labels-idx1-ubyte.gz").astype(np.int64)
    xtr = torch.from_numpy((xtr / 255.0).astype(np.float32))
    xte = torch.from_numpy((xte / 255.0).astype(np.float32))
    ytr, yte = torch.from_numpy(ytr), torch.from_numpy(yte)

    torch.manual_seed(args.seed)
    model = SeqClassifier("lstm", 28, 128, 10)
    nn.init.xavier_uniform_(model.head.weight)
    nn.init.zeros_(model.head.bias)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    n, B = xtr.shape[0], 32
    shuffle = ClipnnShuffle(args.seed, n)
    t_train = time.perf_counter()
    acc = float("nan")
    for epoch in range(10):
        perm = shuffle.next_pass()
        for s in range(0, n, B):
            idx = perm[s:s + B]
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(xtr[idx]), ytr[idx])
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
        with torch.no_grad():
            correct = 0
            for s in range(0, xte.shape[0], 256):
                correct += (model(xte[s:s + 256]).argmax(1) == yte[s:s + 256]).sum().item()
            acc = correct / xte.shape[0]
    t_end = time.perf_counter()
    print("fmnist-lstm\ttorch\t%d\t%.2f\t%.2f\t%.4f" % (torch.get_num_threads(), t_end - t_start, t_end - t_train,
                                                       acc))


def apgd_ce_batch(model, x0, y, eps, n_iter):
    # APGD-CE, L-inf (Croce and Hein 2020, Algorithm 1; the arithmetic of
    # scripts/apgd_reference.py), each example with its own step size.
    def f_and_grad(x):
        x = x.clone().requires_grad_(True)
        f = F.cross_entropy(model(x), y, reduction="none")
        (g,) = torch.autograd.grad(f.sum(), x)
        return f.detach(), g

    def proj(v):
        return torch.clamp(torch.min(torch.max(v, x0 - eps), x0 + eps), 0, 1)

    W = set(apgd_checkpoints(n_iter))
    x = x0.clone()
    f, g = f_and_grad(x)
    eta = torch.full((x0.shape[0], 1), 2 * eps)
    fmax, xmax, gmax, fprev, fcheck = f.clone(), x.clone(), g.clone(), f.clone(), f.clone()
    increases = torch.zeros_like(f)
    halved_last = torch.zeros_like(f, dtype=torch.bool)
    xprev, last_w = x.clone(), 0
    for t in range(n_iter):
        z = proj(x + eta * g.sign())
        if t > 0:
            z = proj(x + 0.75 * (z - x) + 0.25 * (x - xprev))
        xprev, x = x, z
        f, g = f_and_grad(x)
        increases += (f > fprev).float()
        fprev = f
        better = f > fmax
        fmax = torch.where(better, f, fmax)
        xmax = torch.where(better[:, None], x, xmax)
        gmax = torch.where(better[:, None], g, gmax)
        if t + 1 in W:
            halve = (increases < 0.75 * (t + 1 - last_w)) | (~halved_last & (fmax == fcheck))
            halved_last = halve
            eta = torch.where(halve[:, None], eta / 2, eta)
            x = torch.where(halve[:, None], xmax, x)
            g = torch.where(halve[:, None], gmax, g)
            fprev = torch.where(halve, fmax, fprev)
            fcheck, last_w = fmax.clone(), t + 1
            increases.zero_()


def pgd_batch(model, x0, y, eps, steps):
    alpha = max(2.5 * eps / steps, eps / 4)
    x = x0.clone()
    for t in range(steps + 1):
        x.requires_grad_(True)
        loss = F.cross_entropy(model(x), y)
        (g,) = torch.autograd.grad(loss, x)
        if t == steps:
            break
        with torch.no_grad():
            x = x + alpha * g.sign()
            x = torch.clamp(x0 + torch.clamp(x - x0, -eps, eps), 0, 1)


def pgd(args):
    # PGD-Linf as clipnn_attack runs it (no random start): per batch, the
    # loss and input gradient at steps + 1 iterates, a signed step of
    # alpha = max(2.5 eps / steps, eps / 4) between them, projected on the
    # eps cube around x0 and on [0, 1]. ReLU MLP, synthetic inputs.
    model, sizes = make_model(args.arch, nn.ReLU)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    x_all, y_all = make_data(sizes[0], sizes[-1])
    n = args.n_attack
    eps, steps = 0.1, args.steps
    attack = apgd_ce_batch if args.method == "apgd-ce" else pgd_batch
    times = []
    for rep in range(args.reps + 1):
        t0 = time.perf_counter()
        for start in range(0, n, args.batch):
            x0 = x_all[start % N_EXAMPLES:start % N_EXAMPLES + args.batch]
            y = y_all[start % N_EXAMPLES:start % N_EXAMPLES + args.batch]
            attack(model, x0, y, eps, steps)
        if rep > 0:
            times.append(time.perf_counter() - t0)
    secs = statistics.median(times)
    macs = sum(sizes[i - 1] * sizes[i] for i in range(1, len(sizes)))
    flops = 4.0 * macs * n * (steps + 1)  # forward and input gradient of every layer
    print(f"pgd\t{args.method}\t{args.arch}\t{args.batch}\t{args.threads}\t{steps}\t{n}\t{secs:.4f}\t"
          f"{flops / secs / 1e9:.2f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["grid", "fmnist", "rec", "fmnist-lstm", "pgd"])
    ap.add_argument("--steps", type=int, default=40, help="pgd: steps per batch")
    ap.add_argument("--n-attack", type=int, default=2560, help="pgd: examples attacked")
    ap.add_argument("--method", default="pgd-linf", choices=["pgd-linf", "apgd-ce"], help="pgd: the attack")
    ap.add_argument("--arch", default="784-256-128-10")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--clips", default="none,norm,adaptive-layer,agc,per-sample")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--rep-seconds", type=float, default=0.1)
    ap.add_argument("--cell", default="lstm", choices=["lstm", "rnn"])
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--seq-steps", type=int, default=50)
    ap.add_argument("--step-dim", type=int, default=32)
    ap.add_argument("--dir", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--seed", type=int, default=1, help="fmnist: seed of the weights and the shuffles")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    {"grid": grid, "fmnist": fmnist, "rec": rec, "fmnist-lstm": fmnist_lstm, "pgd": pgd}[args.mode](args)


if __name__ == "__main__":
    main()
