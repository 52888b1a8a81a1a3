#!/bin/bash
# gemm_table.sh: our Sgemm (pkg/gemm, BenchmarkSgemm) against OpenBLAS's SGEMM (numpy from
# Debian with libopenblas0-pthread) on GPT-2 small's layer shapes, NN/NT/TN, 1 and 2 threads.
# Prints one table: shape (MxKxN), transposition, threads, ours, OpenBLAS (GFLOP/s), ratio.
#
# The machines are shared, so the two sides run interleaved, shape by shape, for ROUNDS rounds
# (default 2), and each figure is the best round. Run from anywhere:
#     scripts/bench/gemm_table.sh            ROUNDS=3 scripts/bench/gemm_table.sh
# Needs /usr/bin/python3 with numpy and threadpoolctl (apt-get install libopenblas0-pthread
# python3-threadpoolctl). OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE are unset for the OpenBLAS
# side only, so that it uses its AVX-512 kernel.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${ROUNDS:-2}
SHAPES=${SHAPES:-"512x768x3072 512x3072x768 512x768x2304 512x768x50304"}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go test -c -o "$tmp/gemm.test" ./pkg/gemm
for r in $(seq "$ROUNDS"); do
	for s in $SHAPES; do
		"$tmp/gemm.test" -test.run '^$' -test.bench "^BenchmarkSgemm\$/^$s\$/" -test.benchtime 5x |
			awk '/^BenchmarkSgemm\//{split($1, p, "/"); t=p[4]; sub(/-[0-9]+$/, "", t); sub(/^t/, "", t);
				for (i = 1; i <= NF; i++) if ($i == "GFLOP/s") v = $(i-1); print p[2], p[3], t, v}' >>"$tmp/ours"
		env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 scripts/bench/openblas_sgemm.py \
			--shapes "$s" --reps 2 --min-time 0.2 2>>"$tmp/blas.log" >>"$tmp/theirs"
	done
done
grep -m1 '# blas' "$tmp/blas.log" >&2 || true
awk 'FNR == NR {k = $1 " " $2 " " $3; if (!(k in o) || $4 > o[k]) o[k] = $4; next}
	{k = $1 " " $2 " " $3; if (!(k in b) || $4 > b[k]) b[k] = $4; if (!(k in seen)) {seen[k] = 1; order[++n] = k}}
	END {
		printf "%-14s %-5s %-7s %9s %9s %6s\n", "shape", "trans", "threads", "ours", "openblas", "ratio"
		for (i = 1; i <= n; i++) {
			k = order[i]; split(k, f, " ")
			printf "%-14s %-5s %-7s %9.1f %9.1f %6.2f\n", f[1], f[2], f[3], o[k], b[k], (b[k] > 0 ? o[k] / b[k] : 0)
		}
	}' "$tmp/ours" "$tmp/theirs"
