// Deterministic test corpus for tokenizer goldens: English prose (Go's documentation and
// license texts installed on the machine), code (Go standard library sources), and
// generated Unicode stress text. Used by gen_gpt2_goldens.js and gen_sp_goldens.js.
'use strict';
const fs = require('fs');
const path = require('path');
const { execSync } = require('child_process');

// mulberry32: small seeded PRNG so the corpus is the same on every run.
function rng(seed) {
  let a = seed >>> 0;
  return function () {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function goroot() {
  return execSync('go env GOROOT').toString().trim();
}

function stripHTML(s) {
  return s
    .replace(/<script[\s\S]*?<\/script>/g, '')
    .replace(/<[^>]+>/g, '')
    .replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'").replace(/&nbsp;/g, '\u00a0').replace(/&amp;/g, '&');
}

// englishText returns several hundred KB of English prose (BSD-licensed Go documentation
// and the license texts), the benchmark text.
function englishText() {
  const root = goroot();
  const parts = [];
  for (const f of ['go_spec.html', 'go_mem.html', 'asm.html']) {
    parts.push(stripHTML(fs.readFileSync(path.join(root, 'doc', f), 'utf8')));
  }
  for (const f of ['GPL-3', 'Apache-2.0', 'LGPL-3', 'MPL-2.0']) {
    const p = path.join('/usr/share/common-licenses', f);
    if (fs.existsSync(p)) parts.push(fs.readFileSync(p, 'utf8'));
  }
  return parts.join('\n\n');
}

function codeFiles() {
  const root = goroot();
  const files = ['src/strings/strings.go', 'src/fmt/print.go', 'src/unicode/utf8/utf8.go',
    'src/encoding/json/decode.go', 'src/sort/sort.go', 'src/bufio/scan.go'];
  return files.map((f) => fs.readFileSync(path.join(root, f), 'utf8'));
}

const handWritten = [
  "IT'S HERE. It's here. it's here. IT'S, YOU'RE, WE'VE, I'M, HE'LL, SHE'D, DON'T, can't, won't.",
  "'s 't 're 've 'm 'll 'd 'S 'T 'RE 'x ''s '''re rock'n'roll O'Neil's",
  "Hello\r\nWorld\r\n\r\n  indented\r\n\ttabbed\r\n",
  'Non\u00a0breaking\u00a0space and\u00a0\u00a0two, thin\u2009space, em\u2003space, ideographic\u3000space.',
  'zero\u200bwidth\u200cnon\u200djoiner and\ufeffbom, soft\u00adhyphen, word\u2060joiner.',
  'Cafe\u0301 na\u0308ive e\u0301\u0301\u0301 a\u0300\u0301\u0302\u0303\u0304 Zalgo: Z\u0351\u036b\u0343a\u0352\u0310l\u0344g\u036co\u0346',
  'Family: \ud83d\udc68\u200d\ud83d\udc69\u200d\ud83d\udc67\u200d\ud83d\udc66 flag: \ud83c\uddfa\ud83c\uddf8 skin: \ud83d\udc4d\ud83c\udffd heart: \u2764\ufe0f',
  '\u6f22\u5b57\u3068\u304b\u306a\u3092\u6df7\u305c\u305f\u6587\u3002\u4e2d\u6587\u6587\u672c\uff0c\u6807\u70b9\u7b26\u53f7\u3002\ud55c\uad6d\uc5b4 \ubb38\uc7a5\uc785\ub2c8\ub2e4.',
  '\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645 \u0661\u0662\u0663 \u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd \u200f\u202b\u0645\u0631\u062d\u0628\u0627\u202c',
  '\u0928\u092e\u0938\u094d\u0924\u0947 \u0926\u0941\u0928\u093f\u092f\u093e \u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35 \u041f\u0440\u0438\u0432\u0435\u0442 \u043c\u0438\u0440 \u0393\u03b5\u03b9\u03ac \u03c3\u03bf\u03c5',
  'Digits 0123456789 3.14159265358979 1,000,000 2024-01-31 \u00b2\u00b3\u00b9 \u2160\u2161\u2162 \u00bd\u00be \u0966\u0967\u0968',
  '    leading spaces and trailing    ',
  '\n\n\n\nnewlines\n\n\n',
  'a  b   c    d     e\t\tf \t g\n \n h',
  'email@example.com https://example.org/path?q=1&x=%20 #hashtag @mention $100 50% C++ C# F#',
  'Special <|endoftext|> inside text, twice<|endoftext|><|endoftext|> and partial <|endoftext and |endoftext|>.',
  '\u0085next line\u0085 and \u2028line sep\u2029para sep \u000bvtab\u000cformfeed \u001cfs\u001dgs',
  '',
  ' ',
  'x',
  '\ud83d\ude00',
];

// stressText builds n characters drawn from pools that exercise every class boundary of
// the GPT-2 pattern.
function stressText(r, n) {
  const pools = [
    ' ', ' ', ' ', '  ', '\t', '\n', '\r\n', '\u00a0', '\u2003', '\u3000', '\u0085', '\ufeff', '\u200b', '\u200d',
    'a', 'e', 'Z', 'the', 'The', 'THE', 'ing', '\u00e9', '\u00df', '\u0416', '\u03a9', '\u6f22', '\u3042', '\ud55c', '\u05d0', '\u0627', '\u0915',
    '0', '7', '42', '\u0663', '\u00b2', '\u2163', '\u00bd',
    '.', ',', '!', '?', "'", '"', '-', '_', '(', ')', '{', '}', '<', '>', '/', '\\', '#', '@', '$', '%', '&', '*', '+', '=', '|', '~', '`', '^',
    "'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'LL",
    '\u0301', '\u0308', '\u093f', '\u0e31', '\ufe0f', '\ud83d\ude00', '\ud83d\udc4d\ud83c\udffd', '\ud83d\udc68\u200d\ud83d\udcbb', '\u2764', '\u00a9', '\u20ac',
  ];
  let s = '';
  while (s.length < n) s += pools[Math.floor(r() * pools.length)];
  return s;
}

// corpus returns the list of documents (strings).
function corpus() {
  const r = rng(20240531);
  const docs = [...handWritten];
  const en = englishText();
  // English prose in chunks of a few KB.
  for (let i = 0; i < en.length; i += 3000 + Math.floor(r() * 2000)) docs.push(en.slice(i, i + 4000));
  for (const c of codeFiles()) {
    docs.push(c.slice(0, 30000));
    docs.push(c.slice(0, 8000).replace(/\n/g, '\r\n'));
  }
  for (let i = 0; i < 300; i++) docs.push(stressText(r, 20 + Math.floor(r() * 400)));
  // Long runs of whitespace and digits.
  for (const ws of [' ', '\t', '\n', '\u00a0', ' \n', '\r\n']) {
    for (const k of [1, 2, 3, 17, 100, 1000]) docs.push('word' + ws.repeat(k) + 'next' + ws.repeat(k));
  }
  let digits = '';
  for (let i = 0; i < 5000; i++) digits += Math.floor(r() * 10);
  docs.push(digits, ' ' + digits.slice(0, 777), 'x' + digits.slice(0, 1234) + 'y');
  docs.push('='.repeat(3000), '-'.repeat(80) + '\n' + '#'.repeat(200), 'a'.repeat(2000), '\u6f22'.repeat(500));
  // Chunk boundaries may split surrogate pairs; keep every document valid Unicode.
  return docs.map((d) => d.toWellFormed());
}

module.exports = { corpus, englishText, rng };
