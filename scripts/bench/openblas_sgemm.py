#!/usr/bin/python3
"""SGEMM throughput of numpy's BLAS (OpenBLAS from Debian's libopenblas0-pthread) on GPT-2
small's layer shapes, for comparison with BenchmarkSgemm in pkg/gemm.

Shapes are M x K x N (op(A) is M x K, op(B) is K x N), transpositions NN, NT, TN; prints one
line per case:  shape trans threads GFLOP/s cpuGFLOP/s  (best of --reps timed runs after a
warm-up; the last column, for one thread only, divides by the thread's CPU time instead of
wall time, which on a shared machine leaves out the time other processes hold the core).
With --serve it reads cases ("512x768x3072 NN 1") from stdin and answers each with that line,
so that a driver (gemm_table.sh) can interleave it with our benchmark case by case.

Run with OPENBLAS_CORETYPE unset, or OpenBLAS is forced onto its AVX2 kernel:
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 scripts/bench/openblas_sgemm.py
"""
import sys

import numpy as np

from gemm_cases import best_times, drive, parser, report, shapes_of

SHAPES = [(512, 768, 3072), (512, 3072, 768), (512, 768, 2304), (512, 768, 50304)]


def blas_info():
    try:
        import threadpoolctl
        return threadpoolctl, threadpoolctl.threadpool_info()
    except ImportError:
        return None, None


def main():
    ap = parser(__doc__)
    args = ap.parse_args()
    shapes = shapes_of(args, SHAPES)
    tpc, info = blas_info()
    if info is not None:
        for lib in info:
            print("# blas: %s %s %s threads=%s" % (lib.get("internal_api"), lib.get("version"),
                  lib.get("architecture"), lib.get("num_threads")), file=sys.stderr)
    rng = np.random.default_rng(1)
    cache = {}

    def operands(m, k, n, tr):
        if (m, k, n) not in cache:
            cache.clear()  # one shape at a time: the LM head's operands are large
            a = rng.uniform(-1, 1, (m, k)).astype(np.float32)
            b = rng.uniform(-1, 1, (k, n)).astype(np.float32)
            at = np.ascontiguousarray(a.T)  # stored K x M
            bt = np.ascontiguousarray(b.T)  # stored N x K
            c = np.empty((m, n), dtype=np.float32)
            cache[(m, k, n)] = {"NN": (a, b), "NT": (a, bt.T), "TN": (at.T, b), "c": c}
        d = cache[(m, k, n)]
        return d[tr][0], d[tr][1], d["c"]

    def run(m, k, n, tr, th):
        x, y, c = operands(m, k, n, tr)
        ctx = tpc.threadpool_limits(limits=th, user_api="blas") if tpc else None
        if ctx is None and th != 1:
            print("# threadpoolctl missing: cannot set threads", file=sys.stderr)
        try:
            best, best_cpu = best_times(lambda: np.matmul(x, y, out=c), args.reps, args.min_time)
        finally:
            if ctx is not None:
                ctx.restore_original_limits()
        report(m, k, n, tr, th, best, best_cpu)

    drive(args, shapes, run)


if __name__ == "__main__":
    main()
