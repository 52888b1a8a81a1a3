package tokenizer

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Load reads a tokenizer from path, which is a directory holding tokenizer.json, or
// encoder.json + vocab.bpe, or tokenizer.model (tried in that order), or one of those
// files itself. Errors name the file and, for broken merges, the line.
func Load(path string) (*Tokenizer, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	if st.IsDir() {
		has := func(name string) bool {
			fi, err := os.Stat(filepath.Join(path, name))
			return err == nil && !fi.IsDir()
		}
		switch {
		case has("tokenizer.json"):
			return LoadHFJSON(filepath.Join(path, "tokenizer.json"))
		case has("encoder.json") && has("vocab.bpe"):
			return LoadGPT2(filepath.Join(path, "encoder.json"), filepath.Join(path, "vocab.bpe"))
		case has("tokenizer.model"):
			return LoadSentencePiece(filepath.Join(path, "tokenizer.model"))
		}
		return nil, fmt.Errorf("tokenizer: directory %s holds no tokenizer.json, encoder.json + vocab.bpe, or tokenizer.model", path)
	}
	dir, base := filepath.Dir(path), filepath.Base(path)
	switch {
	case base == "encoder.json":
		return LoadGPT2(path, filepath.Join(dir, "vocab.bpe"))
	case strings.HasSuffix(base, ".bpe"):
		return LoadGPT2(filepath.Join(dir, "encoder.json"), path)
	}
	head := make([]byte, 512)
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	n, _ := f.Read(head)
	f.Close()
	head = head[:n]
	if trimmed := bytes.TrimLeft(head, " \t\r\n"); len(trimmed) > 0 && trimmed[0] == '{' {
		return LoadHFJSON(path)
	}
	if strings.HasSuffix(base, ".model") || looksLikeSentencePiece(head) {
		return LoadSentencePiece(path)
	}
	return nil, fmt.Errorf("tokenizer: %s: unknown tokenizer file type (want a Hugging Face tokenizer.json, encoder.json + vocab.bpe, or a SentencePiece .model)", path)
}

// looksLikeSentencePiece reports whether b starts like a SentencePiece ModelProto: field 1
// (pieces), wire type 2, whose message starts with field 1 (the piece string).
func looksLikeSentencePiece(b []byte) bool {
	if len(b) < 4 || b[0] != 0x0A {
		return false
	}
	_, k := readVarint(b[1:])
	return k > 0 && 1+k < len(b) && b[1+k] == 0x0A
}

// hfFile is the part of a Hugging Face tokenizer.json that we read.
type hfFile struct {
	AddedTokens []struct {
		ID      int32  `json:"id"`
		Content string `json:"content"`
		Special bool   `json:"special"`
	} `json:"added_tokens"`
	Normalizer   json.RawMessage `json:"normalizer"`
	PreTokenizer json.RawMessage `json:"pre_tokenizer"`
	Model        struct {
		Type         string           `json:"type"`
		Dropout      *float64         `json:"dropout"`
		UnkToken     *string          `json:"unk_token"`
		Prefix       *string          `json:"continuing_subword_prefix"`
		Suffix       *string          `json:"end_of_word_suffix"`
		ByteFallback bool             `json:"byte_fallback"`
		FuseUnk      bool             `json:"fuse_unk"`
		IgnoreMerges bool             `json:"ignore_merges"`
		Vocab        map[string]int64 `json:"vocab"`
		Merges       json.RawMessage  `json:"merges"`
	} `json:"model"`
}

// hfComponent is a normalizer or pre-tokenizer node of tokenizer.json.
type hfComponent struct {
	Type           string          `json:"type"`
	AddPrefixSpace *bool           `json:"add_prefix_space"`
	UseRegex       *bool           `json:"use_regex"`
	Replacement    string          `json:"replacement"`
	PrependScheme  string          `json:"prepend_scheme"`
	Split          *bool           `json:"split"`
	Prepend        string          `json:"prepend"`
	Content        string          `json:"content"`
	Pattern        json.RawMessage `json:"pattern"`
	Normalizers    []hfComponent   `json:"normalizers"`
	PreTokenizers  []hfComponent   `json:"pretokenizers"`
}

