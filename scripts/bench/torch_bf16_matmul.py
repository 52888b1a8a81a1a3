#!/usr/bin/python3
"""Mixed-precision (bfloat16) matmul throughput of PyTorch on the CPU (Debian's torch 1.13, whose
bf16 matmuls go to oneDNN's brgemm avx512_core_bf16 kernels), for comparison with
BenchmarkSgemmMixedBF16 in pkg/gemm.

Shapes are M x K x N (op(A) is M x K, op(B) is K x N), transpositions NN, NT, TN (the
transposed operand is a .t() view of a contiguous K x M or N x K tensor, as in
openblas_sgemm.py); prints one line per case:  shape trans threads GFLOP/s cpuGFLOP/s
(best of --reps timed runs after a warm-up; the last column, for one thread only, divides by
the thread's CPU time instead of wall time, which on a shared machine leaves out the time
other processes hold the core). With --serve it reads cases ("512x768x3072 NN 1") from stdin
and answers each with that line, so that a driver (PRECISION=bf16 gemm_table.sh) can
interleave it with our benchmark case by case.

Modes (--mode; printed in a "# mode:" line on stderr):
  autocast      float32 inputs, `a @ b` under torch.autocast("cpu", dtype=torch.bfloat16):
                what a user of autocast pays per product, both inputs rounded to bfloat16 on
                every call (the inputs do not require grad, so autocast caches no cast), output
                bfloat16 as autocast gives it. Matches SgemmMixedBF16, which also converts
                from float32 on every call (but writes a float32 C). The default.
  bf16-tensors  inputs already bfloat16, plain `a @ b`: the matmul alone, no conversion.

    /usr/bin/python3 scripts/bench/torch_bf16_matmul.py --threads 1 --shapes 512x768x3072
"""
import argparse
import sys
import time

import torch

SHAPES = [(512, 768, 3072), (512, 3072, 768), (512, 768, 2304), (512, 768, 50304),
          (1024, 256, 8192)]
MODES = ("autocast", "bf16-tensors")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    ap.add_argument("--trans", default="NN,NT,TN")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--min-time", type=float, default=0.3, help="seconds per timed run (>=)")
    ap.add_argument("--shapes", default="", help="e.g. 512x768x3072,512x3072x768")
    ap.add_argument("--mode", default="autocast", choices=MODES)
    ap.add_argument("--serve", action="store_true", help="read cases from stdin")
    args = ap.parse_args()
    shapes = SHAPES
    if args.shapes:
        shapes = [tuple(int(x) for x in s.split("x")) for s in args.shapes.split(",")]
    dnnl = torch.backends.mkldnn.is_available()
    print("# torch %s, oneDNN available: %s, default threads %d" %
          (torch.__version__, dnnl, torch.get_num_threads()), file=sys.stderr)
    print("# mode: %s" % args.mode, file=sys.stderr, flush=True)
    torch.set_grad_enabled(False)
    gen = torch.Generator().manual_seed(1)
    cache = {}

    def operands(m, k, n, tr):
        if (m, k, n) not in cache:
            cache.clear()  # one shape at a time: the LM head's operands are large
            a = torch.rand(m, k, generator=gen) * 2 - 1  # float32, uniform in [-1, 1)
            b = torch.rand(k, n, generator=gen) * 2 - 1
            if args.mode == "bf16-tensors":
                a, b = a.bfloat16(), b.bfloat16()
            at = a.t().contiguous()  # stored K x M
            bt = b.t().contiguous()  # stored N x K
            cache[(m, k, n)] = {"NN": (a, b), "NT": (a, bt.t()), "TN": (at.t(), b)}
        return cache[(m, k, n)][tr]

    def product(x, y):
        if args.mode == "autocast":
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return x @ y
        return x @ y

    def run(m, k, n, tr, th):
        x, y = operands(m, k, n, tr)
        torch.set_num_threads(th)
        product(x, y)
        t0 = time.perf_counter()
        c = product(x, y)
        one = time.perf_counter() - t0
        if c.shape != (m, n):
            raise SystemExit("%dx%dx%d %s: product is %s" % (m, k, n, tr, tuple(c.shape)))
        iters = max(1, int(args.min_time / max(one, 1e-6)))
        best = best_cpu = float("inf")
        for _ in range(args.reps):
            c0 = time.thread_time()
            t0 = time.perf_counter()
            for _ in range(iters):
                product(x, y)
            best = min(best, (time.perf_counter() - t0) / iters)
            best_cpu = min(best_cpu, (time.thread_time() - c0) / iters)
        flop = 2.0 * m * n * k
        # With one thread oneDNN (OpenMP) and the casts run on this thread, so its CPU time
        # measures the product without the time other processes hold the core.
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
