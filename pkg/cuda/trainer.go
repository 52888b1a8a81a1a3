//go:build cuda

package cuda

import (
	"fmt"
	"math"
	"unsafe"

	"github.com/cpo-toolchain/cpo/pkg/model"
	"gorgonia.org/cu"
)

// Built reports whether this binary has the GPU backend (the cuda build tag).
const Built = true

// Attention kernel geometry (kernels/attention.cu: ROWS warps per block, TILE-row tiles).
const (
	attnRows = attnRowsHost
	attnTile = 32
)

type trainer struct {
	d    *device
	m    *model.Model
	cfg  model.Config
	opts Options
	t    dtype // activation storage type
	P    int64 // parameters

	layout

	master, wT, grad, adamM, adamV cu.DevicePtr // master (P) f32; wT (P) in t (= master for f32); grad, moments (P) f32
	ropeCos, ropeSin               cu.DevicePtr // (MaxSeqLen, hd/2) f32, llama
	partial, scalar                cu.DevicePtr // reduction scratch (float64)
	steps                          int64

	// Per-batch state: the activations (carveActs) for capN tokens, N used.
	N, capN int
	arena   []cu.DevicePtr // every buffer of actBufs, in carveActs' order
	actBufs[cu.DevicePtr]
	nGroups int
	starts  []int // the batch's sequence starts

	// The cuBLAS attention path's scratch (attn_blas.go): S and dP float32, P and dS in the
	// storage type, each attnCap elements.
	useBlasAttn      bool
	aS, aP, aDP, aDS cu.DevicePtr
	attnCap          int64
	aDPwanted        bool
	logpHost         []float32
	forwardOK        bool
}

// New uploads m to GPU opts.Device and returns its Trainer. The host model stays the
// owner of the weights on the host side (Download writes them back).
func New(m *model.Model, opts Options) (Trainer, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	d, err := openDevice(opts.Device, opts.OwnGEMM)
	if err != nil {
		return nil, err
	}
	tr := &trainer{d: d, m: m, cfg: m.Config, opts: opts, P: int64(m.NumParams())}
	tr.useBlasAttn = opts.Attention == AttnCUBLAS && d.batched && !opts.OwnGEMM
	if opts.Precision == BF16 {
		tr.t = bf16
	}
	if tr.layout, err = newLayout(m); err != nil {
		return nil, err
	}
	d.bind()
	defer d.unbind()
	// An inference-only bf16 trainer (a frozen reference model) keeps the bf16 copy only.
	if !(opts.Inference && tr.t == bf16) {
		tr.master = d.alloc(tr.P * 4)
	}
	tr.wT = tr.master
	if tr.t == bf16 {
		tr.wT = d.alloc(tr.P * 2)
	}
	if !opts.Inference {
		tr.grad = d.alloc(tr.P * 4)
		d.zero(tr.grad, tr.P*4)
	}
	tr.partial = d.alloc(1024 * 8)
	tr.scalar = d.alloc(8)
	if tr.cfg.Arch == model.ArchLlama {
		cos, sin := ropeTables(tr.cfg.MaxSeqLen, tr.cfg.HeadDim(), tr.cfg.RopeTheta)
		tr.ropeCos, tr.ropeSin = d.alloc(int64(len(cos))*4), d.alloc(int64(len(sin))*4)
		d.upload(tr.ropeCos, unsafe.Pointer(&cos[0]), int64(len(cos))*4)
		d.upload(tr.ropeSin, unsafe.Pointer(&sin[0]), int64(len(sin))*4)
	}
	if err := d.err(); err != nil {
		return nil, err
	}
	if err := tr.Upload(); err != nil {
		return nil, err
	}
	return tr, nil
}

// w is the address of the T weight copy at element offset off (0 for absent tensors).
func (tr *trainer) w(off int64) cu.DevicePtr {
	if off < 0 {
		return 0
	}
	return tr.wT + cu.DevicePtr(off*tr.t.size())
}

