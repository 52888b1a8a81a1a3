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
import sys

import torch

from gemm_cases import best_times, drive, parser, report, shapes_of

SHAPES = [(512, 768, 3072), (512, 3072, 768), (512, 768, 2304), (512, 768, 50304),
          (1024, 256, 8192)]
MODES = ("autocast", "bf16-tensors")


def main():
    ap = parser(__doc__)
    ap.add_argument("--mode", default="autocast", choices=MODES)
    args = ap.parse_args()
    shapes = shapes_of(args, SHAPES)
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
        c = product(x, y)
        if c.shape != (m, n):
            raise SystemExit("%dx%dx%d %s: product is %s" % (m, k, n, tr, tuple(c.shape)))
        best, best_cpu = best_times(lambda: product(x, y), args.reps, args.min_time)
        report(m, k, n, tr, th, best, best_cpu)

    drive(args, shapes, run)


if __name__ == "__main__":
    main()
