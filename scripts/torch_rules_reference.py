#!/usr/bin/python3
"""Reference vectors of AdaGC and SPAM for tests/test_rules_ref.c, written
from the formulas of their public PyTorch code (AdaGC: the AdaGC optimizer
of pytorch_optimizer, arXiv 2502.11034; SPAM: the AdamW of the SPAM-Optimizer
repository, ICLR 2025), on a fixed gradient sequence with spikes.

    /usr/bin/python3 scripts/torch_rules_reference.py [OUTDIR]

OUTDIR defaults to tests/ref beside this script; the output is committed.
File format: see scripts/torch_reference.py. Each computation runs in
float32 (the reference's precision) and in float64 from the same inputs
(names ending in 64).

Shapes: the 3-4-2 MLP of the C test, tensors W0 [4, 3], b0 [4], W1 [2, 4],
b1 [2] in that order (26 values), the order of clipnn's parameter block.
"""
import math
import os
import sys

import torch

SHAPES = [(4, 3), (4,), (2, 4), (2,)]
N = sum(math.prod(s) for s in SHAPES)


def gradient_sequence(steps, spikes):
    """g_t[i] = cos(0.5 + 1.3 i + 0.7 t) (1 + i % 5) / 10, times 100 at the
    spike steps (0-based) on every third entry."""
    seq = []
    for t in range(steps):
        g = [math.cos(0.5 + 1.3 * i + 0.7 * t) * (1 + i % 5) / 10 for i in range(N)]
        if t in spikes:
            g = [v * 100 if i % 3 == 0 else v for i, v in enumerate(g)]
        seq.append(g)
    return seq


def split(flat, dtype):
    out, k = [], 0
    for s in SHAPES:
        n = math.prod(s)
        out.append(torch.tensor(flat[k:k + n], dtype=dtype).reshape(s))
        k += n
    return out


def flat(tensors):
    return [float(v) for t in tensors for v in t.reshape(-1).tolist()]


def adagc_clip(seq, dtype, lambda_abs, lambda_rel, beta, warmup, eps=1e-8):
    """The clipping of pytorch_optimizer's AdaGC.step, each step's clipped
    gradient g_hat. Difference: its get_global_gradient_norm returns the sum
    of squares, which the warm-up then divides by; the paper (and clipnn)
    clip the global norm, so this script takes the root."""
    gamma = [None] * len(SHAPES)
    out = []
    for t, g in enumerate(seq, start=1):
        grads = split(g, dtype)
        gnorm = torch.sqrt(sum((p ** 2).sum() for p in grads)) + eps
        hats = []
        for i, grad in enumerate(grads):
            if t < warmup:
                h = min(lambda_abs / gnorm, 1.0)
                g_hat = grad.mul(h)
                n = g_hat.norm()
                gamma[i] = n if t == 1 else torch.minimum(gamma[i], n)
            else:
                h = torch.clamp(lambda_rel * gamma[i] / grad.norm(), max=1.0)
                g_hat = grad.mul(h)
                gamma[i] = gamma[i] * beta + g_hat.norm() * (1.0 - beta)
            hats.append(g_hat)
        out.append(flat(hats))
    return out


def cosine_decay(death_rate, t_max):
    """The reference's CosineDecay: torch's CosineAnnealingLR over t_max + 1."""
    sgd = torch.optim.SGD(torch.nn.ParameterList([torch.nn.Parameter(torch.zeros(1))]), lr=death_rate)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(sgd, t_max + 1, 0)

    def get_dr(step):
        if step >= t_max:
            return 0.0
        sched.step(step)
        return sgd.param_groups[0]["lr"]
    return get_dr


