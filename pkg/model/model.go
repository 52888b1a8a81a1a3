// Package model is the transformer core: GPT-2 and Llama forward and backward passes in
// float32 on the CPU, over padding-free packed batches, plus a KV cache for decoding.
//
// The layout follows llm.c's train_gpt2.c: every layer is a pair of plain functions,
// xxxForward and xxxBackward, side by side (layers.go, attention.go), each opening with a
// comment that states the shapes. Parameters live in one arena and their gradients in a
// second arena of the same layout; Params slices both by Hugging Face tensor name and
// shape, in the exact Hugging Face memory layout (GPT-2 Conv1D weights [in, out], Llama
// Linear weights [out, in]), so checkpoints need no transposes. Activations of a step live
// in a Workspace that is allocated once and grown on demand.
//
// Letters in shape comments: N packed tokens of a batch, T tokens of one sequence,
// C model width, V vocabulary, NH query heads, NKV key/value heads, hd head size (C/NH),
// DFF feed-forward width, L layers, S cache slots.
//
// Every matrix product goes through gemm.Sgemm (row-major), so faster kernels there speed
// up everything here; SetBF16Inference switches inference to bfloat16 weight copies
// (packed for decoding: gemm.SgemmPackedBF16). The element-wise and row passes (exp for the softmaxes, GELU, SwiGLU,
// norms, bias and gradient sums) use the AVX-512 kernels of pkg/simd, with plain Go
// fallbacks (CPO_NOASM=1 turns off both gemm's and simd's assembly). Causal attention
// works in blocks of query rows that only see the keys before them. The passes are split
// over rows (or, for reductions over rows, over columns) among at most
// runtime.GOMAXPROCS goroutines; each output element is produced by one goroutine in a
// fixed order, so results do not depend on the number of workers.
package model

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Param is one named tensor of the model: a view into the parameter arena and the
// matching view into the gradient arena.
type Param struct {
	// Name is the Hugging Face tensor name, e.g. "transformer.h.0.attn.c_attn.weight",
	// "model.layers.0.self_attn.q_proj.weight", "lm_head.weight".
	Name string
	// Shape is the Hugging Face shape: GPT-2 Conv1D weights are [in, out], Llama Linear
	// weights [out, in], embeddings [V, C] / [MaxSeqLen, C], norms and biases [n].
	Shape []int
	// Data is row-major, exactly the Hugging Face layout.
	Data []float32
	// Grad has the same length as Data.
	Grad []float32
	// Decay says whether AdamW weight decay applies: true for every tensor of two or
	// more dimensions (matrices, token and position embeddings, an untied lm head),
	// false for biases and norm weights (nanoGPT's rule).
	Decay bool
}

// layerParams are the views of one transformer block into an arena (parameters or
// gradients). Nil fields are absent in that architecture.
type layerParams struct {
	ln1w, ln1b []float32 // (C) gpt2 ln_1 / llama input_layernorm (no bias)
	wqkv       []float32 // gpt2 c_attn.weight (C, 3C); llama q,k,v_proj stacked ((NH+2NKV)*hd, C)
	bqkv       []float32 // (3C) gpt2 only
	wo         []float32 // gpt2 attn.c_proj.weight (C, C); llama o_proj (C, NH*hd)
	bo         []float32 // (C) gpt2 only
	ln2w, ln2b []float32 // (C) gpt2 ln_2 / llama post_attention_layernorm
	wfc        []float32 // gpt2 mlp.c_fc.weight (C, DFF); llama gate_proj then up_proj stacked (2*DFF, C)
	bfc        []float32 // (DFF) gpt2 only
	wproj      []float32 // gpt2 mlp.c_proj.weight (DFF, C); llama down_proj (C, DFF)
	bproj      []float32 // (C) gpt2 only
}

// weights are all views of one arena.
type weights struct {
	wte        []float32 // (V, C) token embedding, also the lm head when tied
	wpe        []float32 // (MaxSeqLen, C) gpt2 only
	layers     []layerParams
	lnfw, lnfb []float32 // (C) final norm (lnfb gpt2 only)
	head       []float32 // (V, C) lm head: wte when tied
}

// Model is a GPT-2 or Llama transformer with its parameters and gradients.
// A Model is not safe for concurrent Forward/Backward calls; inference through
// separate Workspaces and Caches (Logits, Hidden, Extend) only reads parameters and may
// run concurrently with other inference.
type Model struct {
	// Config is the architecture; read-only after New.
	Config Config

	params           []*Param
	data             []float32 // parameter arena
	grad             []float32 // gradient arena
	w, g             weights   // views of data and grad
	ropeCos, ropeSin []float32 // llama: (MaxSeqLen, hd/2)
	bf               *bf16Mats // bfloat16 weight copies for inference (SetBF16Inference), or nil
	mixed            bool      // dense layers multiply in mixed precision (SetMixedBF16)
}

