# shellcheck shell=bash disable=SC2154  # sourced by tests/mpi/run.sh, which sets wdiff, mpi, tool, common, T, lr, beta
# The gradient all-reduce in buckets during the backward (CLIPNN_ALLREDUCE_BUCKET_MB > 0) against the one
# all-reduce after it (0); sourced by tests/mpi/run.sh, whose variables and ok/bad/within it uses.
# 0.0003 MiB (79 floats) cuts the 64-32-16-10 model (2,778 parameters) into its 3 layers.
#  - N = 2: the same bits (a sum of two floats does not depend on the order, whatever the algorithm);
#  - N = 3: the MPI library may add the three slices in another order for a bucket than for the whole
#    block. Per entry the two sums are each within 2 u sum_r |w_r g_r| <= 2 u G of the exact one
#    (G as in run.sh), so a step's gradients differ by at most 2 (N - 1) u G, carried by momentum
#    (1 / (1 - beta)) times the step a, plus a rounding of every parameter write (2 u W) per step:
#    tol = T u (2 W + 2 (N - 1) a G / (1 - beta)).
bucket_mb=0.0003
barch=(--arch 32-16-10)

order_tolerance() { # N fused.ckpt fused.csv
    local W G
    W=$("$wdiff" "$2" "$2" | awk '{print $4}')
    G=$(awk -F, 'NR > 1 && $4 > g {g = $4} END {print g + 0}' "$3")
    awk -v T="$T" -v W="$W" -v G="$G" -v N="$1" -v a="$lr" -v beta="$beta" \
        'BEGIN {u = 2^-24; printf "%.3g\n", T * u * (2 * W + 2 * (N - 1) * a * G / (1 - beta))}'
}

bucket_pair() { # what N extra-args...: fused and bucketed runs; leaves fused.ckpt, fused.csv, bucketed.ckpt
    local what=$1 n=$2
    shift 2
    if ! CLIPNN_ALLREDUCE_BUCKET_MB=0 timeout 120 "${mpi[@]}" -np "$n" "$tool" train "${common[@]}" "$@" \
        --save fused.ckpt --log fused.csv > bfused.txt 2>&1; then
        bad "$what: the fused run failed: $(tail -2 bfused.txt)"
        return 1
    fi
    if ! CLIPNN_ALLREDUCE_BUCKET_MB=$bucket_mb timeout 120 "${mpi[@]}" -np "$n" "$tool" train "${common[@]}" "$@" \
        --save bucketed.ckpt > bucketed.txt 2>&1; then
        bad "$what: the bucketed run failed: $(tail -2 bucketed.txt)"
        return 1
    fi
}

buckets_said() { # what count: the bucketed run said it summed in `count` buckets
    if grep -q "summed in $2 buckets during the backward" bucketed.txt; then ok "$1: $2 buckets per step"
    else bad "$1: not $2 buckets: $(grep -m1 buckets bucketed.txt || tail -1 bucketed.txt)"; fi
}

for rule in none norm adaptive-layer agc percentile per-sample "per-sample --lambda 0.5 --noise 1 --sampling shuffle" \
    zscore; do
    for n in 2 3; do
        # shellcheck disable=SC2086
        bucket_pair "buckets $rule N=$n" $n "${barch[@]}" --clip $rule || continue
        if [ $n = 2 ]; then within "buckets $rule N=2 (same bits)" fused.ckpt bucketed.ckpt 0
        else within "buckets $rule N=3" fused.ckpt bucketed.ckpt "$(order_tolerance 3 fused.ckpt fused.csv)"; fi
    done
done
buckets_said "buckets zscore N=3" 3

# A batch of 2 on 3 processes: one process has no rows and takes part in every bucket with zeros.
if bucket_pair "buckets, a process without rows" 3 "${barch[@]}" --clip norm --batch 2; then
    within "buckets, a process without rows" fused.ckpt bucketed.ckpt "$(order_tolerance 3 fused.ckpt fused.csv)"
fi

# A recurrent front: its block goes in the last bucket (the head's output layer in the first).
if bucket_pair "buckets lstm N=2" 2 --arch lstm:8-10 --clip norm; then
    within "buckets lstm N=2 (same bits)" fused.ckpt bucketed.ckpt 0
    buckets_said "buckets lstm N=2" 2
fi

# Two threads per process: the backward's first thread sends the buckets while the other computes.
if bucket_pair "buckets, 2 threads per process" 2 --arch 256-128-10 --clip norm --threads 2; then
    within "buckets, 2 threads per process (same bits)" fused.ckpt bucketed.ckpt 0
fi

# Clipping before the average needs the whole slice gradient: those places keep the fused all-reduce.
for where in local clip21; do
    if bucket_pair "buckets --clip-where $where" 2 "${barch[@]}" --clip norm --lambda 0.1 --clip-where $where; then
        within "buckets --clip-where $where (fused: same bits)" fused.ckpt bucketed.ckpt 0
        if grep -q "buckets during the backward" bucketed.txt; then bad "buckets --clip-where $where: bucketed"
        else ok "buckets --clip-where $where: one all-reduce after the backward"; fi
    fi
done

refused "CLIPNN_ALLREDUCE_BUCKET_MB=abc" "want a size in MiB" \
    env CLIPNN_ALLREDUCE_BUCKET_MB=abc "${mpi[@]}" -np 2 "$tool" train --steps 2 --quiet