// g is the address of the float32 gradient at element offset off (0 for absent tensors).
func (tr *trainer) g(off int64) cu.DevicePtr {
	if off < 0 {
		return 0
	}
	return tr.grad + cu.DevicePtr(off*4)
}

func (tr *trainer) kernel(name string) string { return name + tr.t.suffix() }

func (tr *trainer) Device() string {
	g := "own GEMM kernels"
	if tr.d.blas && !tr.opts.OwnGEMM {
		g = fmt.Sprintf("cuBLAS %d", tr.d.blasVer)
	}
	a := "flash attention kernels"
	if tr.useBlasAttn {
		a = "cuBLAS attention"
	}
	return fmt.Sprintf("%s, %s, %s, %s", tr.d.name, tr.opts.Precision, g, a)
}

func (tr *trainer) Steps() int64 { return tr.steps }

func (tr *trainer) Upload() error {
	d := tr.d
	d.bind()
	defer d.unbind()
	arena := tr.m.ParamArena()
	if tr.master == 0 {
		// bf16 copy only: convert through a float32 staging buffer, 16M values at a time.
		const chunk = 1 << 24
		stage := d.alloc(min(tr.P, chunk) * 4)
		for off := int64(0); off < tr.P; off += chunk {
			n := min(chunk, tr.P-off)
			d.upload(stage, unsafe.Pointer(&arena[off]), n*4)
			d.launch1("f32_to_bf16", n, tr.wT+cu.DevicePtr(off*2), stage, n)
		}
		d.sync()
		d.free(stage)
		return d.err()
	}
	d.upload(tr.master, unsafe.Pointer(&arena[0]), tr.P*4)
	if tr.t == bf16 {
		d.launch1("f32_to_bf16", tr.P, tr.wT, tr.master, tr.P)
	}
	d.sync()
	return d.err()
}

func (tr *trainer) Download(grads bool) error {
	d := tr.d
	d.bind()
	defer d.unbind()
	if tr.master == 0 {
		return fmt.Errorf("cuda: an inference-only bf16 trainer holds no float32 weights")
	}
	d.download(unsafe.Pointer(&tr.m.ParamArena()[0]), tr.master, tr.P*4)
	if grads {
		if tr.grad == 0 {
			return fmt.Errorf("cuda: an inference-only trainer has no gradients")
		}
		d.download(unsafe.Pointer(&tr.m.GradArena()[0]), tr.grad, tr.P*4)
	}
	return d.err()
}

func (tr *trainer) ZeroGrad() error {
	d := tr.d
	d.bind()
	defer d.unbind()
	if tr.grad == 0 {
		return fmt.Errorf("cuda: an inference-only trainer has no gradients")
	}
	d.zero(tr.grad, tr.P*4)
	return d.err()
}

func (tr *trainer) Close() error {
	d := tr.d
	d.bind()
	defer d.unbind()
	tr.freeActs()
	tr.freeAttnScratch()
	for _, p := range []cu.DevicePtr{tr.grad, tr.adamM, tr.adamV, tr.ropeCos, tr.ropeSin, tr.partial, tr.scalar} {
		d.free(p)
	}
	if tr.wT != tr.master {
		d.free(tr.wT)
	}
	if tr.master != 0 {
		d.free(tr.master)
	}
	tr.master, tr.wT, tr.grad, tr.adamM, tr.adamV = 0, 0, 0, 0, 0
	tr.ropeCos, tr.ropeSin, tr.partial, tr.scalar = 0, 0, 0, 0
	tr.forwardOK = false
	return d.err()
}

func (tr *trainer) freeActs() {
	for _, p := range tr.arena {
		tr.d.free(p)
	}
	tr.arena = tr.arena[:0]
	tr.capN = 0
}

