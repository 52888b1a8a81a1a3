"""What openblas_sgemm.py and torch_bf16_matmul.py share: the command line, the timing of one
case and its output line, and the loop over cases (a sweep, or --serve: cases read from stdin,
one answer line each, so that gemm_table.sh can interleave them with our benchmark)."""
import argparse
import sys
import time


def parser(doc):
    """The common flags; a script adds its own before parse_args."""
    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    ap.add_argument("--trans", default="NN,NT,TN")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--min-time", type=float, default=0.3, help="seconds per timed run (>=)")
    ap.add_argument("--shapes", default="", help="e.g. 512x768x3072,512x3072x768")
    ap.add_argument("--serve", action="store_true", help="read cases from stdin")
    return ap


def shapes_of(args, default):
    """--shapes as (M, K, N) tuples, or default."""
    if not args.shapes:
        return default
    return [tuple(int(x) for x in s.split("x")) for s in args.shapes.split(",")]


def best_times(product, reps, min_time):
    """Seconds per call of product(): the best wall and thread-CPU times of reps timed runs of
    at least min_time each, after a warm-up call."""
    product()
    t0 = time.perf_counter()
    product()
    one = time.perf_counter() - t0
    iters = max(1, int(min_time / max(one, 1e-6)))
    best = best_cpu = float("inf")
    for _ in range(reps):
        c0 = time.thread_time()
        t0 = time.perf_counter()
        for _ in range(iters):
            product()
        best = min(best, (time.perf_counter() - t0) / iters)
        best_cpu = min(best_cpu, (time.thread_time() - c0) / iters)
    return best, best_cpu


def report(m, k, n, tr, th, best, best_cpu):
    """Prints the case's line: shape trans threads GFLOP/s cpuGFLOP/s. With one thread the
    library runs on this thread, so its CPU time measures the product without the time other
    processes hold the core (the 5th column; "-" otherwise)."""
    flop = 2.0 * m * n * k
    cpu = "%.1f" % (flop / best_cpu / 1e9) if th == 1 and best_cpu > 0 else "-"
    print("%dx%dx%d %s %d %.1f %s" % (m, k, n, tr, th, flop / best / 1e9, cpu), flush=True)


def drive(args, shapes, run):
    """Calls run(m, k, n, trans, threads) for each case read from stdin (--serve) or for the
    sweep of shapes × --trans × --threads."""
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
