#!/bin/bash
# gemm_bf16_table.sh: our mixed-precision product (pkg/gemm SgemmMixedBF16,
# BenchmarkSgemmMixedBF16: float32 operands rounded to bfloat16, VDPBF16PS, float32 sums)
# against PyTorch's CPU bfloat16 matmul (Debian's torch 1.13 at /usr/bin/python3; oneDNN's
# brgemm avx512_core_bf16 kernels) on GPT-2 small's layer shapes (M x K x N, M = 512 tokens)
# and the tiny model's LM head (1024x256x8192), NN/NT/TN, 1 and 2 threads. Prints one table:
# shape, transposition, threads, ours and torch in GFLOP/s, and the ratio ours/torch.
#
# Both sides start from float32 operands and convert on every call: torch runs `a @ b` under
# torch.autocast("cpu", dtype=torch.bfloat16) (what an autocast user pays; its output is
# bfloat16, ours float32). MODE=bf16-tensors times torch on operands already in bfloat16
# instead (the matmul alone); the mode is printed in a "# mode:" line on stderr.
#
# The machines are shared, so the two sides run interleaved case by case (ours, then torch,
# on the same case) for ROUNDS rounds (default 2); each side times REPS short runs (default 5:
# two products each for ours, about 50 ms for torch) per case and round, and each figure is
# the best of them all: the least disturbed by other processes.
#     scripts/bench/gemm_bf16_table.sh     ROUNDS=3 SHAPES=512x768x3072 scripts/bench/gemm_bf16_table.sh
# OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are unset for the torch side only.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${ROUNDS:-2}
REPS=${REPS:-5} # short timed runs per case and round on each side; the best one counts
SHAPES=${SHAPES:-"512x768x3072 512x3072x768 512x768x2304 512x768x50304 1024x256x8192"}
TRANS=${TRANS:-"NN NT TN"}
THREADS=${THREADS:-"1 2"}
MODE=${MODE:-autocast}
tmp=$(mktemp -d)
coproc TORCH { env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 scripts/bench/torch_bf16_matmul.py --serve --mode "$MODE" --reps "$REPS" --min-time 0.05 2>"$tmp/torch.log"; }
trap 'rm -rf "$tmp"' EXIT
go test -c -o "$tmp/gemm.test" ./pkg/gemm
for r in $(seq "$ROUNDS"); do
	for s in $SHAPES; do
		for tt in $TRANS; do
			for th in $THREADS; do
				v=$("$tmp/gemm.test" -test.run '^$' -test.bench "^BenchmarkSgemmMixedBF16\$/^$s\$/^$tt\$/^t$th\$" -test.benchtime 2x -test.count "$REPS" |
					awk '/^BenchmarkSgemmMixedBF16\//{for (i = 1; i <= NF; i++) {if ($i == "GFLOP/s" && $(i-1) > w) w = $(i-1); if ($i == "GFLOP/cpu-s" && $(i-1) > c) c = $(i-1)}}
						END {print (w ? w : 0), (c ? c : "-")}')
				echo "$s $tt $th ${v:-0 -}" >>"$tmp/ours"
				echo "$s $tt $th" >&"${TORCH[1]}"
				if ! read -r line <&"${TORCH[0]}"; then
					cat "$tmp/torch.log" >&2
					echo "gemm_bf16_table.sh: torch_bf16_matmul.py gave no answer for $s $tt $th" >&2
					exit 1
				fi
				echo "$line" >>"$tmp/theirs"
			done
		done
	done
done
exec {TORCH[1]}>&-
grep '^# ' "$tmp/torch.log" >&2 || true
echo "# cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), GOMAXPROCS default, rounds: $ROUNDS, load: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
awk 'function upd(a, k, v) { if (v != "-" && (!(k in a) || v + 0 > a[k] + 0)) a[k] = v }
	FNR == NR {k = $1 " " $2 " " $3; upd(o, k, $4); upd(oc, k, $5); next}
	{k = $1 " " $2 " " $3; upd(b, k, $4); upd(bc, k, $5); if (!(k in seen)) {seen[k] = 1; order[++n] = k}}
	END {
		printf "%-14s %-5s %-7s %9s %10s %6s   %9s %10s %6s\n", "shape", "trans", "threads", "ours", "torch-bf16", "ratio", "ours/cpu", "torch/cpu", "ratio"
		for (i = 1; i <= n; i++) {
			k = order[i]; split(k, f, " ")
			cpu = "      -          -      -"
			if ((k in oc) && (k in bc) && bc[k] > 0) cpu = sprintf("%9.1f %10.1f %6.2f", oc[k], bc[k], oc[k] / bc[k])
			printf "%-14s %-5s %-7s %9.1f %10.1f %6.2f   %s\n", f[1], f[2], f[3], o[k], b[k], (b[k] > 0 ? o[k] / b[k] : 0), cpu
		}
		print "# GFLOP/s: wall time, best short run; */cpu: one thread, per CPU-second of that thread"
	}' "$tmp/ours" "$tmp/theirs"
