package tokenizer

import (
	"unicode"
	"unicode/utf8"
)

// Character classes of the GPT-2 pre-tokenizer.
const (
	clsOther  = 0 // [^\s\p{L}\p{N}]
	clsLetter = 1 // \p{L}
	clsNumber = 2 // \p{N}
	clsSpace  = 3 // \s (Unicode White_Space)
)

// asciiClass holds the class of each ASCII byte.
var asciiClass = func() (t [128]uint8) {
	for b := 0; b < 128; b++ {
		t[b] = classOfRune(rune(b))
	}
	return
}()

// classOfRune is the plain reference classification of one code point.
func classOfRune(r rune) uint8 {
	switch {
	case unicode.IsSpace(r): // White_Space property
		return clsSpace
	case unicode.IsLetter(r):
		return clsLetter
	case unicode.IsNumber(r):
		return clsNumber
	}
	return clsOther
}

// classAt returns the class and byte width of the character at text[i]. Invalid UTF-8
// bytes are single-byte characters of class other (U+FFFD is a symbol), so arbitrary
// bytes pre-tokenize and round-trip.
func classAt(text []byte, i int) (uint8, int) {
	b := text[i]
	if b < utf8.RuneSelf {
		return asciiClass[b], 1
	}
	r, w := utf8.DecodeRune(text[i:])
	if r == utf8.RuneError && w == 1 {
		return clsOther, 1
	}
	return classOfRune(r), w
}

// runOf returns the end of the run of characters of class c starting at i.
func runOf(text []byte, i int, c uint8) int {
	n := len(text)
	for i < n {
		b := text[i]
		if b < utf8.RuneSelf {
			if asciiClass[b] != c {
				return i
			}
			i++
			continue
		}
		cc, w := classAt(text, i)
		if cc != c {
			return i
		}
		i += w
	}
	return i
}

// nextGPT2Word returns the end of the pre-token that starts at text[i] (i < len(text))
// under the GPT-2 pattern
//
//	's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//
// with the alternation tried in order, as a backtracking regex engine does.
func nextGPT2Word(text []byte, i int) int {
	n := len(text)
	b := text[i]
	if b == '\'' && i+1 < n {
		switch text[i+1] {
		case 's', 't', 'm', 'd':
			return i + 2
		case 'r', 'v':
			if i+2 < n && text[i+2] == 'e' {
				return i + 3
			}
		case 'l':
			if i+2 < n && text[i+2] == 'l' {
				return i + 3
			}
		}
	}
	start := i
	if b == ' ' && i+1 < n {
		// " ?X+": a single space may lead a run of letters, numbers or others.
		if c, _ := classAt(text, i+1); c != clsSpace {
			return runOf(text, i+1, c)
		}
	}
	c, w := classAt(text, start)
	if c != clsSpace {
		return runOf(text, start+w, c)
	}
	// \s+(?!\S) then \s+: take the whole whitespace run; if a non-space follows, give back
	// its last character (so that it can lead the next word), unless the run is one
	// character long, in which case \s+ takes that one character.
	last := start
	j := start
	for j < n {
		cc, ww := classAt(text, j)
		if cc != clsSpace {
			break
		}
		last = j
		j += ww
	}
	if j == n || last == start {
		return j
	}
	return last
}

// splitGPT2 appends the pre-token boundaries of text to ends and returns it: word k is
// text[ends[k-1]:ends[k]] with ends[-1] = 0. It is the plain reference used by tests.
func splitGPT2(text []byte, ends []int) []int {
	for i := 0; i < len(text); {
		i = nextGPT2Word(text, i)
		ends = append(ends, i)
	}
	return ends
}
