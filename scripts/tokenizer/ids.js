// Prints the Hugging Face tokenizers ids of each line of standard input, space-separated,
// one output line per input line, no special tokens added: the reference for
// `cpo-tokenize ids`. TOKENIZER is a tokenizer.json, or a directory holding one or
// encoder.json + vocab.bpe (GPT-2; "<|endoftext|>" an added special token).
// Run: node ids.js TOKENIZER < lines.txt > ids.txt
//      diff <(cpo-tokenize ids -t TOKENIZER < lines.txt) ids.txt
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { Tokenizer } = require('@anush008/tokenizers');

function load(p) {
  if (fs.statSync(p).isFile()) return Tokenizer.fromFile(p);
  if (fs.existsSync(path.join(p, 'tokenizer.json'))) return Tokenizer.fromFile(path.join(p, 'tokenizer.json'));
  const vocab = JSON.parse(fs.readFileSync(path.join(p, 'encoder.json'), 'utf8'));
  const merges = fs.readFileSync(path.join(p, 'vocab.bpe'), 'utf8').split('\n')
    .filter((l, i) => l !== '' && !(i === 0 && l.startsWith('#version')));
  const added = vocab['<|endoftext|>'] === undefined ? [] : [{ id: vocab['<|endoftext|>'], content: '<|endoftext|>', single_word: false, lstrip: false, rstrip: false, normalized: true, special: true }];
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ids-'));
  const f = path.join(tmp, 'tokenizer.json');
  fs.writeFileSync(f, JSON.stringify({
    version: '1.0', truncation: null, padding: null, added_tokens: added, normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: null, decoder: null,
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '', fuse_unk: false, byte_fallback: false, vocab, merges },
  }));
  const t = Tokenizer.fromFile(f);
  fs.rmSync(tmp, { recursive: true });
  return t;
}

async function main() {
  const tok = load(process.argv[2]);
  // Lines end at "\n" only, as in cpo-tokenize ids ("\r" stays part of the line).
  const lines = fs.readFileSync(0, 'utf8').split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const out = [];
  for (const line of lines) {
    out.push(Array.from((await tok.encode(line, null, { addSpecialTokens: false })).getIds()).join(' '));
    if (out.length >= 1000) { process.stdout.write(out.join('\n') + '\n'); out.length = 0; }
  }
  if (out.length) process.stdout.write(out.join('\n') + '\n');
}
main().catch((e) => { console.error(e); process.exit(1); });
