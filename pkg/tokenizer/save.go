package tokenizer

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
)

// Fingerprint is the hex SHA-256 of a canonical serialization of the tokenizer's
// definition: kind, options, every vocabulary entry with its type in id order, the merges
// (left, right, result) in rank order, added tokens and the BOS/EOS/pad/unk ids. Two
// tokenizers with the same fingerprint give the same ids for every input; loading
// encoder.json + vocab.bpe or the equivalent tokenizer.json gives the same fingerprint.
func (t *Tokenizer) Fingerprint() string {
	t.fpOnce.Do(func() { t.fp = t.fingerprint() })
	return t.fp
}

func (t *Tokenizer) fingerprint() string {
	h := sha256.New()
	w := bufio.NewWriter(h)
	fmt.Fprintf(w, "cpo-tokenizer-fingerprint v1\nkind %s\n", t.kind)
	fmt.Fprintf(w, "add_prefix_space %v\nadd_dummy_prefix %v %d\nremove_extra_whitespaces %v\nmetaspace_split %v\n",
		t.addPrefixSpace, t.addDummyPrefix, t.metaPrepend, t.removeExtraWS, t.metaspaceSplit)
	if t.charsmap != nil {
		fmt.Fprintf(w, "charsmap %x\n", sha256.Sum256(t.charsmap.blob))
	}
	if t.keepUnkRuns {
		fmt.Fprintf(w, "keep_unk_runs\n")
	}
	fmt.Fprintf(w, "bos %d eos %d pad %d unk %d\nvocab %d\n", t.bos, t.eos, t.pad, t.unk, len(t.pieces))
	for id, p := range t.pieces {
		fmt.Fprintf(w, "%d %d %s\n", id, t.types[id], strconv.Quote(p))
	}
	fmt.Fprintf(w, "merges %d\n", len(t.merges))
	for _, m := range t.merges {
		fmt.Fprintf(w, "%d %d %d\n", m.Left, m.Right, m.Result)
	}
	fmt.Fprintf(w, "added %d\n", len(t.added))
	for _, a := range t.added {
		fmt.Fprintf(w, "%d %v %s\n", a.ID, a.Special, strconv.Quote(a.Content))
	}
	w.Flush()
	return hex.EncodeToString(h.Sum(nil))
}

// orderedJSON writes a JSON object with keys in the given order.
type orderedJSON []kv

type kv struct {
	k string
	v any
}