def spam_run(seq, theta0, dtype, lr, betas, eps, warmup, threshold, delta_t, delay):
    """SPAM's AdamW.step (no density masks, no weight decay) on fixed
    gradients: the parameters after every step and the warm-up factors."""
    import warnings
    warnings.filterwarnings("ignore")
    params = split(theta0, dtype)
    m = [torch.zeros_like(p) for p in params]
    v = [torch.zeros_like(p) for p in params]
    total, current, get_dr = 0, warmup + 1, cosine_decay(0.99, warmup)
    traj, scales, clipped = [], [], []
    for t, g in enumerate(seq):
        scale = 1 - get_dr(current)
        scales.append(scale)
        grads = split(g, dtype)
        step = t + 1
        clipped.append(0)
        for i, grad in enumerate(grads):
            if (total + 1) % delta_t == 0:
                m[i] = torch.zeros_like(grad)
                v[i] = torch.zeros_like(grad)
            cur = total + 1
            if cur >= delay:
                mask = (grad ** 2) > (threshold * v[i])
                if cur % delta_t >= delay:
                    clipped[-1] += int(mask.sum())
                    grad[mask] = grad[mask].sign() * torch.sqrt(v[i][mask] * threshold)
            m[i].mul_(betas[0]).add_(grad, alpha=1.0 - betas[0])
            v[i].mul_(betas[1]).addcmul_(grad, grad, value=1.0 - betas[1])
            denom = v[i].sqrt().add_(eps)
            step_size = lr * math.sqrt(1.0 - betas[1] ** step) / (1.0 - betas[0] ** step)
            params[i].add_(m[i] / denom, alpha=-step_size * scale)
        total += 1
        current += 1
        if total != 0 and (total + 1) % delta_t == 0:
            current = 0
            get_dr = cosine_decay(0.99, warmup)
        traj.append(flat(params))
    return traj, scales, clipped


def write(path, attrs, arrays):
    with open(path, "w") as f:
        f.write("# written by scripts/torch_rules_reference.py (torch %s)\n" % torch.__version__)
        for k, v in attrs.items():
            f.write("=%s %s\n" % (k, v))
        for name, vals in arrays.items():
            f.write("%s %d\n" % (name, len(vals)))
            fmt = "%.9g" if not name.endswith("64") else "%r"
            for i in range(0, len(vals), 6):
                f.write(" ".join(fmt % x if fmt == "%.9g" else repr(float(x)) for x in vals[i:i + 6]) + "\n")


def f32(vals):
    return torch.tensor(vals, dtype=torch.float32).tolist()


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                                              "tests", "ref")
    steps = 14
    seq = [f32(g) for g in gradient_sequence(steps, spikes={9})]
    a = dict(lambda_abs=1.0, lambda_rel=1.05, beta=0.9, warmup=5)
    r32 = adagc_clip(seq, torch.float32, **a)
    r64 = adagc_clip(seq, torch.float64, **a)
    write(os.path.join(out, "rules_adagc.txt"), {k: v for k, v in a.items()},
          {"grads": sum(seq, []), "clipped": sum(r32, []), "clipped64": sum(r64, [])})

    steps = 24
    seq = [f32(g) for g in gradient_sequence(steps, spikes={4, 11, 17})]
    theta0 = f32([0.3 * math.sin(1.0 + 0.7 * i) for i in range(N)])
    s = dict(lr=0.01, betas=(0.9, 0.999), eps=1e-6, warmup=3, threshold=5000, delta_t=8, delay=2)
    t32, sc, cl = spam_run([list(g) for g in seq], theta0, torch.float32, **s)
    t64, _, _ = spam_run([list(g) for g in seq], theta0, torch.float64, **s)
    attrs = {k: v for k, v in s.items() if k != "betas"}
    attrs.update(beta1=s["betas"][0], beta2=s["betas"][1])
    write(os.path.join(out, "rules_spam.txt"), attrs,
          {"theta0": theta0, "grads": sum(seq, []), "params": sum(t32, []), "params64": sum(t64, []),
           "scale64": sc, "clipped_entries": cl})


if __name__ == "__main__":
    main()
