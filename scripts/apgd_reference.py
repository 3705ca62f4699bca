#!/usr/bin/python3
"""Reference for clipnn's APGD (tests/test_apgd.c), written from the paper,
in double precision, plain Python (no numpy, no torch):

    /usr/bin/python3 scripts/apgd_reference.py [OUTDIR]

F. Croce and M. Hein, "Reliable evaluation of adversarial robustness with an
ensemble of diverse parameter-free attacks", ICML 2020, Algorithm 1, L-inf:

    eta = 2 eps;  x1 = P(x0 + eta sign(grad f(x0)))
    z_{k+1} = P(x_k + eta sign(grad f(x_k)))
    x_{k+1} = P(x_k + alpha (z_{k+1} - x_k) + (1 - alpha)(x_k - x_{k-1})),  alpha = 0.75
    checkpoints w_j = ceil(p_j N), p_0 = 0, p_1 = 0.22,
                p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06)
    at w_j: halve eta and continue from x_max (with its gradient) when
      (1) #{i in [w_{j-1}, w_j): f(x_{i+1}) > f(x_i)} < rho (w_j - w_{j-1}), rho = 0.75, or
      (2) eta was not halved at w_{j-1} and f_max is the same as at w_{j-1}.

f is maximized: the cross-entropy of the true class (apgd-ce) or the DLR
loss -(z_y - max_{i!=y} z_i) / (z_pi1 - z_pi3 + 1e-12) (apgd-dlr). P is the
projection on the L-inf ball of radius eps about x0, then on [0, 1].

It reads the model, inputs and labels of tests/ref/attack_model.txt (the
20 -> 16 relu -> 12 tanh -> 5 MLP of the PGD parity tests), runs N = 20
iterations from x0 (no random start) at eps = 0.05, and writes
OUTDIR/attack_apgd_ce.txt and attack_apgd_dlr.txt: "f 168" (f at x_0 ..
x_20 for the 8 examples, iterate-major) and "last 160" (x_20). Format as
the other reference files: lines "name count" followed by count numbers.
"""
import math
import os
import sys

N_ITER, EPS, ALPHA, RHO = 20, 0.05, 0.75, 0.75
SIZES = [(20, 16, "relu"), (16, 12, "tanh"), (12, 5, "identity")]


def read_arrays(path):
    arrays, name, want, vals = {}, None, 0, []
    with open(path) as f:
        for line in f:
            if line.startswith("#"):
                continue
            for tok in line.split():
                if name is None:
                    name = tok
                elif want == 0 and not vals and tok.isdigit() and name not in arrays:
                    want = int(tok)
                else:
                    vals.append(float(tok))
                if name is not None and want and len(vals) == want:
                    arrays[name], name, want, vals = vals, None, 0, []
    return arrays


def act(kind, z):
    return max(z, 0.0) if kind == "relu" else math.tanh(z) if kind == "tanh" else z


def dact(kind, z):
    return (1.0 if z > 0 else 0.0) if kind == "relu" else 1 - math.tanh(z) ** 2 if kind == "tanh" else 1.0


def forward(params, x):
    zs, a = [], x
    for l, (n_in, n_out, kind) in enumerate(SIZES):
        W, b = params["W%d" % l], params["b%d" % l]
        z = [b[o] + sum(W[o * n_in + i] * a[i] for i in range(n_in)) for o in range(n_out)]
        zs.append(z)
        a = [act(kind, v) for v in z]
    return zs, a


def backward(params, zs, dlogits):
    d = dlogits
    for l in range(len(SIZES) - 1, -1, -1):
        n_in, n_out, kind = SIZES[l]
        W = params["W%d" % l]
        d = [d[o] * dact(kind, zs[l][o]) for o in range(n_out)]
        d = [sum(W[o * n_in + i] * d[o] for o in range(n_out)) for i in range(n_in)]
    return d