// tensorSpec is one row of the parameter size table.
type tensorSpec struct {
	name  string
	shape []int
}

func (s tensorSpec) size() int {
	n := 1
	for _, d := range s.shape {
		n *= d
	}
	return n
}

// paramTable is the size table of the arena: every tensor in arena order, which is the
// order of Params. Tied weights appear once (GPT-2 never lists lm_head.weight; Llama lists
// it only when untied).
func (c Config) paramTable() []tensorSpec {
	C, V, F := c.DModel, c.VocabSize, c.DFF
	var t []tensorSpec
	add := func(name string, shape ...int) { t = append(t, tensorSpec{name, shape}) }
	switch c.Arch {
	case ArchGPT2:
		add("transformer.wte.weight", V, C)
		add("transformer.wpe.weight", c.MaxSeqLen, C)
		for l := 0; l < c.NLayer; l++ {
			p := fmt.Sprintf("transformer.h.%d.", l)
			add(p+"ln_1.weight", C)
			add(p+"ln_1.bias", C)
			add(p+"attn.c_attn.weight", C, 3*C)
			add(p+"attn.c_attn.bias", 3*C)
			add(p+"attn.c_proj.weight", C, C)
			add(p+"attn.c_proj.bias", C)
			add(p+"ln_2.weight", C)
			add(p+"ln_2.bias", C)
			add(p+"mlp.c_fc.weight", C, F)
			add(p+"mlp.c_fc.bias", F)
			add(p+"mlp.c_proj.weight", F, C)
			add(p+"mlp.c_proj.bias", C)
		}
		add("transformer.ln_f.weight", C)
		add("transformer.ln_f.bias", C)
	case ArchLlama:
		hd := c.HeadDim()
		add("model.embed_tokens.weight", V, C)
		for l := 0; l < c.NLayer; l++ {
			p := fmt.Sprintf("model.layers.%d.", l)
			// q, k, v adjacent: together they are one ((NH+2NKV)*hd, C) matrix.
			add(p+"self_attn.q_proj.weight", c.NHead*hd, C)
			add(p+"self_attn.k_proj.weight", c.NKVHead*hd, C)
			add(p+"self_attn.v_proj.weight", c.NKVHead*hd, C)
			add(p+"self_attn.o_proj.weight", C, c.NHead*hd)
			// gate, up adjacent: together one (2*DFF, C) matrix.
			add(p+"mlp.gate_proj.weight", F, C)
			add(p+"mlp.up_proj.weight", F, C)
			add(p+"mlp.down_proj.weight", C, F)
			add(p+"input_layernorm.weight", C)
			add(p+"post_attention_layernorm.weight", C)
		}
		add("model.norm.weight", C)
		if !c.TieEmbeddings {
			add("lm_head.weight", V, C)
		}
	}
	return t
}

func (c Config) numParams() int {
	n := 0
	for _, s := range c.paramTable() {
		n += s.size()
	}
	return n
}

// New allocates a model with zeroed parameters and gradients.
func New(cfg Config) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	table := cfg.paramTable()
	total := 0
	for _, s := range table {
		total += s.size()
	}
	m := &Model{Config: cfg, data: make([]float32, total), grad: make([]float32, total)}
	off := 0
	for _, s := range table {
		n := s.size()
		m.params = append(m.params, &Param{
			Name:  s.name,
			Shape: append([]int(nil), s.shape...),
			Data:  m.data[off : off+n : off+n],
			Grad:  m.grad[off : off+n : off+n],
			Decay: len(s.shape) >= 2,
		})
		off += n
	}
	m.w = m.views(m.data)
	m.g = m.views(m.grad)
	if cfg.Arch == ArchLlama {
		m.ropeCos, m.ropeSin = ropeTables(cfg.MaxSeqLen, cfg.HeadDim(), cfg.RopeTheta)
	}
	return m, nil
}

// views slices arena (laid out by paramTable) into the per-layer structure.
func (m *Model) views(arena []float32) weights {
	c := m.Config
	var w weights
	off := 0
	next := func(n int) []float32 {
		s := arena[off : off+n : off+n]
		off += n
		return s
	}
	C, V, F := c.DModel, c.VocabSize, c.DFF
	w.layers = make([]layerParams, c.NLayer)
	switch c.Arch {
	case ArchGPT2:
		w.wte = next(V * C)
		w.wpe = next(c.MaxSeqLen * C)
		for l := range w.layers {
			lp := &w.layers[l]
			lp.ln1w, lp.ln1b = next(C), next(C)
			lp.wqkv, lp.bqkv = next(C*3*C), next(3*C)
			lp.wo, lp.bo = next(C*C), next(C)
			lp.ln2w, lp.ln2b = next(C), next(C)
			lp.wfc, lp.bfc = next(C*F), next(F)
			lp.wproj, lp.bproj = next(F*C), next(C)
		}
		w.lnfw, w.lnfb = next(C), next(C)
		w.head = w.wte
	case ArchLlama:
		hd := c.HeadDim()
		w.wte = next(V * C)
		for l := range w.layers {
			lp := &w.layers[l]
			lp.wqkv = next((c.NHead + 2*c.NKVHead) * hd * C)
			lp.wo = next(C * c.NHead * hd)
			lp.wfc = next(2 * F * C)
			lp.wproj = next(C * F)
			lp.ln1w = next(C)
			lp.ln2w = next(C)
		}
		w.lnfw = next(C)
		if c.TieEmbeddings {
			w.head = w.wte
		} else {
			w.head = next(V * C)
		}
	}
	if off != len(arena) {
		panic(fmt.Sprintf("model: arena views cover %d of %d floats", off, len(arena)))
	}
	return w
}

