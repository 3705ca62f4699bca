#!/usr/bin/env python3
"""Independent reference for clipnn's privacy accountant: writes
tests/ref/dp_accountant.txt.

Written from the formulas of I. Mironov, K. Talwar, L. Zhang, "Renyi
Differential Privacy of the Sampled Gaussian Mechanism" (2019), Section 3,
and the conversion of B. Balle et al. (2020), Theorem 21, with numpy and
nothing else (no mpmath, no scipy). It shares no code with the C
implementation and takes other routes where there is a choice:

  - binomial coefficients from math.lgamma (the C code builds them as a
    running product), their sign for fractional orders counted from the
    negative factors;
  - the fractional-order series summed block by block, positive and
    negative terms each with one log-sum-exp, subtracted once at the end
    (the C code adds and subtracts term by term), the sign of C(alpha, k)
    counted from its negative factors alpha - m, m > alpha; and a stricter
    stop (a block below e^-36, the C code a term below e^-30);
  - log erfc from a continued fraction past x = 3 (the C code uses an
    asymptotic series past 20).

Run with /usr/bin/python3 (Debian's python3-numpy; scripts/install-deps.sh
installs it with CLIPNN_NUMPY=1). The tests read the committed output and
need no Python.

File format (tests/ref_file.c): "# comment", "=key value", then arrays as
"name count" followed by the numbers. For case i: case<i>.params (q, sigma,
steps, delta), case<i>.rdp (the RDP of one step at every order of the grid),
case<i>.eps (epsilon and the best order after `steps` steps).
"""
import math
import os
import sys

import numpy as np

ORDERS = [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64)) + [128, 256, 512, 1024]

