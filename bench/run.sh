#!/usr/bin/env bash
# `make bench`: clipnn and PyTorch side by side, one table.
#
#   bash bench/run.sh BUILD/bench_clipnn BUILD/clipnn
#
# Environment: THREADS (default 2, both sides), REPS (default 5; every figure
# is the median of REPS repetitions after a warm-up), QUICK=1 (grid only, no
# Fashion-MNIST run), FMNIST_DIR (default /usr/share/datasets/fashion-mnist),
# RECURRENT_ONLY=1 (the recurrent rows and, without QUICK, their Fashion-MNIST
# run alone), FM_LSTM_REPS (runs of that one, default 1).
# The MLP part runs in about 4 to 8 minutes on a 2-core machine (longer when
# it has to wait for other processes), most of it PyTorch's Fashion-MNIST
# run; the recurrent rows add about 5 minutes, the LSTM Fashion-MNIST run 7
# minutes on a quiet machine and up to half an hour on a busy one (PyTorch's
# two-thread LSTM slows down most). The PyTorch side runs when
# /usr/bin/python3 can import torch; otherwise the table has clipnn alone,
# and says so.
set -euo pipefail

BENCH=${1:?usage: run.sh BENCH_BINARY CLIPNN_TOOL}
TOOL=${2:?usage: run.sh BENCH_BINARY CLIPNN_TOOL}
HERE=$(cd "$(dirname "$0")" && pwd)
THREADS=${THREADS:-2}
REPS=${REPS:-5}
FMNIST_DIR=${FMNIST_DIR:-/usr/share/datasets/fashion-mnist}
PY=/usr/bin/python3
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

if [ -x "$PY" ] && "$PY" -c 'import torch' 2>/dev/null; then
    HAVE_TORCH=1
    TORCH_VERSION=$("$PY" -c 'import torch; print(torch.__version__)')
else
    HAVE_TORCH=0
    TORCH_VERSION="not available (/usr/bin/python3 cannot import torch): clipnn alone"
fi

. "$HERE/common.sh"

# shellcheck source=bench/recurrent.sh
. "$HERE/recurrent.sh"

# The last lines of every run: busy measurements, the duration.
finish() {
    echo
    if [ "$BUSY" -gt 0 ]; then
        echo "note: $BUSY measurement(s) started on a busy machine (other processes held the cores for 20 s)"
    fi
    echo "bench took $(( $(date +%s) - start )) s"
}

start=$(date +%s)
echo "clipnn bench, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "threads: $THREADS for clipnn (OpenMP, single-threaded BLAS per slice) and for PyTorch (torch.set_num_threads)"
echo "PyTorch: $TORCH_VERSION"
echo "figures: median of $REPS repetitions after a warm-up; MLPs tanh, softmax cross-entropy, plain SGD (lr 0.01)"

if [ "${RECURRENT_ONLY:-0}" = 1 ]; then
    recurrent_rows
    if [ "${QUICK:-0}" != 1 ]; then recurrent_fmnist; fi
    finish
    exit 0
fi

# The yardstick: single-thread sgemm 512^3, in this run.
wait_quiet
"$BENCH" sgemm --threads 1 --n 512 --reps "$REPS" > "$OUT/sgemm1"
"$BENCH" sgemm --threads "$THREADS" --n 512 --reps "$REPS" > "$OUT/sgemmT"
SGEMM1=$(cut -f4 "$OUT/sgemm1")
SGEMMT=$(cut -f4 "$OUT/sgemmT")
echo "sgemm 512x512x512 ($(cut -f5 "$OUT/sgemm1")): $SGEMM1 GFLOP/s on 1 thread, $SGEMMT on $THREADS"

