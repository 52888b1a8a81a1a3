#!/usr/bin/env bash
# Independent-reader check (make check-duckdb): every schema is written by the cpo tools and read
# back by DuckDB, which must see each column with the documented type and the same values.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
here="$root/scripts/duckdb"
bin="$root/bin"
if [ ! -d "$here/node_modules/@duckdb/node-api" ]; then
  (cd "$here" && npm install --no-audit --no-fund --silent)
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for s in example candidates generation judgment score; do
  "$bin/cpo-shard" from-jsonl --schema "$s" -o "$tmp/$s.parquet" "$root/testdata/shards/$s.jsonl"
  "$bin/cpo-shard" schema --name "$s" > "$tmp/$s.schema.json"
  "$bin/cpo-shard" to-jsonl "$tmp/$s.parquet" > "$tmp/$s.rows.jsonl"
  node "$here/check.mjs" "$s" "$tmp/$s.parquet" "$tmp/$s.schema.json" "$tmp/$s.rows.jsonl"
done
# Tool outputs beyond the fixtures, when a demo run left them.
if [ -d "$root/demo-out" ]; then
  find "$root/demo-out" -name '*.parquet' -not -path '*/.*' | head -20 | while read -r f; do
    s=$(cd "$tmp" && "$bin/cpo-shard" schema "$f" | node -e 'let d="";process.stdin.on("data",c=>d+=c).on("end",()=>console.log(JSON.parse(d).schema))')
    "$bin/cpo-shard" schema --name "$s" > "$tmp/x.schema.json"
    "$bin/cpo-shard" to-jsonl "$f" > "$tmp/x.rows.jsonl"
    node "$here/check.mjs" "$s" "$f" "$tmp/x.schema.json" "$tmp/x.rows.jsonl"
  done
fi