func parseComponent(raw json.RawMessage) (*hfComponent, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var c hfComponent
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// flatten lists the leaves of Sequence nodes.
func (c *hfComponent) flatten() []hfComponent {
	if c == nil {
		return nil
	}
	if c.Type == "Sequence" {
		var out []hfComponent
		for i := range c.Normalizers {
			out = append(out, c.Normalizers[i].flatten()...)
		}
		for i := range c.PreTokenizers {
			out = append(out, c.PreTokenizers[i].flatten()...)
		}
		return out
	}
	return []hfComponent{*c}
}

// LoadHFJSON reads a Hugging Face tokenizer.json with a BPE model: byte-level (GPT-2) or
// SentencePiece-style with metaspace (Llama).
func LoadHFJSON(path string) (*Tokenizer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	t, err := ParseHFJSON(data, path)
	if err != nil {
		return nil, err
	}
	return t, nil
}

// ParseHFJSON parses the contents of a tokenizer.json; name is used in errors.
func ParseHFJSON(data []byte, name string) (*Tokenizer, error) {
	fail := func(format string, a ...any) error {
		return fmt.Errorf("tokenizer: %s: %s", name, fmt.Sprintf(format, a...))
	}
	var f hfFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fail("not a tokenizer.json: %v", err)
	}
	if f.Model.Type != "BPE" && !(f.Model.Type == "" && f.Model.Vocab != nil && f.Model.Merges != nil) {
		return nil, fail("model type %q is not supported (want BPE)", f.Model.Type)
	}
	if f.Model.Dropout != nil && *f.Model.Dropout > 0 {
		return nil, fail("BPE dropout %g is not supported", *f.Model.Dropout)
	}
	if f.Model.IgnoreMerges {
		return nil, fail("ignore_merges is not supported")
	}
	if (f.Model.Prefix != nil && *f.Model.Prefix != "") || (f.Model.Suffix != nil && *f.Model.Suffix != "") {
		return nil, fail("continuing_subword_prefix / end_of_word_suffix are not supported")
	}
	norm, err := parseComponent(f.Normalizer)
	if err != nil {
		return nil, fail("normalizer: %v", err)
	}
	pre, err := parseComponent(f.PreTokenizer)
	if err != nil {
		return nil, fail("pre_tokenizer: %v", err)
	}
	var t *Tokenizer
	for _, c := range pre.flatten() {
		switch c.Type {
		case "ByteLevel":
			if t == nil {
				t = newTokenizer(ByteLevel)
			}
			if c.UseRegex != nil && !*c.UseRegex {
				return nil, fail("ByteLevel pre-tokenizer without the GPT-2 regex is not supported")
			}
			t.addPrefixSpace = c.AddPrefixSpace != nil && *c.AddPrefixSpace
		case "Metaspace":
			t = newTokenizer(SentencePiece)
			if c.Replacement != "" && c.Replacement != metaspace {
				return nil, fail("Metaspace replacement %q is not supported", c.Replacement)
			}
			// Old files say add_prefix_space, newer ones prepend_scheme (always, first, never);
			// both prepend "▁" only to text that does not start with a space.
			t.metaPrepend = prependMetaAll
			switch c.PrependScheme {
			case "", "always":
				t.addDummyPrefix = c.PrependScheme != "" || c.AddPrefixSpace == nil || *c.AddPrefixSpace
			case "first":
				t.addDummyPrefix, t.metaPrepend = true, prependMetaFirst
			case "never":
			default:
				return nil, fail("Metaspace prepend_scheme %q is not supported", c.PrependScheme)
			}
			t.metaspaceSplit = c.Split == nil || *c.Split
		default:
			return nil, fail("pre-tokenizer %q is not supported", c.Type)
		}
	}
	for _, c := range norm.flatten() {
		switch {
		case c.Type == "Prepend" && c.Prepend == metaspace:
			if t == nil {
				t = newTokenizer(SentencePiece)
			}
			t.addDummyPrefix = true
		case c.Type == "Replace" && string(c.Pattern) == `{"String":" "}` && c.Content == metaspace:
			if t == nil {
				t = newTokenizer(SentencePiece)
			}
		default:
			return nil, fail("normalizer %q is not supported", c.Type)
		}
	}
	if t == nil {
		return nil, fail("neither a byte-level (GPT-2) nor a metaspace (SentencePiece) BPE tokenizer")
	}
	if t.kind == ByteLevel && norm != nil {
		return nil, fail("normalizers with a byte-level pre-tokenizer are not supported")
	}
	// Vocabulary, then added tokens, by id.
	V := 0
	for _, id := range f.Model.Vocab {
		if id < 0 || id > math.MaxInt32 {
			return nil, fail("vocabulary id %d out of range", id)
		}
		V = max(V, int(id)+1)
	}
	for _, a := range f.AddedTokens {
		if a.ID < 0 {
			return nil, fail("added token %q has negative id %d", a.Content, a.ID)
		}
		V = max(V, int(a.ID)+1)
	}
	t.pieces = make([]string, V)
	have := make([]bool, V)
	t.types = make([]uint8, V)
	for p, id := range f.Model.Vocab {
		if have[id] {
			return nil, fail("vocabulary has two tokens with id %d (%q and %q)", id, t.pieces[id], p)
		}
		t.pieces[id], have[id], t.types[id] = p, true, typeNormal
	}
	for _, a := range f.AddedTokens {
		if have[a.ID] && t.pieces[a.ID] != a.Content {
			return nil, fail("added token %q has id %d of vocabulary token %q", a.Content, a.ID, t.pieces[a.ID])
		}
		t.pieces[a.ID], have[a.ID] = a.Content, true
		t.added = append(t.added, AddedToken{ID: a.ID, Content: a.Content, Special: a.Special})
	}
	for id, ok := range have {
		if !ok {
			return nil, fail("vocabulary has no token with id %d", id)
		}
	}
	if t.kind == SentencePiece {
		t.keepUnkRuns = !f.Model.FuseUnk
		if f.Model.ByteFallback {
			for id, p := range t.pieces {
				if len(p) == 6 && strings.HasPrefix(p, "<0x") && p[5] == '>' {
					t.types[id] = typeByte
				}
			}
		}
		if f.Model.UnkToken != nil {
			id, ok := f.Model.Vocab[*f.Model.UnkToken]
			if !ok {
				return nil, fail("unk_token %q is not in the vocabulary", *f.Model.UnkToken)
			}
			t.unk = int32(id)
			t.types[id] = typeUnknown
		}
	}
	t.indexPieces()
	merges, err := parseHFMerges(f.Model.Merges)
	if err != nil {
		return nil, fail("merges: %v", err)
	}
	for k, m := range merges {
		if err := t.addMergeByPieces(m[0], m[1]); err != nil {
			return nil, fail("merges entry %d: %v", k+1, err)
		}
	}
	if err := t.finish("tokenizer: " + name); err != nil {
		return nil, err
	}
	return t, nil
}

