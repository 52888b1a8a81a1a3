package tokenizer

import (
	"errors"
	"fmt"
)

// EndOfText is the special token that Train adds as the last id (BOS = EOS, as in GPT-2).
const EndOfText = "<|endoftext|>"

// Train learns a byte-level BPE tokenizer (GPT-2 pre-tokenizer, the 256 bytes as base
// symbols, ids 0..255 in byte order) from texts, with vocabSize ids in all: the bytes,
// the learned merges and EndOfText last. At each step the most frequent adjacent pair of
// symbols over all pre-tokens merges (ties: lower left id, then lower right id); training
// stops early when no pair occurs twice. The result saves as a tokenizer.json with SaveHF.
func Train(texts []string, vocabSize int) (*Tokenizer, error) {
	if vocabSize < 257 {
		return nil, fmt.Errorf("tokenizer: Train: vocabulary size %d is below 257 (256 bytes + %s)", vocabSize, EndOfText)
	}
	counts := make(map[string]int)
	for _, text := range texts {
		b := []byte(text)
		for i := 0; i < len(b); {
			j := nextGPT2Word(b, i)
			counts[string(b[i:j])]++
			i = j
		}
	}
	if len(counts) == 0 {
		return nil, errors.New("tokenizer: Train: no text")
	}
	type word struct {
		syms  []int32
		count int
	}
	words := make([]word, 0, len(counts))
	for w, c := range counts {
		syms := make([]int32, len(w))
		for k := 0; k < len(w); k++ {
			syms[k] = int32(w[k])
		}
		words = append(words, word{syms, c})
	}
	pieces := make([]string, 256, vocabSize)
	for b := range 256 {
		pieces[b] = bytesToPiece([]byte{byte(b)})
	}
	pairCount := make(map[uint64]int)
	where := make(map[uint64][]int32)
	var h pairHeap
	for wi, w := range words {
		for k := 0; k+1 < len(w.syms); k++ {
			key := pairKey(w.syms[k], w.syms[k+1])
			if l := where[key]; len(l) == 0 || l[len(l)-1] != int32(wi) {
				where[key] = append(l, int32(wi))
			}
			pairCount[key] += w.count
		}
	}
	for key, c := range pairCount {
		h.push(pairEntry{c, key})
	}
	var merges []Merge
	touched := make(map[uint64]bool)
	for len(pieces) < vocabSize-1 && h.len() > 0 {
		e := h.pop()
		if pairCount[e.key] != e.count {
			continue // stale
		}
		if e.count < 2 {
			break
		}
		l, r := int32(e.key>>32), int32(uint32(e.key))
		id := int32(len(pieces))
		pieces = append(pieces, pieces[l]+pieces[r])
		merges = append(merges, Merge{Left: l, Right: r, Result: id, Rank: int32(len(merges))})
		clear(touched)
		seen := make(map[int32]bool, len(where[e.key]))
		for _, wi := range where[e.key] {
			if seen[wi] {
				continue
			}
			seen[wi] = true
			w := &words[wi]
			if !containsPair(w.syms, l, r) {
				continue
			}
			for k := 0; k+1 < len(w.syms); k++ {
				key := pairKey(w.syms[k], w.syms[k+1])
				pairCount[key] -= w.count
				touched[key] = true
			}
			out := w.syms[:0]
			for k := 0; k < len(w.syms); k++ {
				if k+1 < len(w.syms) && w.syms[k] == l && w.syms[k+1] == r {
					out = append(out, id)
					k++
				} else {
					out = append(out, w.syms[k])
				}
			}
			w.syms = out
			for k := 0; k+1 < len(w.syms); k++ {
				key := pairKey(w.syms[k], w.syms[k+1])
				if w.syms[k] == id || w.syms[k+1] == id {
					// A new pair; unchanged pairs already list this word.
					if l := where[key]; len(l) == 0 || l[len(l)-1] != wi {
						where[key] = append(l, wi)
					}
				}
				pairCount[key] += w.count
				touched[key] = true
			}
		}
		delete(where, e.key)
		for key := range touched {
			if c := pairCount[key]; c > 0 {
				h.push(pairEntry{c, key})
			} else {
				delete(pairCount, key)
			}
		}
	}
	t := newTokenizer(ByteLevel)
	t.pieces = append(pieces, EndOfText)
	t.merges = merges
	t.added = []AddedToken{{ID: int32(len(pieces)), Content: EndOfText, Special: true}}
	if err := t.finish("tokenizer: Train"); err != nil {
		return nil, err
	}
	return t, nil
}

func containsPair(s []int32, l, r int32) bool {
	for k := 0; k+1 < len(s); k++ {
		if s[k] == l && s[k+1] == r {
			return true
		}
	}
	return false
}

// pairEntry is a candidate merge in training: its count and pair key.
type pairEntry struct {
	count int
	key   uint64
}

// pairHeap is a max-heap by count, then by lower key (lower left id, then right id).
type pairHeap struct{ a []pairEntry }

func (h *pairHeap) len() int { return len(h.a) }

func pairBefore(x, y pairEntry) bool {
	return x.count > y.count || (x.count == y.count && x.key < y.key)
}

func (h *pairHeap) push(e pairEntry) {
	h.a = append(h.a, e)
	i := len(h.a) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !pairBefore(h.a[i], h.a[p]) {
			break
		}
		h.a[i], h.a[p] = h.a[p], h.a[i]
		i = p
	}
}

func (h *pairHeap) pop() pairEntry {
	top := h.a[0]
	last := len(h.a) - 1
	h.a[0] = h.a[last]
	h.a = h.a[:last]
	for i := 0; ; {
		l := 2*i + 1
		if l >= len(h.a) {
			break
		}
		m := l
		if r := l + 1; r < len(h.a) && pairBefore(h.a[r], h.a[l]) {
			m = r
		}
		if !pairBefore(h.a[m], h.a[i]) {
			break
		}
		h.a[i], h.a[m] = h.a[m], h.a[i]
		i = m
	}
	return top
}
