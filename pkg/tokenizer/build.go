package tokenizer

import (
	"fmt"
	"strings"
)

// byteToUnicode is GPT-2's reversible map from bytes to printable characters: printable
// Latin-1 bytes map to themselves, the other 68 bytes to U+0100 upwards in byte order.
var byteToUnicode, unicodeToByte = func() ([256]rune, map[rune]byte) {
	var b2u [256]rune
	u2b := make(map[rune]byte, 256)
	printable := func(b int) bool {
		return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)
	}
	n := 0
	for b := 0; b < 256; b++ {
		r := rune(b)
		if !printable(b) {
			r = rune(256 + n)
			n++
		}
		b2u[b] = r
		u2b[r] = byte(b)
	}
	return b2u, u2b
}()

// bytesToPiece writes raw bytes in GPT-2's byte-level alphabet.
func bytesToPiece(raw []byte) string {
	var sb strings.Builder
	for _, b := range raw {
		sb.WriteRune(byteToUnicode[b])
	}
	return sb.String()
}

// pieceToBytes maps a byte-level piece back to raw bytes; ok is false if some character
// is outside the byte-level alphabet.
func pieceToBytes(p string) (string, bool) {
	out := make([]byte, 0, len(p))
	for _, r := range p {
		b, ok := unicodeToByte[r]
		if !ok {
			return p, false
		}
		out = append(out, b)
	}
	return string(out), true
}

// bytePiece is the SentencePiece byte-fallback piece of b, such as "<0x0A>".
func bytePiece(b byte) string { return fmt.Sprintf("<0x%02X>", b) }

// finish derives the lookup tables from pieces, types, merges and added tokens, and
// checks them. where names the source for errors.
func (t *Tokenizer) finish(where string) error {
	V := len(t.pieces)
	if V == 0 {
		return fmt.Errorf("%s: empty vocabulary", where)
	}
	if t.types == nil {
		t.types = make([]uint8, V)
		for i := range t.types {
			t.types[i] = typeNormal
		}
	}
	t.indexPieces()
	for _, a := range t.added {
		if a.ID < 0 || int(a.ID) >= V {
			return fmt.Errorf("%s: added token %q has id %d outside vocabulary of %d", where, a.Content, a.ID, V)
		}
		if a.Special && t.types[a.ID] != typeUnknown {
			t.types[a.ID] = typeControl
		} else if t.types[a.ID] == typeNormal && t.kind == SentencePiece {
			t.types[a.ID] = typeUserDefined
		}
		if a.Content != "" {
			t.addedFirst[a.Content[0]] = true
		}
	}
	for i := range t.byteID {
		t.byteID[i] = -1
	}
	t.raw = make([]string, V)
	for id, p := range t.pieces {
		t.raw[id] = p
		switch t.kind {
		case ByteLevel:
			if t.types[id] == typeControl || t.types[id] == typeUserDefined {
				break
			}
			if raw, ok := pieceToBytes(p); ok {
				t.raw[id] = raw
				if len(raw) == 1 && t.byteID[raw[0]] < 0 {
					t.byteID[raw[0]] = int32(id)
				}
			}
		case SentencePiece:
			var b byte
			if t.types[id] == typeByte {
				if n, err := fmt.Sscanf(p, "<0x%02X>", &b); n != 1 || err != nil || p != bytePiece(b) {
					return fmt.Errorf("%s: byte piece %d is %q, want <0xXX>", where, id, p)
				}
				t.raw[id] = string([]byte{b})
				t.byteID[b] = int32(id)
			} else if t.types[id] != typeControl {
				t.raw[id] = strings.ReplaceAll(p, metaspace, " ")
			}
			if t.types[id] == typeUserDefined {
				t.userDefined = append(t.userDefined, p)
			}
			if t.types[id] == typeNormal && strings.Contains(p[1:], metaspace) {
				// "▁" after the first character: check whether a non-"▁" precedes it.
				rest := strings.TrimLeft(p, metaspace)
				if strings.Contains(rest, metaspace) {
					t.cannotSplit = true
				}
			}
		}
	}
	if t.kind == ByteLevel {
		for b, id := range t.byteID {
			if id < 0 {
				return fmt.Errorf("%s: byte-level vocabulary has no token for byte 0x%02X (%q)", where, b, string(byteToUnicode[b]))
			}
		}
	}
	t.pairs = make(map[uint64]mergeVal, len(t.merges))
	for _, m := range t.merges {
		t.pairs[pairKey(m.Left, m.Right)] = mergeVal{m.Rank, m.Result}
	}
	t.guessSpecials()
	return nil
}

// newTokenizer returns an empty tokenizer of kind k with no special ids.
func newTokenizer(k Kind) *Tokenizer {
	return &Tokenizer{kind: k, bos: -1, eos: -1, pad: -1, unk: -1}
}

// indexPieces builds the piece -> id map; on duplicates the first normal piece wins.
func (t *Tokenizer) indexPieces() {
	t.ids = make(map[string]int32, len(t.pieces))
	for id, p := range t.pieces {
		prev, dup := t.ids[p]
		if !dup || (t.types != nil && t.types[prev] != typeNormal && t.types[id] == typeNormal) {
			t.ids[p] = int32(id)
		}
	}
}

// guessSpecials fills BOS, EOS and pad from the usual contents of added or control tokens
// where the source did not name them: "<|endoftext|>" (GPT-2: BOS = EOS), "<s>", "</s>",
// "<pad>", "<unk>".
func (t *Tokenizer) guessSpecials() {
	find := func(names ...string) int32 {
		for _, n := range names {
			if id, ok := t.ids[n]; ok && (t.types[id] == typeControl || t.types[id] == typeUnknown) {
				return id
			}
		}
		return -1
	}
	if t.bos < 0 {
		t.bos = find("<s>", "<|begin_of_text|>", "<|endoftext|>")
	}
	if t.eos < 0 {
		t.eos = find("</s>", "<|end_of_text|>", "<|endoftext|>")
	}
	if t.pad < 0 {
		t.pad = find("<pad>", "<|pad|>", "[PAD]")
	}
	if t.unk < 0 && t.kind == SentencePiece {
		t.unk = find("<unk>")
	}
}

// addMergeByPieces appends a merge given as two pieces; it fails if either piece or their
// concatenation is not in the vocabulary.
func (t *Tokenizer) addMergeByPieces(left, right string) error {
	l, ok := t.ids[left]
	if !ok {
		return fmt.Errorf("merge %q %q: %q is not in the vocabulary", left, right, left)
	}
	r, ok := t.ids[right]
	if !ok {
		return fmt.Errorf("merge %q %q: %q is not in the vocabulary", left, right, right)
	}
	res, ok := t.ids[left+right]
	if !ok {
		return fmt.Errorf("merge %q %q: result %q is not in the vocabulary", left, right, left+right)
	}
	t.merges = append(t.merges, Merge{Left: l, Right: r, Result: res, Rank: int32(len(t.merges))})
	return nil
}
