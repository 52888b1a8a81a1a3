package cuda

import "github.com/cpo-toolchain/cpo/pkg/model"

// actsOf are one block's activation buffers for N tokens (pkg/model's layerActs): P is
// the buffer handle (a device pointer in the GPU backend).
type actsOf[P any] struct {
	res, ln, qkv, att, mid, ln2, fc, act  P // (N, C|QKV|NH*hd|FC|DFF) storage type
	lnMean, lnRstd, lse, ln2Mean, ln2Rstd P // (N), (N, NH) float32
}

// actBufs are every activation buffer of a batch.
type actBufs[P any] struct {
	la                                     []actsOf[P] // every block's (training) or one (inference)
	resL, lnf, logits                      P           // (N, C), (N, C), (N, V) storage type
	lnfMean, lnfRstd, lse, logp, dlogp, D  P           // (N) float32; D (N, NH)
	dres, dln, dqkv, datt, dfc, dact, dlnf P           // backward scratch, storage type
	tokens, pos, target, groups            P           // int32
}

// carveActs hands out the activation buffers for n tokens in a fixed order, calling
// take(elements, bytes per element) once per buffer: per block res, ln, qkv, att, mid, ln2,
// fc, act (storage type of tsize bytes) and lnMean, lnRstd, lse, ln2Mean, ln2Rstd (float32),
// for every block (training) or one (inference: the stream is updated in place and resL is
// that block's res); then resL (training), lnf, logits; lnfMean, lnfRstd, lse, logp, dlogp;
// tokens, pos, target, groups (int32); and for training D and the backward scratch.
func carveActs[P any](c model.Config, n, tsize int64, inference bool, take func(elems, size int64) P) actBufs[P] {
	C, V, F := int64(c.DModel), int64(c.VocabSize), int64(c.DFF)
	NH, NKV, hd := int64(c.NHead), int64(c.NKVHead), int64(c.HeadDim())
	Q, O, FC := (NH+2*NKV)*hd, NH*hd, F
	if c.Arch == model.ArchLlama {
		FC = 2 * F
	}
	T := func(e int64) P { return take(e, tsize) }
	f := func(e int64) P { return take(e, 4) }
	var b actBufs[P]
	nl := c.NLayer
	if inference {
		nl = 1
	}
	for l := 0; l < nl; l++ {
		var a actsOf[P]
		a.res, a.ln, a.qkv, a.att = T(n*C), T(n*C), T(n*Q), T(n*O)
		a.mid, a.ln2, a.fc, a.act = T(n*C), T(n*C), T(n*FC), T(n*F)
		a.lnMean, a.lnRstd, a.lse = f(n), f(n), f(n*NH)
		a.ln2Mean, a.ln2Rstd = f(n), f(n)
		b.la = append(b.la, a)
	}
	if inference {
		b.resL = b.la[0].res
	} else {
		b.resL = T(n * C)
	}
	b.lnf, b.logits = T(n*C), T(n*V)
	b.lnfMean, b.lnfRstd, b.lse, b.logp, b.dlogp = f(n), f(n), f(n), f(n), f(n)
	b.tokens, b.pos, b.target = f(n), f(n), f(n) // int32, same size
	b.groups = f(3 * (n/attnRowsHost + n))       // at most N/ROWS + nseq groups, nseq <= N
	if !inference {
		b.D = f(n * NH)
		b.dres, b.dln, b.dqkv, b.datt = T(n*C), T(n*C), T(n*Q), T(n*O)
		b.dfc, b.dact, b.dlnf = T(n*FC), T(n*F), T(n*C)
	}
	return b
}

// attnRowsHost is ROWS of kernels/attention.cu (rows per attention block).
const attnRowsHost = 8

// DeviceBytes is the GPU memory a Trainer of cfg with opts allocates for batches of up to
// n packed tokens (the activations are sized for n + n/8): weights (float32 master and,
// in bf16, the bf16 copy; an inference-only bf16 trainer keeps the copy only), gradients
// and AdamW moments (training), and the activations. cuBLAS's workspace and the CUDA
// context (a few hundred MB) come on top.
func DeviceBytes(cfg model.Config, params int64, n int64, opts Options) int64 {
	opts, err := opts.withDefaults()
	if err != nil {
		return 0
	}
	tsize := int64(2)
	if opts.Precision == Float32 {
		tsize = 4
	}
	var b int64
	if !(opts.Inference && tsize == 2) {
		b += 4 * params // master
	}
	if tsize == 2 {
		b += 2 * params // bf16 copy
	}
	if !opts.Inference {
		b += 3 * 4 * params // gradients, two moments
	}
	carveActs(cfg, n+n/8, tsize, opts.Inference, func(elems, size int64) struct{} {
		b += elems * size
		return struct{}{}
	})
	return b
}
