# Sourced by bench/run.sh and bench/builds.sh: what both measure, and how
# they wait for a quiet machine.

# The grid: model:batch.
GRID_CONFIGS="784-256-128-10:1 784-256-128-10:32 784-256-128-10:128 784-256-128-10:512 784-1024-1024-10:1 784-1024-1024-10:32 784-1024-1024-10:128 784-1024-1024-10:512"

# Seconds of one repetition of a grid configuration (ARCH BATCH): long
# enough for a few steps of the large model at large batches.
grid_rep_seconds() {
    if [ "$1" = 784-1024-1024-10 ] && [ "$2" -ge 128 ]; then echo 0.25; else echo 0.1; fi
}

# The Fashion-MNIST run: TOOL DIR THREADS; prints "WALL_SECONDS TRAIN_SECONDS
# TEST_ACCURACY" (wall time of the whole process, data loading included).
fmnist_run() {
    local t0 t1 json train acc
    t0=$(date +%s.%N)
    json=$("$1" train --data "fashion-mnist:$2" --arch 256-128-10 --act relu --opt sgd --lr 0.05 \
        --momentum 0.9 --batch 128 --epochs 10 --clip norm-torch --lambda 1 --threads "$3" --json --quiet | tail -1)
    t1=$(date +%s.%N)
    # the run's "seconds", not the last epoch's (the "epochs" array comes last)
    train=$(echo "$json" | sed 's/,"epochs":.*//; s/.*"seconds":\([0-9.e+-]*\).*/\1/')
    acc=$(echo "$json" | sed 's/.*"test_accuracy":\([0-9.e+-]*\).*/\1/')
    awk -v a="$t0" -v b="$t1" -v t="$train" -v acc="$acc" 'BEGIN { printf "%.2f %s %s\n", b - a, t, acc }'
}

# A shared machine: before each measurement wait (at most QUIET_WAIT
# seconds, default 20) until the cores have been at least 80% idle for a
# second; BUSY counts the runs that could not wait for it.
BUSY=0
wait_quiet() {
    local i u n sy id rest t1 i1 t2 i2
    for i in $(seq "${QUIET_WAIT:-20}"); do
        read -r _ u n sy id rest < /proc/stat; t1=$((u + n + sy + id)); i1=$id
        sleep 1
        read -r _ u n sy id rest < /proc/stat; t2=$((u + n + sy + id)); i2=$id
        if [ $(( (i2 - i1) * 100 / (t2 - t1 + 1) )) -ge 80 ]; then return 0; fi
    done
    BUSY=$((BUSY + 1))
}
