package model

import (
	"fmt"
)

// Batch is a padding-free packed batch: sequence i is Tokens[Starts[i]:Starts[i+1]],
// so Starts has one entry more than there are sequences, Starts[0] = 0 and the last entry
// is len(Tokens). Positions restart at 0 for every sequence and attention never crosses
// sequences. N = len(Tokens) is the packed token count.
type Batch struct {
	Tokens []int32
	Starts []int
}

// Pack builds the Batch of the given sequences, in order.
func Pack(seqs [][]int32) Batch {
	b := Batch{Starts: make([]int, 1, len(seqs)+1)}
	for _, s := range seqs {
		b.Tokens = append(b.Tokens, s...)
		b.Starts = append(b.Starts, len(b.Tokens))
	}
	return b
}

// CheckBatch reports why b cannot run on m: malformed Starts, a sequence longer than
// MaxSeqLen, or a token outside [0, V).
func (m *Model) CheckBatch(b Batch) error {
	if len(b.Starts) == 0 || b.Starts[0] != 0 {
		return fmt.Errorf("model: batch Starts must begin with 0 (got %v)", head(b.Starts))
	}
	if last := b.Starts[len(b.Starts)-1]; last != len(b.Tokens) {
		return fmt.Errorf("model: batch Starts must end with len(Tokens) = %d, got %d", len(b.Tokens), last)
	}
	for i := 0; i+1 < len(b.Starts); i++ {
		n := b.Starts[i+1] - b.Starts[i]
		if n < 0 {
			return fmt.Errorf("model: batch Starts decrease at sequence %d (%d then %d)", i, b.Starts[i], b.Starts[i+1])
		}
		if n > m.Config.MaxSeqLen {
			return fmt.Errorf("model: sequence %d has %d tokens, more than the model's %d", i, n, m.Config.MaxSeqLen)
		}
	}
	for t, tok := range b.Tokens {
		if tok < 0 || int(tok) >= m.Config.VocabSize {
			return fmt.Errorf("model: token %d at packed position %d is outside the vocabulary [0, %d)", tok, t, m.Config.VocabSize)
		}
	}
	return nil
}

func head(s []int) []int {
	if len(s) > 4 {
		return s[:4]
	}
	return s
}

// layerActs are the activations of one block for N packed tokens.
type layerActs struct {
	res              []float32 // (N, C) block input (residual stream)
	ln               []float32 // (N, C) first norm output
	lnMean, lnRstd   []float32 // (N) its statistics (mean unused by RMSNorm)
	qkv              []float32 // (N, QKV) q, k, v; after RoPE for Llama
	att              []float32 // (N, NH*hd) attention output before the projection
	lse              []float32 // (N, NH) softmax log-sum-exp per row and head
	mid              []float32 // (N, C) residual after attention
	ln2              []float32 // (N, C) second norm output
	ln2Mean, ln2Rstd []float32 // (N)
	fc               []float32 // (N, FC) MLP pre-activation: gpt2 FC = DFF; llama [gate | up], FC = 2*DFF
	act              []float32 // (N, DFF) MLP activation (gelu, or silu(gate)*up)
	probs            []float32 // (N, NH, maxT) training: the attention probabilities, or nil (see attnProbBudget)
}

// Workspace holds every activation of one step; it is allocated once, grown on demand and
// reused across calls and models. A Workspace serves one call at a time; slices returned
// by the Model methods belong to it and are overwritten by the next call.
type Workspace struct {
	arena []float32

	// N is the packed token count of the last call (read-only).
	N       int
	train   bool // the last pass was Forward, kept every layer, and Backward may follow
	logitOK bool // logits holds the logits of the last pass
	cfg     Config
	probT   int // maxT of the attention probabilities kept by the next training plan, 0: none

	tokens []int32
	starts []int
	pos    []int32 // (N) position within the sequence
	target []int32 // (N) next token, -1 at sequence ends

	layers               []layerActs // L entries for Forward, 1 for inference
	resL                 []float32   // (N, C) output of the last block
	lnf, lnfMean, lnfRst []float32   // final norm (N, C), (N), (N)
	logits               []float32   // (N, V)
	lse, logp            []float32   // (N)

	// Backward scratch.
	dres, dln, dqkv, datt, dfc, dact, dlnf, lnfc []float32

	attnScratch [][]float32
}

