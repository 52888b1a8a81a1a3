// Package optim holds the optimizer of the trainer: AdamW with decoupled weight decay (as
// torch.optim.AdamW computes it), learning-rate schedules with warm-up, gradient clipping by
// global norm, and the optimizer state's binary format for checkpoints.
//
// Parameters are the model's (model.Param): Data and Grad views into its two arenas, with Decay
// saying whether weight decay applies (the paper: lr 1e-5, weight decay 0.05, not on biases and
// norms). All arithmetic on parameters is float32 in the order torch uses, so several steps
// match torch.optim.AdamW to float32 rounding (testdata/golden/train/adamw.json).
package optim

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/cpo-toolchain/cpo/pkg/model"
	"github.com/cpo-toolchain/cpo/pkg/parallel"
	"github.com/cpo-toolchain/cpo/pkg/simd"
)

// AdamW is the optimizer state: the first and second moments of every parameter element, in
// Params order (so for a model they lie like its arena), and the number of steps taken.
type AdamW struct {
	Beta1, Beta2 float64 // moment decay rates (torch default 0.9, 0.999)
	Eps          float64 // added to the denominator (torch default 1e-8)
	WeightDecay  float64 // decoupled decay coefficient, applied where Param.Decay

	params []*model.Param
	m, v   []float32 // moments, len = total parameter count
	offs   []int     // offset of params[i] in m and v
	step   int64
}

// NewAdamW returns an AdamW over params with zero moments and step 0.
func NewAdamW(params []*model.Param, beta1, beta2, eps, weightDecay float64) *AdamW {
	o := &AdamW{Beta1: beta1, Beta2: beta2, Eps: eps, WeightDecay: weightDecay, params: params}
	n := 0
	for _, p := range params {
		o.offs = append(o.offs, n)
		n += len(p.Data)
	}
	o.m = make([]float32, n)
	o.v = make([]float32, n)
	return o
}

// Steps is the number of updates taken so far.
func (o *AdamW) Steps() int64 { return o.step }

// Step updates every parameter from its Grad with learning rate lr, exactly as
// torch.optim.AdamW (single-tensor path) does, in float32:
//
//	t += 1
//	p *= 1 - lr*wd                     (only where Param.Decay)
//	m = beta1*m + (1-beta1)*g
//	v = beta2*v + (1-beta2)*g*g
//	p -= lr/(1-beta1^t) * m / (sqrt(v)/sqrt(1-beta2^t) + eps)
//
// Gradients are read, not cleared.
func (o *AdamW) Step(lr float64) { o.StepScaled(lr, 1) }

// StepScaled is Step with every gradient multiplied by gradScale first (in registers: the
// gradients are not written), which is what ClipGradNorm then Step computes, bit for bit,
// without ClipGradNorm's pass over the gradients: GlobalNorm, ClipScale, StepScaled.
// gradScale must be positive (ClipScale's always is): simd.AdamWParams reads 0 as 1.
func (o *AdamW) StepScaled(lr float64, gradScale float32) {
	o.step++
	t := float64(o.step)
	bc1 := 1 - math.Pow(o.Beta1, t)
	bc2sqrt := float32(math.Sqrt(1 - math.Pow(o.Beta2, t)))
	stepSize := float32(lr / bc1)
	base := simd.AdamWParams{Decay: 1, B1: float32(o.Beta1), B2: float32(o.Beta2),
		A1: float32(1 - o.Beta1), A2: float32(1 - o.Beta2), Bc2Sqrt: bc2sqrt, Eps: float32(o.Eps), StepSize: stepSize,
		GradScale: gradScale}
	decayed := base
	decayed.Decay = float32(1 - lr*o.WeightDecay)
	for i, p := range o.params {
		m := o.m[o.offs[i] : o.offs[i]+len(p.Data)]
		v := o.v[o.offs[i] : o.offs[i]+len(p.Data)]
		w, g := p.Data, p.Grad
		// Without decay x*1 = x exactly, so one kernel serves both kinds of tensor.
		sp := &base
		if p.Decay && o.WeightDecay != 0 {
			sp = &decayed
		}
		workers := 1
		if len(w) >= 1<<16 {
			workers = 0
		}
		parallel.For(len(w), workers, func(lo, hi int) {
			simd.AdamW(w[lo:hi], g[lo:hi], m[lo:hi], v[lo:hi], sp)
		})
	}
}

