#!/usr/bin/env bash
# Trains three small SentencePiece BPE models using Debian's spm_train
# and encodes golden ids with spm_encode (the reference implementation):
#   llama.model: Llama-style (identity normalizer, no whitespace removal, split digits,
#                whitespace-only pieces), vocab 2000;
#   nfkc.model:  SentencePiece defaults (nmt_nfkc precompiled normalizer, extra whitespace
#                removed), vocab 1000;
#   nobyte.model: no byte fallback, character coverage 0.98 (rare characters become <unk>,
#                runs of them fused) and user-defined symbols "the", "http", "<sep>"
#                (matched whole, even inside words), vocab 500; goldens for every 7th line.
# Writes testdata/tokenizer/sp/{llama,nfkc,nobyte}.model and .goldens.jsonl.gz, one
# JSON object {"text": line, "ids": [...]} per input line (spm_encode reads lines).
# spm_train records the temporary input path in each model's trainer spec, so a rerun
# changes the .model bytes but not the pieces, the ids or any fingerprint.
# Run: cd scripts/tokenizer && npm install && ./gen_sp_goldens.sh
set -euo pipefail
cd "$(dirname "$0")"
out=../../testdata/tokenizer/sp
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The corpus, one line per sentence; empty lines dropped for training.
node -e '
const { corpus } = require("./corpus");
const lines = corpus().join("\n").split("\n");
process.stdout.write(lines.join("\n") + "\n");
' > "$tmp/lines.txt"
grep -v '^$' "$tmp/lines.txt" > "$tmp/train.txt"
common=(--input="$tmp/train.txt" --model_type=bpe --byte_fallback=true --max_sentence_length=100000
  --num_threads=2 --minloglevel=2 --input_sentence_size=0)
spm_train "${common[@]}" --model_prefix="$tmp/llama" --vocab_size=2000 \
  --normalization_rule_name=identity --remove_extra_whitespaces=false --split_digits=true \
  --allow_whitespace_only_pieces=true --character_coverage=0.9995
spm_train "${common[@]}" --model_prefix="$tmp/nfkc" --vocab_size=1000 --character_coverage=0.995
spm_train --input="$tmp/train.txt" --model_type=bpe --max_sentence_length=100000 --num_threads=2 \
  --minloglevel=2 --input_sentence_size=0 --model_prefix="$tmp/nobyte" --vocab_size=500 \
  --character_coverage=0.98 --normalization_rule_name=identity --remove_extra_whitespaces=false \
  --user_defined_symbols=the,http,\<sep\>
awk 'NR % 7 == 1' "$tmp/lines.txt" > "$tmp/lines7.txt"
for m in llama nfkc nobyte; do
  lines="$tmp/lines.txt"
  [ "$m" = nobyte ] && lines="$tmp/lines7.txt"
  cp "$tmp/$m.model" "$out/$m.model"
  spm_encode --model="$tmp/$m.model" --output_format=id < "$lines" > "$tmp/$m.ids"
  node -e '
const fs = require("fs"), zlib = require("zlib");
const [linesPath, idsPath, outPath] = process.argv.slice(1);
const lines = fs.readFileSync(linesPath, "utf8").split("\n"); lines.pop();
const ids = fs.readFileSync(idsPath, "utf8").split("\n"); ids.pop();
if (lines.length !== ids.length) throw new Error(`${lines.length} lines but ${ids.length} id lines`);
const out = lines.map((text, i) => JSON.stringify({ text, ids: ids[i] === "" ? [] : ids[i].split(" ").map(Number) }));
fs.writeFileSync(outPath, zlib.gzipSync(Buffer.from(out.join("\n") + "\n"), { level: 9 }));
console.log(outPath, lines.length, "lines");
 ' "$lines" "$tmp/$m.ids" "$out/$m.goldens.jsonl.gz"
done
