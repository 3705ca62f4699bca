#!/usr/bin/env bash
# The MPI build against the plain one: tests/mpi/run.sh PLAIN_TOOL MPI_TOOL WEIGHTS_DIFF CLIP_WHERE
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
#  - --clip-where local and clip21 against their formulas and fixed points
#    (tests/mpi/clip_where.c), and refused with one line where they make no sense;
#  - the gradient all-reduce in buckets during the backward gives the fused one's weights (tests/mpi/buckets.sh).
# Ends with "N passed, M failed" like the main runner; exit 1 on any failure.
set -uo pipefail
here=$(dirname "$(realpath "$0")")
plain=$(realpath "$1") tool=$(realpath "$2") wdiff=$(realpath "$3") clipwhere=$(realpath "$4")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
export OMP_NUM_THREADS=1
mpi=(mpirun --oversubscribe --allow-run-as-root)
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
timeout 60 "${mpi[@]}" -np 3 sh -c 'd=digits; [ "$OMPI_COMM_WORLD_RANK" = 1 ] && d=csv:/nonexistent/x.csv
    exec "$0" train --data "$d" --steps 100000 --batch 32 --quiet --save part.ckpt --save-every 10' "$tool" \
    > fail.txt 2>&1
rc=$?
if [ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -q "process 1 of 3" fail.txt && grep -q "nonexistent" fail.txt; then
    ok "unreadable data on one process: exit $rc, message"
else bad "unreadable data on one process: exit $rc: $(head -5 fail.txt)"; fi

# A killed process: the job ends (no hang), the last periodic checkpoint loads.
# shellcheck disable=SC2016
timeout 120 "${mpi[@]}" -np 2 sh -c 'echo $$ > pid.$OMPI_COMM_WORLD_RANK
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

# Clip places: the formulas on 2 processes (the program counts its own checks).
"${mpi[@]}" -np 2 "$clipwhere" > where.txt 2>&1
sed -n 's/^\(ok  \|FAIL\) /&clip-where: /p' where.txt
read -r p f < <(awk '/ passed, / {print $1, $3}' where.txt)
if [ -n "${p:-}" ]; then pass=$((pass + p)) fail=$((fail + f)); else bad "clip-where: $(tail -3 where.txt)"; fi

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
refused "--clip-where clip21 on resume" "cannot resume" \
    "${mpi[@]}" -np 2 "$tool" train --steps 30 --clip norm --clip-where clip21 --resume part.ckpt --force --quiet

# The all-reduce in buckets during the backward against the fused one.
# shellcheck source=tests/mpi/buckets.sh
. "$here/buckets.sh"

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