// parseHFMerges reads merges written as "a b" strings or as ["a", "b"] pairs.
func parseHFMerges(raw json.RawMessage) ([][2]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var strs []string
	if err := json.Unmarshal(raw, &strs); err == nil {
		out := make([][2]string, len(strs))
		for k, s := range strs {
			a, b, ok := strings.Cut(s, " ")
			if !ok || strings.Contains(b, " ") {
				return nil, fmt.Errorf("entry %d %q is not two tokens separated by one space", k+1, s)
			}
			out[k] = [2]string{a, b}
		}
		return out, nil
	}
	var pairs [][]string
	if err := json.Unmarshal(raw, &pairs); err != nil {
		return nil, fmt.Errorf("neither a list of strings nor a list of pairs: %v", err)
	}
	out := make([][2]string, len(pairs))
	for k, p := range pairs {
		if len(p) != 2 {
			return nil, fmt.Errorf("entry %d has %d tokens, want 2", k+1, len(p))
		}
		out[k] = [2]string{p[0], p[1]}
	}
	return out, nil
}

// LoadGPT2 reads the classic GPT-2 pair encoder.json (token -> id) and vocab.bpe (one
// merge per line, an optional "#version" first line). "<|endoftext|>", if present, is a
// special token (BOS = EOS), as in Hugging Face's GPT-2 tokenizer.json.
func LoadGPT2(encoderPath, vocabPath string) (*Tokenizer, error) {
	data, err := os.ReadFile(encoderPath)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	var vocab map[string]int64
	if err := json.Unmarshal(data, &vocab); err != nil {
		return nil, fmt.Errorf("tokenizer: %s: not a JSON object of token ids: %v", encoderPath, err)
	}
	t := newTokenizer(ByteLevel)
	V := 0
	for p, id := range vocab {
		if id < 0 || id > math.MaxInt32 {
			return nil, fmt.Errorf("tokenizer: %s: token %q has id %d out of range", encoderPath, p, id)
		}
		V = max(V, int(id)+1)
	}
	t.pieces = make([]string, V)
	have := make([]bool, V)
	for p, id := range vocab {
		if have[id] {
			return nil, fmt.Errorf("tokenizer: %s: two tokens with id %d", encoderPath, id)
		}
		t.pieces[id], have[id] = p, true
	}
	for id, ok := range have {
		if !ok {
			return nil, fmt.Errorf("tokenizer: %s: no token with id %d", encoderPath, id)
		}
	}
	if id, ok := vocab["<|endoftext|>"]; ok {
		t.added = append(t.added, AddedToken{ID: int32(id), Content: "<|endoftext|>", Special: true})
	}
	t.indexPieces()
	f, err := os.Open(vocabPath)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimRight(sc.Text(), "\r")
		if (line == 1 && strings.HasPrefix(s, "#version")) || s == "" {
			continue
		}
		a, b, ok := strings.Cut(s, " ")
		if !ok || strings.Contains(b, " ") {
			return nil, fmt.Errorf("tokenizer: %s:%d: %q is not two tokens separated by one space", vocabPath, line, s)
		}
		if err := t.addMergeByPieces(a, b); err != nil {
			return nil, fmt.Errorf("tokenizer: %s:%d: %v", vocabPath, line, err)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("tokenizer: %s:%d: %w", vocabPath, line+1, err)
	}
	if err := t.finish("tokenizer: " + encoderPath); err != nil {
		return nil, err
	}
	return t, nil
}

