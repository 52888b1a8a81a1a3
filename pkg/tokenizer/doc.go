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
// A Tokenizer is immutable after loading and safe for concurrent use; each call borrows a
// scratch state (with a cache of frequent words) from a pool, or a caller can hold an
// Encoder per goroutine.
//
// Fingerprint is the hex SHA-256 of a canonical serialization of the definition (kind,
// options, vocabulary in id order, merges in rank order, added tokens); shards record it.
// SaveHF writes a Hugging Face tokenizer.json, so checkpoints ship their tokenizer.
// Train learns a byte-level BPE vocabulary from text.
package tokenizer
