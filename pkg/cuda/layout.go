package cuda

import (
	"fmt"
	"math"
	"unsafe"

	"github.com/cpo-toolchain/cpo/pkg/model"
)

// The host-side bookkeeping of the GPU backend, which needs no GPU: where every tensor
// lies in the parameter arena, and how a packed batch is described to the kernels.

// layerOffs are the element offsets of one block's tensors in the parameter arena
// (-1: absent in this architecture); the same offsets index the gradient arena.
type layerOffs struct {
	ln1w, ln1b, wqkv, bqkv, wo, bo, ln2w, ln2b, wfc, bfc, wproj, bproj int64
}

// layout is the arena layout of a model, as pkg/model lays it out (model.go: paramTable):
// Llama's q, k, v projections adjacent (one ((NH+2*NKV)*hd, C) matrix) and gate, up
// adjacent (one (2*DFF, C) matrix); GPT-2's and a tied Llama's head is the token embedding.
type layout struct {
	layers                     []layerOffs
	wte, wpe, lnfw, lnfb, head int64
}

// arenaOffset is the element offset of p's data in the arena that starts at base.
func arenaOffset(base uintptr, p *model.Param) int64 {
	return int64(uintptr(unsafe.Pointer(&p.Data[0]))-base) / 4
}

// newLayout finds every tensor of m by its Hugging Face name.
func newLayout(m *model.Model) (layout, error) {
	var lay layout
	base := uintptr(unsafe.Pointer(&m.ParamArena()[0]))
	var missing []string
	off := func(name string) int64 {
		p := m.Param(name)
		if p == nil {
			missing = append(missing, name)
			return -1
		}
		return arenaOffset(base, p)
	}
	c := m.Config
	lay.layers = make([]layerOffs, c.NLayer)
	lay.wpe, lay.lnfb = -1, -1
	switch c.Arch {
	case model.ArchGPT2:
		lay.wte = off("transformer.wte.weight")
		lay.wpe = off("transformer.wpe.weight")
		for l := range lay.layers {
			p := fmt.Sprintf("transformer.h.%d.", l)
			lay.layers[l] = layerOffs{
				ln1w: off(p + "ln_1.weight"), ln1b: off(p + "ln_1.bias"),
				wqkv: off(p + "attn.c_attn.weight"), bqkv: off(p + "attn.c_attn.bias"),
				wo: off(p + "attn.c_proj.weight"), bo: off(p + "attn.c_proj.bias"),
				ln2w: off(p + "ln_2.weight"), ln2b: off(p + "ln_2.bias"),
				wfc: off(p + "mlp.c_fc.weight"), bfc: off(p + "mlp.c_fc.bias"),
				wproj: off(p + "mlp.c_proj.weight"), bproj: off(p + "mlp.c_proj.bias"),
			}
		}
		lay.lnfw, lay.lnfb = off("transformer.ln_f.weight"), off("transformer.ln_f.bias")
		lay.head = lay.wte
	case model.ArchLlama:
		lay.wte = off("model.embed_tokens.weight")
		hd, C := int64(c.HeadDim()), int64(c.DModel)
		for l := range lay.layers {
			p := fmt.Sprintf("model.layers.%d.", l)
			lo := layerOffs{
				ln1w: off(p + "input_layernorm.weight"), ln1b: -1,
				wqkv: off(p + "self_attn.q_proj.weight"), bqkv: -1,
				wo: off(p + "self_attn.o_proj.weight"), bo: -1,
				ln2w: off(p + "post_attention_layernorm.weight"), ln2b: -1,
				wfc: off(p + "mlp.gate_proj.weight"), bfc: -1,
				wproj: off(p + "mlp.down_proj.weight"), bproj: -1,
			}
			k, v := off(p+"self_attn.k_proj.weight"), off(p+"self_attn.v_proj.weight")
			if len(missing) == 0 && (k != lo.wqkv+int64(c.NHead)*hd*C || v != k+int64(c.NKVHead)*hd*C) {
				return lay, fmt.Errorf("cuda: layer %d: q, k, v projections are not adjacent in the arena", l)
			}
			if u := off(p + "mlp.up_proj.weight"); len(missing) == 0 && u != lo.wfc+int64(c.DFF)*C {
				return lay, fmt.Errorf("cuda: layer %d: gate and up projections are not adjacent in the arena", l)
			}
			lay.layers[l] = lo
		}
		lay.lnfw = off("model.norm.weight")
		lay.head = lay.wte
		if !c.TieEmbeddings {
			lay.head = off("lm_head.weight")
		}
	default:
		return lay, fmt.Errorf("cuda: unsupported architecture %q", c.Arch)
	}
	if len(missing) > 0 {
		return lay, fmt.Errorf("cuda: model has no tensor %v", missing)
	}
	return lay, nil
}

// positions returns, for every packed token of b, its position within its sequence and its
// next token (-1 at each sequence's last token), as pkg/model's Workspace.bind.
func positions(b model.Batch) (pos, target []int32) {
	N := len(b.Tokens)
	pos, target = make([]int32, N), make([]int32, N)
	for i := 0; i+1 < len(b.Starts); i++ {
		s0, s1 := b.Starts[i], b.Starts[i+1]
		for t := s0; t < s1; t++ {
			pos[t] = int32(t - s0)
			target[t] = -1
			if t+1 < s1 {
				target[t] = b.Tokens[t+1]
			}
		}
	}
	return pos, target
}

// attnGroups lists the blocks of the attention kernels (kernels/attention.cu): for every
// sequence of the packed batch (starts as model.Batch.Starts) and every run of rows
// consecutive rows of it, the triple {first token of the sequence, its length T, first row
// of the run}. Every row of every sequence is in exactly one group; an empty sequence
// has none.
func attnGroups(starts []int, rows int) []int32 {
	var g []int32
	for i := 0; i+1 < len(starts); i++ {
		s0, T := starts[i], starts[i+1]-starts[i]
		for r0 := 0; r0 < T; r0 += rows {
			g = append(g, int32(s0), int32(T), int32(r0))
		}
	}
	return g
}

// ropeTables is pkg/model's: cos and sin of pos*theta^(-2i/hd), (maxT, hd/2), computed in
// float64 and rounded once.
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