# Grid: per (model, batch), clipnn then PyTorch, so that both meet the same
# load on a shared machine; the clipping rules are interleaved inside each.
for cfg in $GRID_CONFIGS; do
    arch=${cfg%%:*}
    batch=${cfg##*:}
    secs=$(grid_rep_seconds "$arch" "$batch")
    wait_quiet
    "$BENCH" grid --arch "$arch" --batch "$batch" --threads "$THREADS" --reps "$REPS" --rep-seconds "$secs" >> "$OUT/clipnn"
    if [ "$HAVE_TORCH" = 1 ]; then
        wait_quiet
        "$PY" "$HERE/torch_bench.py" grid --arch "$arch" --batch "$batch" --threads "$THREADS" --reps "$REPS" \
            --rep-seconds "$secs" >> "$OUT/torch"
    fi
done
touch "$OUT/torch"

# The step's own GEMMs alone at their shapes, beside the step, at batch 32
# and 128: what sgemm reaches there bounds the step's GFLOP/s.
: > "$OUT/shapes"
for cfg in 784-256-128-10:32 784-256-128-10:128 784-1024-1024-10:32; do
    wait_quiet
    "$BENCH" shapes --arch "${cfg%%:*}" --batch "${cfg##*:}" --threads "$THREADS" --reps "$REPS" >> "$OUT/shapes"
done

# Attacks: PGD-Linf, APGD-CE and APGD-DLR, 40 steps, batch 256, on 2560
# inputs of a 784-256-128-10 ReLU MLP, clipnn then the same loop in PyTorch
# (PGD-Linf and APGD-CE); input optimization, 2000 steps on one input.
: > "$OUT/attack"
for method in pgd-linf apgd-ce apgd-dlr; do
    wait_quiet
    "$BENCH" pgd --method "$method" --batch 256 --n 2560 --steps 40 --threads "$THREADS" --reps 3 >> "$OUT/attack"
    if [ "$HAVE_TORCH" = 1 ] && [ "$method" != apgd-dlr ]; then
        wait_quiet
        "$PY" "$HERE/torch_bench.py" pgd --method "$method" --batch 256 --n-attack 2560 --steps 40 \
            --threads "$THREADS" --reps 1 >> "$OUT/attack_torch"
    fi
done
touch "$OUT/attack_torch"
wait_quiet
"$BENCH" inputopt --steps 2000 --threads "$THREADS" --reps 3 > "$OUT/inputopt"

# Per-sample clipping: the per-example norm trick against one backward per example.
wait_quiet
"$BENCH" naive --arch 784-256-128-10 --batch 128 --threads "$THREADS" --reps "$REPS" > "$OUT/naive"
# Per-sample clipping of an LSTM, many-to-one and many-to-many, on one thread (as docs/recurrent.md records it).
for every in 0 1; do
    wait_quiet
    "$BENCH" recdp --cell lstm --hidden 64 --seq-steps 28 --step-dim 28 --batch 32 --every-step "$every" \
        --threads 1 --reps "$REPS" >> "$OUT/recdp"
done

echo
printf '%-26s %-15s %12s %12s %7s %8s %8s %9s %9s\n' "model, batch" "clipping" "clipnn s/s" "PyTorch s/s" "ratio" "GFLOP/s" "%sgemm" "clip ovh" "torch ovh"
awk -F'\t' -v sg="$SGEMM1" -v th="$THREADS" '
    FNR == NR { key = $2 "|" $3 "|" $4; tsps[key] = $6; tover[key] = $9; next }
    {
        key = $2 "|" $3 "|" $4
        ratio = (key in tsps) && tsps[key] > 0 ? sprintf("%.1fx", $6 / tsps[key]) : "-"
        tp = (key in tsps) ? sprintf("%.0f", tsps[key]) : "-"
        over = $4 == "none" ? "-" : sprintf("%.1f%%", 100 * $9)
        tov = !(key in tover) || $4 == "none" ? "-" : sprintf("%.1f%%", 100 * tover[key])
        printf "%-26s %-15s %12.0f %12s %7s %8.1f %7.0f%% %9s %9s\n", $2 ", " $3, $4, $6, tp, ratio, $8, 100 * $8 / (sg * th), over, tov
    }' "$OUT/torch" "$OUT/clipnn"
echo
echo "GFLOP/s: 2 x multiply-adds of forward, weight gradients and the input gradients of all layers but"
echo "the first, per second (per-sample's second weight-gradient pass is not counted); %sgemm: of $THREADS x the"
echo "1-thread sgemm above. clip ovh: (step with the rule - step with none + the unit norms the backward"
echo "computes for every rule) / step with the rule; torch ovh: (step with the rule - step without) / step."
echo "Clipped fraction of steps, unit-norm cost (fraction of the none step), steps per repetition:"
awk -F'\t' '{ printf "  %s, %s, %s: clipped %.2f, unit norms %.1f%%, %s steps x %s\n", $2, $3, $4, $10, 100 * $13, $12, $11 }' "$OUT/clipnn"
echo "RULE@tool: the rule with the callbacks \`clipnn train\` always installs (per-step record, epoch record,"
echo "control; the distance from theta(0) at the epochs' ends); its clip ovh is against RULE without them: what"
echo "the tool's step costs over the library's. RULE@log: the same with the distance at every step (--log, --report)."

echo
echo "The step against its own GEMMs (no clipping; every figure of one interleaved run, GFLOP/s and % of $THREADS x"
echo "the run's 1-thread sgemm 512^3; GEMMs: every layer's forward, weight gradient and input gradient but the"
echo "first layer's, at the step's shapes: as the step splits them (a slice a thread, in tiles where the BLAS"
echo "multiplies small GEMMs unpacked), one thread x $THREADS, one BLAS call on $THREADS threads):"
printf '  %-24s %13s %13s %9s %13s %13s %13s %9s %9s\n' "model, batch" "step" "whole slices" "sgemm" "GEMMs split" \
    "1 thread x $THREADS" "BLAS threads" "of split" "of 1 x $THREADS"
awk -F'\t' '$1 == "shapes" {
    rate = "%6.1f (%3.0f%%)"
    printf "  %-24s " rate " " rate " %9.1f " rate " " rate " " rate " %8.0f%% %8.0f%%\n", $2 ", " $3,
           $5, 100 * $11, $6, 100 * $12, $7, $8, 100 * $13, $9, 100 * $14, $10, 100 * $15, 100 * $16, 100 * $17
}' "$OUT/shapes"
echo "  (whole slices: the same step with one GEMM per thread and layer, as before the tiles; per GEMM: bench_clipnn"
echo "  shapes prints a row each)"
awk -F'\t' '$1 == "shapes" { limit = $19 } END { if (limit > 0) printf "  tiles of at most %d multiply-adds\n", limit;
    else print "  no tiles: this BLAS and CPU pack every GEMM (the step and whole slices are the same)" }' "$OUT/shapes"

