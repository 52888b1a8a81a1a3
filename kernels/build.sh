#!/usr/bin/env bash
# kernels/build.sh: compile every kernels/*.cu into kernels/build/<family>.fatbin (SASS for
# sm_80 and sm_90, plus compute_80 PTX that newer drivers JIT-compile for other cards) and
# write kernels/manifest.txt: the nvcc version line and the sha256 of every source
# (common.cuh included) and every output. pkg/cuda's tests fail when a source no longer
# matches the manifest, so a kernel edit without a rebuild is caught by `go test ./...`.
# Run from anywhere: `bash kernels/build.sh` (or `make cuda`). NVCC overrides the compiler.
set -euo pipefail
cd "$(dirname "$0")"
NVCC=${NVCC:-nvcc}
command -v "$NVCC" >/dev/null || { echo "kernels/build.sh: $NVCC not found (make cuda installs it)" >&2; exit 1; }
ver=$("$NVCC" --version | grep -m1 'release')
mkdir -p build
rm -f build/*.fatbin
for src in *.cu; do
  fam=${src%.cu}
  "$NVCC" -O3 -std=c++17 -fatbin \
    -gencode arch=compute_80,code=sm_80 \
    -gencode arch=compute_90,code=sm_90 \
    -gencode arch=compute_80,code=compute_80 \
    -o "build/$fam.fatbin" "$src"
  echo "built build/$fam.fatbin ($(stat -c %s "build/$fam.fatbin") bytes)" >&2
done
{
  echo "# kernels/manifest.txt: written by kernels/build.sh, checked by pkg/cuda's tests."
  echo "nvcc $ver"
  for f in *.cu *.cuh; do echo "source $(sha256sum "$f" | cut -d' ' -f1) $f"; done
  for f in build/*.fatbin; do echo "output $(sha256sum "$f" | cut -d' ' -f1) $f"; done
} > manifest.txt
