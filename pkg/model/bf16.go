package model

import "github.com/cpo-toolchain/cpo/pkg/gemm"

// bf16Layer holds bfloat16 copies of one block's matrices, in the float32 layouts.
type bf16Layer struct {
	wqkv, wo, wfc, wproj []uint16
}

// bf16Mats are the bfloat16 copies used by inference after SetBF16Inference(true).
type bf16Mats struct {
	layers []bf16Layer
	head   []uint16 // (V, C)
}

func toBF16(w []float32) []uint16 {
	b := make([]uint16, len(w))
	parallelFor(len(w), 1<<16, func(lo, hi int) { gemm.BF16FromFloat32(b[lo:hi], w[lo:hi]) })
	return b
}

// SetBF16Inference with on rounds every weight matrix (the four projections of each
// block and the lm head; embeddings, norms and biases stay float32) to bfloat16 once, and
// from then on the inference paths (Extend, Logits, Hidden) multiply by these copies with
// float32 accumulation (gemm.SgemmBF16): decoding reads half the bytes per token, which is
// what bounds it. Forward and Backward always use the float32 weights. The copies are a
// snapshot: call SetBF16Inference(true) again after the parameters change (an optimizer
// step, a checkpoint load). Off drops them. It costs 2 bytes per matrix parameter and must
// not run concurrently with inference on m.
func (m *Model) SetBF16Inference(on bool) {
	if !on {
		m.bf = nil
		return
	}
	bf := &bf16Mats{layers: make([]bf16Layer, len(m.w.layers)), head: toBF16(m.w.head)}
	for l := range m.w.layers {
		lw := &m.w.layers[l]
		bf.layers[l] = bf16Layer{wqkv: toBF16(lw.wqkv), wo: toBF16(lw.wo), wfc: toBF16(lw.wfc), wproj: toBF16(lw.wproj)}
	}
	m.bf = bf
}

// BF16Inference reports whether inference uses bfloat16 weight copies.
func (m *Model) BF16Inference() bool { return m.bf != nil }

// mm is matmulForward (see there) with the weight in float32 (wb nil) or, for
// inference with SetBF16Inference, its bfloat16 copy wb.
func mm(out, inp, w []float32, wb []uint16, bias []float32, N, IC, OC int, outIn, accumulate bool) {
	if wb == nil {
		matmulForward(out, inp, w, bias, N, IC, OC, outIn, accumulate)
		return
	}
	if N == 0 {
		return
	}
	var beta float32
	if accumulate {
		beta = 1
	}
	if outIn {
		gemm.SgemmBF16(false, true, N, OC, IC, 1, inp, IC, wb, IC, beta, out, OC)
	} else {
		gemm.SgemmBF16(false, false, N, OC, IC, 1, inp, IC, wb, OC, beta, out, OC)
	}
	addBias(out, bias, N, OC)
}