// plan allocates the activations for N tokens (grown, never shrunk), like pkg/model's
// Workspace.plan: every layer's activations (one layer's for an inference-only trainer),
// the final norm, the logits (N, V) and the backward scratch.
func (tr *trainer) plan(N int) {
	if N > tr.capN {
		tr.freeActs()
		tr.capN = N + N/8
	}
	fresh := len(tr.arena) == 0
	i := 0
	tr.actBufs = carveActs(tr.cfg, int64(tr.capN), tr.t.size(), tr.opts.Inference, func(elems, size int64) cu.DevicePtr {
		if fresh {
			tr.arena = append(tr.arena, tr.d.alloc(elems*size))
		}
		i++
		return tr.arena[i-1]
	})
	tr.N = N
}

// bindBatch uploads tokens, positions, next-token targets (-1 at sequence ends) and the
// attention row groups of b.
func (tr *trainer) bindBatch(b model.Batch) {
	N := len(b.Tokens)
	pos, target := positions(b)
	groups := attnGroups(b.Starts, attnRows)
	tr.nGroups = len(groups) / 3
	tr.starts = append(tr.starts[:0], b.Starts...)
	d := tr.d
	d.upload(tr.tokens, unsafe.Pointer(&b.Tokens[0]), int64(N)*4)
	d.upload(tr.pos, unsafe.Pointer(&pos[0]), int64(N)*4)
	d.upload(tr.target, unsafe.Pointer(&target[0]), int64(N)*4)
	if len(groups) > 0 {
		d.upload(tr.groups, unsafe.Pointer(&groups[0]), int64(len(groups))*4)
	}
}

// matmulForward: out (N, OC) = inp (N, IC) · W (+ bias), W a Conv1D (IC, OC) weight
// (outIn false, GPT-2) or a Linear (OC, IC) one (outIn true, Llama); accumulate adds the
// product to out (the residual stream).
func (tr *trainer) matmulForward(out, inp cu.DevicePtr, w, bias int64, N, IC, OC int, outIn, accumulate bool) {
	var beta float32
	if accumulate {
		beta = 1
	}
	if outIn {
		tr.d.gemm(false, true, N, OC, IC, 1, inp, IC, tr.w(w), IC, beta, out, OC, tr.t, tr.t, tr.opts.OwnGEMM)
	} else {
		tr.d.gemm(false, false, N, OC, IC, 1, inp, IC, tr.w(w), OC, beta, out, OC, tr.t, tr.t, tr.opts.OwnGEMM)
	}
	if bias >= 0 {
		tr.d.launch1(tr.kernel("bias_add"), int64(N)*int64(OC), out, tr.w(bias), int32(N), int32(OC))
	}
}

// matmulBackward, for out = inp·W + bias: writes dinp (N, IC) = dout·W^T and ADDS
// inp^T·dout into dW and the column sums of dout into dbias (float32 gradients).
func (tr *trainer) matmulBackward(dinp, dout, inp cu.DevicePtr, w, bias int64, N, IC, OC int, outIn bool) {
	d, T, own := tr.d, tr.t, tr.opts.OwnGEMM
	if outIn {
		d.gemm(false, false, N, IC, OC, 1, dout, OC, tr.w(w), IC, 0, dinp, IC, T, T, own)
		d.gemm(true, false, OC, IC, N, 1, dout, OC, inp, IC, 1, tr.g(w), IC, T, f32, own)
	} else {
		d.gemm(false, true, N, IC, OC, 1, dout, OC, tr.w(w), OC, 0, dinp, IC, T, T, own)
		d.gemm(true, false, IC, OC, N, 1, inp, IC, dout, OC, 1, tr.g(w), OC, T, f32, own)
	}
	if bias >= 0 {
		d.launch(tr.kernel("colsum"), [3]int{(OC + 31) / 32, 1, 1}, [3]int{32, 8, 1}, 0, tr.g(bias), dout, int32(N), int32(OC))
	}
}

