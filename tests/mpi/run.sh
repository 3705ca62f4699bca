#!/usr/bin/env bash
# The MPI build against the plain one: tests/mpi/run.sh PLAIN_TOOL MPI_TOOL WEIGHTS_DIFF CLIP_WHERE [LIB_JOB]
#  - weights after 50 steps with N = 1, 2, 3 processes agree with the
#    single-process build within the float32 summation-order tolerance
#    (docs/distributed.md derives it), for every rule below;
#  - Poisson sampling and physical batches of DP-SGD (epsilon too), truncated
#    BPTT with and without a carried state, likewise;
#  - each process holds only its shard of the training set;
#  - a run resumed with another number of processes follows the same trajectory
#    (DP-SGD with Poisson sampling, truncated BPTT in the middle of a batch);
#  - a process that cannot read its data, or that is killed, ends the whole
#    job with a non-zero exit and a message, and the last checkpoint stays whole;
#  - clipnn_train ends on every process when one cannot start, or when process 0
#    alone keeps a training state; a job's steps allocate nothing (tests/mpi/lib_job.c);
#  - --clip-where local and clip21 against their formulas and fixed points
#    (tests/mpi/clip_where.c), and refused with one line where they make no sense;
#  - the gradient all-reduce in buckets during the backward gives the fused one's weights (tests/mpi/buckets.sh).
# Ends with "N passed, M failed" like the main runner; exit 1 on any failure.
set -uo pipefail
here=$(dirname "$(realpath "$0")")
plain=$(realpath "$1") tool=$(realpath "$2") wdiff=$(realpath "$3") clipwhere=$(realpath "$4")
libjob=${5:+$(realpath "$5")}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
export OMP_NUM_THREADS=1
# The launcher and its options: CLIPNN_MPIRUN (e.g. mpiexec.mpich, which
# oversubscribes by itself and runs as root), else Open MPI's mpirun.
read -ra mpi <<< "${CLIPNN_MPIRUN:-mpirun --oversubscribe --allow-run-as-root}"
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }

T=50 Bsz=32 lr=0.05 beta=0.9
common=(--steps $T --batch $Bsz --lr $lr --momentum $beta --seed 3 --threads 1 --quiet)