// LoadSentencePiece reads a SentencePiece BPE model (tokenizer.model, a protobuf
// ModelProto).
func LoadSentencePiece(path string) (*Tokenizer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	t, err := ParseSentencePiece(data)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w", path, err)
	}
	return t, nil
}

// ParseSentencePiece builds a tokenizer from the bytes of a SentencePiece ModelProto.
// Merges are derived from the piece scores as SentencePiece's BPE encoder applies them:
// two adjacent symbols merge when their concatenation is a piece, highest score first.
func ParseSentencePiece(data []byte) (*Tokenizer, error) {
	m, err := parseModelProto(data)
	if err != nil {
		return nil, err
	}
	if m.modelType != 2 {
		names := map[int64]string{1: "UNIGRAM", 2: "BPE", 3: "WORD", 4: "CHAR"}
		return nil, fmt.Errorf("SentencePiece model type %s (%d) is not supported (want BPE)", names[m.modelType], m.modelType)
	}
	if m.treatWSAsSuffix {
		return nil, errors.New("treat_whitespace_as_suffix is not supported")
	}
	if !m.escapeWS {
		return nil, errors.New("escape_whitespaces=false is not supported")
	}
	t := newTokenizer(SentencePiece)
	t.addDummyPrefix = m.addDummyPrefix
	t.removeExtraWS = m.removeExtraWS
	if len(m.charsmap) > 0 {
		cm, err := parseCharsMap(m.charsmap)
		if err != nil {
			return nil, err
		}
		t.charsmap = cm
	}
	V := len(m.pieces)
	t.pieces = make([]string, V)
	t.types = make([]uint8, V)
	scores := make([]float32, V)
	for id, p := range m.pieces {
		t.pieces[id], t.types[id], scores[id] = p.piece, p.typ, p.score
		switch p.typ {
		case typeUnknown:
			// Listed as a special added token, as Hugging Face's Llama files do.
			t.unk = int32(id)
			t.added = append(t.added, AddedToken{ID: int32(id), Content: p.piece, Special: true})
		case typeControl:
			t.added = append(t.added, AddedToken{ID: int32(id), Content: p.piece, Special: true})
		case typeNormal, typeUserDefined, typeUnused, typeByte:
		default:
			return nil, fmt.Errorf("piece %d %q has unknown type %d", id, p.piece, p.typ)
		}
	}
	for _, spec := range []struct {
		id  int64
		dst *int32
	}{{m.bosID, &t.bos}, {m.eosID, &t.eos}, {m.padID, &t.pad}} {
		if spec.id >= 0 && spec.id < int64(V) {
			*spec.dst = int32(spec.id)
		}
	}
	t.indexPieces()
	// Rank of each mergeable piece: by score, highest first; equal scores share a rank
	// and then the leftmost pair merges first, as in SentencePiece.
	order := make([]int, 0, V)
	for id := range V {
		if t.types[id] == typeNormal || t.types[id] == typeUserDefined || t.types[id] == typeUnused {
			order = append(order, id)
		}
	}
	sort.SliceStable(order, func(a, b int) bool { return scores[order[a]] > scores[order[b]] })
	rank := make(map[int32]int32, len(order))
	r := int32(-1)
	for k, id := range order {
		if k == 0 || scores[id] != scores[order[k-1]] {
			r++
		}
		rank[int32(id)] = r
	}
	mergeable := func(id int32) bool {
		ty := t.types[id]
		return ty == typeNormal || ty == typeUnused
	}
	for _, id := range order {
		p := t.pieces[id]
		if t.types[id] == typeUserDefined {
			continue
		}
		for k := 1; k < len(p); k++ {
			if !validBoundary(p, k) {
				continue
			}
			l, ok1 := t.ids[p[:k]]
			rr, ok2 := t.ids[p[k:]]
			if !ok1 || !ok2 || !mergeable(l) || !mergeable(rr) {
				continue
			}
			t.merges = append(t.merges, Merge{Left: l, Right: rr, Result: int32(id), Rank: rank[int32(id)]})
			if t.types[id] == typeUnused {
				if t.unused == nil {
					t.unused = make(map[int32][2]int32)
				}
				if _, ok := t.unused[int32(id)]; !ok {
					t.unused[int32(id)] = [2]int32{l, rr}
				}
			}
		}
	}
	sort.SliceStable(t.merges, func(a, b int) bool { return t.merges[a].Rank < t.merges[b].Rank })
	if err := t.finish("SentencePiece model"); err != nil {
		return nil, err
	}
	return t, nil
}

// validBoundary reports whether k is a UTF-8 character boundary of s.
func validBoundary(s string, k int) bool { return k < len(s) && (s[k]&0xC0) != 0x80 }