// NewWorkspace returns an empty workspace; buffers are allocated by the first call.
func NewWorkspace() *Workspace { return &Workspace{} }

// Bytes is the memory currently held by the workspace's activation arena.
func (ws *Workspace) Bytes() int64 { return int64(cap(ws.arena)) * 4 }

// carver slices an arena in order; with a nil arena it only counts.
type carver struct {
	arena []float32
	off   int
}

func (c *carver) take(n int) []float32 {
	o := c.off
	c.off += n
	if c.arena == nil {
		return nil
	}
	return c.arena[o : o+n : o+n]
}

// plan lays out the arena for N tokens: nl block slots (L for training, 1 for inference),
// logits if withLogits, and the backward scratch if grads.
func (ws *Workspace) plan(cfg Config, N, nl int, withLogits, grads bool) {
	lay := func(c *carver) {
		C, V, F := cfg.DModel, cfg.VocabSize, cfg.DFF
		a := attnShape{cfg.NHead, cfg.NKVHead, cfg.HeadDim()}
		Q, O, FC := a.qkvDim(), a.outDim(), F
		if cfg.Arch == ArchLlama {
			FC = 2 * F
		}
		ws.layers = ws.layers[:0]
		for l := 0; l < nl; l++ {
			var la layerActs
			la.res = c.take(N * C)
			la.ln, la.lnMean, la.lnRstd = c.take(N*C), c.take(N), c.take(N)
			la.qkv, la.att, la.lse = c.take(N*Q), c.take(N*O), c.take(N*cfg.NHead)
			la.mid = c.take(N * C)
			la.ln2, la.ln2Mean, la.ln2Rstd = c.take(N*C), c.take(N), c.take(N)
			la.fc, la.act = c.take(N*FC), c.take(N*F)
			if grads && ws.probT > 0 {
				la.probs = c.take(N * cfg.NHead * ws.probT)
			}
			ws.layers = append(ws.layers, la)
		}
		if nl == cfg.NLayer {
			ws.resL = c.take(N * C)
		} else {
			ws.resL = ws.layers[0].res // inference: blocks update the stream in place
		}
		ws.lnf, ws.lnfMean, ws.lnfRst = c.take(N*C), c.take(N), c.take(N)
		ws.logits = nil
		if withLogits {
			ws.logits = c.take(N * V)
		}
		ws.lse, ws.logp = c.take(N), c.take(N)
		ws.dres, ws.dln, ws.dqkv, ws.datt, ws.dfc, ws.dact, ws.dlnf, ws.lnfc = nil, nil, nil, nil, nil, nil, nil, nil
		if grads {
			ws.dres, ws.dln, ws.dqkv, ws.datt = c.take(N*C), c.take(N*C), c.take(N*Q), c.take(N*O)
			ws.dfc, ws.dact, ws.dlnf, ws.lnfc = c.take(N*FC), c.take(N*F), c.take(N*C), c.take(N*C)
		}
	}
	count := &carver{}
	lay(count)
	if count.off > cap(ws.arena) {
		ws.arena = nil // let the old arena go before allocating the new one
		ws.arena = make([]float32, count.off+count.off/8)
	}
	lay(&carver{arena: ws.arena[:cap(ws.arena)]})
	ws.N, ws.cfg = N, cfg
}

// bind copies the batch structure into ws and derives positions and targets.
func (ws *Workspace) bind(b Batch) {
	N := len(b.Tokens)
	ws.tokens = append(ws.tokens[:0], b.Tokens...)
	ws.starts = append(ws.starts[:0], b.Starts...)
	ws.pos = growInt32(ws.pos, N)
	ws.target = growInt32(ws.target, N)
	for i := 0; i+1 < len(b.Starts); i++ {
		for t := b.Starts[i]; t < b.Starts[i+1]; t++ {
			ws.pos[t] = int32(t - b.Starts[i])
			if t+1 < b.Starts[i+1] {
				ws.target[t] = b.Tokens[t+1]
			} else {
				ws.target[t] = -1
			}
		}
	}
}

