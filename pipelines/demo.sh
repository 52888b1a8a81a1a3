#!/usr/bin/env bash
# demo.sh — the main job on the built-in default (make demo): the paper's protocol in miniature,
# on the CPU, with nothing downloaded.
#
#   data (made here) → tokenizer (trained here) → MLE (= π_ref) → MixN negatives (3 BN + 5 MN
#   + 3 TN) → ranking by embedding cosine → CPO (eq. 7) and ranked CPO (eq. 8), β = 5 →
#   WiSE-FT ensembles over α ∈ {0, .1, .3, .5, .7, .9} → greedy and top-k sampling → judged by a
#   larger MLE model (likelihood judge, both orders) → win rates with 95% CIs, reverse-KL (eq. 9)
#   and NLL (eq. 10) → tables (Markdown, CSV) and a Figure-1-like plot.
#
# Environment: OUT (default demo-out), BIN (default bin), DEMO_SCALE (1 = default; 0.5 halves
# data and steps for a quicker look). The result is reported honestly, whichever model wins.
set -euo pipefail
OUT=${OUT:-demo-out}
BIN=${BIN:-bin}
SCALE=${DEMO_SCALE:-1}
SEED=${SEED:-1}
scale() { awk -v s="$SCALE" -v n="$1" 'BEGIN { v = int(n * s + 0.5); print (v < 1 ? 1 : v) }'; }
N_TRAIN=$(scale 4000)     # MLE training rows
N_CPO=$(scale 1024)       # rows that get negatives and CPO training
N_TEST=$(scale 200)       # test prompts generated and judged (the paper: 1000)
MLE_EPOCHS=${MLE_EPOCHS:-8}
JUDGE_EPOCHS=${JUDGE_EPOCHS:-6}
CPO_EPOCHS=${CPO_EPOCHS:-2}
ALPHAS=0,0.1,0.3,0.5,0.7,0.9
HERE=$(cd "$(dirname "$0")" && pwd)
export PATH="$(cd "$BIN" && pwd):$PATH"

t0=$(date +%s)
stage() { printf '\n== [%4ds] %s\n' "$(( $(date +%s) - t0 ))" "$*" >&2; }
mkdir -p "$OUT"

stage "data: $N_TRAIN train and $N_TEST test instructions with known answers, and a corpus"
cpo-demodata -o "$OUT/data" --train "$N_TRAIN" --test "$N_TEST" --paragraphs "$(scale 1500)" --seed "$SEED"

stage "tokenizer: byte-level BPE trained on the corpus and the training data"
cpo-tokenize train --vocab-size 1024 -o "$OUT/tokenizer" "$OUT/data/corpus.txt" "$OUT/data/train.jsonl"
EOS=$(cpo-tokenize info -t "$OUT/tokenizer" | awk '$1 == "eos" { print $2 }')

stage "tokenize (a short Q/A prompt template, EOS appended)"
cpo-tokenize encode -q -t "$OUT/tokenizer" --template "$HERE/demo-template.txt" --test-frac 0 --max-response-tokens 64 -o "$OUT/train.parquet" "$OUT/data/train.jsonl"
cpo-tokenize encode -q -t "$OUT/tokenizer" --template "$HERE/demo-template.txt" --test-frac 1 --max-response-tokens 64 -o "$OUT/test.parquet" "$OUT/data/test.jsonl"
cpo-shard stats "$OUT/train.parquet" >&2

stage "models: the policy (GPT-2 style, 4 layers, width 128) and a larger judge (4 layers, width 160)"
cpo-init -q --arch gpt2 --layers 4 --heads 4 --width 128 --context 256 --vocab 1024 --eos "$EOS" --bos "$EOS" \
  --seed "$SEED" --tokenizer "$OUT/tokenizer/tokenizer.json" -o "$OUT/init"
cpo-init -q --arch gpt2 --layers 4 --heads 4 --width 160 --context 256 --vocab 1024 --eos "$EOS" --bos "$EOS" \
  --seed "$((SEED + 1))" --tokenizer "$OUT/tokenizer/tokenizer.json" -o "$OUT/judge-init"

stage "MLE: next-token training of the policy (this model is π_ref)"
cpo-train --objective mle -m "$OUT/init" -o "$OUT/mle" --lr 2e-3 --weight-decay 0.05 --batch 32 --micro-batch 32 \
  --epochs "$MLE_EPOCHS" --schedule cosine --warmup 30 --seed "$SEED" --metrics "$OUT/mle.metrics.jsonl" --log-every 50 "$OUT/train.parquet"

