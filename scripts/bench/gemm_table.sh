#!/bin/bash
# gemm_table.sh: our matrix products (pkg/gemm) against an independent library, on GPT-2 small's
# layer shapes (M x K x N, M = 512 tokens), NN/NT/TN, 1 and 2 threads. Prints one table:
# shape, transposition, threads, ours and theirs in GFLOP/s, and the ratio ours/theirs.
#
#   PRECISION=fp32 (default): Sgemm (BenchmarkSgemm) against OpenBLAS's SGEMM (numpy from Debian
#     with libopenblas0-pthread and python3-threadpoolctl; scripts/bench/openblas_sgemm.py).
#   PRECISION=bf16: SgemmMixedBF16 (BenchmarkSgemmMixedBF16: float32 operands rounded to
#     bfloat16, VDPBF16PS, float32 sums) against PyTorch's CPU bfloat16 matmul (Debian's torch
#     1.13; oneDNN's avx512_core_bf16 kernels; scripts/bench/torch_bf16_matmul.py), adding the
#     tiny model's lm head (1024x256x8192) to the shapes. Both sides start from float32 operands
#     and convert on every call: torch runs `a @ b` under torch.autocast("cpu", bfloat16) (its
#     output is bfloat16, ours float32); MODE=bf16-tensors times torch on operands already in
#     bfloat16 instead (the matmul alone).
#
# The machines are shared, so the two sides run interleaved case by case (ours, then theirs, on
# the same case) for ROUNDS rounds (default 2); each side times REPS short runs (default 5: two
# products each for ours, about 50 ms for theirs) per case and round, and each figure is the
# best of them all: the least disturbed by other processes.
#     scripts/bench/gemm_table.sh     ROUNDS=3 SHAPES=512x768x3072 PRECISION=bf16 scripts/bench/gemm_table.sh
# OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are unset for the reference side only, so that OpenBLAS
# runs its AVX-512 kernel.
set -euo pipefail
cd "$(dirname "$0")/../.."
PRECISION=${PRECISION:-fp32}
ROUNDS=${ROUNDS:-2}
REPS=${REPS:-5} # short timed runs per case and round on each side; the best one counts
TRANS=${TRANS:-"NN NT TN"}
THREADS=${THREADS:-"1 2"}
MODE=${MODE:-autocast}
case "$PRECISION" in
fp32)
	bench=BenchmarkSgemm name=openblas
	SHAPES=${SHAPES:-"512x768x3072 512x3072x768 512x768x2304 512x768x50304"}
	ref=(scripts/bench/openblas_sgemm.py --serve) ;;
bf16)
	bench=BenchmarkSgemmMixedBF16 name=torch-bf16
	SHAPES=${SHAPES:-"512x768x3072 512x3072x768 512x768x2304 512x768x50304 1024x256x8192"}
	ref=(scripts/bench/torch_bf16_matmul.py --serve --mode "$MODE") ;;
*) echo "gemm_table.sh: PRECISION=$PRECISION: want fp32 or bf16" >&2; exit 2 ;;
esac
tmp=$(mktemp -d)
coproc REF { env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 "${ref[@]}" --reps "$REPS" --min-time 0.05 2>"$tmp/ref.log"; }
trap 'rm -rf "$tmp"' EXIT
go test -c -o "$tmp/gemm.test" ./pkg/gemm
for r in $(seq "$ROUNDS"); do
	for s in $SHAPES; do
		for tt in $TRANS; do
			for th in $THREADS; do
				v=$("$tmp/gemm.test" -test.run '^$' -test.bench "^$bench\$/^$s\$/^$tt\$/^t$th\$" -test.benchtime 2x -test.count "$REPS" |
					awk -v b="^$bench/" '$0 ~ b {for (i = 1; i <= NF; i++) {if ($i == "GFLOP/s" && $(i-1) > w) w = $(i-1); if ($i == "GFLOP/cpu-s" && $(i-1) > c) c = $(i-1)}}
						END {print (w ? w : 0), (c ? c : "-")}')
				echo "$s $tt $th ${v:-0 -}" >>"$tmp/ours"
				echo "$s $tt $th" >&"${REF[1]}"
				if ! read -r line <&"${REF[0]}"; then
					cat "$tmp/ref.log" >&2
					echo "gemm_table.sh: ${ref[0]} gave no answer for $s $tt $th" >&2
					exit 1
				fi
				echo "$line" >>"$tmp/theirs"
			done
		done
	done
done
exec {REF[1]}>&-
grep '^# ' "$tmp/ref.log" >&2 || true
echo "# cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), GOMAXPROCS default, rounds: $ROUNDS, load: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
awk -v name="$name" 'function upd(a, k, v) { if (v != "-" && (!(k in a) || v + 0 > a[k] + 0)) a[k] = v }
	FNR == NR {k = $1 " " $2 " " $3; upd(o, k, $4); upd(oc, k, $5); next}
	{k = $1 " " $2 " " $3; upd(b, k, $4); upd(bc, k, $5); if (!(k in seen)) {seen[k] = 1; order[++n] = k}}
	END {
		printf "%-14s %-5s %-7s %9s %10s %6s   %9s %10s %6s\n", "shape", "trans", "threads", "ours", name, "ratio", "ours/cpu", "ref/cpu", "ratio"
		for (i = 1; i <= n; i++) {
			k = order[i]; split(k, f, " ")
			cpu = "      -          -      -"
			if ((k in oc) && (k in bc) && bc[k] > 0) cpu = sprintf("%9.1f %10.1f %6.2f", oc[k], bc[k], oc[k] / bc[k])
			printf "%-14s %-5s %-7s %9.1f %10.1f %6.2f   %s\n", f[1], f[2], f[3], o[k], b[k], (b[k] > 0 ? o[k] / b[k] : 0), cpu
		}
		print "# GFLOP/s: wall time, best short run; */cpu: one thread, per CPU-second of that thread"
	}' "$tmp/ours" "$tmp/theirs"