func growInt32(s []int32, n int) []int32 {
	if cap(s) < n {
		return make([]int32, n)
	}
	return s[:n]
}

func (m *Model) attn() attnShape {
	return attnShape{m.Config.NHead, m.Config.NKVHead, m.Config.HeadDim()}
}

// blockForward runs block l on la.res (N, C) and writes the block output to out (N, C),
// which may alias la.res. attend fills la.att (and la.lse) from la.qkv. With lowp the
// products use the bfloat16 weight copies (inference after SetBF16Inference).
func (m *Model) blockForward(l int, la *layerActs, out []float32, N int, pos []int32, lowp bool, attend func(la *layerActs)) {
	c := m.Config
	C, F := c.DModel, c.DFF
	lw := &m.w.layers[l]
	var lb bf16Layer
	if lowp {
		lb = m.bf.layers[l]
	}
	a := m.attn()
	Q, O := a.qkvDim(), a.outDim()
	llama := c.Arch == ArchLlama
	if llama {
		rmsnormForward(la.ln, la.lnRstd, la.res, lw.ln1w, N, C, c.NormEps)
	} else {
		layernormForward(la.ln, la.lnMean, la.lnRstd, la.res, lw.ln1w, lw.ln1b, N, C, c.NormEps)
	}
	mm(m.sgemm(), la.qkv, la.ln, lw.wqkv, lb.wqkv, lw.bqkv, N, C, Q, llama, false)
	if llama {
		ropeForward(la.qkv, pos, N, Q, c.NHead+c.NKVHead, a.hd, m.ropeCos, m.ropeSin)
	}
	attend(la)
	copy(la.mid, la.res[:N*C])
	mm(m.sgemm(), la.mid, la.att, lw.wo, lb.wo, lw.bo, N, O, C, llama, true)
	if llama {
		rmsnormForward(la.ln2, la.ln2Rstd, la.mid, lw.ln2w, N, C, c.NormEps)
		mm(m.sgemm(), la.fc, la.ln2, lw.wfc, lb.wfc, nil, N, C, 2*F, true, false)
		swigluForward(la.act, la.fc, N, F)
	} else {
		layernormForward(la.ln2, la.ln2Mean, la.ln2Rstd, la.mid, lw.ln2w, lw.ln2b, N, C, c.NormEps)
		mm(m.sgemm(), la.fc, la.ln2, lw.wfc, lb.wfc, nil, N, C, F, false, false)
		biasGELUForward(la.act, la.fc, lw.bfc, N, F)
	}
	copy(out, la.mid)
	mm(m.sgemm(), out, la.act, lw.wproj, lb.wproj, lw.bproj, N, F, C, llama, true)
}

// blockBackward: on entry ws.dres (N, C) is the gradient of block l's output; on return
// it is the gradient of the block's input. Parameter gradients are added.
func (m *Model) blockBackward(ws *Workspace, l int) {
	c := m.Config
	N, C, F := ws.N, c.DModel, c.DFF
	lw, lg := &m.w.layers[l], &m.g.layers[l]
	la := &ws.layers[l]
	a := m.attn()
	Q, O := a.qkvDim(), a.outDim()
	llama := c.Arch == ArchLlama
	// MLP: out = mid + act·Wproj (+ b).
	matmulBackward(m.sgemm(), ws.dact, lg.wproj, lg.bproj, ws.dres, la.act, lw.wproj, N, F, C, llama, false)
	if llama {
		swigluBackward(ws.dfc, la.fc, ws.dact, N, F)
		matmulBackward(m.sgemm(), ws.dln, lg.wfc, nil, ws.dfc, la.ln2, lw.wfc, N, C, 2*F, true, false)
		rmsnormBackward(ws.dres, lg.ln2w, ws.dln, la.mid, lw.ln2w, la.ln2Rstd, N, C)
	} else {
		geluBackward(ws.dfc, la.fc, ws.dact)
		matmulBackward(m.sgemm(), ws.dln, lg.wfc, lg.bfc, ws.dfc, la.ln2, lw.wfc, N, C, F, false, false)
		layernormBackward(ws.dres, lg.ln2w, lg.ln2b, ws.dln, la.mid, lw.ln2w, la.ln2Mean, la.ln2Rstd, N, C)
	}
	// Attention: mid = res + att·Wo (+ b).
	matmulBackward(m.sgemm(), ws.datt, lg.wo, lg.bo, ws.dres, la.att, lw.wo, N, O, C, llama, false)
	attentionBackward(ws.dqkv, ws.datt, la.qkv, la.lse, la.probs, ws.starts, a, &ws.attnScratch)
	if llama {
		ropeBackward(ws.dqkv, ws.pos, N, Q, c.NHead+c.NKVHead, a.hd, m.ropeCos, m.ropeSin)
	}
	matmulBackward(m.sgemm(), ws.dln, lg.wqkv, lg.bqkv, ws.dqkv, la.ln, lw.wqkv, N, C, Q, llama, false)
	if llama {
		rmsnormBackward(ws.dres, lg.ln1w, ws.dln, la.res, lw.ln1w, la.lnRstd, N, C)
	} else {
		layernormBackward(ws.dres, lg.ln1w, lg.ln1b, ws.dln, la.res, lw.ln1w, la.lnMean, la.lnRstd, N, C)
	}
}

