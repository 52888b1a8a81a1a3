package tokenizer

import (
	"encoding/binary"
	"fmt"
	"unicode/utf8"
)

// charsMap is SentencePiece's precompiled normalizer: a Darts-clone double-array trie
// over UTF-8 byte strings whose values index a pool of NUL-terminated replacements.
// Normalization replaces the longest match at each position, or copies one character.
type charsMap struct {
	units []uint32
	pool  []byte
	blob  []byte // the precompiled_charsmap as stored, for the fingerprint
}

func parseCharsMap(blob []byte) (*charsMap, error) {
	if len(blob) < 4 {
		return nil, fmt.Errorf("precompiled_charsmap: %d bytes, too short", len(blob))
	}
	n := binary.LittleEndian.Uint32(blob)
	if n%4 != 0 || int(n) > len(blob)-4 {
		return nil, fmt.Errorf("precompiled_charsmap: trie size %d does not fit in %d bytes", n, len(blob))
	}
	units := make([]uint32, n/4)
	for k := range units {
		units[k] = binary.LittleEndian.Uint32(blob[4+4*k:])
	}
	return &charsMap{units: units, pool: blob[4+n:], blob: blob}, nil
}

// longest returns the byte length of the longest key that prefixes s and its value, or
// (0, 0) if none.
func (m *charsMap) longest(s []byte) (int, uint32) {
	u := m.units
	if len(u) == 0 {
		return 0, 0
	}
	offset := func(x uint32) uint32 { return (x >> 10) << ((x & (1 << 9)) >> 6) }
	pos := uint32(0) ^ offset(u[0])
	bestLen, bestVal := 0, uint32(0)
	for i, c := range s {
		pos ^= uint32(c)
		if int(pos) >= len(u) {
			break
		}
		x := u[pos]
		if x&((1<<31)|0xFF) != uint32(c) {
			break
		}
		pos ^= offset(x)
		if (x>>8)&1 == 1 && int(pos) < len(u) {
			bestLen, bestVal = i+1, u[pos]&((1<<31)-1)
		}
	}
	return bestLen, bestVal
}

func (m *charsMap) normalize(text []byte) []byte {
	out := make([]byte, 0, len(text)+len(text)/8)
	for i := 0; i < len(text); {
		if l, v := m.longest(text[i:]); l > 0 && int(v) < len(m.pool) {
			rep := m.pool[v:]
			end := 0
			for end < len(rep) && rep[end] != 0 {
				end++
			}
			out = append(out, rep[:end]...)
			i += l
			continue
		}
		r, w := utf8.DecodeRune(text[i:])
		if r == utf8.RuneError && w == 1 {
			out = append(out, "\uFFFD"...) // SentencePiece replaces invalid bytes
		} else {
			out = append(out, text[i:i+w]...)
		}
		i += w
	}
	return out
}
