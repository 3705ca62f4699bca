#!/usr/bin/env bash
# Installs the Debian packages clipnn needs (root or sudo). Idempotent: does
# nothing when everything is there already.
#   build:   gcc make, CBLAS (libblas-dev; OpenBLAS replaces it at run time),
#            zlib (gzip IDX and the embedded digits), libpng (images),
#            pkg-config (the tests compile the README's example with it)
#   fuzz:    clang, libclang-rt-dev (libFuzzer and the sanitizer runtimes; make fuzz)
#   mpi:     openmpi-bin libopenmpi-dev (make MPI=1, make test-mpi: mpicc, mpirun)
#            mpich libmpich-dev (make test-mpich: mpicc.mpich, mpiexec.mpich; Open MPI stays the default mpicc)
#   data:    dataset-fashion-mnist (only for --data fashion-mnist)
#   tests:   chromium (renders the HTML reports headless)
#   extra:   python3-torch, with CLIPNN_TORCH=1 (regenerating PyTorch references, make bench)
#            python3-numpy, with CLIPNN_NUMPY=1 (regenerating the privacy reference, scripts/dp_reference.py)
set -euo pipefail
packages=(build-essential libblas-dev libopenblas-dev zlib1g-dev libpng-dev dataset-fashion-mnist pkg-config chromium openmpi-bin libopenmpi-dev)
packages+=(mpich libmpich-dev)
packages+=(clang libclang-rt-dev)
if [ "${CLIPNN_TORCH:-0}" = 1 ]; then packages+=(python3-torch); fi
if [ "${CLIPNN_NUMPY:-0}" = 1 ]; then packages+=(python3-numpy); fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq "${missing[@]}"