// normForward: out = norm(inp) with weight w (and bias b for LayerNorm).
func (tr *trainer) normForward(out, mean, rstd, inp cu.DevicePtr, w, b int64, N int) {
	C := tr.cfg.DModel
	grid := [3]int{(N + 7) / 8, 1, 1}
	eps := float32(tr.cfg.NormEps)
	if tr.cfg.Arch == model.ArchLlama {
		tr.d.launch(tr.kernel("rmsnorm_fwd"), grid, [3]int{256, 1, 1}, 0, out, rstd, inp, tr.w(w), int32(N), int32(C), eps)
	} else {
		tr.d.launch(tr.kernel("layernorm_fwd"), grid, [3]int{256, 1, 1}, 0, out, mean, rstd, inp, tr.w(w), tr.w(b), int32(N), int32(C), eps)
	}
}

// normBackward ADDS the input gradient into dinp and the weight (and bias) gradients.
func (tr *trainer) normBackward(dinp, dout, inp, mean, rstd cu.DevicePtr, w, b int64, N int) {
	C := tr.cfg.DModel
	blocks := min((N+7)/8, 1024)
	if tr.cfg.Arch == model.ArchLlama {
		tr.d.launch(tr.kernel("rmsnorm_bwd"), [3]int{blocks, 1, 1}, [3]int{256, 1, 1}, C*4, dinp, tr.g(w), dout, inp, tr.w(w), rstd, int32(N), int32(C))
	} else {
		tr.d.launch(tr.kernel("layernorm_bwd"), [3]int{blocks, 1, 1}, [3]int{256, 1, 1}, 2*C*4, dinp, tr.g(w), tr.g(b), dout, inp, tr.w(w), mean, rstd, int32(N), int32(C))
	}
}

func (tr *trainer) attnSmem(bwd bool) int {
	hd := tr.cfg.HeadDim()
	if bwd {
		return ((2*attnTile+2*attnRows)*(hd+1) + 2*attnTile) * 4
	}
	return (2*attnTile + attnRows) * (hd + 1) * 4
}

func (tr *trainer) Forward(b model.Batch) ([]float32, error) {
	if err := tr.m.CheckBatch(b); err != nil {
		return nil, err
	}
	if tr.cfg.HeadDim() > 256 {
		return nil, fmt.Errorf("cuda: head size %d is over the attention kernel's 256", tr.cfg.HeadDim())
	}
	d := tr.d
	d.bind()
	defer d.unbind()
	tr.forwardOK = false
	N := len(b.Tokens)
	if N == 0 {
		return nil, nil
	}
	tr.plan(N)
	tr.bindBatch(b)
	c := tr.cfg
	C, V, F := c.DModel, c.VocabSize, c.DFF
	NH, NKV, hd := c.NHead, c.NKVHead, c.HeadDim()
	Q, O := (NH+2*NKV)*hd, NH*hd
	llama := c.Arch == model.ArchLlama
	n := int64(N)
	d.launch1(tr.kernel("encoder_fwd"), n*int64(C), tr.la[0].res, tr.tokens, tr.pos, tr.w(tr.wte), tr.w(tr.wpe), int32(N), int32(C))
	for l := 0; l < c.NLayer; l++ {
		a, lo := &tr.la[0], &tr.layers[l]
		out := tr.resL // inference: la[0].res, updated in place
		if !tr.opts.Inference {
			a = &tr.la[l]
			if l+1 < c.NLayer {
				out = tr.la[l+1].res
			}
		}
		tr.normForward(a.ln, a.lnMean, a.lnRstd, a.res, lo.ln1w, lo.ln1b, N)
		tr.matmulForward(a.qkv, a.ln, lo.wqkv, lo.bqkv, N, C, Q, llama, false)
		if llama {
			d.launch1(tr.kernel("rope"), n*int64((NH+NKV)*hd/2), a.qkv, tr.pos, tr.ropeCos, tr.ropeSin, int32(N), int32(Q), int32(NH+NKV), int32(hd), float32(1))
		}
		if tr.useBlasAttn {
			tr.attnForwardBlas(a)
		} else {
			d.launch(tr.kernel("attn_fwd"), [3]int{tr.nGroups, NH, 1}, [3]int{32 * attnRows, 1, 1}, tr.attnSmem(false),
				a.att, a.lse, a.qkv, tr.groups, int32(NH), int32(NKV), int32(hd))
		}
		d.copyD(a.mid, a.res, n*int64(C)*tr.t.size())
		tr.matmulForward(a.mid, a.att, lo.wo, lo.bo, N, O, C, llama, true)
		tr.normForward(a.ln2, a.ln2Mean, a.ln2Rstd, a.mid, lo.ln2w, lo.ln2b, N)
		if llama {
			tr.matmulForward(a.fc, a.ln2, lo.wfc, -1, N, C, 2*F, true, false)
			d.launch1(tr.kernel("swiglu_fwd"), n*int64(F), a.act, a.fc, int32(N), int32(F))
		} else {
			tr.matmulForward(a.fc, a.ln2, lo.wfc, lo.bfc, N, C, F, false, false)
			d.launch1(tr.kernel("gelu_fwd"), n*int64(F), a.act, a.fc, n*int64(F))
		}
		d.copyD(out, a.mid, n*int64(C)*tr.t.size())
		tr.matmulForward(out, a.act, lo.wproj, lo.bproj, N, F, C, llama, true)
	}
	tr.normForward(tr.lnf, tr.lnfMean, tr.lnfRstd, tr.resL, tr.lnfw, tr.lnfb, N)
	d.gemm(false, true, N, V, C, 1, tr.lnf, C, tr.w(tr.head), C, 0, tr.logits, V, tr.t, tr.t, tr.opts.OwnGEMM)
	d.launch(tr.kernel("logprob_fwd"), [3]int{N, 1, 1}, [3]int{256, 1, 1}, 0, tr.logp, tr.lse, tr.logits, tr.target, int32(N), int32(V))
	if cap(tr.logpHost) < N {
		tr.logpHost = make([]float32, N)
	}
	tr.logpHost = tr.logpHost[:N]
	d.download(unsafe.Pointer(&tr.logpHost[0]), tr.logp, n*4)
	if err := d.err(); err != nil {
		return nil, err
	}
	tr.forwardOK = true
	return tr.logpHost, nil
}