# tolerance T u (2 W + 2 (B + N) a G / (1 - beta)): u = 2^-24, W the largest
# weight, G the largest logged pre-clip gradient norm of the single run, B
# the largest batch it logged (Poisson batches vary about --batch).
tolerance() { # N single.ckpt single.csv
    local W G B
    W=$("$wdiff" "$2" "$2" | awk '{print $4}')
    G=$(awk -F, 'NR > 1 && $4 > g {g = $4} END {print g + 0}' "$3")
    B=$(awk -F, -v b=$Bsz 'NR == 1 {for (i = 1; i <= NF; i++) if ($i == "batch_size") c = i}
        NR > 1 && c && $c > b {b = $c} END {print b}' "$3")
    awk -v T=$T -v W="$W" -v G="$G" -v B="$B" -v N="$1" -v a=$lr -v beta=$beta \
        'BEGIN {u = 2^-24; printf "%.3g\n", T * u * (2 * W + 2 * (B + N) * a * G / (1 - beta))}'
}

within() { # what a.ckpt b.ckpt tol
    local d
    d=$("$wdiff" "$2" "$3" | awk '{print $2}')
    if awk -v d="$d" -v t="$4" 'BEGIN {exit !(d == d && d <= t)}'; then ok "$1: max |diff| $d <= $4"
    else bad "$1: max |diff| $d > $4"; fi
}

# The privacy accountant's epsilon after the last step, from a step log.
epsilon() { awk -F, 'NR == 1 {for (i = 1; i <= NF; i++) if ($i == "epsilon") c = i} END {print $c}' "$1"; }

# per-sample at lambda 0.5 clips most examples; with noise 1 the noise is
# drawn once per step from the same stream whatever N; Poisson sampling
# (the default with noise) draws the same global batches on every process,
# each computing the rows it owns, in physical batches of 8 when asked.
for rule in none norm adaptive-layer agc percentile zscore per-sample \
    "per-sample --lambda 0.5 --noise 1 --sampling shuffle" "per-sample --lambda 0.5 --noise 1" \
    "per-sample --lambda 0.5 --noise 1 --physical-batch 8" \
    "per-sample --lambda 0.5 --physical-batch 8 --sampling shuffle"; do
    # shellcheck disable=SC2086
    "$plain" train "${common[@]}" --clip $rule --save single.ckpt --log single.csv > /dev/null ||
        { bad "$rule: single-process run"; continue; }
    for n in 1 2 3; do
        # shellcheck disable=SC2086
        if "${mpi[@]}" -np $n "$tool" train "${common[@]}" --clip $rule --save n$n.ckpt --log n$n.csv \
            > out.txt 2>&1; then
            within "$rule N=$n" single.ckpt n$n.ckpt "$(tolerance $n single.ckpt single.csv)"
            e1=$(epsilon single.csv) en=$(epsilon n$n.csv)
            if [ "$e1" != nan ]; then
                if [ "$e1" = "$en" ]; then ok "$rule N=$n: epsilon $en as with one process"
                else bad "$rule N=$n: epsilon $en, one process $e1"; fi
            fi
        else bad "$rule N=$n: mpirun failed: $(tail -3 out.txt)"; fi
    done
done

# Truncated BPTT and a carried state: every lane's state is on every
# process after each chunk (the lanes move between processes with the
# batches), and in the checkpoint. The digits read row by row (8 steps,
# many-to-one: chunks of all 8 steps, 3 or 4 back), and a many-to-many
# set of NumPy files (6 steps, chunks of 2, 3 back: resumed mid-batch).
# shellcheck disable=SC1091
source "$here/npy_f32.sh"
npy_f32 seq_x.npy "(30, 6, 1)" 180 7
npy_f32 seq_y.npy "(30, 6, 1)" 180 11
seq=(--data npy:seq_x.npy,seq_y.npy --batch 4 --bptt 2,3)
for run in "--arch rnn:16-10 --bptt 8,4" "--arch lstm:8-10 --bptt 8,3 --carry-state" \
    "${seq[*]} --arch rnn:4-1 --every-step" "${seq[*]} --arch rnn:4-1 --every-step --carry-state"; do
    # shellcheck disable=SC2086
    "$plain" train "${common[@]}" --clip norm $run --save single.ckpt --log single.csv > /dev/null ||
        { bad "$run: single-process run"; continue; }
    b=$Bsz
    [[ $run == *"--batch 4"* ]] && b=4
    for n in 1 2 3; do
        # shellcheck disable=SC2086
        if "${mpi[@]}" -np $n "$tool" train "${common[@]}" --clip norm $run --save n$n.ckpt > out.txt 2>&1; then
            within "$run N=$n" single.ckpt n$n.ckpt "$(Bsz=$b tolerance $n single.ckpt single.csv)"
        else bad "$run N=$n: mpirun failed: $(tail -3 out.txt)"; fi
    done
done
for carry in "" --carry-state; do # step 20 is the middle of a batch of 3 chunks
    # shellcheck disable=SC2086
    "$plain" train "${common[@]}" --clip norm "${seq[@]}" $carry --arch rnn:4-1 --every-step --save single.ckpt \
        --log single.csv > /dev/null
    # shellcheck disable=SC2086
    if "${mpi[@]}" -np 2 "$tool" train "${common[@]/#$T/20}" --clip norm "${seq[@]}" $carry --arch rnn:4-1 \
        --every-step --save part.ckpt > /dev/null 2>&1 &&
        "${mpi[@]}" -np 3 "$tool" train "${common[@]}" --clip norm "${seq[@]}" $carry --resume part.ckpt \
            --save resumed.ckpt > /dev/null 2>&1; then
        within "--bptt 2,3 $carry: resumed mid-batch 2 -> 3 processes" single.ckpt resumed.ckpt \
            "$(Bsz=4 tolerance 3 single.ckpt single.csv)"
    else bad "--bptt 2,3 $carry: resume 2 -> 3 processes: a run failed"; fi
done

# Each process holds only its shard of the digits' 1438 training rows
# (--verbose: the rows it holds and owns), rows 1438 r / 3 to 1438 (r + 1) / 3.
"${mpi[@]}" -np 3 "$tool" train --steps 5 --verbose --quiet > held.txt 2>&1
for r in 0 1 2; do
    lo=$((1438 * r / 3)) hi=$((1438 * (r + 1) / 3))
    if grep -q "process $r of 3 holds rows $lo to $hi of 1438 (.* MB), owns rows $lo to $hi\$" held.txt; then
        ok "process $r of 3 holds rows $lo to $hi only"
    else bad "process $r of 3: $(grep "process $r of" held.txt || tail -2 held.txt)"; fi
done

# The test set evaluated in parts, one per process, the counts summed:
# the single process's accuracy.
acc1=$("$plain" train "${common[@]}" | awk '/^test accuracy/ {print $3}')
acc3=$("${mpi[@]}" -np 3 "$tool" train "${common[@]}" 2> /dev/null | awk '/^test accuracy/ {print $3}')
if [ -n "$acc1" ] && [ "$acc1" = "$acc3" ]; then ok "test accuracy $acc3 on 3 processes as on one"
else bad "test accuracy '$acc3' on 3 processes, '$acc1' on one"; fi

# Resume with another N: 20 steps on 2 processes, the rest on 3 (the shards
# recut for 3; Poisson sampling's generator and the accountant in the checkpoint).
for rule in "per-sample --lambda 0.5 --noise 1" zscore; do
    # shellcheck disable=SC2086
    "$plain" train "${common[@]}" --clip $rule --save single.ckpt --log single.csv > /dev/null
    # shellcheck disable=SC2086
    if "${mpi[@]}" -np 2 "$tool" train "${common[@]/#$T/20}" --clip $rule --save part.ckpt > /dev/null 2>&1 &&
        "${mpi[@]}" -np 3 "$tool" train "${common[@]}" --clip $rule --resume part.ckpt --save resumed.ckpt \
            > /dev/null 2>&1; then
        within "$rule: resume 2 -> 3 processes" single.ckpt resumed.ckpt "$(tolerance 3 single.ckpt single.csv)"
    else bad "$rule: resume 2 -> 3 processes: a run failed"; fi
done

# One process cannot read its data: the job ends, non-zero, with a message.
cp part.ckpt keep.ckpt
# shellcheck disable=SC2016
timeout 60 "${mpi[@]}" -np 3 sh -c 'd=digits; [ "${OMPI_COMM_WORLD_RANK:-$PMI_RANK}" = 1 ] && d=csv:/nonexistent/x.csv
    exec "$0" train --data "$d" --steps 100000 --batch 32 --quiet --save part.ckpt --save-every 10' "$tool" \
    > fail.txt 2>&1
rc=$?
if [ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -q "process 1 of 3" fail.txt && grep -q "nonexistent" fail.txt; then
    ok "unreadable data on one process: exit $rc, message"
else bad "unreadable data on one process: exit $rc: $(head -5 fail.txt)"; fi

# A killed process: the job ends (no hang), the last periodic checkpoint loads.
# shellcheck disable=SC2016
timeout 120 "${mpi[@]}" -np 2 sh -c 'echo $$ > pid.${OMPI_COMM_WORLD_RANK:-$PMI_RANK}
    exec "$0" train --steps 10000000 --batch 8 --quiet --save kill.ckpt --save-every 20' "$tool" > kill.txt 2>&1 &
job=$!
for _ in $(seq 100); do [ -s kill.ckpt ] && [ -s pid.1 ] && break; sleep 0.1; done
sleep 0.5
kill -9 "$(cat pid.1)" 2> /dev/null
wait $job
rc=$?
if [ $rc -ne 0 ] && [ $rc -ne 124 ] && "$wdiff" kill.ckpt kill.ckpt > /dev/null; then
    ok "killed process: the job ended with exit $rc, the checkpoint loads"
else bad "killed process: exit $rc ($(tail -3 kill.txt))"; fi

# Ctrl-C on the launcher (SIGINT to its process group, as a terminal sends
# it): Open MPI's mpirun sends the processes SIGCONT, SIGTERM one second
# later and SIGKILL one second after that; MPICH's mpiexec passes SIGINT on
# and waits. Either way the processes agree on a step, process 0 saves it,
# all end with 130 (no MPI_Abort), and the checkpoint holds the
# uninterrupted run's step K and resumes to its later steps, bit for bit
# (same N). The launcher's own exit code: Open MPI's mpirun 1 (a job it
# ended); MPICH's mpiexec 130, or 0 when it records a process's 130 as 0,
# which it does now and then after passing a signal on.
sig=(--batch 8 --seed 5 --threads 1 --quiet)
set -m
"${mpi[@]}" -np 2 "$tool" train "${sig[@]}" --steps 100000000 --save sig.ckpt --save-every 50 > sig.txt 2>&1 &
job=$!
set +m
(sleep 60; kill -KILL -- -"$job") 2> /dev/null &
watchdog=$!
for _ in $(seq 400); do [ -s sig.ckpt ] && break; sleep 0.05; done # training has begun
kill -INT -- -"$job"
wait "$job"
rc=$?
kill "$watchdog" 2> /dev/null
K=$(sed -n 's/.*stopped by SIG[A-Z]* after \([0-9]*\) steps; the run is saved.*/\1/p' sig.txt)
if [[ $rc =~ ^(130|1|0)$ ]] && [ -n "$K" ] && ! grep -q "ending the whole job" sig.txt; then
    ok "SIGINT to the launcher: exit $rc, stopped and saved after $K steps, no abort"
    "${mpi[@]}" -np 2 "$tool" train "${sig[@]}" --steps "$K" --save sigref.ckpt > /dev/null 2>&1
    within "SIGINT: the saved run is the uninterrupted one at step $K" sigref.ckpt sig.ckpt 0
    "${mpi[@]}" -np 2 "$tool" train "${sig[@]}" --steps $((K + 20)) --save sigref.ckpt > /dev/null 2>&1
    "${mpi[@]}" -np 2 "$tool" train "${sig[@]}" --steps $((K + 20)) --resume sig.ckpt --save sigres.ckpt \
        > /dev/null 2>&1
    within "SIGINT: resumed for 20 steps, the uninterrupted run" sigref.ckpt sigres.ckpt 0
else bad "SIGINT to the launcher: exit $rc, K '$K': $(grep -v '^ *$' sig.txt | tail -4)"; fi

# Open MPI without the grace (odls_base_sigkill_timeout 0: SIGKILL right
# after SIGTERM) kills the processes before they can save: the last
# periodic save stays, whole.
if "${mpi[0]}" --version 2>&1 | grep -q 'Open MPI'; then
    rm -f sig.ckpt
    set -m
    "${mpi[@]}" --mca odls_base_sigkill_timeout 0 -np 2 "$tool" train "${sig[@]}" --steps 100000000 --save sig.ckpt \
        --save-every 50 > sig.txt 2>&1 &
    job=$!
    set +m
    for _ in $(seq 400); do [ -s sig.ckpt ] && break; sleep 0.05; done
    kill -INT -- -"$job"
    wait "$job"
    rc=$?
    if [ $rc -ne 0 ] && "$wdiff" sig.ckpt sig.ckpt > /dev/null && ! grep -q "the run is saved" sig.txt; then
        ok "SIGINT, killed at once: exit $rc, the previous save loads"
    else bad "SIGINT, killed at once: exit $rc: $(grep -v '^ *$' sig.txt | tail -3)"; fi
fi

# Clip places: the formulas on 2 processes (the program counts its own checks).
"${mpi[@]}" -np 2 "$clipwhere" > where.txt 2>&1
sed -n 's/^\(ok  \|FAIL\) /&clip-where: /p' where.txt
read -r p f < <(awk '/ passed, / {print $1, $3}' where.txt)
if [ -n "${p:-}" ]; then pass=$((pass + p)) fail=$((fail + f)); else bad "clip-where: $(tail -3 where.txt)"; fi

# clipnn_train from a program of its own: where the processes differ (one cannot start; a state on
# process 0 alone) no hang; the job's steps allocate nothing.
if [ -n "$libjob" ]; then
    timeout 60 "${mpi[@]}" -np 2 "$libjob" > libjob.txt 2>&1
    for check in start-fail "state-on-process-0 global" "state-on-process-0 clip21" "steps-allocate-nothing dense" \
        "steps-allocate-nothing dp-poisson" "steps-allocate-nothing lstm-bptt-carried"; do
        if [ "$(grep -c "^ok   $check:" libjob.txt)" = 2 ]; then
            ok "$check: both processes returned ($(grep -m1 "$check: process 0" libjob.txt | cut -c1-90)...)"
        else bad "$check: $(grep "$check" libjob.txt | head -2) $(tail -2 libjob.txt)"; fi
    done
fi

refused() { # what expected-text command...
    local what=$1 want=$2
    shift 2
    if "$@" > refused.txt 2>&1; then bad "$what: accepted"
    elif grep -q -- "$want" refused.txt; then ok "$what: refused ($(grep -m1 -- "$want" refused.txt | cut -c1-90)...)"
    else bad "$what: $(head -2 refused.txt)"; fi
}
refused "--clip-where local in the plain build" "needs an MPI job" \
    "$plain" train --steps 2 --clip norm --clip-where local --quiet
refused "--clip-where local with agc" "needs --clip norm with p = 2" \
    "${mpi[@]}" -np 2 "$tool" train --steps 2 --clip agc --clip-where local --quiet
refused "--clip-where clip21 resuming a run without it" "holds no error-feedback vectors" \
    "${mpi[@]}" -np 2 "$tool" train --steps 30 --clip norm --clip-where clip21 --resume part.ckpt --force --quiet

# Clip21's vectors in the checkpoint: 20 steps on 2 processes resumed for 30
# more on 2 take the uninterrupted run's steps bit for bit (every variable a
# step reads comes back, each process's e_r included). lambda 0.1 keeps e_r
# far from the gradients (norms about 2), so a vector lost or given to the
# wrong process changes the steps.
c21=(--batch 32 --lr 0.1 --seed 3 --threads 1 --quiet --clip norm --lambda 0.1 --clip-where clip21)
if "${mpi[@]}" -np 2 "$tool" train "${c21[@]}" --steps 50 --save c21full.ckpt > /dev/null 2>&1 &&
    "${mpi[@]}" -np 2 "$tool" train "${c21[@]}" --steps 20 --save c21part.ckpt > /dev/null 2>&1 &&
    "${mpi[@]}" -np 2 "$tool" train "${c21[@]}" --steps 50 --resume c21part.ckpt --save c21res.ckpt > /dev/null 2>&1
then within "clip21 resumed on the same 2 processes" c21full.ckpt c21res.ckpt 0
else bad "clip21 resumed: a run failed"; fi
refused "clip21 saved by 2 processes resumed on 3" "saved by 2 processes cannot resume on 3" \
    "${mpi[@]}" -np 3 "$tool" train "${c21[@]}" --steps 50 --resume c21part.ckpt
# Resumed without the options, the tool takes the saved run's (the place
# included); forced to another place, the vectors are refused.
if "${mpi[@]}" -np 2 "$tool" train --steps 50 --resume c21part.ckpt --save c21adopt.ckpt --quiet > /dev/null 2>&1
then within "clip21 resumed with the saved run's options" c21full.ckpt c21adopt.ckpt 0
else bad "clip21 resumed with the saved run's options: the run failed"; fi
refused "a clip21 run resumed with --clip-where global" "continue it with --clip-where clip21" \
    "${mpi[@]}" -np 2 "$tool" train --steps 50 --clip-where global --resume c21part.ckpt --force --quiet
# The all-reduce in buckets during the backward against the fused one.
# shellcheck source=tests/mpi/buckets.sh
. "$here/buckets.sh"

# Process 0 alone prints results.
# shellcheck source=tests/mpi/output.sh
. "$here/output.sh"

# --expected-grad: the clipper's history over the rows in order, across the processes.
# shellcheck source=tests/mpi/expected_grad.sh
. "$here/expected_grad.sh"

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
