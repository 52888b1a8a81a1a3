package cuda

import (
	"math"
	"testing"
	"unsafe"

	"github.com/cpo-toolchain/cpo/pkg/model"
)

func testModel(t *testing.T, arch string, tied bool) *model.Model {
	cfg := model.Config{Arch: arch, VocabSize: 11, MaxSeqLen: 8, NLayer: 2, NHead: 4, NKVHead: 4, DModel: 16, DFF: 24,
		NormEps: 1e-5, RopeTheta: 10000, TieEmbeddings: tied, BOS: -1, EOS: -1}
	if arch == model.ArchLlama {
		cfg.NKVHead = 2
	}
	m, err := model.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// The layout names the same floats as the model's Params, with Llama's stacked q|k|v and
// gate|up matrices starting at q_proj and gate_proj, and the head at wte when tied.
func TestLayout(t *testing.T) {
	for _, tc := range []struct {
		arch string
		tied bool
	}{{model.ArchGPT2, true}, {model.ArchLlama, true}, {model.ArchLlama, false}} {
		m := testModel(t, tc.arch, tc.tied)
		lay, err := newLayout(m)
		if err != nil {
			t.Fatal(err)
		}
		base := uintptr(unsafe.Pointer(&m.ParamArena()[0]))
		at := func(name string) int64 { return arenaOffset(base, m.Param(name)) }
		// Writing through the offsets must hit the named tensors: mark and look.
		var want []int64
		if tc.arch == model.ArchGPT2 {
			want = []int64{at("transformer.h.1.ln_1.weight"), at("transformer.h.1.ln_1.bias"), at("transformer.h.1.attn.c_attn.weight"),
				at("transformer.h.1.attn.c_attn.bias"), at("transformer.h.1.attn.c_proj.weight"), at("transformer.h.1.attn.c_proj.bias"),
				at("transformer.h.1.ln_2.weight"), at("transformer.h.1.ln_2.bias"), at("transformer.h.1.mlp.c_fc.weight"),
				at("transformer.h.1.mlp.c_fc.bias"), at("transformer.h.1.mlp.c_proj.weight"), at("transformer.h.1.mlp.c_proj.bias")}
			if lay.wpe != at("transformer.wpe.weight") || lay.head != lay.wte || lay.lnfb != at("transformer.ln_f.bias") {
				t.Errorf("gpt2 globals %+v", lay)
			}
		} else {
			want = []int64{at("model.layers.1.input_layernorm.weight"), -1, at("model.layers.1.self_attn.q_proj.weight"), -1,
				at("model.layers.1.self_attn.o_proj.weight"), -1, at("model.layers.1.post_attention_layernorm.weight"), -1,
				at("model.layers.1.mlp.gate_proj.weight"), -1, at("model.layers.1.mlp.down_proj.weight"), -1}
			head := lay.wte
			if !tc.tied {
				head = at("lm_head.weight")
			}
			if lay.wpe != -1 || lay.lnfb != -1 || lay.head != head || lay.lnfw != at("model.norm.weight") {
				t.Errorf("llama globals %+v (tied %v)", lay, tc.tied)
			}
		}
		lo := lay.layers[1]
		got := []int64{lo.ln1w, lo.ln1b, lo.wqkv, lo.bqkv, lo.wo, lo.bo, lo.ln2w, lo.ln2b, lo.wfc, lo.bfc, lo.wproj, lo.bproj}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("%s layer 1 field %d: offset %d, want %d", tc.arch, i, got[i], want[i])
			}
		}
	}
}

// Every row of every sequence is in exactly one attention group, groups never cross
// sequences, and positions and targets are pkg/model's.
func TestBatchDescription(t *testing.T) {
	b := model.Pack([][]int32{{1, 2, 3}, {}, {4}, {5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21}})
	g := attnGroups(b.Starts, 8)
	seen := make([]int, len(b.Tokens))
	for i := 0; i < len(g); i += 3 {
		s0, T, r0 := int(g[i]), int(g[i+1]), int(g[i+2])
		for r := r0; r < min(r0+8, T); r++ {
			seen[s0+r]++
		}
	}
	for t2, n := range seen {
		if n != 1 {
			t.Errorf("row %d is in %d groups", t2, n)
		}
	}
	if len(g)/3 != 1+0+1+3 {
		t.Errorf("%d groups, want 5", len(g)/3)
	}
	pos, target := positions(b)
	wantPos := []int32{0, 1, 2, 0, 0, 1}
	wantTarget := []int32{2, 3, -1, -1, 6, 7}
	for i := range wantPos {
		if pos[i] != wantPos[i] || target[i] != wantTarget[i] {
			t.Errorf("token %d: pos %d target %d, want %d %d", i, pos[i], target[i], wantPos[i], wantTarget[i])
		}
	}
	if target[len(target)-1] != -1 || pos[len(pos)-1] != 16 {
		t.Errorf("last token: pos %d target %d", pos[len(pos)-1], target[len(target)-1])
	}
}

func TestRopeTables(t *testing.T) {
	cos, sin := ropeTables(5, 8, 10000)
	for p := 0; p < 5; p++ {
		for i := 0; i < 4; i++ {
			ang := float64(p) * math.Pow(10000, -float64(2*i)/8)
			if math.Abs(float64(cos[p*4+i])-math.Cos(ang)) > 1e-7 || math.Abs(float64(sin[p*4+i])-math.Sin(ang)) > 1e-7 {
				t.Errorf("pos %d i %d: %v %v", p, i, cos[p*4+i], sin[p*4+i])
			}
		}
	}
}