def ce(z, y):
    m = max(z)
    lse = m + math.log(sum(math.exp(v - m) for v in z))
    p = [math.exp(v - lse) for v in z]
    return lse - z[y], [p[j] - (1.0 if j == y else 0.0) for j in range(len(z))]


def dlr(z, y):
    order = sorted(range(len(z)), key=lambda j: -z[j])
    i1, i3 = order[0], order[2]
    o = max((j for j in range(len(z)) if j != y), key=lambda j: z[j])
    D = z[i1] - z[i3] + 1e-12
    v = (z[y] - z[o]) / D
    g = [0.0] * len(z)  # gradient of f = -v
    g[y] -= 1 / D
    g[o] += 1 / D
    g[i1] += v / D
    g[i3] -= v / D
    return -v, g


def f_and_grad(params, x, y, loss):
    zs, logits = forward(params, x)
    f, dz = loss(logits, y)
    return f, backward(params, zs, dz)


def project(x, x0):
    return [min(max(min(max(v, c - EPS), c + EPS), 0.0), 1.0) for v, c in zip(x, x0)]


def sign(v):
    return 1.0 if v > 0 else -1.0 if v < 0 else 0.0


def checkpoints(n):
    w, p_prev, p = [], 0.0, 0.22
    while True:
        wj = math.ceil(p * n - 1e-9)
        if wj >= n:
            return w
        if wj > 0 and (not w or wj > w[-1]):
            w.append(wj)
        p_prev, p = p, p + max(p - p_prev - 0.03, 0.06)


def apgd(params, x0, y, loss):
    """f at x_0 .. x_N, x_N and the number of times eta was halved."""
    W = checkpoints(N_ITER)
    x, (f, g) = list(x0), f_and_grad(params, x0, y, loss)
    fs, eta = [f], 2 * EPS
    fmax, xmax, gmax, fprev = f, list(x), list(g), f
    increases, last_w, fmax_check, halved_last = 0, 0, f, False
    xprev, halvings = list(x), 0
    for t in range(N_ITER):
        z = project([xi + eta * sign(gi) for xi, gi in zip(x, g)], x0)
        if t > 0:
            z = project([xi + ALPHA * (zi - xi) + (1 - ALPHA) * (xi - pi) for xi, zi, pi in zip(x, z, xprev)], x0)
        xprev, x = x, z
        f, g = f_and_grad(params, x, y, loss)
        fs.append(f)
        increases += f > fprev
        fprev = f
        if f > fmax:
            fmax, xmax, gmax = f, list(x), list(g)
        if t + 1 in W:
            halve = increases < RHO * (t + 1 - last_w) or (not halved_last and fmax == fmax_check)
            halved_last = halve
            if halve:
                eta /= 2
                halvings += 1
                x, g, fprev = list(xmax), list(gmax), fmax
            fmax_check, increases, last_w = fmax, 0, t + 1
    return fs, x, halvings


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "tests", "ref")
    arr = read_arrays(os.path.join(out, "attack_model.txt"))
    xs, labels = arr["x"], [int(v) for v in arr["labels"]]
    for name, loss in (("ce", ce), ("dlr", dlr)):
        fs_all, last = [], []
        runs = [apgd(arr, xs[b * 20:(b + 1) * 20], labels[b], loss) for b in range(8)]
        for t in range(N_ITER + 1):
            fs_all.extend(run[0][t] for run in runs)
        for run in runs:
            last.extend(run[1])
        with open(os.path.join(out, "attack_apgd_%s.txt" % name), "w") as f:
            f.write("# scripts/apgd_reference.py (double), apgd-%s, eps %g, %d iterations, start x0, "
                    "checkpoints %s, halvings per example %s\n"
                    % (name, EPS, N_ITER, checkpoints(N_ITER), [run[2] for run in runs]))
            for key, vals in (("f", fs_all), ("last", last)):
                f.write("%s %d\n" % (key, len(vals)))
                for i in range(0, len(vals), 6):
                    f.write(" ".join("%.17g" % v for v in vals[i:i + 6]) + "\n")


if __name__ == "__main__":
    main()
