package tokenizer

// mergeVal is the rank of a merge (lower merges first) and the id it produces.
type mergeVal struct {
	rank int32
	id   int32
}

func pairKey(a, b int32) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

const noRank = int32(1<<31 - 1)

// heapThreshold is the word length (in initial symbols) from which the O(n log n) heap
// merge replaces the O(n²) scan.
const heapThreshold = 48

// mergeWord applies BPE merges in place to syms (the initial symbol ids of one word) and
// returns the merged ids (a prefix of syms). At each step the adjacent pair with the lowest
// rank merges, the leftmost one on ties, as in Hugging Face tokenizers and SentencePiece.
func (t *Tokenizer) mergeWord(st *encState, syms []int32) []int32 {
	n := len(syms)
	if n < 2 {
		return syms
	}
	if n >= heapThreshold {
		return t.mergeWordHeap(st, syms)
	}
	// ranks[k] is the rank of the pair (syms[k], syms[k+1]).
	ranks := st.ranks[:0]
	for k := 0; k+1 < n; k++ {
		r := noRank
		if v, ok := t.pairs[pairKey(syms[k], syms[k+1])]; ok {
			r = v.rank
		}
		ranks = append(ranks, r)
	}
	for {
		best, bk := noRank, -1
		for k, r := range ranks {
			if r < best {
				best, bk = r, k
			}
		}
		if bk < 0 {
			break
		}
		syms[bk] = t.pairs[pairKey(syms[bk], syms[bk+1])].id
		copy(syms[bk+1:], syms[bk+2:])
		syms = syms[:len(syms)-1]
		copy(ranks[bk:], ranks[bk+1:])
		ranks = ranks[:len(ranks)-1]
		if bk > 0 {
			ranks[bk-1] = t.pairRank(syms[bk-1], syms[bk])
		}
		if bk < len(ranks) {
			ranks[bk] = t.pairRank(syms[bk], syms[bk+1])
		}
	}
	st.ranks = ranks
	return syms
}

func (t *Tokenizer) pairRank(a, b int32) int32 {
	if v, ok := t.pairs[pairKey(a, b)]; ok {
		return v.rank
	}
	return noRank
}

// heapItem is a candidate merge of the symbol at pos with its right neighbour.
type heapItem struct {
	rank int32
	pos  int32
	id   int32 // the id the merge produces, to detect stale entries
}

func itemLess(a, b heapItem) bool {
	return a.rank < b.rank || (a.rank == b.rank && a.pos < b.pos)
}

func heapPush(h []heapItem, it heapItem) []heapItem {
	h = append(h, it)
	i := len(h) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !itemLess(h[i], h[p]) {
			break
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
	return h
}

func heapPop(h []heapItem) (heapItem, []heapItem) {
	top := h[0]
	last := len(h) - 1
	h[0] = h[last]
	h = h[:last]
	i := 0
	for {
		l := 2*i + 1
		if l >= len(h) {
			break
		}
		m := l
		if r := l + 1; r < len(h) && itemLess(h[r], h[l]) {
			m = r
		}
		if !itemLess(h[m], h[i]) {
			break
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
	return top, h
}

// mergeWordHeap is mergeWord for long words: a doubly linked list of symbols and a heap
// of candidate merges ordered by (rank, position); entries made stale by an earlier merge
// are skipped when popped.
func (t *Tokenizer) mergeWordHeap(st *encState, syms []int32) []int32 {
	n := len(syms)
	if n < 2 {
		return syms
	}
	if cap(st.next) < n {
		st.next = make([]int32, n)
		st.prev = make([]int32, n)
	}
	next, prev := st.next[:n], st.prev[:n]
	for k := range n {
		next[k] = int32(k + 1)
		prev[k] = int32(k - 1)
	}
	next[n-1] = -1
	h := st.heap[:0]
	for k := 0; k+1 < n; k++ {
		if v, ok := t.pairs[pairKey(syms[k], syms[k+1])]; ok {
			h = heapPush(h, heapItem{v.rank, int32(k), v.id})
		}
	}
	const dead = -2
	for len(h) > 0 {
		var it heapItem
		it, h = heapPop(h)
		p := it.pos
		if syms[p] == dead || next[p] < 0 {
			continue
		}
		q := next[p]
		v, ok := t.pairs[pairKey(syms[p], syms[q])]
		if !ok || v.id != it.id {
			continue
		}
		syms[p] = v.id
		syms[q] = dead
		nq := next[q]
		next[p] = nq
		if nq >= 0 {
			prev[nq] = p
			if v2, ok := t.pairs[pairKey(syms[p], syms[nq])]; ok {
				h = heapPush(h, heapItem{v2.rank, p, v2.id})
			}
		}
		if pp := prev[p]; pp >= 0 {
			if v2, ok := t.pairs[pairKey(syms[pp], syms[p])]; ok {
				h = heapPush(h, heapItem{v2.rank, pp, v2.id})
			}
		}
	}
	st.heap = h
	out := syms[:0]
	for k := int32(0); k >= 0; k = next[k] {
		out = append(out, syms[k])
	}
	return out
}