// Params returns every parameter in arena order: for GPT-2 wte, wpe, then per layer
// ln_1 (weight, bias), attn.c_attn (weight, bias), attn.c_proj (weight, bias), ln_2,
// mlp.c_fc, mlp.c_proj, then ln_f; for Llama embed_tokens, then per layer q_proj, k_proj,
// v_proj, o_proj, gate_proj, up_proj, down_proj, input_layernorm,
// post_attention_layernorm, then model.norm and (untied only) lm_head. A tied lm head
// ("lm_head.weight" in a checkpoint) is the token embedding and is not listed.
// The returned Params share memory with the model; do not reslice or replace Data/Grad.
func (m *Model) Params() []*Param { return m.params }

// Param returns the parameter of the given Hugging Face name, or nil.
func (m *Model) Param(name string) *Param {
	for _, p := range m.params {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// ParamArena is every parameter, concatenated in Params order.
func (m *Model) ParamArena() []float32 { return m.data }

// GradArena is every gradient, in the same layout as ParamArena.
func (m *Model) GradArena() []float32 { return m.grad }

// ZeroGrad sets every gradient to zero. Backward accumulates, so call it between steps.
// The arena (as large as the parameters) is cleared by all cores in 256 KiB chunks.
func (m *Model) ZeroGrad() {
	const chunk = 1 << 16
	parallelFor((len(m.grad)+chunk-1)/chunk, 8, func(lo, hi int) {
		clear(m.grad[lo*chunk : min(len(m.grad), hi*chunk)])
	})
}

// NumParams is the number of scalar parameters (tied weights counted once).
func (m *Model) NumParams() int { return len(m.data) }

// InitGPT2Style fills the parameters the way GPT-2 (and nanoGPT) initialise a model:
// weights and embeddings N(0, 0.02); the projections that write into the residual stream
// (attention output and MLP output) N(0, 0.02/sqrt(2L)); norm weights 1; biases 0.
// The result depends only on the configuration and seed.
func (m *Model) InitGPT2Style(seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	L := m.Config.NLayer
	residStd := 0.02 / math.Sqrt(2*float64(L))
	for _, p := range m.params {
		switch {
		case len(p.Shape) == 1 && isNormWeight(p.Name):
			for i := range p.Data {
				p.Data[i] = 1
			}
		case len(p.Shape) == 1:
			clear(p.Data)
		default:
			std := 0.02
			if isResidualProjection(p.Name) {
				std = residStd
			}
			for i := range p.Data {
				p.Data[i] = float32(rng.NormFloat64() * std)
			}
		}
	}
}

func hasSuffix(s, suf string) bool { return len(s) >= len(suf) && s[len(s)-len(suf):] == suf }

func isNormWeight(name string) bool {
	for _, suf := range []string{"ln_1.weight", "ln_2.weight", "ln_f.weight", "layernorm.weight", "model.norm.weight"} {
		if hasSuffix(name, suf) {
			return true
		}
	}
	return false
}

func isResidualProjection(name string) bool {
	for _, suf := range []string{"attn.c_proj.weight", "mlp.c_proj.weight", "o_proj.weight", "down_proj.weight"} {
		if hasSuffix(name, suf) {
			return true
		}
	}
	return false
}

// ropeTables returns cos and sin of pos*theta^(-2i/hd) for pos < maxT, i < hd/2,
// each (maxT, hd/2), computed in float64 and rounded once.
func ropeTables(maxT, hd int, theta float64) (cos, sin []float32) {
	h := hd / 2
	cos = make([]float32, maxT*h)
	sin = make([]float32, maxT*h)
	for i := 0; i < h; i++ {
		inv := math.Pow(theta, -float64(2*i)/float64(hd))
		for p := 0; p < maxT; p++ {
			s, c := math.Sincos(float64(p) * inv)
			cos[p*h+i] = float32(c)
			sin[p*h+i] = float32(s)
		}
	}
	return cos, sin
}
