#!/usr/bin/env bash
# Build trees against each other (compiler flags, e.g. NATIVE=1 against the
# portable default): the grid of `make bench`, the element-wise kernels
# (bench_clipnn kernels) and the Fashion-MNIST run of `make bench`, with the
# bench_clipnn and clipnn of every tree, run in turn and in a rotating order
# (A B C, B C A, C A B, ...) so that the load of a shared machine falls on
# all of them alike. Every figure is given as the median over the rounds
# and as the best round, with its ratio to the first tree.
#
#   make NATIVE=1 BUILD=build-native build-native/bench_clipnn build-native/clipnn
#   make BUILD=build build/bench_clipnn build/clipnn
#   bash bench/builds.sh build-native build
#
# Environment: ROUNDS (grid rounds, default 7), REPS (repetitions inside one
# grid run, default 3), CONFIGS (model:batch list, default the grid of make
# bench), CLIPS (default all five rules), THREADS (default 2), FMNIST_DIR,
# FM_ROUNDS (Fashion-MNIST rounds, default 5; 0 skips them), QUIET_WAIT
# (seconds to wait for idle cores before a run, default 5), RAW (a file
# that keeps every measurement).
set -euo pipefail

[ $# -ge 2 ] || { echo "usage: builds.sh BUILD_DIR BUILD_DIR [BUILD_DIR...]" >&2; exit 2; }
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/common.sh"
BUILDS=("$@")
for b in "${BUILDS[@]}"; do
    [ -x "$b/bench_clipnn" ] && [ -x "$b/clipnn" ] || { echo "builds.sh: $b/bench_clipnn or $b/clipnn missing" >&2; exit 2; }
done
ROUNDS=${ROUNDS:-7}
REPS=${REPS:-3}
CONFIGS=${CONFIGS:-$GRID_CONFIGS}
CLIPS=${CLIPS:-none,norm,adaptive-layer,agc,per-sample}
THREADS=${THREADS:-2}
FMNIST_DIR=${FMNIST_DIR:-/usr/share/datasets/fashion-mnist}
FM_ROUNDS=${FM_ROUNDS:-5}
export QUIET_WAIT=${QUIET_WAIT:-5}
RAW=${RAW:-$(mktemp)}
: > "$RAW"
NB=${#BUILDS[@]}

# Round r runs the trees starting from tree r mod NB.
rotated() {
    local r=$1 k
    for k in $(seq 0 $((NB - 1))); do echo $(((r + k) % NB)); done
}

start=$(date +%s)
echo "builds: ${BUILDS[*]}; $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "BLAS: $("${BUILDS[0]}/bench_clipnn" sgemm --threads 1 --n 64 --reps 1 | cut -f5); threads: $THREADS"
for r in $(seq 1 "$ROUNDS"); do
    for cfg in $CONFIGS; do
        arch=${cfg%%:*}
        batch=${cfg##*:}
        for i in $(rotated "$r"); do
            wait_quiet
            "${BUILDS[$i]}/bench_clipnn" grid --arch "$arch" --batch "$batch" --clips "$CLIPS" --threads "$THREADS" \
                --reps "$REPS" --rep-seconds "$(grid_rep_seconds "$arch" "$batch")" |
                awk -F'\t' -v b="$i" -v r="$r" '{ printf "higher\t%s, %s\t%s\t%s\t%s\t%s\n", $2, $3, $4, b, r, $6 }' >> "$RAW"
        done
    done
    for i in $(rotated "$r"); do
        wait_quiet
        "${BUILDS[$i]}/bench_clipnn" kernels --reps 20 |
            awk -F'\t' -v b="$i" -v r="$r" '{ printf "lower\tkernels, ns/element\t%s\t%s\t%s\t%s\n", $2, b, r, $4 }' >> "$RAW"
    done
done
if [ "$FM_ROUNDS" -gt 0 ]; then
    for r in $(seq 1 "$FM_ROUNDS"); do
        for i in $(rotated "$r"); do
            wait_quiet
            read -r wall train acc < <(fmnist_run "${BUILDS[$i]}/clipnn" "$FMNIST_DIR" "$THREADS")
            printf 'lower\tFashion-MNIST 10 epochs\twall s\t%s\t%s\t%s\n' "$i" "$r" "$wall" >> "$RAW"
            printf 'lower\tFashion-MNIST 10 epochs\ttraining loop s\t%s\t%s\t%s\n' "$i" "$r" "$train" >> "$RAW"
            printf 'higher\tFashion-MNIST 10 epochs\ttest accuracy\t%s\t%s\t%s\n' "$i" "$r" "$acc" >> "$RAW"
        done
    done
fi

# Raw lines: higher|lower (which is better), configuration, measure, tree,
# round, figure. Per (configuration, measure, tree): the median over the
# rounds and the best round (a busy machine only ever slows a run down);
# then per configuration and measure the trees'
# figures and their ratios to the first tree.
table() {
    echo
    printf '%-26s %-16s' "$1" "measure"
    for b in "${BUILDS[@]}"; do printf ' %16s' "$b"; done
    echo
    sort -t$'\t' -k2,2 -k3,3 -k4,4n -k6,6g "$RAW" |
        awk -F'\t' -v nb="$NB" -v stat="$2" '
            # first the raw file, for the order of the configurations
            FNR == NR { if (!(($2 "\t" $3) in seen)) { seen[$2 "\t" $3] = 1; order[++m] = $2 "\t" $3 } next }
            function flush() {
                if (!n) return
                if (stat == "median") fig[key] = n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
                else fig[key] = lower_is_better ? v[1] : v[n]
                n = 0
            }
            { k = $2 "\t" $3 "\t" $4; if (k != key) { flush(); key = k; lower_is_better = $1 == "lower" } v[++n] = $6 }
            END {
                flush()
                for (j = 1; j <= m; j++) {
                    split(order[j], f, "\t")
                    printf "%-26s %-16s", f[1], f[2]
                    base = fig[order[j] "\t0"]
                    for (b = 0; b < nb; b++) {
                        x = fig[order[j] "\t" b]
                        if (b == 0 || base == 0) printf " %16.4g", x
                        else printf " %9.4g %5.3fx", x, x / base
                    }
                    printf "\n"
                }
            }' "$RAW" -
}
table "median over the rounds" median
table "best round" best
echo
echo "grid: samples/s of one run (the median of its $REPS repetitions) and kernels: ns per element (one thread, the fastest"
echo "of 20 repetitions), over $ROUNDS rounds; Fashion-MNIST: $FM_ROUNDS rounds. Ratios: a tree's figure over the first"
echo "tree's (samples/s: above 1 is faster; seconds and ns: above 1 is slower)."
if [ "$BUSY" -gt 0 ]; then echo "note: $BUSY run(s) started on a busy machine (waited $QUIET_WAIT s for idle cores)"; fi
echo "raw measurements: $RAW; took $(( $(date +%s) - start )) s"