func (tr *trainer) Logits() ([]float32, error) {
	if !tr.forwardOK {
		return nil, fmt.Errorf("cuda: Logits needs a Forward (and no Backward since)")
	}
	d := tr.d
	d.bind()
	defer d.unbind()
	n := int64(tr.N) * int64(tr.cfg.VocabSize)
	out := make([]float32, n)
	if tr.t == f32 {
		d.download(unsafe.Pointer(&out[0]), tr.logits, n*4)
	} else {
		tmp := d.alloc(n * 4)
		d.launch1("bf16_to_f32", n, tmp, tr.logits, n)
		d.download(unsafe.Pointer(&out[0]), tmp, n*4)
		d.free(tmp)
	}
	return out, d.err()
}

func (tr *trainer) Backward(dlogp []float32) error {
	if tr.opts.Inference {
		return fmt.Errorf("cuda: Backward on an inference-only trainer")
	}
	if !tr.forwardOK {
		return fmt.Errorf("cuda: Backward needs a Forward as the last call")
	}
	N := tr.N
	if len(dlogp) != N {
		return fmt.Errorf("cuda: Backward got %d dlogp values for %d packed tokens", len(dlogp), N)
	}
	d := tr.d
	d.bind()
	defer d.unbind()
	tr.forwardOK = false
	c := tr.cfg
	C, V, F := c.DModel, c.VocabSize, c.DFF
	NH, NKV, hd := c.NHead, c.NKVHead, c.HeadDim()
	Q, O := (NH+2*NKV)*hd, NH*hd
	llama := c.Arch == model.ArchLlama
	n := int64(N)
	T, own := tr.t, tr.opts.OwnGEMM
	d.upload(tr.dlogp, unsafe.Pointer(&dlogp[0]), n*4)
	// dlogits in place of the logits, then the lm head: dlnf = dlogits·head,
	// dhead += dlogits^T·lnf.
	d.launch(tr.kernel("logprob_bwd"), [3]int{N, 1, 1}, [3]int{256, 1, 1}, 0, tr.logits, tr.lse, tr.dlogp, tr.target, int32(N), int32(V))
	d.gemm(false, false, N, C, V, 1, tr.logits, V, tr.w(tr.head), C, 0, tr.dlnf, C, T, T, own)
	d.gemm(true, false, V, C, N, 1, tr.logits, V, tr.lnf, C, 1, tr.g(tr.head), C, T, f32, own)
	d.zero(tr.dres, n*int64(C)*T.size())
	tr.normBackward(tr.dres, tr.dlnf, tr.resL, tr.lnfMean, tr.lnfRstd, tr.lnfw, tr.lnfb, N)
	for l := c.NLayer - 1; l >= 0; l-- {
		a, lo := &tr.la[l], &tr.layers[l]
		// MLP: out = mid + act·Wproj (+ b).
		tr.matmulBackward(tr.dact, tr.dres, a.act, lo.wproj, lo.bproj, N, F, C, llama)
		if llama {
			d.launch1(tr.kernel("swiglu_bwd"), n*int64(F), tr.dfc, a.fc, tr.dact, int32(N), int32(F))
			tr.matmulBackward(tr.dln, tr.dfc, a.ln2, lo.wfc, -1, N, C, 2*F, true)
		} else {
			d.launch1(tr.kernel("gelu_bwd"), n*int64(F), tr.dfc, a.fc, tr.dact, n*int64(F))
			tr.matmulBackward(tr.dln, tr.dfc, a.ln2, lo.wfc, lo.bfc, N, C, F, false)
		}
		tr.normBackward(tr.dres, tr.dln, a.mid, a.ln2Mean, a.ln2Rstd, lo.ln2w, lo.ln2b, N)
		// Attention: mid = res + att·Wo (+ b).
		tr.matmulBackward(tr.datt, tr.dres, a.att, lo.wo, lo.bo, N, O, C, llama)
		d.launch(tr.kernel("attn_bwd_dot"), [3]int{int((n*int64(NH)*32 + 255) / 256), 1, 1}, [3]int{256, 1, 1}, 0,
			tr.D, tr.datt, a.att, int32(N), int32(NH), int32(hd))
		if tr.useBlasAttn {
			tr.attnBackwardBlas(a)
		} else {
			d.launch(tr.kernel("attn_bwd_dq"), [3]int{tr.nGroups, NH, 1}, [3]int{32 * attnRows, 1, 1}, tr.attnSmem(true),
				tr.dqkv, tr.datt, a.qkv, a.lse, tr.D, tr.groups, int32(NH), int32(NKV), int32(hd))
			d.launch(tr.kernel("attn_bwd_dkdv"), [3]int{tr.nGroups, NKV, 1}, [3]int{32 * attnRows, 1, 1}, tr.attnSmem(true),
				tr.dqkv, tr.datt, a.qkv, a.lse, tr.D, tr.groups, int32(NH), int32(NKV), int32(hd))
		}
		if llama {
			d.launch1(tr.kernel("rope"), n*int64((NH+NKV)*hd/2), tr.dqkv, tr.pos, tr.ropeCos, tr.ropeSin, int32(N), int32(Q), int32(NH+NKV), int32(hd), float32(-1))
		}
		tr.matmulBackward(tr.dln, tr.dqkv, a.ln, lo.wqkv, lo.bqkv, N, C, Q, llama)
		tr.normBackward(tr.dres, tr.dln, a.res, a.lnMean, a.lnRstd, lo.ln1w, lo.ln1b, N)
	}
	d.launch1(tr.kernel("encoder_bwd"), n*int64(C), tr.g(tr.wte), tr.g(tr.wpe), tr.dres, tr.tokens, tr.pos, int32(N), int32(C))
	d.sync()
	return d.err()
}

