#!/usr/bin/env bash
# make bench: every speed figure of the project in one run, with the independent implementation
# measured side by side in the same run where there is one, and ratios (the machines are shared,
# so absolute times drift; ratios of interleaved runs are what to compare).
# Long (tens of minutes on 2 cores). Sections can be picked: SECTIONS="shard train" make bench.
set -uo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-bin}
SECTIONS=${SECTIONS:-"shard tokenizer gemm model train decode negatives"}
# PyTorch runs on OpenBLAS: OPENBLAS_CORETYPE (set on these machines to Haswell) would force its
# AVX2 kernel and halve it, so it is unset for the reference runs alone.
py="env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3"
has() { case " $SECTIONS " in *" $1 "*) return 0 ;; esac; return 1; }
hdr() { printf '\n### %s\n\n' "$*"; }
jget() { sed -n "s/.*\"$1\": *\([0-9.e+-]*\).*/\1/p"; }

if has shard; then
  hdr "Shards: 10 million token ids in list<int32> columns, one core (targets: read 100, write 30 Mtokens/s)"
  GOMAXPROCS=1 go test -run '^$' -bench 'Shard' -benchtime 3x ./pkg/shard | grep -E '^Benchmark'
fi
if has tokenizer; then
  hdr "Tokenizer: GPT-2 encoding MB/s, one thread, ours beside Hugging Face tokenizers and tiktoken"
  if command -v npm >/dev/null; then (cd scripts/tokenizer && npm install --no-audit --no-fund >/dev/null 2>&1 && ./bench.sh 3); else echo "npm missing: skipped"; fi
fi
if has gemm; then
  hdr "SGEMM: ours against OpenBLAS (AVX-512 kernel) on GPT-2 small's shapes"
  bash scripts/bench/gemm_table.sh || echo "(gemm table failed: needs python3-numpy with OpenBLAS, see the script)"
  hdr "Mixed-precision products (SgemmMixedBF16, VDPBF16PS) against PyTorch's bf16 autocast matmul (oneDNN), float32 inputs converted on every call by both"
  PRECISION=bf16 bash scripts/bench/gemm_table.sh || echo "(bf16 gemm table failed: needs Debian's python3-torch, see the script)"
fi
if has model; then
  hdr "Model: forward+backward per step and peak memory"
  go test -run '^$' -bench 'StepTiny$|StepTinyMixedBF16|StepTinyLlama|DecodeTiny' -benchtime 5x ./pkg/model | grep -E '^Benchmark'
fi
if has train; then
  hdr "Training step (forward+backward+AdamW): cpo-train bench against PyTorch ($($py -c 'import torch;print(torch.__version__)' 2>/dev/null)), float32 and mixed bf16"
  # bf16: ours rounds the inputs of the dense layers' products to bfloat16 (cpo-train --precision
  # bf16); PyTorch runs the forward pass under CPU autocast (oneDNN bf16 products whose outputs
  # are bf16 too). fp32 against fp32 is the like-for-like comparison.
  printf '| config | batch x len | precision | ours ms/step | PyTorch ms/step | ours/PyTorch |\n|---|---|---|---|---|---|\n'
  for spec in "tiny 8 128 5" "gpt2-small 4 64 3"; do
    for prec in fp32 bf16; do
      set -- $spec
      ours=$("$BIN/cpo-train" bench --model "$1" --batch "$2" --seq-len "$3" --steps "$4" --warmup 1 --precision "$prec" 2>&1 | sed -n "s/.*: \([0-9.]*\) ms\/step (median.*/\1/p" | head -1)
      theirs=$($py scripts/bench/train_torch.py --config "$1" --batch "$2" --seq-len "$3" --steps "$4" --warmup 1 --precision "$prec" | jget ms_median)
      ratio=$(awk -v a="$ours" -v b="$theirs" 'BEGIN { if (a > 0 && b > 0) printf "%.2f", a / b; else print "-" }')
      printf '| %s | %sx%s | %s | %s | %s | %s |\n' "$1" "$2" "$3" "$prec" "${ours:--}" "${theirs:--}" "$ratio"
    done
  done
  echo
  "$BIN/cpo-train" bench --model tiny --objective mle --batch 12 --seq-len 64 --steps 5
  "$BIN/cpo-train" bench --model tiny --objective cpo -k 12 --batch 1 --seq-len 64 --steps 5
  "$BIN/cpo-train" bench --model tiny --objective cpo -k 12 --batch 1 --seq-len 64 --steps 5 --ref-pass
  "$BIN/cpo-train" bench --model gpt2-small --objective mle --batch 12 --seq-len 64 --steps 3 --warmup 1
  "$BIN/cpo-train" bench --model gpt2-small --objective cpo -k 12 --batch 1 --seq-len 64 --steps 3 --warmup 1
  go test -run '^$' -bench 'CPOOverMLE|AdamW' -benchtime 10x ./pkg/train ./pkg/optim | grep -E '^Benchmark'
fi
if has decode; then
  hdr "Greedy decoding of GPT-2 small (random weights, prompt 64, 64 new tokens, KV cache): ms per step, ours beside PyTorch (float32) (target at batch 1: ours/PyTorch <= 0.33)"
  ours32=$("$BIN/cpo-generate" bench --model gpt2-small --json 2>/dev/null)
  ours16=$("$BIN/cpo-generate" bench --model gpt2-small --bf16 --json 2>/dev/null)
  theirs=$($py scripts/bench/generate_torch.py --config gpt2-small --json)
  printf '| batch | ours fp32 | ours bf16 weights | PyTorch fp32 | fp32/PyTorch | bf16/PyTorch |\n|---|---|---|---|---|---|\n'
  for B in 1 16; do
    pick() { grep "\"batch\": *$B," | jget decode_ms_per_step; }
    a=$(echo "$ours32" | sed 's/,"/, "/g; s/":/": /g' | pick)
    b=$(echo "$ours16" | sed 's/,"/, "/g; s/":/": /g' | pick)
    t=$(echo "$theirs" | pick)
    awk -v B="$B" -v a="$a" -v b="$b" -v t="$t" 'BEGIN { if (t > 0) printf "| %s | %.1f | %.1f | %.1f | %.2f | %.2f |\n", B, a, b, t, a / t, b / t; else printf "| %s | %s | %s | - | - | - |\n", B, a, b }'
  done
fi
if has negatives; then
  hdr "Negatives and embedding throughput (tiny model)"
  go test ./pkg/negatives -run '^$' -bench 'Kinds|ShardIO' -benchtime 3x | grep -E '^Benchmark'
  go test ./pkg/embed -run '^$' -bench . -benchtime 3x | grep -E '^Benchmark'
fi
