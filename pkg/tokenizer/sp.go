package tokenizer

import (
	"bytes"
	"unicode/utf8"
)

const metaspace = "▁" // U+2581, SentencePiece's visible space

// normalizeSP writes the SentencePiece-normalized form of text to st.buf and returns it:
// precompiled character map (if any), optional removal of extra spaces, spaces replaced
// by "▁" and a "▁" prepended (add_dummy_prefix).
func (t *Tokenizer) normalizeSP(st *encState, text []byte, atStart bool) []byte {
	if t.charsmap != nil {
		text = t.charsmap.normalize(text)
	}
	if t.removeExtraWS {
		text = collapseSpaces(text)
		if len(text) == 0 {
			return nil
		}
	}
	buf := st.buf[:0]
	prepend := t.addDummyPrefix
	switch t.metaPrepend {
	case prependMetaAll:
		prepend = prepend && text[0] != ' '
	case prependMetaFirst:
		prepend = prepend && text[0] != ' ' && atStart
	}
	if prepend {
		buf = append(buf, metaspace...)
	}
	for len(text) > 0 {
		k := bytes.IndexByte(text, ' ')
		if k < 0 {
			buf = append(buf, text...)
			break
		}
		buf = append(buf, text[:k]...)
		buf = append(buf, metaspace...)
		text = text[k+1:]
	}
	st.buf = buf
	return buf
}

// collapseSpaces removes leading and trailing spaces and turns runs of spaces into one.
func collapseSpaces(text []byte) []byte {
	out := make([]byte, 0, len(text))
	prevSpace := true
	for _, b := range text {
		if b == ' ' {
			if prevSpace {
				continue
			}
			prevSpace = true
		} else {
			prevSpace = false
		}
		out = append(out, b)
	}
	for len(out) > 0 && out[len(out)-1] == ' ' {
		out = out[:len(out)-1]
	}
	return out
}

// encodeSP appends the ids of one segment of text (between added tokens).
func (t *Tokenizer) encodeSP(st *encState, dst []int32, text []byte, atStart bool) []int32 {
	norm := t.normalizeSP(st, text, atStart)
	// Split where no merge can cross: before "▁" that follows another character (or
	// before every "▁" with the Metaspace pre-tokenizer's split); the whole text if the
	// vocabulary has pieces that would cross such a point.
	if t.cannotSplit {
		return t.encodeSPWord(st, dst, norm)
	}
	start := 0
	for i := 1; i < len(norm); i++ {
		if norm[i] != 0xE2 || !bytes.HasPrefix(norm[i:], []byte(metaspace)) {
			continue
		}
		if !t.metaspaceSplit && i >= 3 && string(norm[i-3:i]) == metaspace {
			continue
		}
		dst = t.encodeSPWord(st, dst, norm[start:i])
		start = i
	}
	return t.encodeSPWord(st, dst, norm[start:])
}

// encodeSPWord appends the ids of one normalized word.
func (t *Tokenizer) encodeSPWord(st *encState, dst []int32, word []byte) []int32 {
	if len(word) == 0 {
		return dst
	}
	cacheable := len(word) <= maxCachedWord
	if cacheable {
		if ids, ok := st.cache[string(word)]; ok {
			return append(dst, ids...)
		}
	}
	n0 := len(dst)
	syms := st.syms[:0]
	for i := 0; i < len(word); {
		if len(t.userDefined) > 0 {
			if id, w := t.matchUserDefined(word[i:]); w > 0 {
				// A user-defined piece is frozen: BPE runs on each side separately.
				dst = t.flushSP(st, dst, syms)
				syms = syms[:0]
				dst = append(dst, id)
				i += w
				continue
			}
		}
		_, w := utf8.DecodeRune(word[i:])
		if id, ok := t.ids[string(word[i:i+w])]; ok && t.types[id] != typeControl && t.types[id] != typeByte {
			syms = append(syms, id)
		} else if t.byteID[word[i]] >= 0 {
			for _, b := range word[i : i+w] {
				syms = append(syms, t.byteID[b])
			}
		} else if t.unk >= 0 {
			syms = append(syms, t.unk)
		}
		i += w
	}
	dst = t.flushSP(st, dst, syms)
	st.syms = syms[:0]
	if cacheable {
		t.cachePut(st, string(word), dst[n0:])
	}
	return dst
}

// flushSP merges syms and appends the result, re-segmenting unused pieces and fusing runs
// of the unknown id as SentencePiece does (and Hugging Face with fuse_unk).
func (t *Tokenizer) flushSP(st *encState, dst []int32, syms []int32) []int32 {
	if len(syms) == 0 {
		return dst
	}
	out := t.mergeWord(st, syms)
	for _, id := range out {
		if id == t.unk && !t.keepUnkRuns && len(dst) > 0 && dst[len(dst)-1] == t.unk {
			continue
		}
		dst = t.resegment(dst, id)
	}
	return dst
}

func (t *Tokenizer) resegment(dst []int32, id int32) []int32 {
	if t.unused != nil {
		if halves, ok := t.unused[id]; ok {
			dst = t.resegment(dst, halves[0])
			return t.resegment(dst, halves[1])
		}
	}
	return append(dst, id)
}

func (t *Tokenizer) matchUserDefined(s []byte) (int32, int) {
	best, bw := int32(-1), 0
	for _, p := range t.userDefined {
		if len(p) > bw && bytes.HasPrefix(s, []byte(p)) {
			best, bw = t.ids[p], len(p)
		}
	}
	return best, bw
}
