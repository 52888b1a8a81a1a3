#!/usr/bin/env bash
# gpu-check.sh (make gpu-check): prepare, on the development machine, everything the GPU
# check needs on a GPU machine that has a driver, PyTorch and no Go toolchain:
#   out/gpu-check/cuda.test      pkg/cuda's tests built with -tags cuda for linux/amd64
#                                (parity with the CPU model, GEMM, AdamW, throughput)
#   out/gpu-check/gpu_check.py   the PyTorch comparison and the report writer
#   out/gpu-check/run.sh         runs it all in about 10 minutes at most
# Then copy out/gpu-check to the GPU machine and run `bash run.sh`; the report lands in
# gpu-results/gpu-results.md (or under $OUT when set), to be committed as docs/gpu-results.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
GO=${GO:-go}
DIR=${GPU_CHECK_DIR:-out/gpu-check}
"$GO" test ./pkg/cuda/ >/dev/null || { echo "gpu-check: the kernel manifest check fails: run make cuda" >&2; exit 1; }
mkdir -p "$DIR"
GOOS=linux GOARCH=amd64 CGO_ENABLED=1 "$GO" test -c -tags cuda -trimpath -o "$DIR/cuda.test" ./pkg/cuda
cp scripts/gpu/gpu_check.py scripts/gpu/run.sh "$DIR/"
echo "gpu-check: $DIR is ready ($(du -sh "$DIR" | cut -f1)); on the GPU machine: bash $DIR/run.sh" >&2
