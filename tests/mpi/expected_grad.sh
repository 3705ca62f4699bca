# Sourced by tests/mpi/run.sh: --expected-grad in a job gives a single
# process's H(theta) and mean gradient: the rules with a history (AutoClip's
# norms, ZClip's mean and variance) see every row in order, process r
# starting from the clipper state process r - 1 ended with. --lr 0 keeps the
# parameters theta0 on every process, so the sums differ only in the order
# of the double additions (n u = 1438 x 1.1e-16 = 1.6e-13 relative) and in
# the printed 10 significant digits (5e-10 relative each side): within 1e-9.
egrad() { # JSON file -> "H mean"
    sed -n 's/.*"expected_clipped_grad_norm":\([^,]*\),"mean_grad_norm":\([^,]*\),.*/\1 \2/p' "$1"
}
eg_common=(--steps 5 --lr 0 --batch 32 --seed 3 --threads 1 --expected-grad --json)
for rule in percentile zscore norm; do
    "$plain" train "${eg_common[@]}" --clip $rule > eg1.json 2> /dev/null
    for n in 2 3; do
        "${mpi[@]}" -np $n "$tool" train "${eg_common[@]}" --clip $rule > egn.json 2> egn.err
        read -r h1 m1 <<< "$(egrad eg1.json)"
        read -r hn mn <<< "$(egrad egn.json)"
        if awk -v a="$h1" -v b="$hn" -v c="$m1" -v d="$mn" 'function rel(x, y) {return (x > y ? x - y : y - x) / y}
            BEGIN {exit !(a > 0 && c > 0 && rel(a, b) <= 1e-9 && rel(c, d) <= 1e-9)}'; then
            ok "--expected-grad --clip $rule N=$n: H $hn, mean $mn as one process's"
        else bad "--expected-grad --clip $rule N=$n: H $hn mean $mn, one process $h1 $m1 ($(tail -1 egn.err))"; fi
    done
done
