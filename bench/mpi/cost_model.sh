#!/usr/bin/env bash
# The ring all-reduce cost model of docs/distributed.md:
#   bash bench/mpi/cost_model.sh PARAMS SECONDS_PER_EXAMPLE [BATCH] [ALPHA_S] [GBIT_S]
# all-reduce  t_ar = 2 (N-1) alpha + 2 (N-1)/N * 4 PARAMS / bandwidth
# step        t(N) = c B / N + t_ar   (the all-reduce after the backward, no overlap)
# efficiency  E(N) = (c B / N) / t(N); E >= 0.8 from B = 4 N t_ar / c.
# Defaults: BATCH 1024, alpha 10 us per hop, 25 Gb/s.
set -euo pipefail
awk -v P="$1" -v c="$2" -v B="${3:-1024}" -v alpha="${4:-10e-6}" -v gbit="${5:-25}" 'BEGIN {
    bw = gbit * 1e9 / 8; S = 4 * P
    printf "| N | all-reduce ms | step ms at B=%d | efficiency | B for 80%% | rows per node |\n", B
    printf "|---|---|---|---|---|---|\n"
    for (N = 8; N <= 256; N *= 2) {
        t_ar = 2 * (N - 1) * alpha + 2 * (N - 1) / N * S / bw
        t = c * B / N + t_ar
        b80 = 4 * N * t_ar / c
        printf "| %d | %.2f | %.2f | %.0f%% | %d | %d |\n", N, t_ar * 1e3, t * 1e3, 100 * c * B / N / t,
               b80 + 0.5, b80 / N + 0.5
    }
}'
