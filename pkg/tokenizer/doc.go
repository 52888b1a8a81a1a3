// Package tokenizer turns text into token ids and back, exactly as the models' own
// tokenizers do, for the two families the paper uses:
//
//   - byte-level BPE as in GPT-2 (50,257 tokens): loaded from a Hugging Face tokenizer.json
//     or from the classic encoder.json + vocab.bpe pair. The GPT-2 pre-tokenizer pattern
//
//     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//
//     is reproduced by a hand-written scanner (Go's regexp has no lookahead); \s is the
//     Unicode White_Space property, \p{L} and \p{N} the Unicode letter and number
//     categories, as in the Hugging Face (Oniguruma) implementation.
//
//   - SentencePiece-style BPE with the metaspace "▁" and byte fallback, as in Llama and
//     OpenLlama (32,000 tokens): loaded from a Hugging Face tokenizer.json or from
//     SentencePiece's tokenizer.model (protobuf, parsed by hand).
//
// Special and added tokens. Encode follows Hugging Face: a literal occurrence of an added
// token's text (for example "<|endoftext|>" in user data) becomes that token's id.
// EncodeOrdinary is the other choice (tiktoken's encode_ordinary, SentencePiece's
// spm_encode): all input is ordinary text, so "<|endoftext|>" is spelled out with ordinary
// tokens and user data can never inject a control token. Neither adds BOS or EOS; callers
// append BOS()/EOS() where the model wants them.
//
// What is read from a tokenizer.json: BPE models with the ByteLevel pre-tokenizer (GPT-2
// regex, add_prefix_space), or with the Metaspace pre-tokenizer (prepend_scheme always,
// first or never; split) or Llama's Prepend("▁") + Replace(" ", "▁") normalizer, byte
// fallback and an unk token. Refused with a clear error: other models (Unigram,
// WordPiece), BPE dropout, ignore_merges, continuing-subword prefixes, other normalizers
// and pre-tokenizers. Added tokens are matched literally (leftmost, longest); their
// lstrip/rstrip/single_word flags are not applied (GPT-2 and Llama set none). From a
// SentencePiece .model: BPE models (not Unigram), with the identity normalizer or a
// precompiled one (nmt_nfkc and friends, applied as SentencePiece does), add_dummy_prefix,
// remove_extra_whitespaces, user-defined pieces and byte fallback. The ids of valid UTF-8
// text match SentencePiece; invalid UTF-8 bytes (which SentencePiece replaces with U+FFFD)
// are kept as byte-fallback tokens so that they round-trip. An unknown id decodes to its
// piece ("<unk>"), where spm_decode writes " ⁇ ".
//
// A Tokenizer is immutable after loading and safe for concurrent use; each call borrows a
// scratch state (with a cache of frequent words) from a pool, or a caller can hold an
// Encoder per goroutine.
//
// Fingerprint is the hex SHA-256 of a canonical serialization of the definition (kind,
// options, vocabulary in id order, merges in rank order, added tokens); shards record it.
// SaveHF writes a Hugging Face tokenizer.json, so checkpoints ship their tokenizer.
// Train learns a byte-level BPE vocabulary from text.
package tokenizer
