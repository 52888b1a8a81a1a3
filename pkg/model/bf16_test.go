package model

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/cpo-toolchain/cpo/pkg/gemm"
)

// roundBF16 rounds w in place to the nearest bfloat16 values.
func roundBF16(w []float32) {
	b := make([]uint16, len(w))
	gemm.BF16FromFloat32(b, w)
	gemm.BF16ToFloat32(w, b)
}

// TestBF16Inference checks, on every golden model, that inference with
// SetBF16Inference equals float32 inference of a model whose block matrices were rounded
// to bfloat16, followed by the rounded lm head (embeddings stay float32, also when the
// head is tied to them); that the KV cache matches the full forward in that mode; that
// Forward ignores the copies; and that turning the mode off restores the float32 logits.
func TestBF16Inference(t *testing.T) {
	for _, name := range goldenCases {
		t.Run(name, func(t *testing.T) {
			g := loadGolden(t, name)
			m := g.model(t)
			b := g.batch()
			N, C, V := len(b.Tokens), m.Config.DModel, m.Config.VocabSize
			f32Logits := slices.Clone(m.Logits(NewWorkspace(), b))
			f32Logp := slices.Clone(m.Forward(NewWorkspace(), b))

			// Reference: rounded block matrices, float32 arithmetic, then the rounded head.
			r := g.model(t)
			for l := range r.w.layers {
				lw := &r.w.layers[l]
				for _, w := range [][]float32{lw.wqkv, lw.wo, lw.wfc, lw.wproj} {
					roundBF16(w)
				}
			}
			head := slices.Clone(m.w.head)
			roundBF16(head)
			hidden := r.Hidden(NewWorkspace(), b)
			want := make([]float32, N*V)
			gemm.SgemmRef(false, true, N, V, C, 1, hidden, C, head, C, 0, want, V)

			m.SetBF16Inference(true)
			if !m.BF16Inference() {
				t.Fatal("BF16Inference is false after SetBF16Inference(true)")
			}
			got := m.Logits(NewWorkspace(), b)
			if e := relErr(got, want); e > 1e-5 {
				t.Fatalf("bf16 logits vs rounded-weight reference: relative error %.3g", e)
			}
			if e := relErr(got, f32Logits); e < 1e-7 || e > 0.05 {
				t.Errorf("bf16 logits differ from float32 by %.3g: expected a bfloat16-sized difference", e)
			}
			if lp := m.Forward(NewWorkspace(), b); !slices.Equal(lp, f32Logp) {
				t.Error("Forward changed under SetBF16Inference")
			}

			// KV cache in bf16 mode = full bf16 forward of the same sequence.
			rng := rand.New(rand.NewPCG(3, 9))
			T := min(m.Config.MaxSeqLen, 12)
			seq := make([]int32, T)
			for i := range seq {
				seq[i] = int32(rng.IntN(V))
			}
			full := slices.Clone(m.Logits(NewWorkspace(), Pack([][]int32{seq})))
			cache := m.NewCache(2, T)
			out := m.Extend(cache, []int{1}, [][]int32{seq[:3]})
			for p := 3; ; p++ {
				if e := relErr(out, full[(p-1)*V:p*V]); e > 1e-5 {
					t.Fatalf("bf16 cache at position %d: relative error %.3g", p-1, e)
				}
				if p == T {
					break
				}
				out = m.Extend(cache, []int{1}, [][]int32{seq[p : p+1]})
			}

			m.SetBF16Inference(false)
			if !slices.Equal(m.Logits(NewWorkspace(), b), f32Logits) {
				t.Error("logits after SetBF16Inference(false) differ from float32")
			}
		})
	}
}
