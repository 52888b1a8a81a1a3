#!/bin/sh
# Writes checkpoints with cpo-init (GPT-2 f32; Llama GQA bf16 sharded; Llama tied f32), scores
# token lines with cpo-model logprobs, and checks each checkpoint against transformers'
# expectations and a float64 PyTorch forward (scripts/checkpoint/hf_checkpoints.py check).
# Needs Debian's PyTorch (/usr/bin/python3). Run from the repository root.
set -eu
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/cpo-init" ./tools/cpo-init
go build -o "$tmp/cpo-model" ./tools/cpo-model
printf '1 2 3 4 5 6 7 8\n9\n\n10 299 0 5\n' > "$tmp/toks.txt"
"$tmp/cpo-init" -q --out "$tmp/gpt2" --layers 2 --width 64 --vocab 300 --context 32 --seed 1
"$tmp/cpo-init" -q --out "$tmp/llama" --arch llama --layers 2 --heads 4 --kv-heads 2 --width 64 --vocab 300 \
	--context 32 --dtype bf16 --max-shard-size 100KB --seed 2
"$tmp/cpo-init" -q --out "$tmp/llama_tied" --arch llama --tie --layers 3 --heads 2 --width 48 --vocab 300 \
	--context 32 --rope-theta 500 --seed 3
for d in gpt2 llama llama_tied; do
	"$tmp/cpo-model" logprobs -m "$tmp/$d" < "$tmp/toks.txt" > "$tmp/$d.lp"
	/usr/bin/python3 scripts/checkpoint/hf_checkpoints.py check "$tmp/$d" "$tmp/toks.txt" "$tmp/$d.lp"
done
