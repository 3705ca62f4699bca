#!/usr/bin/env bash
# `make bench-mpi`: the MPI build on this machine.
#   bash bench/mpi/run.sh MPI_TOOL ALLREDUCE_BENCH OVERLAP_BENCH
# 1. The all-reduce (MPI_SUM of floats, in place) on 2 processes, over
#    shared memory (Open MPI's default on one node) and over TCP loopback:
#    seconds per all-reduce from 4 bytes to 16 MB.
# 2. Fashion-MNIST 784-256-128-10 (SGD, batch BATCH, STEPS steps, 1 thread
#    per process) with N = 1 and 2 processes: the step time split into
#    compute and communication (process 0's seconds in the all-reduces).
# 3. The gradient all-reduce fused (one after the backward, bucket 0) against
#    buckets sent during the backward (CLIPNN_ALLREDUCE_BUCKET_MB: one per
#    layer, two, one of the whole block), on 784-256-128-10 and
#    784-1024-1024-10, N = 1 and N = 2 over shared memory and over TCP
#    loopback: medians of REPS alternating repetitions (bench/mpi/overlap.c).
# Environment: BATCH (default 128), STEPS (default 400), FMNIST_DIR, REPS
# (default 7), BUCKETS (default "0 0.004 0.1 25", MiB).
set -euo pipefail
TOOL=$1 AR=$2 OVERLAP=${3:-}
REPS=${REPS:-7} BUCKETS=${BUCKETS:-0 0.004 0.1 25}
BATCH=${BATCH:-128} STEPS=${STEPS:-400}
FMNIST_DIR=${FMNIST_DIR:-/usr/share/datasets/fashion-mnist}
mpi=(mpirun --oversubscribe --allow-run-as-root)
export OMP_NUM_THREADS=1
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

echo "== all-reduce, 2 processes"
"${mpi[@]}" -np 2 "$AR" > "$out/sm.txt"
"${mpi[@]}" -np 2 --mca btl self,tcp --mca btl_tcp_if_include lo "$AR" > "$out/tcp.txt"
printf "%10s %14s %14s\n" bytes "shared mem s" "tcp loopback s"
paste <(grep -v '^#' "$out/sm.txt") <(grep -v '^#' "$out/tcp.txt") | awk '{printf "%10d %14.3e %14.3e\n", $1, $2, $4}'
# latency: the 4-byte time; bandwidth: 16 MB over its time, less the latency
for f in sm tcp; do
    grep -v '^#' "$out/$f.txt" | awk -v k=$f 'NR == 1 {lat = $2} {b = $1; t = $2}
        END {printf "%s: latency %.2f us, bandwidth (16 MB) %.2f GB/s\n", k, lat * 1e6, b / (t - lat) / 1e9}'
done

echo "== Fashion-MNIST 784-256-128-10, batch $BATCH, $STEPS steps, 1 thread per process"
printf "%3s %12s %12s %12s %10s\n" N "step ms" "compute ms" "allreduce ms" "test acc"
for n in 1 2; do
    "${mpi[@]}" -np $n "$TOOL" train --data "fashion-mnist:$FMNIST_DIR" --arch 256-128-10 --act relu \
        --batch "$BATCH" --steps "$STEPS" --threads 1 --quiet --json > "$out/fm$n.json" 2> "$out/fm$n.err"
    secs=$(grep -o '"seconds": *[0-9.e+-]*' "$out/fm$n.json" | head -1 | sed 's/.*: *//')
    acc=$(grep -o '"test_accuracy": *[0-9.e+-]*' "$out/fm$n.json" | head -1 | sed 's/.*: *//')
    red=$(sed -n 's/.*, \([0-9.]*\) s of process 0 in the gradient all-reduces/\1/p' "$out/fm$n.err")
    awk -v n=$n -v s="$secs" -v r="$red" -v st="$STEPS" -v a="$acc" \
        'BEGIN {printf "%3d %12.3f %12.3f %12.3f %10s\n", n, s / st * 1e3, (s - r) / st * 1e3, r / st * 1e3, a}'
done

[ -n "$OVERLAP" ] || exit 0
tcp=(--mca btl "self,tcp" --mca btl_tcp_if_include lo)
for arch in "256-128-10 100" "1024-1024-10 20"; do
    read -r layers steps <<< "$arch"
    for run in "1 sm" "2 sm" "2 tcp"; do
        read -r n transport <<< "$run"
        load=$(uptime | sed 's/.*load/load/')
        echo "== buckets: 784-$layers, batch $BATCH, $n process(es), $transport ($load)"
        extra=()
        [ "$transport" = tcp ] && extra=("${tcp[@]}")
        # shellcheck disable=SC2086
        "${mpi[@]}" -np "$n" "${extra[@]}" "$OVERLAP" "fashion-mnist:$FMNIST_DIR" "$layers" "$BATCH" "$steps" \
            "$REPS" $BUCKETS
    done
done