// gradNorm is the global L2 norm of the gradient arena (float64 sums in a fixed order).
func (tr *trainer) gradNorm() float64 {
	d := tr.d
	blocks := int(min((tr.P+255)/256, 1024))
	d.launch("sumsq_partial", [3]int{blocks, 1, 1}, [3]int{256, 1, 1}, 0, tr.partial, tr.grad, tr.P)
	d.launch("sum_f64", [3]int{1, 1, 1}, [3]int{256, 1, 1}, 0, tr.scalar, tr.partial, int32(blocks))
	var s float64
	d.download(unsafe.Pointer(&s), tr.scalar, 8)
	return math.Sqrt(s)
}

func (tr *trainer) Step(lr, maxNorm float64) (float64, error) {
	if tr.opts.Inference {
		return 0, fmt.Errorf("cuda: Step on an inference-only trainer")
	}
	d := tr.d
	d.bind()
	defer d.unbind()
	tr.allocMoments()
	norm := tr.gradNorm()
	if err := d.err(); err != nil {
		return norm, err
	}
	if math.IsNaN(norm) || math.IsInf(norm, 0) {
		return norm, nil // no update: the caller skips or stops
	}
	gscale := float32(1)
	if maxNorm > 0 && norm > maxNorm {
		gscale = float32(maxNorm / (norm + 1e-6))
	}
	o := tr.opts
	tr.steps++
	t := float64(tr.steps)
	bc1 := 1 - math.Pow(o.Beta1, t)
	bc2sqrt := float32(math.Sqrt(1 - math.Pow(o.Beta2, t)))
	stepSize := float32(lr / bc1)
	b1, b2 := float32(o.Beta1), float32(o.Beta2)
	a1, a2 := float32(1-o.Beta1), float32(1-o.Beta2)
	eps := float32(o.Eps)
	base := uintptr(unsafe.Pointer(&tr.m.ParamArena()[0]))
	for _, p := range tr.m.Params() {
		off := arenaOffset(base, p)
		n := int64(len(p.Data))
		decay := float32(1)
		if p.Decay && o.WeightDecay != 0 {
			decay = float32(1 - lr*o.WeightDecay)
		}
		var cp cu.DevicePtr
		if tr.t == bf16 {
			cp = tr.wT + cu.DevicePtr(off*2)
		}
		at := cu.DevicePtr(off * 4)
		d.launch1(tr.kernel("adamw"), n, tr.master+at, cp, tr.grad+at, tr.adamM+at, tr.adamV+at, n,
			gscale, decay, b1, b2, a1, a2, bc2sqrt, eps, stepSize)
	}
	d.sync()
	return norm, d.err()
}