// finalNormForward: ws.lnf (N, C) = final norm of ws.resL.
func (m *Model) finalNormForward(ws *Workspace) {
	c := m.Config
	if c.Arch == ArchLlama {
		rmsnormForward(ws.lnf, ws.lnfRst, ws.resL, m.w.lnfw, ws.N, c.DModel, c.NormEps)
	} else {
		layernormForward(ws.lnf, ws.lnfMean, ws.lnfRst, ws.resL, m.w.lnfw, m.w.lnfb, ws.N, c.DModel, c.NormEps)
	}
}

// run is the forward pass shared by Forward, Logits and Hidden: embeddings, blocks, final
// norm and, with withLogits, the logits (N, V).
func (m *Model) run(ws *Workspace, b Batch, train, withLogits bool) {
	if err := m.CheckBatch(b); err != nil {
		panic(err)
	}
	N := len(b.Tokens)
	nl := 1
	if train {
		nl = m.Config.NLayer
	}
	// Training keeps the attention probabilities for the backward pass when they are
	// small (as for short sequences): Backward then does not recompute them.
	ws.probT = 0
	if train {
		maxT := 0
		for i := 0; i+1 < len(b.Starts); i++ {
			maxT = max(maxT, b.Starts[i+1]-b.Starts[i])
		}
		if N*m.Config.NHead*maxT <= attnProbBudget {
			ws.probT = maxT
		}
	}
	ws.plan(m.Config, N, nl, withLogits, train)
	ws.bind(b)
	ws.train, ws.logitOK = false, false
	C := m.Config.DModel
	encoderForward(ws.layers[0].res, ws.tokens, ws.pos, m.w.wte, m.w.wpe, C)
	a := m.attn()
	for l := 0; l < m.Config.NLayer; l++ {
		la := &ws.layers[0]
		out := ws.resL
		if train {
			la = &ws.layers[l]
			if l+1 < m.Config.NLayer {
				out = ws.layers[l+1].res
			}
		}
		m.blockForward(l, la, out, N, ws.pos, !train && m.bf != nil, func(la *layerActs) {
			attentionForward(la.att, la.lse, la.probs, la.qkv, ws.starts, a, &ws.attnScratch)
		})
	}
	m.finalNormForward(ws)
	if withLogits {
		mm(m.sgemm(), ws.logits, ws.lnf, m.w.head, m.headBF16(train), nil, N, C, m.Config.VocabSize, true, false)
		ws.logitOK = true
	}
	ws.train = train
}

// Forward runs the packed batch and returns, for every packed position t (length N),
// logp[t] = log p(Tokens[t+1] | the sequence's tokens up to t), and 0 at each sequence's
// last position. Activations are kept in ws for Backward. The returned slice belongs to
// ws. Forward panics if m.CheckBatch(b) fails.
func (m *Model) Forward(ws *Workspace, b Batch) []float32 {
	m.run(ws, b, true, true)
	logprobForward(ws.logp, ws.lse, ws.logits, ws.target, ws.N, m.Config.VocabSize)
	return ws.logp[:ws.N]
}