// MarshalJSON writes the object with its keys in order.
func (o orderedJSON) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, e := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(e.k)
		b.Write(k)
		b.WriteByte(':')
		v, err := marshalNoEscape(e.v)
		if err != nil {
			return nil, err
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func marshalNoEscape(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

// vocabJSON writes the vocabulary as a JSON object in id order.
type vocabJSON []string

// MarshalJSON writes {"piece": id, ...} in id order.
func (v vocabJSON) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for id, p := range v {
		if id > 0 {
			b.WriteByte(',')
		}
		k, err := marshalNoEscape(p)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(id))
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// SaveHF writes the tokenizer as a Hugging Face tokenizer.json: GPT-2's layout for
// byte-level BPE, Llama's (Prepend + Replace normalizer, byte fallback) for SentencePiece.
// SentencePiece models with a precompiled normalizer, extra-whitespace removal or unused
// pieces have no exact tokenizer.json equivalent here and are refused; ship their
// tokenizer.model instead.
func (t *Tokenizer) SaveHF(w io.Writer) error {
	if t.kind == SentencePiece {
		switch {
		case t.charsmap != nil:
			return errors.New("tokenizer: SaveHF: the precompiled normalizer has no tokenizer.json equivalent here; ship tokenizer.model")
		case t.removeExtraWS:
			return errors.New("tokenizer: SaveHF: remove_extra_whitespaces has no tokenizer.json equivalent here; ship tokenizer.model")
		case t.hasModelUserDefined():
			return errors.New("tokenizer: SaveHF: user-defined pieces have no tokenizer.json equivalent here; ship tokenizer.model")
		case len(t.unused) > 0:
			return errors.New("tokenizer: SaveHF: unused pieces have no tokenizer.json equivalent; ship tokenizer.model")
		case !t.addDummyPrefix && t.metaPrepend == prependAlways:
			return errors.New("tokenizer: SaveHF: a SentencePiece model without the dummy prefix is not written")
		}
	}
	// Vocabulary: model entries exclude added tokens that are not in the model's vocabulary
	// proper; we keep every id in the model vocab, as the published GPT-2 and Llama files do.
	added := make([]any, 0, len(t.added))
	for _, a := range t.added {
		added = append(added, orderedJSON{{"id", a.ID}, {"content", a.Content}, {"single_word", false},
			{"lstrip", false}, {"rstrip", false}, {"normalized", !a.Special}, {"special", a.Special}})
	}
	merges := make([]string, len(t.merges))
	for k, m := range t.merges {
		merges[k] = t.pieces[m.Left] + " " + t.pieces[m.Right]
	}
	var doc orderedJSON
	switch t.kind {
	case ByteLevel:
		bl := func(prefix bool) orderedJSON {
			return orderedJSON{{"type", "ByteLevel"}, {"add_prefix_space", prefix}, {"trim_offsets", true}, {"use_regex", true}}
		}
		doc = orderedJSON{
			{"version", "1.0"}, {"truncation", nil}, {"padding", nil}, {"added_tokens", added},
			{"normalizer", nil},
			{"pre_tokenizer", bl(t.addPrefixSpace)},
			{"post_processor", bl(true)},
			{"decoder", bl(true)},
			{"model", orderedJSON{{"type", "BPE"}, {"dropout", nil}, {"unk_token", nil},
				{"continuing_subword_prefix", ""}, {"end_of_word_suffix", ""}, {"fuse_unk", false},
				{"byte_fallback", false}, {"vocab", vocabJSON(t.pieces)}, {"merges", merges}}},
		}
	case SentencePiece:
		var unk any
		if t.unk >= 0 {
			unk = t.pieces[t.unk]
		}
		// Llama's legacy layout (Prepend + Replace normalizer) for SentencePiece semantics;
		// the Metaspace pre-tokenizer for tokenizers loaded with one.
		var norm, pre any = orderedJSON{{"type", "Sequence"}, {"normalizers", []any{
			orderedJSON{{"type", "Prepend"}, {"prepend", metaspace}},
			orderedJSON{{"type", "Replace"}, {"pattern", orderedJSON{{"String", " "}}}, {"content", metaspace}},
		}}}, nil
		if t.metaPrepend != prependAlways {
			scheme := "never"
			if t.addDummyPrefix {
				scheme = map[uint8]string{prependMetaAll: "always", prependMetaFirst: "first"}[t.metaPrepend]
			}
			norm = nil
			pre = orderedJSON{{"type", "Metaspace"}, {"replacement", metaspace}, {"prepend_scheme", scheme}, {"split", t.metaspaceSplit}}
		}
		doc = orderedJSON{
			{"version", "1.0"}, {"truncation", nil}, {"padding", nil}, {"added_tokens", added},
			{"normalizer", norm},
			{"pre_tokenizer", pre},
			{"post_processor", nil},
			{"decoder", orderedJSON{{"type", "Sequence"}, {"decoders", []any{
				orderedJSON{{"type", "Replace"}, {"pattern", orderedJSON{{"String", metaspace}}}, {"content", " "}},
				orderedJSON{{"type", "ByteFallback"}},
				orderedJSON{{"type", "Fuse"}},
				orderedJSON{{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}},
			}}}},
			{"model", orderedJSON{{"type", "BPE"}, {"dropout", nil}, {"unk_token", unk},
				{"continuing_subword_prefix", nil}, {"end_of_word_suffix", nil}, {"fuse_unk", !t.keepUnkRuns},
				{"byte_fallback", t.byteID[0] >= 0}, {"vocab", vocabJSON(t.pieces)}, {"merges", merges}}},
		}
	}
	b, err := marshalNoEscape(doc)
	if err != nil {
		return fmt.Errorf("tokenizer: SaveHF: %w", err)
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// hasModelUserDefined reports whether a SentencePiece model has user-defined pieces that
// are not added tokens: SentencePiece matches them after normalization, inside the text
// that gets the dummy prefix, which no tokenizer.json expresses.
func (t *Tokenizer) hasModelUserDefined() bool {
	for _, p := range t.userDefined {
		found := false
		for _, a := range t.added {
			found = found || a.Content == p
		}
		if !found {
			return true
		}
	}
	return false
}

// SaveHFFile writes SaveHF's output to path.
func (t *Tokenizer) SaveHFFile(path string) error {
	var b bytes.Buffer
	if err := t.SaveHF(&b); err != nil {
		return err
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}
