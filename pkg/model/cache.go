package model

import "fmt"

// Cache is a key/value cache for incremental decoding of S sequences ("slots") of up to
// maxLen tokens each. Keys are stored after RoPE. A Cache owns its scratch memory; one
// Extend runs at a time per Cache, and different Caches of one Model may be used
// concurrently.
type Cache struct {
	m      *Model
	S      int         // number of slots (read-only)
	maxLen int         // tokens per slot
	kd     int         // NKV*hd
	k, v   [][]float32 // per layer (S, maxLen, NKV*hd)
	lens   []int

	ws     Workspace
	tokens []int32
	pos    []int32
	last   []float32 // (S', C) last hidden row of each listed slot, then normed
	lastN  []float32
	mean   []float32
	rstd   []float32
	logits []float32 // (S', V)
}

// NewCache allocates a cache for S slots of up to maxLen tokens (at most MaxSeqLen):
// 2*L*S*maxLen*NKV*hd floats.
func (m *Model) NewCache(S, maxLen int) *Cache {
	if S <= 0 || maxLen <= 0 || maxLen > m.Config.MaxSeqLen {
		panic(fmt.Sprintf("model: NewCache(%d, %d): need S > 0 and 0 < maxLen <= %d", S, maxLen, m.Config.MaxSeqLen))
	}
	kd := m.Config.NKVHead * m.Config.HeadDim()
	c := &Cache{m: m, S: S, maxLen: maxLen, kd: kd, lens: make([]int, S)}
	for l := 0; l < m.Config.NLayer; l++ {
		c.k = append(c.k, make([]float32, S*maxLen*kd))
		c.v = append(c.v, make([]float32, S*maxLen*kd))
	}
	return c
}

// Len is the number of tokens held by slot.
func (c *Cache) Len(slot int) int { return c.lens[slot] }

// MaxLen is the capacity of every slot in tokens.
func (c *Cache) MaxLen() int { return c.maxLen }

// Reset empties slot.
func (c *Cache) Reset(slot int) { c.lens[slot] = 0 }

// Copy makes slot dst a copy of slot src (keys, values and length), for beam search.
func (c *Cache) Copy(dst, src int) {
	if dst == src {
		return
	}
	n := c.lens[src] * c.kd
	for l := range c.k {
		copy(c.k[l][dst*c.maxLen*c.kd:dst*c.maxLen*c.kd+n], c.k[l][src*c.maxLen*c.kd:src*c.maxLen*c.kd+n])
		copy(c.v[l][dst*c.maxLen*c.kd:dst*c.maxLen*c.kd+n], c.v[l][src*c.maxLen*c.kd:src*c.maxLen*c.kd+n])
	}
	c.lens[dst] = c.lens[src]
}

// Extend appends tokens[i] (at least one token) to cache slot slots[i] for every i, e.g.
// a prompt prefill then one token per step, running all new tokens of all listed slots as
// one packed batch, and returns the logits of the LAST appended token of each listed
// slot: len(slots)×V, owned by the cache until the next Extend. Slots must be distinct.
// Extend panics on a repeated slot, an empty token list, a token outside the vocabulary,
// or a slot that would exceed MaxLen.
func (m *Model) Extend(c *Cache, slots []int, tokens [][]int32) []float32 {
	if c.m != m {
		panic("model: Extend with a cache of another model")
	}
	if len(slots) != len(tokens) {
		panic(fmt.Sprintf("model: Extend got %d slots and %d token lists", len(slots), len(tokens)))
	}
	cfg := m.Config
	C, V := cfg.DModel, cfg.VocabSize
	ns := len(slots)
	r0, n, past := make([]int, ns), make([]int, ns), make([]int, ns)
	seen := make(map[int]bool, ns)
	c.tokens, c.pos = c.tokens[:0], c.pos[:0]
	for i, s := range slots {
		if s < 0 || s >= c.S || seen[s] {
			panic(fmt.Sprintf("model: Extend slot %d is out of range [0, %d) or repeated", s, c.S))
		}
		seen[s] = true
		if len(tokens[i]) == 0 {
			panic(fmt.Sprintf("model: Extend slot %d got no tokens", s))
		}
		if c.lens[s]+len(tokens[i]) > c.maxLen {
			panic(fmt.Sprintf("model: Extend slot %d: %d + %d tokens exceed the cache length %d", s, c.lens[s], len(tokens[i]), c.maxLen))
		}
		r0[i], n[i], past[i] = len(c.tokens), len(tokens[i]), c.lens[s]
		for j, tok := range tokens[i] {
			if tok < 0 || int(tok) >= V {
				panic(fmt.Sprintf("model: Extend slot %d token %d = %d is outside the vocabulary [0, %d)", s, j, tok, V))
			}
			c.tokens = append(c.tokens, tok)
			c.pos = append(c.pos, int32(past[i]+j))
		}
	}
	M := len(c.tokens)
	ws := &c.ws
	ws.plan(cfg, M, 1, false, false)
	la := &ws.layers[0]
	encoderForward(la.res, c.tokens, c.pos, m.w.wte, m.w.wpe, C)
	a := m.attn()
	Q := a.qkvDim()
	kc, vc := make([][]float32, ns), make([][]float32, ns)
	for l := 0; l < cfg.NLayer; l++ {
		for i, s := range slots {
			kc[i] = c.k[l][s*c.maxLen*c.kd : (s+1)*c.maxLen*c.kd]
			vc[i] = c.v[l][s*c.maxLen*c.kd : (s+1)*c.maxLen*c.kd]
		}
		m.blockForward(l, la, la.res, M, c.pos, m.bf != nil, func(la *layerActs) {
			// Store the new keys and values, then attend over the whole slot.
			for i := range slots {
				for j := 0; j < n[i]; j++ {
					row := la.qkv[(r0[i]+j)*Q:]
					p := (past[i] + j) * c.kd
					copy(kc[i][p:p+c.kd], row[cfg.NHead*a.hd:])
					copy(vc[i][p:p+c.kd], row[(cfg.NHead+cfg.NKVHead)*a.hd:])
				}
			}
			cacheAttentionForward(la.att, la.qkv, kc, vc, r0, n, past, a, &ws.attnScratch)
		})
	}
	c.last = growF32(c.last, ns*C)
	c.lastN = growF32(c.lastN, ns*C)
	c.mean, c.rstd = growF32(c.mean, ns), growF32(c.rstd, ns)
	c.logits = growF32(c.logits, ns*V)
	for i := range slots {
		r := r0[i] + n[i] - 1
		copy(c.last[i*C:(i+1)*C], la.res[r*C:(r+1)*C])
	}
	if cfg.Arch == ArchLlama {
		rmsnormForward(c.lastN, c.rstd, c.last, m.w.lnfw, ns, C, cfg.NormEps)
	} else {
		layernormForward(c.lastN, c.mean, c.rstd, c.last, m.w.lnfw, m.w.lnfb, ns, C, cfg.NormEps)
	}
	mm(m.sgemm(), c.logits, c.lastN, m.w.head, m.headBF16(false), nil, ns, C, V, true, false)
	for i, s := range slots {
		c.lens[s] += n[i]
	}
	return c.logits
}

func growF32(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n)
	}
	return s[:n]
}
