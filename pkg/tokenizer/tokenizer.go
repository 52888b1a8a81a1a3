package tokenizer

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"
)

// Kind is the family of a tokenizer.
type Kind int

const (
	// ByteLevel is GPT-2's byte-level BPE: GPT-2 pre-tokenizer, every byte a base symbol.
	ByteLevel Kind = iota + 1
	// SentencePiece is SentencePiece-style BPE (Llama): spaces become "▁", a "▁" is
	// prepended, characters are base symbols, unknown characters fall back to <0xXX> bytes.
	SentencePiece
)

// String names the kind as fingerprints and reports write it.
func (k Kind) String() string {
	switch k {
	case ByteLevel:
		return "bytelevel-bpe"
	case SentencePiece:
		return "sentencepiece-bpe"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Token types (as in SentencePiece's model proto).
const (
	typeNormal      = 1
	typeUnknown     = 2
	typeControl     = 3
	typeUserDefined = 4
	typeUnused      = 5
	typeByte        = 6
)

// AddedToken is a token matched as a whole in the input before the model runs (Hugging
// Face's added_tokens); Special marks control tokens such as BOS, EOS and pad.
type AddedToken struct {
	ID      int32
	Content string
	Special bool
}

// Merge is one BPE merge rule: Left and Right merge into Result. Merges apply in order of
// Rank (lower first).
type Merge struct {
	Left, Right, Result int32
	Rank                int32
}

// Tokenizer encodes text to ids and back. It is immutable and safe for concurrent use.
type Tokenizer struct {
	kind   Kind
	pieces []string // id -> token as written in the vocabulary (HF form: "Ġthe", "▁the", "<0x0A>")
	types  []uint8  // id -> token type (typeNormal ...)
	raw    []string // id -> the bytes the token decodes to
	ids    map[string]int32
	merges []Merge // in rank order
	pairs  map[uint64]mergeVal
	byteID [256]int32 // id of the token for each byte, -1 if none

	added      []AddedToken
	bos, eos   int32
	pad, unk   int32
	addedFirst [256]bool // first bytes of added tokens' contents

	// byte-level options
	addPrefixSpace bool

	// SentencePiece options
	addDummyPrefix bool  // a "▁" is prepended (how: metaPrepend)
	metaPrepend    uint8 // prependAlways, or Hugging Face Metaspace's conditional schemes
	removeExtraWS  bool
	metaspaceSplit bool // split before every "▁" (HF Metaspace pre-tokenizer with split)
	cannotSplit    bool // some piece has "▁" after another character: BPE must see whole text
	keepUnkRuns    bool // do not fuse runs of the unknown id (HF fuse_unk false)
	userDefined    []string
	unused         map[int32][2]int32 // unused piece -> its two halves, for re-segmentation
	charsmap       *charsMap          // SentencePiece precompiled normalizer, nil if identity

	pool sync.Pool

	fpOnce sync.Once
	fp     string
}

// Kind reports the tokenizer family.
func (t *Tokenizer) Kind() Kind { return t.kind }

// VocabSize is V, the number of ids (the largest id plus one).
func (t *Tokenizer) VocabSize() int { return len(t.pieces) }

// BOS returns the beginning-of-sequence id, or -1 if the tokenizer has none.
func (t *Tokenizer) BOS() int32 { return t.bos }

// EOS returns the end-of-sequence id, or -1 if the tokenizer has none.
func (t *Tokenizer) EOS() int32 { return t.eos }

// PAD returns the padding id, or -1 if the tokenizer has none.
func (t *Tokenizer) PAD() int32 { return t.pad }

// Piece returns the vocabulary entry of id as written in the tokenizer files.
func (t *Tokenizer) Piece(id int32) string {
	if id < 0 || int(id) >= len(t.pieces) {
		return ""
	}
	return t.pieces[id]
}

// ID returns the id of a vocabulary entry (written as in the tokenizer files).
func (t *Tokenizer) ID(piece string) (int32, bool) {
	id, ok := t.ids[piece]
	return id, ok
}

// AddedTokens lists the added and special tokens.
func (t *Tokenizer) AddedTokens() []AddedToken { return append([]AddedToken(nil), t.added...) }

// Merges returns the merge rules in rank order.
func (t *Tokenizer) Merges() []Merge { return append([]Merge(nil), t.merges...) }

// How the dummy prefix is prepended to each segment of text between added tokens.
const (
	prependAlways    = 0 // SentencePiece and HF's Prepend normalizer: every non-empty segment
	prependMetaAll   = 1 // HF Metaspace "always": every segment not starting with a space
	prependMetaFirst = 2 // HF Metaspace "first": only a segment at the start of the text
)

// encState is the per-goroutine scratch of encoding.
type encState struct {
	cache      map[string][]int32
	cacheBytes int
	syms       []int32
	ranks      []int32
	next, prev []int32
	heap       []heapItem
	buf        []byte
}

// Words up to this many bytes are cached; the cache is cleared when it holds this many
// bytes of keys.
const (
	maxCachedWord = 64
	maxCacheBytes = 4 << 20
)

func (t *Tokenizer) getState() *encState {
	if s, ok := t.pool.Get().(*encState); ok {
		return s
	}
	return &encState{cache: make(map[string][]int32, 4096)}
}

// Encoder is a reusable encoding state for one goroutine; it keeps its own cache of
// frequent words, so a worker that holds one never contends with others.
type Encoder struct {
	t  *Tokenizer
	st *encState
}

// NewEncoder returns an Encoder for t. An Encoder is not safe for concurrent use.
func (t *Tokenizer) NewEncoder() *Encoder {
	return &Encoder{t: t, st: &encState{cache: make(map[string][]int32, 4096)}}
}

// Encode appends the ids of text to dst, matching added tokens (see Tokenizer.Encode).
func (e *Encoder) Encode(dst []int32, text []byte) []int32 {
	return e.t.encode(e.st, dst, text, true)
}

// EncodeOrdinary appends the ids of text to dst, treating all text as ordinary.
func (e *Encoder) EncodeOrdinary(dst []int32, text []byte) []int32 {
	return e.t.encode(e.st, dst, text, false)
}

// Encode returns the ids of text. A literal added token (such as "<|endoftext|>") becomes
// its id, as in Hugging Face tokenizers. No BOS or EOS is added.
func (t *Tokenizer) Encode(text string) []int32 {
	return t.EncodeBytes(nil, []byte(text))
}

// EncodeOrdinary returns the ids of text treating all of it as ordinary text: added
// tokens' contents are spelled with ordinary tokens (tiktoken's encode_ordinary,
// spm_encode).
func (t *Tokenizer) EncodeOrdinary(text string) []int32 {
	st := t.getState()
	out := t.encode(st, nil, []byte(text), false)
	t.pool.Put(st)
	return out
}

// EncodeBytes appends the ids of text to dst, matching added tokens like Encode. For
// byte-level BPE any bytes are accepted; SentencePiece treats invalid UTF-8 bytes as
// unknown characters (byte fallback keeps them).
func (t *Tokenizer) EncodeBytes(dst []int32, text []byte) []int32 {
	st := t.getState()
	dst = t.encode(st, dst, text, true)
	t.pool.Put(st)
	return dst
}

func (t *Tokenizer) encode(st *encState, dst []int32, text []byte, matchAdded bool) []int32 {
	if dst == nil {
		dst = make([]int32, 0, len(text)/3+4)
	}
	if !matchAdded || len(t.added) == 0 {
		return t.encodeSegment(st, dst, text, true)
	}
	start := 0
	for i := 0; i < len(text); {
		if !t.addedFirst[text[i]] {
			i++
			continue
		}
		// Longest added token starting at i.
		best := -1
		for k := range t.added {
			c := t.added[k].Content
			if len(c) > 0 && bytes.HasPrefix(text[i:], []byte(c)) && (best < 0 || len(c) > len(t.added[best].Content)) {
				best = k
			}
		}
		if best < 0 {
			i++
			continue
		}
		dst = t.encodeSegment(st, dst, text[start:i], start == 0)
		dst = append(dst, t.added[best].ID)
		i += len(t.added[best].Content)
		start = i
	}
	return t.encodeSegment(st, dst, text[start:], start == 0)
}

// encodeSegment encodes text between added tokens; atStart says whether it begins the
// input.
func (t *Tokenizer) encodeSegment(st *encState, dst []int32, text []byte, atStart bool) []int32 {
	if len(text) == 0 {
		return dst
	}
	if t.kind == SentencePiece {
		return t.encodeSP(st, dst, text, atStart)
	}
	if t.addPrefixSpace && text[0] != ' ' {
		buf := append(st.buf[:0], ' ')
		buf = append(buf, text...)
		st.buf = buf
		text = buf
	}
	for i := 0; i < len(text); {
		j := nextGPT2Word(text, i)
		dst = t.encodeWord(st, dst, text[i:j])
		i = j
	}
	return dst
}

// encodeWord appends the ids of one byte-level pre-token.
func (t *Tokenizer) encodeWord(st *encState, dst []int32, word []byte) []int32 {
	if len(word) == 1 {
		return append(dst, t.byteID[word[0]])
	}
	cacheable := len(word) <= maxCachedWord
	if cacheable {
		if ids, ok := st.cache[string(word)]; ok {
			return append(dst, ids...)
		}
	}
	syms := st.syms[:0]
	for _, b := range word {
		syms = append(syms, t.byteID[b])
	}
	out := t.mergeWord(st, syms)
	st.syms = syms
	if cacheable {
		t.cachePut(st, string(word), out)
	}
	return append(dst, out...)
}

func (t *Tokenizer) cachePut(st *encState, key string, ids []int32) {
	if st.cacheBytes+len(key) > maxCacheBytes {
		clear(st.cache)
		st.cacheBytes = 0
	}
	st.cache[key] = append([]int32(nil), ids...)
	st.cacheBytes += len(key) + 4*len(ids) + 48
}

// Decode returns the text of ids; added tokens decode to their content. Ids outside the
// vocabulary are an error.
func (t *Tokenizer) Decode(ids []int32) (string, error) {
	var sb strings.Builder
	if err := t.decodeTo(&sb, ids, false); err != nil {
		return "", err
	}
	return sb.String(), nil
}

// DecodeSkipSpecial is Decode without the special tokens (BOS, EOS, pad, ...).
func (t *Tokenizer) DecodeSkipSpecial(ids []int32) (string, error) {
	var sb strings.Builder
	if err := t.decodeTo(&sb, ids, true); err != nil {
		return "", err
	}
	return sb.String(), nil
}

func (t *Tokenizer) decodeTo(sb *strings.Builder, ids []int32, skipSpecial bool) error {
	// SentencePiece drops the space of the dummy prefix from the first ordinary piece.
	strip := t.kind == SentencePiece && t.addDummyPrefix
	for _, id := range ids {
		if id < 0 || int(id) >= len(t.pieces) {
			return fmt.Errorf("tokenizer: decode: id %d outside vocabulary of %d", id, len(t.pieces))
		}
		special := t.types[id] == typeControl
		if special && skipSpecial {
			continue
		}
		s := t.raw[id]
		if strip && !special {
			s = strings.TrimPrefix(s, " ")
			strip = false
		}
		sb.WriteString(s)
	}
	return nil
}

// valid reports whether s is valid UTF-8.
func valid(s []byte) bool { return utf8.Valid(s) }