stage "MLE: the larger judge model"
cpo-train --objective mle -m "$OUT/judge-init" -o "$OUT/judge" --lr 1.5e-3 --weight-decay 0.05 --batch 32 --micro-batch 32 \
  --epochs "$JUDGE_EPOCHS" --schedule cosine --warmup 30 --seed "$SEED" --log-every 100 "$OUT/train.parquet"

stage "negatives: MixN (3 BN + 5 MN + 3 TN, K = 12) from π_ref for $N_CPO rows"
cpo-shard sample --n "$N_CPO" --seed "$SEED" "$OUT/train.parquet" \
  | cpo-negatives -q -m "$OUT/mle" --mix bn=3,mn=5,tn=3 --seed "$SEED" -o "$OUT/candidates.parquet"
stage "ranking: cosine similarity of mean-pooled embeddings to the ground truth; reference log-probs"
cpo-embed -q -m "$OUT/mle" "$OUT/candidates.parquet" \
  | cpo-train precompute-ref -q -m "$OUT/mle" -o "$OUT/candidates-ranked.parquet"

for obj in cpo cpo-rank; do
  name=mixn; [ "$obj" = cpo-rank ] && name=mixnr
  stage "CPO: $obj (eq. $([ "$obj" = cpo ] && echo 7 || echo 8)), β = 5, from the MLE model → $name"
  cpo-train --objective "$obj" -m "$OUT/mle" -o "$OUT/$name" --beta 5 --lr 1e-4 --weight-decay 0.05 --batch 32 --micro-batch 8 \
    --epochs "$CPO_EPOCHS" --seed "$SEED" --metrics "$OUT/$name.metrics.jsonl" --log-every 8 "$OUT/candidates-ranked.parquet"
  stage "WiSE-FT: θ = a·θ_MLE + (1−a)·θ_$name for a in $ALPHAS"
  cpo-ensemble -q --mle "$OUT/mle" --cpo "$OUT/$name" --alpha "$ALPHAS" -o "$OUT/models/$name-a{alpha}"
done
cp -r "$OUT/mle" "$OUT/models/mle.tmp" && rm -rf "$OUT/models/mle" && mv "$OUT/models/mle.tmp" "$OUT/models/mle"

stage "training curves: loss, rewards/accuracies, margins → $OUT/curves/"
cpo-train plot --out "$OUT/curves" "$OUT/mle.metrics.jsonl" "$OUT/mixn.metrics.jsonl" "$OUT/mixnr.metrics.jsonl" >&2

stage "generate: greedy and top-k 50 sampling for $N_TEST test prompts, every model"
rm -rf "$OUT/generations"; mkdir -p "$OUT/generations"
for m in "$OUT"/models/*/; do
  m=${m%/}; name=$(basename "$m")
  cpo-generate -q -m "$m" --model-name "$name" --strategy greedy --max-new-tokens 48 --limit "$N_TEST" \
    -o "$OUT/generations/$name-greedy.parquet" "$OUT/test.parquet"
  cpo-generate -q -m "$m" --model-name "$name" --strategy sample --top-k 50 --top-p 1 --max-new-tokens 48 \
    --limit "$N_TEST" --seed "$SEED" -o "$OUT/generations/$name-topk50.parquet" "$OUT/test.parquet"
done

stage "judge: likelihood judge under the larger model, each pair in both orders"
cpo-judge -q --judge likelihood --judge-model "$OUT/judge" --no-cache -o "$OUT/judgments.parquet" "$OUT/generations"

stage "score: exact answers, win rates vs the ground truth (95% bootstrap CIs), paired difference to MLE, reverse-KL and NLL"
cpo-score -q --baseline mle --table-columns alpha --generations "$OUT/generations" --scorer-model "$OUT/judge" --exact-match \
  --markdown "$OUT/table.md" --csv "$OUT/table.csv" --plot "$OUT/figure1.png" --plot-metric exact_match,win_rate,nll \
  -o "$OUT/scores.parquet" "$OUT/judgments.parquet" > /dev/null

stage "done in $(( $(date +%s) - t0 ))s"
echo
echo "Tables (also $OUT/table.md, $OUT/table.csv; plot $OUT/figure1.png; training curves $OUT/curves/):"
cat "$OUT/table.md"