// normChunk is the fixed block of the global-norm reduction: partial sums per block are added
// in block order, so the result does not depend on the number of workers.
const normChunk = 1 << 15

// GlobalNorm returns the L2 norm of every gradient of params taken together (sums in float64).
func GlobalNorm(params []*model.Param) float64 {
	var total float64
	for _, p := range params {
		g := p.Grad
		nb := (len(g) + normChunk - 1) / normChunk
		part := make([]float64, nb)
		parallel.Tasks(nb, parallel.Workers(min(nb, 64)), func(_, b int) {
			part[b] = sumSquares(g[b*normChunk : min(len(g), (b+1)*normChunk)])
		})
		for _, s := range part {
			total += s
		}
	}
	return math.Sqrt(total)
}

// sumSquares returns the sum of x*x in float64 (each square exact, the sum in a fixed lane
// order: simd.SumSqDev64, vectorised where the CPU allows, so the result is reproducible).
func sumSquares(x []float32) float64 { return simd.SumSqDev64(x, 0) }

// ClipGradNorm scales every gradient by maxNorm/norm when the global norm exceeds maxNorm > 0
// (as torch.nn.utils.clip_grad_norm_, with its 1e-6 guard) and returns the norm before
// clipping. maxNorm <= 0 only measures.
func ClipGradNorm(params []*model.Param, maxNorm float64) float64 {
	norm := GlobalNorm(params)
	if c := ClipScale(norm, maxNorm); c != 1 {
		for _, p := range params {
			g := p.Grad
			workers := 1
			if len(g) >= 1<<16 {
				workers = 0
			}
			parallel.For(len(g), workers, func(lo, hi int) {
				for j := range g[lo:hi] {
					g[lo+j] *= c
				}
			})
		}
	}
	return norm
}

// ClipScale is the factor ClipGradNorm multiplies the gradients by for a global norm:
// maxNorm/(norm+1e-6) when maxNorm > 0 and norm > maxNorm, else 1; never below the smallest
// positive float32 (a ratio that underflows float32 would read as "no scale" to AdamW).
func ClipScale(norm, maxNorm float64) float32 {
	if maxNorm > 0 && norm > maxNorm {
		return max(float32(maxNorm/(norm+1e-6)), math.SmallestNonzeroFloat32)
	}
	return 1
}

// stateMagic opens the optimizer state file.
const stateMagic = "CPO-ADAMW-v1\n"

// Save writes the state: the magic line, then little-endian int64 step and element count, then
// the first moments and the second moments as float32. Hyper-parameters are not stored (the
// trainer records them).
func (o *AdamW) Save(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	bw.WriteString(stateMagic)
	var hdr [16]byte
	binary.LittleEndian.PutUint64(hdr[:], uint64(o.step))
	binary.LittleEndian.PutUint64(hdr[8:], uint64(len(o.m)))
	bw.Write(hdr[:])
	var b [4]byte
	for _, arr := range [][]float32{o.m, o.v} {
		for _, x := range arr {
			binary.LittleEndian.PutUint32(b[:], math.Float32bits(x))
			if _, err := bw.Write(b[:]); err != nil {
				return err
			}
		}
	}
	return bw.Flush()
}

// Load reads a state written by Save into o, which must be over the same number of parameter
// elements.
func (o *AdamW) Load(r io.Reader) error {
	br := bufio.NewReaderSize(r, 1<<20)
	magic := make([]byte, len(stateMagic))
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != stateMagic {
		return errors.New("optimizer state: not a CPO AdamW state file")
	}
	var hdr [16]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return fmt.Errorf("optimizer state: %w", err)
	}
	step := int64(binary.LittleEndian.Uint64(hdr[:]))
	n := int64(binary.LittleEndian.Uint64(hdr[8:]))
	if n != int64(len(o.m)) || step < 0 {
		return fmt.Errorf("optimizer state: holds %d moments, the model has %d parameters", n, len(o.m))
	}
	var b [4]byte
	for _, arr := range [][]float32{o.m, o.v} {
		for i := range arr {
			if _, err := io.ReadFull(br, b[:]); err != nil {
				return fmt.Errorf("optimizer state: %w", err)
			}
			arr[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[:]))
		}
	}
	if _, err := br.ReadByte(); err != io.EOF {
		return errors.New("optimizer state: trailing bytes")
	}
	o.step = step
	return nil
}
