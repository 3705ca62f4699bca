#!/usr/bin/env bash
# The ring all-reduce cost model of docs/distributed.md:
#   bash bench/mpi/cost_model.sh PARAMS SECONDS_PER_EXAMPLE [BATCH] [ALPHA_S] [GBIT_S] [EARLY REST]
# all-reduce  t_ar(S) = 2 (N-1) alpha + 2 (N-1)/N * S / bandwidth, S = 4 PARAMS bytes
# step        t(N) = c B / N + t_ar(S)   (the all-reduce after the backward, no overlap)
# efficiency  E(N) = (c B / N) / t(N); E >= 0.8 from B = 4 N t_ar / c.
# With EARLY and REST (buckets): the fraction EARLY of the bytes goes in buckets sent during the
# backward, when a fraction REST of the compute c B / N is still to come; the rest goes in a last
# bucket after it. With the all-reduce progressing on its own, the first part hides behind that
# compute:
#             t_b(N) = c B / N + max(0, t_ar(EARLY S) - REST c B / N) + t_ar((1 - EARLY) S)
# (the hidden time is min(REST c B / N, t_ar(EARLY S)); the latency is paid once per bucket), and the
# table adds the bucketed step, its efficiency and the batch from which it stays above 80%.
# Defaults: BATCH 1024, alpha 10 us per hop, 25 Gb/s.
set -euo pipefail
awk -v P="$1" -v c="$2" -v B="${3:-1024}" -v alpha="${4:-10e-6}" -v gbit="${5:-25}" -v early="${6:--1}" \
    -v rest="${7:-0}" '
function t_ar(N, S) { return 2 * (N - 1) * alpha + 2 * (N - 1) / N * S / bw }
function t_b(N, b,    comp, hid) {
    comp = c * b / N
    hid = t_ar(N, early * S) - rest * comp
    return comp + (hid > 0 ? hid : 0) + t_ar(N, (1 - early) * S)
}
function b80_bucketed(N,    lo, hi, mid) { # the smallest B with E >= 0.8 (E grows with B)
    lo = 1; hi = 1e12
    while (hi - lo > 0.5) { mid = (lo + hi) / 2; if (c * mid / N / t_b(N, mid) >= 0.8) hi = mid; else lo = mid }
    return hi
}
BEGIN {
    bw = gbit * 1e9 / 8; S = 4 * P
    buckets = early >= 0
    printf "| N | all-reduce ms | step ms at B=%d | efficiency | B for 80%% | rows per node |", B
    if (buckets) printf " bucketed step ms | efficiency | B for 80%% |"
    printf "\n|---|---|---|---|---|---|%s\n", buckets ? "---|---|---|" : ""
    for (N = 8; N <= 256; N *= 2) {
        t = c * B / N + t_ar(N, S)
        b80 = 4 * N * t_ar(N, S) / c
        printf "| %d | %.2f | %.2f | %.0f%% | %d | %d |", N, t_ar(N, S) * 1e3, t * 1e3, 100 * c * B / N / t,
               b80 + 0.5, b80 / N + 0.5
        if (buckets) printf " %.2f | %.0f%% | %d |", t_b(N, B) * 1e3, 100 * c * B / N / t_b(N, B), b80_bucketed(N) + 0.5
        printf "\n"
    }
}'
