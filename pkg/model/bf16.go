package model

import (
	"fmt"

	"github.com/cpo-toolchain/cpo/pkg/gemm"
)

// bf16Layer holds bfloat16 copies of one block's matrices, each packed as the right-hand
// side op(W) (IC×OC) of its product (gemm.PackedBF16: column panels read once per step).
type bf16Layer struct {
	wqkv, wo, wfc, wproj *gemm.PackedBF16
}

// bf16Mats are the bfloat16 copies used by inference after SetBF16Inference(true).
type bf16Mats struct {
	layers []bf16Layer
	head   *gemm.PackedBF16 // op = headᵀ: C×V
}

// packBF16 rounds weight w of a product from IC to OC channels (stored (OC, IC) when outIn,
// else (IC, OC), as mm takes it) to bfloat16 and packs it.
func packBF16(w []float32, IC, OC int, outIn bool) *gemm.PackedBF16 {
	if outIn {
		return gemm.PackBF16(true, IC, OC, w, IC)
	}
	return gemm.PackBF16(false, IC, OC, w, OC)
}

// SetBF16Inference with on rounds every weight matrix (the four projections of each
// block and the lm head; embeddings, norms and biases stay float32) to bfloat16 once, and
// from then on the inference paths (Extend, Logits, Hidden) multiply by these copies with
// float32 accumulation (gemm.SgemmPackedBF16): decoding reads half the bytes per token, which is
// what bounds it. Forward and Backward always use the float32 weights. The copies are a
// snapshot: call SetBF16Inference(true) again after the parameters change (an optimizer
// step, a checkpoint load). Off drops them. It costs 2 bytes per matrix parameter and must
// not run concurrently with inference on m.
func (m *Model) SetBF16Inference(on bool) {
	if !on {
		m.bf = nil
		return
	}
	c := m.Config
	C, F := c.DModel, c.DFF
	a := m.attn()
	Q, O := a.qkvDim(), a.outDim()
	llama := c.Arch == ArchLlama
	fc := F
	if llama {
		fc = 2 * F // gate and up, one product
	}
	bf := &bf16Mats{layers: make([]bf16Layer, len(m.w.layers)), head: packBF16(m.w.head, C, c.VocabSize, true)}
	for l := range m.w.layers {
		lw := &m.w.layers[l]
		bf.layers[l] = bf16Layer{
			wqkv:  packBF16(lw.wqkv, C, Q, llama),
			wo:    packBF16(lw.wo, O, C, llama),
			wfc:   packBF16(lw.wfc, C, fc, llama),
			wproj: packBF16(lw.wproj, F, C, llama),
		}
	}
	m.bf = bf
}

// BF16Inference reports whether inference uses bfloat16 weight copies.
func (m *Model) BF16Inference() bool { return m.bf != nil }

// mm is matmulForward (see there) with the weight in float32 (wb nil) or, for
// inference with SetBF16Inference, its packed bfloat16 copy wb (op(W), IC×OC).
func mm(sg sgemmFunc, out, inp, w []float32, wb *gemm.PackedBF16, bias []float32, N, IC, OC int, outIn, accumulate bool) {
	if wb == nil {
		matmulForward(sg, out, inp, w, bias, N, IC, OC, outIn, accumulate)
		return
	}
	if N == 0 {
		return
	}
	var beta float32
	if accumulate {
		beta = 1
	}
	if k, n := wb.Dims(); k != IC || n != OC {
		panic(fmt.Sprintf("model: packed bfloat16 weight is %d×%d, product wants %d×%d", k, n, IC, OC))
	}
	gemm.SgemmPackedBF16(N, 1, inp, IC, wb, beta, out, OC)
	addBias(out, bias, N, OC)
}

// headBF16 is the packed bfloat16 lm head for an inference pass (train false) after
// SetBF16Inference, else nil.
func (m *Model) headBF16(train bool) *gemm.PackedBF16 {
	if train || m.bf == nil {
		return nil
	}
	return m.bf.head
}

// SetMixedBF16 with on makes every product of a dense layer (the four projections of each
// block and the lm head, forward and backward, training and inference with the float32
// weights) round its inputs to bfloat16 and sum in float32 (gemm.SgemmMixedBF16): mixed
// precision, twice the multiply-adds per cycle on CPUs with AVX512_BF16. Weights,
// gradients, activations, the attention products, norms and the loss stay float32. Off (the
// default) computes every product in float32. It must not change while a pass runs on m.
// train.NewEngine sets it from the device's precision on the CPU. Without AVX512_BF16 the
// products are emulated in Go, about 100 times slower than float32 (gemm.MixedBF16Impl).
func (m *Model) SetMixedBF16(on bool) { m.mixed = on }

// MixedBF16 reports whether the dense layers multiply in mixed precision (SetMixedBF16).
func (m *Model) MixedBF16() bool { return m.mixed }

// sgemm is the product the dense layers use.
func (m *Model) sgemm() sgemmFunc {
	if m.mixed {
		return gemm.SgemmMixedBF16
	}
	return gemm.Sgemm
}
