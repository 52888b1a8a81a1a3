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
import argparse
import sys
import time

import numpy as np

SHAPES = [(512, 768, 3072), (512, 3072, 768), (512, 768, 2304), (512, 768, 50304)]


def blas_info():
    try:
        import threadpoolctl
        return threadpoolctl, threadpoolctl.threadpool_info()
    except ImportError:
        return None, None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    ap.add_argument("--trans", default="NN,NT,TN")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--min-time", type=float, default=0.3, help="seconds per timed run (>=)")
    ap.add_argument("--shapes", default="", help="e.g. 512x768x3072,512x3072x768")
    ap.add_argument("--serve", action="store_true", help="read cases from stdin")
    args = ap.parse_args()
    shapes = SHAPES
    if args.shapes:
        shapes = [tuple(int(x) for x in s.split("x")) for s in args.shapes.split(",")]
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
            np.matmul(x, y, out=c)
            t0 = time.perf_counter()
            np.matmul(x, y, out=c)
            one = time.perf_counter() - t0
            iters = max(1, int(args.min_time / max(one, 1e-6)))
            best = best_cpu = float("inf")
            for _ in range(args.reps):
                c0 = time.thread_time()
                t0 = time.perf_counter()
                for _ in range(iters):
                    np.matmul(x, y, out=c)
                best = min(best, (time.perf_counter() - t0) / iters)
                best_cpu = min(best_cpu, (time.thread_time() - c0) / iters)
        finally:
            if ctx is not None:
                ctx.restore_original_limits()
        flop = 2.0 * m * n * k
        # With one thread OpenBLAS runs on this thread, so its CPU time measures the kernel
        # without the time other processes hold the core (the 5th column; "-" otherwise).
        cpu = "%.1f" % (flop / best_cpu / 1e9) if th == 1 and best_cpu > 0 else "-"
        print("%dx%dx%d %s %d %.1f %s" % (m, k, n, tr, th, flop / best / 1e9, cpu), flush=True)

    if args.serve:
        for line in sys.stdin:
            f = line.split()
            if len(f) != 3:
                continue
            m, k, n = (int(v) for v in f[0].split("x"))
            run(m, k, n, f[1], int(f[2]))
        return
    for m, k, n in shapes:
        for tr in args.trans.split(","):
            for th in [int(t) for t in args.threads.split(",")]:
                run(m, k, n, tr, th)


if __name__ == "__main__":
    main()
