# Sourced by tests/mpi/run.sh: in a job process 0 alone prints results; the
# others print only errors (and with --verbose the library's information,
# among it the rows each holds). Checked with 2 and 3 processes:
#  - --json: stdout is exactly one JSON document the strict parser accepts;
#  - text: one results block on stdout;
#  - --progress lines: one progress line per epoch on stderr;
#  - warnings (steps skipped) from process 0 only.
jcheck=$(dirname "$wdiff")/json_check
for n in 2 3; do
    "${mpi[@]}" -np $n "$tool" train --steps 20 --batch 32 --seed 3 --threads 1 --json --verbose \
        > json.out 2> json.err
    if "$jcheck" json.out 2> jcheck.err; then ok "--json N=$n: stdout is one JSON document"
    else bad "--json N=$n: stdout is not one JSON document ($(cat jcheck.err)): $(head -c 300 json.out)"; fi
    held=$(grep -c "holds rows" json.err)
    if [ "$held" = "$n" ]; then ok "--json --verbose N=$n: each process's rows on stderr"
    else bad "--json --verbose N=$n: $held lines of rows held on stderr, want $n"; fi

    "${mpi[@]}" -np $n "$tool" train --steps 20 --batch 32 --seed 3 --threads 1 --progress lines \
        > text.out 2> text.err
    blocks=$(grep -c "^test accuracy" text.out) lines=$(grep -c "epoch 1/1" text.err)
    if [ "$blocks" = 1 ] && [ "$lines" = 1 ]; then ok "text N=$n: one results block, one progress line"
    else bad "text N=$n: $blocks results blocks on stdout, $lines progress lines on stderr (want 1, 1)"; fi

    # lr 1e38 makes the loss non-finite after a step: every step after is skipped, with a warning
    "${mpi[@]}" -np $n "$tool" train --steps 10 --batch 32 --seed 3 --threads 1 --lr 1e38 --clip none --nonfinite skip \
        --quiet > skip.out 2> skip.err
    warned=$(grep -c "warning: train: step [0-9]* skipped" skip.err)
    single=$("$plain" train --steps 10 --batch 32 --seed 3 --threads 1 --lr 1e38 --clip none --nonfinite skip \
        --quiet 2>&1 > /dev/null | grep -c "warning: train: step [0-9]* skipped")
    if [ "$warned" -gt 0 ] && [ "$warned" = "$single" ]; then ok "warnings N=$n: $warned, as many as one process's"
    else bad "warnings N=$n: $warned skipped-step warnings, one process gives $single"; fi
done