echo
echo "Attacks, 784-256-128-10 ReLU, batch 256, 40 steps, eps 0.1, 2560 inputs labelled with the model's predictions"
echo "(every one attacked, as in the PyTorch loop; GFLOP/s: 2 x multiply-adds of the forward and of every layer's"
echo "input gradient, at steps + 1 iterates; train: a training step at batch 256):"
printf '  %-9s %10s %10s %9s %12s %12s %9s\n' "attack" "clipnn s" "PyTorch s" "ratio" "clipnn GF/s" "train GF/s" "of train"
awk -F'\t' 'FILENAME == ARGV[1] { t[$2] = $8; next }
    { tp = ($2 in t) ? t[$2] : 0
      printf "  %-9s %10.3f %10s %9s %12.1f %12.1f %8.0f%%\n", $2, $8, tp ? sprintf("%.3f", tp) : "-",
             tp ? sprintf("%.1fx", tp / $8) : "-", $9, $10, 100 * $9 / $10 }' "$OUT/attack_torch" "$OUT/attack"
awk -F'\t' '{ printf "  %-9s %10.3f %10s %9s %12.1f %12.1f %8.0f%%   (%s steps on one input; train: at batch 1)\n",
               "inputopt", $5, "-", "-", $6, $7, 100 * $6 / $7, $4 }' "$OUT/inputopt"

echo
awk -F'\t' '{ printf "per-sample clipping, %s, batch %s: per-example norm trick %.3f ms, naive (one backward per example) %.2f ms: %.1fx faster; largest difference between the two gradients %.2g (relative)\n", $2, $3, $5, $6, $7, $8 }' "$OUT/naive"
awk -F'\t' '{ printf "per-sample clipping, %s, %s steps, batch %s, %s, 1 thread: step %.3f ms (%.3f ms without noise) against %.3f ms with norm clipping (%.2fx); loss and gradient alone %.3f ms; naive (one backward per sequence) %.2f ms; largest difference between the per-sample and the naive gradients %.2g (relative)\n", $2, $3, $4, $5 ? "many-to-many" : "many-to-one", $8, $13, $7, $9, $10, $11, $12 }' "$OUT/recdp"

recurrent_rows

if [ "${QUICK:-0}" != 1 ]; then
    echo
    echo "Fashion-MNIST, 784-256-128-10 relu, SGD lr 0.05 momentum 0.9, batch 128, 10 epochs, norm-torch lambda 1:"
    # clipnn three times (a run is short, the load of a shared machine is
    # not): the median wall time; the runs are identical (fixed thread split).
    : > "$OUT/fm"
    for rep in 1 2 3; do
        wait_quiet
        fmnist_run "$TOOL" "$FMNIST_DIR" "$THREADS" >> "$OUT/fm"
    done
    read -r c_wall c_train c_acc < <(sort -n "$OUT/fm" | sed -n 2p)
    printf '  clipnn:  %7.2f s wall (%.2f s in the training loop), test accuracy %.4f (median of 3 runs: %s s)\n' \
        "$c_wall" "$c_train" "$c_acc" "$(cut -d' ' -f1 "$OUT/fm" | tr '\n' ' ' | sed 's/ $//')"
    if [ "$HAVE_TORCH" = 1 ]; then
        wait_quiet
        line=$("$PY" "$HERE/torch_bench.py" fmnist --dir "$FMNIST_DIR" --threads "$THREADS")
        t_wall=$(echo "$line" | cut -f4)
        t_train=$(echo "$line" | cut -f5)
        t_acc=$(echo "$line" | cut -f6)
        printf '  PyTorch: %7.2f s wall (%.2f s in the training loop), test accuracy %.4f\n' "$t_wall" "$t_train" "$t_acc"
        awk -v a="$c_wall" -v b="$t_wall" -v ca="$c_acc" -v ta="$t_acc" \
            'BEGIN { printf "  clipnn is %.1fx faster in wall time; accuracy %+.4f\n", b / a, ca - ta }'
    fi
    recurrent_fmnist
fi
finish
