#!/usr/bin/env bash
# run.sh: the GPU check, run on the GPU machine from the directory make gpu-check
# prepared (cuda.test, gpu_check.py, this file). Every stage has its own time limit so the
# whole run stays within about 10 minutes; a failing stage is reported and the rest run.
# Output: $RESULTS (default ${OUT:-.}/gpu-results): results.jsonl, the logs and
# gpu-results.md, the report to commit as docs/gpu-results.md.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
RESULTS=${RESULTS:-${OUT:-$HERE}/gpu-results}
PY=${PYTHON:-python3}
mkdir -p "$RESULTS"
rm -f "$RESULTS/results.jsonl"
export CPO_GPU_RESULTS="$RESULTS/results.jsonl"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$RESULTS/nvidia-smi.txt"

# cuBLAS for the dlopen in pkg/cuda: the newest libcublas of the system CUDA or of
# PyTorch's wheels; its directory goes on LD_LIBRARY_PATH so libcublasLt resolves too.
if [ -z "${CPO_CUBLAS:-}" ]; then
  sp=$("$PY" -c 'import site; print(" ".join(site.getsitepackages()))' 2>/dev/null || true)
  lib=$(find /usr/local/cuda/ /usr/local/cuda-*/ /usr/lib/x86_64-linux-gnu/ $sp -name 'libcublas.so.1[1-9]*' 2>/dev/null | sort -V | tail -1)
  if [ -n "$lib" ]; then
    export CPO_CUBLAS=$lib
    export LD_LIBRARY_PATH=$(dirname "$lib")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  fi
fi
echo "cuBLAS: ${CPO_CUBLAS:-none found (own GEMM kernels only)}" | tee "$RESULTS/cublas.txt"

status=0
stage() { # stage NAME SECONDS CMD...
  local name=$1 secs=$2
  shift 2
  echo "== $name (limit ${secs}s)"
  local t0=$SECONDS
  timeout --kill-after=10 "$secs" "$@" >"$RESULTS/$name.log" 2>&1
  local rc=$?
  tail -n 25 "$RESULTS/$name.log"
  echo "== $name: exit $rc after $((SECONDS - t0))s"
  echo "$name $rc $((SECONDS - t0))s" >>"$RESULTS/stages.txt"
  [ $rc = 0 ] || status=1
}
rm -f "$RESULTS/stages.txt"
# TestManifest* are left out: they read ../../kernels, a checkout path (CI runs them).
stage parity-go 150 env CPO_GPU_DUMP="$RESULTS/dump" "$HERE/cuda.test" -test.v -test.timeout 140s \
  -test.run 'TestKernelNames|TestLayout|TestBatchDescription|TestCarveActs|TestGEMM|TestAttentionKernels|TestParity|TestInference|TestAdamW|TestStepSkipsNonFinite|TestDumpForTorch'
stage parity-torch 90 "$PY" "$HERE/gpu_check.py" parity "$RESULTS/dump" "$CPO_GPU_RESULTS"
stage bench-go 180 env CPO_GPU_BENCH=1 "$HERE/cuda.test" -test.v -test.timeout 170s -test.run 'TestAttentionTiming|TestThroughput'
stage bench-torch 150 "$PY" "$HERE/gpu_check.py" bench "$CPO_GPU_RESULTS"
stage report 30 "$PY" "$HERE/gpu_check.py" report "$CPO_GPU_RESULTS" "$RESULTS/gpu-results.md" "$RESULTS/stages.txt"
rm -rf "$RESULTS/dump"
cat "$RESULTS/stages.txt"
exit $status