func (tr *trainer) allocMoments() {
	if tr.adamM == 0 {
		tr.adamM, tr.adamV = tr.d.alloc(tr.P*4), tr.d.alloc(tr.P*4)
		tr.d.zero(tr.adamM, tr.P*4)
		tr.d.zero(tr.adamV, tr.P*4)
	}
}

func (tr *trainer) Moments() (m, v []float32, err error) {
	d := tr.d
	d.bind()
	defer d.unbind()
	m, v = make([]float32, tr.P), make([]float32, tr.P)
	if tr.adamM != 0 {
		d.download(unsafe.Pointer(&m[0]), tr.adamM, tr.P*4)
		d.download(unsafe.Pointer(&v[0]), tr.adamV, tr.P*4)
	}
	return m, v, d.err()
}

func (tr *trainer) SetMoments(m, v []float32, step int64) error {
	if int64(len(m)) != tr.P || int64(len(v)) != tr.P {
		return fmt.Errorf("cuda: SetMoments got %d and %d values for %d parameters", len(m), len(v), tr.P)
	}
	if tr.opts.Inference {
		return fmt.Errorf("cuda: SetMoments on an inference-only trainer")
	}
	d := tr.d
	d.bind()
	defer d.unbind()
	tr.allocMoments()
	d.upload(tr.adamM, unsafe.Pointer(&m[0]), tr.P*4)
	d.upload(tr.adamV, unsafe.Pointer(&v[0]), tr.P*4)
	tr.steps = step
	return d.err()
}
