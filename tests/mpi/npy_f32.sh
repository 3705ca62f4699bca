# Sourced by tests/mpi/run.sh: npy_f32 FILE SHAPE COUNT SEED writes COUNT
# float32 values, each -1, -0.5, 0, 0.5 or 1 as a linear congruential
# generator from SEED picks, as a NumPy array (format 1.0) of shape SHAPE,
# e.g. "(30, 6, 1)" (no Python needed).
npy_f32() {
    local header="{'descr': '<f4', 'fortran_order': False, 'shape': $2, }" s=$4 i
    local pad=$(((64 - (10 + ${#header} + 1) % 64) % 64))
    local len=$((${#header} + pad + 1))
    local vals=('\x00\x00\x80\xbf' '\x00\x00\x00\xbf' '\x00\x00\x00\x00' '\x00\x00\x00\x3f' '\x00\x00\x80\x3f')
    {
        printf '\x93NUMPY\x01\x00'
        # shellcheck disable=SC2059
        printf "\\x$(printf %02x $((len % 256)))\\x$(printf %02x $((len / 256)))"
        printf '%s%*s\n' "$header" $pad ''
        for ((i = 0; i < $3; i++)); do
            s=$(((s * 1103515245 + 12345) % 2147483648))
            # shellcheck disable=SC2059
            printf "${vals[$(((s >> 16) % 5))]}"
        done
    } > "$1"
}
