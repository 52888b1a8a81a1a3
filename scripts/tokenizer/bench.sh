#!/usr/bin/env bash
# Single-thread GPT-2 encoding throughput, side by side on the same text and machine:
# pkg/tokenizer (Go benchmark, warm and cold word cache) and the independent
# implementations of bench.js (Hugging Face tokenizers, js-tiktoken). Needs `npm install`
# here. Run: scripts/tokenizer/bench.sh [seconds per implementation]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
secs=${1:-3}
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
(cd "$here/../.." && GOMAXPROCS=1 go test -run '^$' -bench 'EncodeGPT2' -benchtime "${secs}s" ./pkg/tokenizer) |
  awk '/^BenchmarkEncodeGPT2/ { for (i = 1; i <= NF; i++) if ($(i+1) == "MB/s") printf "%-34s %7.2f MB/s\n", "pkg/tokenizer " ($1 ~ /Cold/ ? "(cold cache)" : "(Go)"), $i }'
node "$here/bench.js" "$secs"
