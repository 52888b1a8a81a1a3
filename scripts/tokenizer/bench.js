// Times independent GPT-2 encoders on the benchmark text of pkg/tokenizer's
// BenchmarkEncodeGPT2 (testdata/tokenizer/gpt2/bench_en.txt.gz), single-threaded, warm
// (one untimed pass first), and prints MB/s (10^6 bytes per second) per implementation:
//   Hugging Face tokenizers (Rust, @anush008/tokenizers) and js-tiktoken r50k_base (pure JS).
// (gpt-3-encoder is left out: its BPE is quadratic in word length, about 0.01 MB/s here.)
// Run: cd scripts/tokenizer && npm install && node bench.js [seconds per implementation]
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const zlib = require('zlib');
const { Tokenizer } = require('@anush008/tokenizers');
const { getEncoding } = require('js-tiktoken');

const seconds = Number(process.argv[2] || 3);
const dir = path.join(__dirname, '..', '..', 'testdata', 'tokenizer', 'gpt2');
const text = zlib.gunzipSync(fs.readFileSync(path.join(dir, 'bench_en.txt.gz'))).toString('utf8');
const nbytes = Buffer.byteLength(text);

function hfJSON() {
  const vocab = JSON.parse(zlib.gunzipSync(fs.readFileSync(path.join(dir, 'encoder.json.gz'))).toString('utf8'));
  const merges = zlib.gunzipSync(fs.readFileSync(path.join(dir, 'vocab.bpe.gz'))).toString('utf8')
    .split('\n').filter((l, i) => l !== '' && !(i === 0 && l.startsWith('#version')));
  return JSON.stringify({
    version: '1.0', truncation: null, padding: null, added_tokens: [], normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: null, decoder: null,
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '', fuse_unk: false, byte_fallback: false, vocab, merges },
  });
}

async function time(name, fn) {
  const n = (await fn()).length; // warm-up
  let runs = 0;
  const t0 = process.hrtime.bigint();
  let el = 0;
  while (el < seconds) {
    await fn();
    runs++;
    el = Number(process.hrtime.bigint() - t0) / 1e9;
  }
  console.log(`${name.padEnd(34)} ${(nbytes * runs / el / 1e6).toFixed(2).padStart(7)} MB/s  (${nbytes} bytes, ${n} tokens, ${runs} runs)`);
}

async function main() {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gpt2-'));
  fs.writeFileSync(path.join(tmp, 'tokenizer.json'), hfJSON());
  const hf = Tokenizer.fromFile(path.join(tmp, 'tokenizer.json'));
  fs.rmSync(tmp, { recursive: true });
  const tt = getEncoding('r50k_base');
  await time('huggingface-tokenizers (Rust)', async () => Array.from((await hf.encode(text, null, { addSpecialTokens: false })).getIds()));
  await time('js-tiktoken r50k_base (JS)', async () => tt.encode(text, [], []));
}
main().catch((e) => { console.error(e); process.exit(1); });