CASES = [
    # q, sigma, steps, delta
    (256 / 60000, 1.1, 60 * (60000 // 256), 1e-5),   # MNIST tutorial-sized run
    (256 / 60000, 1.12, 60 * (60000 // 256), 1e-5),
    (0.04, 1.5, 2250, 1e-5),                          # Opacus's accountant test
    (0.01, 4.0, 10000, 1e-5),
    (0.1, 2.0, 10, 1e-5),
    (1.0, 1.0, 1, 1e-5),                              # q = 1: the Gaussian mechanism
    (1.0, 5.0, 100, 1e-6),
    (1e-4, 0.8, 100000, 1e-6),                        # tiny q
    (1e-4, 4.0, 10000, 1e-5),
    (0.5, 0.7, 50, 1e-3),
    (0.01, 0.5, 1000, 1e-5),
    (1e-3, 10.0, 1000000, 1e-5),
    (0.3, 30.0, 20, 1e-5),                            # large noise: the large orders
]


def log_sum_exp(v):
    v = np.asarray(v, dtype=np.float64)
    if v.size == 0:
        return -math.inf
    m = np.max(v)
    if m == -math.inf:
        return -math.inf
    return float(m + np.log(np.sum(np.exp(v - m))))


def log_erfc(x):
    """log erfc(x): math.erfc below 3, else the continued fraction
    erfc(x) = exp(-x^2)/sqrt(pi) / (x + (1/2)/(x + 1/(x + (3/2)/(x + ...))))."""
    if x < 3:
        return math.log(math.erfc(x))
    f = x
    for k in range(400, 0, -1):
        f = x + (k / 2.0) / f
    return -x * x - 0.5 * math.log(math.pi) - math.log(f)


def log_abs_binom(alpha, k):
    return math.lgamma(alpha + 1) - math.lgamma(k + 1) - math.lgamma(alpha - k + 1)


def log_a_integer(q, sigma, alpha):
    k = np.arange(alpha + 1, dtype=np.float64)
    lb = np.array([log_abs_binom(alpha, int(i)) for i in range(alpha + 1)])
    terms = lb + k * math.log(q) + (alpha - k) * math.log1p(-q) + (k * k - k) / (2 * sigma * sigma)
    return log_sum_exp(terms)


LGAMMA = np.vectorize(math.lgamma, otypes=[np.float64])
LOG_ERFC = np.vectorize(lambda x: log_erfc(x), otypes=[np.float64])


def log_a_fractional(q, sigma, alpha):
    """The two halves of A_alpha (z below and above z0), each a series in k
    whose k-th term carries C(alpha, k) and a Gaussian tail; summed in
    blocks of 1000 terms until a whole block is below e^-36 (A_alpha >= 1,
    so that is a relative 2e-16; the terms alternate in sign past alpha,
    so the rest of the series is smaller than the last block's largest)."""
    z0 = sigma * sigma * math.log(1 / q - 1) + 0.5
    s2, rt = 2 * sigma * sigma, math.sqrt(2) * sigma
    pos, neg = [], []
    for start in range(0, 400000, 1000):
        k = np.arange(start, start + 1000, dtype=np.float64)
        j = alpha - k
        lb = math.lgamma(alpha + 1) - LGAMMA(k + 1) - LGAMMA(alpha - k + 1)
        negative = np.maximum(0, k - math.floor(alpha) - 1) % 2 == 1
        lo = lb + k * math.log(q) + j * math.log1p(-q) + (k * k - k) / s2 + math.log(0.5) + LOG_ERFC((k - z0) / rt)
        hi = lb + j * math.log(q) + k * math.log1p(-q) + (j * j - j) / s2 + math.log(0.5) + LOG_ERFC((z0 - j) / rt)
        pos.append(log_sum_exp(np.concatenate([lo[~negative], hi[~negative]])))
        neg.append(log_sum_exp(np.concatenate([lo[negative], hi[negative]])))
        if max(lo.max(), hi.max()) < -36:
            break
    p, n = log_sum_exp(pos), log_sum_exp(neg)
    return p + math.log1p(-math.exp(n - p)) if n > -math.inf else p


def rdp_one_step(q, sigma, alpha):
    if q == 0:
        return 0.0
    if sigma == 0:
        return math.inf
    if q == 1:
        return alpha / (2 * sigma * sigma)
    if float(alpha).is_integer():
        return log_a_integer(q, sigma, int(alpha)) / (alpha - 1)
    return log_a_fractional(q, sigma, alpha) / (alpha - 1)


def epsilon(rdp_total, delta):
    a = np.array(ORDERS, dtype=np.float64)
    eps = rdp_total - (np.log(delta) + np.log(a)) / (a - 1) + np.log((a - 1) / a)
    i = int(np.argmin(eps))
    return float(eps[i]), float(a[i])


def write_array(out, name, values):
    out.write("%s %d\n" % (name, len(values)))
    for s in range(0, len(values), 6):
        out.write(" ".join(repr(float(v)) for v in values[s:s + 6]) + "\n")


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.path.join(root, "tests", "ref", "dp_accountant.txt")
    with open(path, "w") as out:
        out.write("# RDP of the sampled Gaussian mechanism at every order of the grid, and\n")
        out.write("# (epsilon, delta) after `steps` steps (Balle et al. 2020 conversion).\n")
        out.write("# written by scripts/dp_reference.py, numpy %s\n" % np.__version__)
        out.write("=cases %d\n" % len(CASES))
        write_array(out, "orders", ORDERS)
        for i, (q, sigma, steps, delta) in enumerate(CASES):
            rdp = np.array([rdp_one_step(q, sigma, a) for a in ORDERS])
            eps, order = epsilon(rdp * steps, delta)
            write_array(out, "case%d.params" % i, [q, sigma, steps, delta])
            write_array(out, "case%d.rdp" % i, rdp)
            write_array(out, "case%d.eps" % i, [eps, order])
            sys.stderr.write("q %g sigma %g steps %d delta %g: epsilon %.6f at order %g\n"
                             % (q, sigma, steps, delta, eps, order))


if __name__ == "__main__":
    main()