// LastLogits returns the N×V logits of the last Forward, Logits call, or nil if the last
// call computed none or Backward has since consumed them (Backward overwrites them with
// their gradient).
func (ws *Workspace) LastLogits() []float32 {
	if !ws.logitOK {
		return nil
	}
	return ws.logits
}

// Backward adds to every Param.Grad the gradient of L given dlogp[t] = dL/dlogp[t]
// (length N, as returned by the last Forward on ws; entries at sequence ends are
// ignored). MLE: dlogp = -mask/count. CPO: dlogp[t] = dL/dlogP(y_j) for the response
// positions of candidate j. Rows with dlogp 0 cost less lm-head work. The last call on ws
// must have been Forward of this model: Backward consumes the stored logits (call Forward
// again before another Backward), and Logits or Hidden on ws discard the activations.
func (m *Model) Backward(ws *Workspace, dlogp []float32) {
	if !ws.train || !ws.logitOK || ws.cfg != m.Config {
		panic("model: Backward needs a Forward of this model as the last call on the workspace")
	}
	N, C, V := ws.N, m.Config.DModel, m.Config.VocabSize
	if len(dlogp) != N {
		panic(fmt.Sprintf("model: Backward got %d dlogp values for %d packed tokens", len(dlogp), N))
	}
	logprobBackward(ws.logits, ws.lse, dlogp, ws.target, N, V)
	ws.logitOK = false
	// dlnf (N, C) = dlogits·head; dhead += dlogits^T·lnf. When a quarter or more of the
	// rows have no gradient (sequence ends, prompts), the rows with one are first compacted
	// to the front so the lm-head products skip the rest.
	M := 0
	for t := 0; t < N; t++ {
		if ws.target[t] >= 0 && dlogp[t] != 0 {
			M++
		}
	}
	if 4*M >= 3*N {
		matmulBackward(m.sgemm(), ws.dlnf, m.g.head, nil, ws.logits, ws.lnf, m.w.head, N, C, V, true, false)
	} else {
		M = 0
		for t := 0; t < N; t++ {
			if ws.target[t] >= 0 && dlogp[t] != 0 {
				if M != t {
					copy(ws.logits[M*V:(M+1)*V], ws.logits[t*V:(t+1)*V])
				}
				copy(ws.lnfc[M*C:(M+1)*C], ws.lnf[t*C:(t+1)*C])
				M++
			}
		}
		matmulBackward(m.sgemm(), ws.dln, m.g.head, nil, ws.logits, ws.lnfc, m.w.head, M, C, V, true, false)
		clear(ws.dlnf)
		M = 0
		for t := 0; t < N; t++ {
			if ws.target[t] >= 0 && dlogp[t] != 0 {
				copy(ws.dlnf[t*C:(t+1)*C], ws.dln[M*C:(M+1)*C])
				M++
			}
		}
	}
	clear(ws.dres)
	if m.Config.Arch == ArchLlama {
		rmsnormBackward(ws.dres, m.g.lnfw, ws.dlnf, ws.resL, m.w.lnfw, ws.lnfRst, N, C)
	} else {
		layernormBackward(ws.dres, m.g.lnfw, m.g.lnfb, ws.dlnf, ws.resL, m.w.lnfw, ws.lnfMean, ws.lnfRst, N, C)
	}
	for l := m.Config.NLayer - 1; l >= 0; l-- {
		m.blockBackward(ws, l)
	}
	encoderBackward(m.g.wte, m.g.wpe, ws.dres, ws.tokens, ws.pos, C)
}

// Logits runs an inference-only forward of b (one block's activations kept at a time) and
// returns its N×V logits, owned by ws.
func (m *Model) Logits(ws *Workspace, b Batch) []float32 {
	m.run(ws, b, false, true)
	return ws.logits
}

// Hidden runs an inference-only forward of b and returns the N×C final hidden states
// after the last norm (the lm head's input), owned by ws.
func (m *Model) Hidden(ws *Workspace, b Batch) []float32 {
	m.run(ws, b, false, false)
	return ws.lnf
}
