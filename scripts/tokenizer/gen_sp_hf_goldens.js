// Checks the SentencePiece-style tokenizer.json path against Hugging Face tokenizers (Rust,
// @anush008/tokenizers): converts testdata/tokenizer/sp/llama.model to tokenizer.json with
// `cpo-tokenize convert` (Llama's legacy layout: Prepend + Replace normalizer, byte
// fallback), derives two Metaspace variants (prepend_scheme first without split, as in
// newer Llama files; the old add_prefix_space form, which splits at every "▁") and one
// without byte fallback and fuse_unk (nofuse), encodes
// corpus lines and special-token cases with Hugging Face, and writes
// testdata/tokenizer/sp/{legacy,metaspace_first,metaspace_split,nofuse}.tokenizer.json and
// hf_goldens.jsonl.gz ({"variant", "text", "ids"}). It also reports how often Hugging
// Face's BPE on the converted file differs from spm_encode (llama.goldens.jsonl.gz).
// Run: cd scripts/tokenizer && npm install && node gen_sp_hf_goldens.js
'use strict';
const fs = require('fs');
const path = require('path');
const zlib = require('zlib');
const { execFileSync } = require('child_process');
const { Tokenizer } = require('@anush008/tokenizers');

const root = path.join(__dirname, '..', '..');
const sp = path.join(root, 'testdata', 'tokenizer', 'sp');

async function main() {
  const legacyPath = path.join(sp, 'legacy.tokenizer.json');
  execFileSync('go', ['run', './tools/cpo-tokenize', 'convert', '-t', path.join(sp, 'llama.model'), '-o', legacyPath], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
  const legacy = JSON.parse(fs.readFileSync(legacyPath, 'utf8'));
  const variant = (pre) => JSON.stringify({ ...legacy, normalizer: null, pre_tokenizer: pre,
    decoder: { type: 'Metaspace', replacement: '\u2581', prepend_scheme: pre.prepend_scheme || 'always', split: pre.split !== false } });
  fs.writeFileSync(path.join(sp, 'metaspace_first.tokenizer.json'), variant({ type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'first', split: false }));
  fs.writeFileSync(path.join(sp, 'metaspace_split.tokenizer.json'), variant({ type: 'Metaspace', replacement: '\u2581', add_prefix_space: true }));
  // Without byte fallback and fuse_unk: unknown characters give one <unk> each.
  fs.writeFileSync(path.join(sp, 'nofuse.tokenizer.json'), JSON.stringify({ ...legacy, model: { ...legacy.model, byte_fallback: false, fuse_unk: false } }));

  const spm = zlib.gunzipSync(fs.readFileSync(path.join(sp, 'llama.goldens.jsonl.gz'))).toString('utf8')
    .split('\n').filter((l) => l !== '').map((l) => JSON.parse(l));
  const extra = ['Hi </s> there', '<s>start of text', ' leading space', '  two leading', 'a  b   c', 'tail  ', '</s>', ' </s> x </s>', 'x<s>y', 'an <unk> here', ''];
  const out = [];
  for (const name of ['legacy', 'metaspace_first', 'metaspace_split', 'nofuse']) {
    const hf = Tokenizer.fromFile(path.join(sp, name + '.tokenizer.json'));
    let differ = 0;
    const texts = [...spm.slice(0, name === 'nofuse' ? 300 : 4000).map((g) => g.text), ...extra,
      '\u2603\u2603 two snowmen, \u{1F916}\u{1F916}\u{1F916} robots, \u2603x\u2603'];
    for (let i = 0; i < spm.length; i++) {
      const ids = Array.from((await hf.encode(spm[i].text, null, { addSpecialTokens: false })).getIds());
      if (name === 'legacy' && JSON.stringify(ids) !== JSON.stringify(spm[i].ids)) differ++;
      if (i >= 4000 && name !== 'legacy') break;
    }
    for (const text of texts) {
      const ids = Array.from((await hf.encode(text, null, { addSpecialTokens: false })).getIds());
      out.push(JSON.stringify({ variant: name, text, ids }));
    }
    if (name === 'legacy') console.log(`legacy tokenizer.json under Hugging Face vs spm_encode: ${differ} of ${spm.length} lines differ`);
  }
  fs.writeFileSync(path.join(sp, 'hf_goldens.jsonl.gz'), zlib.gzipSync(Buffer.from(out.join('\n') + '\n'), { level: 9 }));
  console.log(`${out.length} Hugging Face goldens written`);
}
main().catch((e) => { console.error(e); process.exit(1); });
