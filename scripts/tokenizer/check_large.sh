#!/usr/bin/env bash
# Id-for-id check of cpo-tokenize on several MB of text that is not in the goldens: the Go
# sources of net/, crypto/ and unicode/ plus the license texts (~9 MB, ~300k lines),
# against the independent implementations:
#   GPT-2:                       Hugging Face tokenizers (ids.js) on encoder.json + vocab.bpe
#   llama.model, nfkc.model:     spm_encode (Debian's SentencePiece)
#   legacy.tokenizer.json:       Hugging Face tokenizers (ids.js)
#   cpo-tokenize train output:   Hugging Face tokenizers (ids.js) on the saved tokenizer.json
# Needs `npm install` here and spm_encode. Run: scripts/tokenizer/check_large.sh [MAX_BYTES]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
max=${1:-0}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/cpo-tokenize" "$root/tools/cpo-tokenize"
goroot=$(go env GOROOT)
{ find "$goroot/src/net" "$goroot/src/crypto" "$goroot/src/unicode" -name '*.go' | sort | xargs cat; cat /usr/share/common-licenses/*; } > "$tmp/text"
if [ "$max" -gt 0 ]; then head -c "$max" "$tmp/text" > "$tmp/t2" && mv "$tmp/t2" "$tmp/text"; fi
echo >> "$tmp/text"
echo "text: $(wc -c < "$tmp/text") bytes, $(wc -l < "$tmp/text") lines"
mkdir -p "$tmp/gpt2"
gunzip -c "$root/testdata/tokenizer/gpt2/encoder.json.gz" > "$tmp/gpt2/encoder.json"
gunzip -c "$root/testdata/tokenizer/gpt2/vocab.bpe.gz" > "$tmp/gpt2/vocab.bpe"
fail=0
check() { # name, reference ids file, our ids file
  if cmp -s "$2" "$3"; then echo "$1: identical ($(wc -l < "$2") lines)"; else
    echo "$1: DIFFERENT, first differing line:"; diff "$2" "$3" | head -4; fail=1; fi
}
node "$here/ids.js" "$tmp/gpt2" < "$tmp/text" > "$tmp/ref"
"$tmp/cpo-tokenize" ids -t "$tmp/gpt2" < "$tmp/text" > "$tmp/ours"
check "gpt2 vs Hugging Face" "$tmp/ref" "$tmp/ours"
for m in llama nfkc; do
  spm_encode --model="$root/testdata/tokenizer/sp/$m.model" --output_format=id < "$tmp/text" > "$tmp/ref"
  "$tmp/cpo-tokenize" ids -t "$root/testdata/tokenizer/sp/$m.model" --special-in-text text < "$tmp/text" > "$tmp/ours"
  check "$m.model vs spm_encode" "$tmp/ref" "$tmp/ours"
done
node "$here/ids.js" "$root/testdata/tokenizer/sp/legacy.tokenizer.json" < "$tmp/text" > "$tmp/ref"
"$tmp/cpo-tokenize" ids -t "$root/testdata/tokenizer/sp/legacy.tokenizer.json" < "$tmp/text" > "$tmp/ours"
check "legacy.tokenizer.json vs Hugging Face" "$tmp/ref" "$tmp/ours"
# A vocabulary trained by cpo-tokenize train, saved as tokenizer.json, read by Hugging Face.
head -c 3000000 "$tmp/text" > "$tmp/train.txt"
"$tmp/cpo-tokenize" train --vocab-size 8192 --out "$tmp/trained" "$tmp/train.txt" > /dev/null 2>&1
node "$here/ids.js" "$tmp/trained" < "$tmp/text" > "$tmp/ref"
"$tmp/cpo-tokenize" ids -t "$tmp/trained" < "$tmp/text" > "$tmp/ours"
check "trained tokenizer.json vs Hugging Face" "$tmp/ref" "$tmp/ours"
exit $fail
