#!/bin/bash
# gemm_table.sh: our Sgemm (pkg/gemm, BenchmarkSgemm) against OpenBLAS's SGEMM (numpy from
# Debian with libopenblas0-pthread) on GPT-2 small's layer shapes (M x K x N, M = 512 tokens),
# NN/NT/TN, 1 and 2 threads. Prints one table: shape, transposition, threads, ours and
# OpenBLAS in GFLOP/s, and the ratio ours/OpenBLAS.
#
# The machines are shared, so the two sides run interleaved case by case (ours, then
# OpenBLAS, on the same case) for ROUNDS rounds (default 2); each side times REPS short runs
# (default 5: two products each for ours, about 50 ms for OpenBLAS) per case and round, and
# each figure is the best of them all: the least disturbed by other processes.
#     scripts/bench/gemm_table.sh         ROUNDS=3 SHAPES=512x768x3072 scripts/bench/gemm_table.sh
# Needs /usr/bin/python3 with numpy and threadpoolctl (Debian: libopenblas0-pthread,
# python3-threadpoolctl). OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are unset for the OpenBLAS
# side only, so that it runs its AVX-512 kernel.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${ROUNDS:-2}
REPS=${REPS:-5} # short timed runs per case and round on each side; the best one counts
SHAPES=${SHAPES:-"512x768x3072 512x3072x768 512x768x2304 512x768x50304"}
TRANS=${TRANS:-"NN NT TN"}
THREADS=${THREADS:-"1 2"}
tmp=$(mktemp -d)
coproc BLAS { env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 scripts/bench/openblas_sgemm.py --serve --reps "$REPS" --min-time 0.05 2>"$tmp/blas.log"; }
trap 'rm -rf "$tmp"' EXIT
go test -c -o "$tmp/gemm.test" ./pkg/gemm
for r in $(seq "$ROUNDS"); do
	for s in $SHAPES; do
		for tt in $TRANS; do
			for th in $THREADS; do
				v=$("$tmp/gemm.test" -test.run '^$' -test.bench "^BenchmarkSgemm\$/^$s\$/^$tt\$/^t$th\$" -test.benchtime 2x -test.count "$REPS" |
					awk '/^BenchmarkSgemm\//{for (i = 1; i <= NF; i++) {if ($i == "GFLOP/s" && $(i-1) > w) w = $(i-1); if ($i == "GFLOP/cpu-s" && $(i-1) > c) c = $(i-1)}}
						END {print (w ? w : 0), (c ? c : "-")}')
				echo "$s $tt $th ${v:-0 -}" >>"$tmp/ours"
				echo "$s $tt $th" >&"${BLAS[1]}"
				read -r line <&"${BLAS[0]}"
				echo "$line" >>"$tmp/theirs"
			done
		done
	done
done
exec {BLAS[1]}>&-
grep -m1 '# blas' "$tmp/blas.log" >&2 || true
echo "# cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), GOMAXPROCS default, rounds: $ROUNDS, load: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
awk 'function upd(a, k, v) { if (v != "-" && (!(k in a) || v + 0 > a[k] + 0)) a[k] = v }
	FNR == NR {k = $1 " " $2 " " $3; upd(o, k, $4); upd(oc, k, $5); next}
	{k = $1 " " $2 " " $3; upd(b, k, $4); upd(bc, k, $5); if (!(k in seen)) {seen[k] = 1; order[++n] = k}}
	END {
		printf "%-14s %-5s %-7s %9s %9s %6s   %9s %9s %6s\n", "shape", "trans", "threads", "ours", "openblas", "ratio", "ours/cpu", "blas/cpu", "ratio"
		for (i = 1; i <= n; i++) {
			k = order[i]; split(k, f, " ")
			cpu = "      -         -      -"
			if ((k in oc) && (k in bc) && bc[k] > 0) cpu = sprintf("%9.1f %9.1f %6.2f", oc[k], bc[k], oc[k] / bc[k])
			printf "%-14s %-5s %-7s %9.1f %9.1f %6.2f   %s\n", f[1], f[2], f[3], o[k], b[k], (b[k] > 0 ? o[k] / b[k] : 0), cpu
		}
		print "# GFLOP/s: wall time, best short run; */cpu: one thread, per CPU-second of that thread"
	}' "$tmp/ours" "$tmp/theirs"
