# The recurrent part of `make bench`, sourced by bench/run.sh (which sets
# BENCH, TOOL, HERE, PY, HAVE_TORCH, THREADS, REPS, FMNIST_DIR, OUT and
# wait_quiet). Two functions: the throughput rows and the Fashion-MNIST run.

# Input size of every step of the synthetic sequences, both sides.
REC_STEP_DIM=32
REC_STEPS=50

# Per configuration clipnn then PyTorch (alternating, so that both meet the
# same load), each the median of REPS repetitions; then the table with the
# targets (>= 5x PyTorch's samples/s at batch 1 and 32, >= 1.5x at 128).
recurrent_rows() {
    local cell hidden batch secs
    : > "$OUT/rec_clipnn"
    : > "$OUT/rec_torch"
    for cell in lstm rnn; do
        for hidden in 64 256; do
            for batch in 1 32 128; do
                secs=0.2
                if [ "$batch" -ge 32 ]; then secs=0.5; fi
                wait_quiet
                "$BENCH" rec --cell "$cell" --hidden "$hidden" --seq-steps "$REC_STEPS" --step-dim "$REC_STEP_DIM" \
                    --batch "$batch" --threads "$THREADS" --reps "$REPS" --rep-seconds "$secs" >> "$OUT/rec_clipnn"
                if [ "$HAVE_TORCH" = 1 ]; then
                    wait_quiet
                    "$PY" "$HERE/torch_bench.py" rec --cell "$cell" --hidden "$hidden" --seq-steps "$REC_STEPS" \
                        --step-dim "$REC_STEP_DIM" --batch "$batch" --threads "$THREADS" --reps "$REPS" \
                        --rep-seconds "$secs" >> "$OUT/rec_torch"
                fi
            done
        done
    done
    echo
    echo "Recurrent networks: one layer (nn.LSTM / nn.RNN tanh), $REC_STEPS steps of $REC_STEP_DIM inputs,"
    echo "the loss on the last step through a dense layer of 10 (cross-entropy), global norm clipping at 1,"
    echo "plain SGD; samples/s:"
    printf '%-12s %6s %12s %12s %7s %7s %6s %13s\n' "cell:hidden" "batch" "clipnn s/s" "PyTorch s/s" "ratio" \
        "target" "met" "spread c / t"
    awk -F'\t' '
        FNR == NR { key = $2 "|" $3 "|" $6; tsps[key] = $8; tspread[key] = $10; next }
        {
            key = $2 "|" $3 "|" $6
            have = (key in tsps) && tsps[key] > 0
            target = $6 >= 128 ? 1.5 : 5
            ratio = have ? $8 / tsps[key] : 0
            printf "%-12s %6s %12.0f %12s %7s %6.1fx %6s %6.0f%% / %s\n", $2 ":" $3, $6, $8,
                have ? sprintf("%.0f", tsps[key]) : "-", have ? sprintf("%.1fx", ratio) : "-", target,
                have ? (ratio >= target ? "yes" : "NO") : "-", 100 * $10,
                have ? sprintf("%.0f%%", 100 * tspread[key]) : "-"
        }' "$OUT/rec_torch" "$OUT/rec_clipnn"
    echo "spread: (slowest - fastest) / median repetition, clipnn / PyTorch: how noisy the machine was"
}

# Row-sequential Fashion-MNIST, LSTM 128, 10 epochs: the tool against
# torch_bench.py fmnist-lstm (the same model, optimizer, clipping and
# minibatch order), alternating, FM_LSTM_REPS runs each (default 1: a run
# takes minutes), the median wall time of each side.
recurrent_fmnist() {
    local reps=${FM_LSTM_REPS:-1} rep t0 t1 json c_acc line
    : > "$OUT/fml_clipnn"
    : > "$OUT/fml_torch"
    for rep in $(seq "$reps"); do
        wait_quiet
        t0=$(date +%s.%N)
        json=$("$TOOL" train --data "fashion-mnist:$FMNIST_DIR" --arch lstm:128-10 --epochs 10 --threads "$THREADS" \
            --json --quiet | tail -1)
        t1=$(date +%s.%N)
        c_acc=$(echo "$json" | sed 's/.*"test_accuracy":\([0-9.e+-]*\).*/\1/')
        awk -v a="$t0" -v b="$t1" -v acc="$c_acc" 'BEGIN { printf "%.2f %s\n", b - a, acc }' >> "$OUT/fml_clipnn"
        if [ "$HAVE_TORCH" = 1 ]; then
            wait_quiet
            line=$("$PY" "$HERE/torch_bench.py" fmnist-lstm --dir "$FMNIST_DIR" --threads "$THREADS")
            echo "$line" | awk -F'\t' '{ print $4, $6 }' >> "$OUT/fml_torch"
        fi
    done
    echo
    echo "Fashion-MNIST row by row (28 steps of 28), lstm:128-10, SGD lr 0.05 momentum 0.9, batch 32,"
    echo "norm clipping at 1, 10 epochs, $THREADS threads; wall time (median of $reps) and test accuracy:"
    local mid=$(( (reps + 1) / 2 )) c_wall t_wall t_acc
    read -r c_wall c_acc < <(sort -n "$OUT/fml_clipnn" | sed -n "${mid}p")
    printf '  clipnn:  %7.2f s, test accuracy %.4f (runs: %s s)\n' "$c_wall" "$c_acc" \
        "$(cut -d' ' -f1 "$OUT/fml_clipnn" | tr '\n' ' ' | sed 's/ $//')"
    if [ "$HAVE_TORCH" = 1 ]; then
        read -r t_wall t_acc < <(sort -n "$OUT/fml_torch" | sed -n "${mid}p")
        printf '  PyTorch: %7.2f s, test accuracy %.4f (runs: %s s)\n' "$t_wall" "$t_acc" \
            "$(cut -d' ' -f1 "$OUT/fml_torch" | tr '\n' ' ' | sed 's/ $//')"
        awk -v a="$c_wall" -v b="$t_wall" -v ca="$c_acc" -v ta="$t_acc" 'BEGIN {
            acc = (ca >= 0.88 && ta >= 0.88) ? "met" : "NOT met"
            fast = (a < b) ? "met" : "NOT met"
            printf "  clipnn is %.2fx faster; targets: accuracy >= 0.88 both (%s), clipnn faster (%s)\n",
                b / a, acc, fast
        }'
    fi
}
