package train

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/cpo-toolchain/cpo/pkg/cuda"
	"github.com/cpo-toolchain/cpo/pkg/gemm"
	"github.com/cpo-toolchain/cpo/pkg/loss"
	"github.com/cpo-toolchain/cpo/pkg/model"
	"github.com/cpo-toolchain/cpo/pkg/optim"
)

// Engine runs one model's passes and, for the policy, its optimizer, on some device. The host
// model (*model.Model) stays the owner of the weights that are loaded and saved: an engine that
// keeps its own copy (a GPU) receives them with Upload and gives them back with Sync.
//
// The CPU engine (NewCPUEngine) is model.Forward/Backward, clipping and optim.AdamW (one pass:
// optim.GlobalNorm, ClipScale, AdamW.StepScaled) on the host model itself; the CUDA engine (NewCUDAEngine) is a cuda.Trainer. Both keep the
// AdamW moments in the layout of the model's parameter arena and write them in the format of
// optim.AdamW.Save, so a checkpoint of either resumes on the other.
type Engine interface {
	// Forward runs the packed batch b and returns logp (N): the log-probability of every
	// position's next token (0 at sequence ends). The slice is the engine's until the next
	// Forward.
	Forward(b model.Batch) ([]float32, error)
	// Backward adds the gradient of L for dlogp (N) = dL/dlogp of the last Forward to the
	// parameter gradients.
	Backward(dlogp []float32) error
	// ZeroGrad clears the parameter gradients.
	ZeroGrad() error
	// Step clips the gradients to global norm maxNorm (<= 0: no clipping) and takes one AdamW
	// step with learning rate lr; it returns the norm before clipping. The gradients'
	// contents after Step are unspecified (the CPU and CUDA engines leave them unscaled).
	// When the norm is not finite the step is not taken (weights, moments and Steps
	// unchanged) and the norm is returned with a nil error; an engine that cannot hold the
	// step back returns an error.
	Step(lr, maxNorm float64) (gradNorm float64, err error)
	// Steps is the number of AdamW steps taken (restored by LoadOptimizer).
	Steps() int64
	// Sync brings the host model's parameters up to date (before a checkpoint is saved).
	Sync() error
	// Upload sends the host model's parameters to the engine (after they were replaced, as
	// on resume).
	Upload() error
	// SaveOptimizer writes the AdamW state (optimizer.bin, optim.AdamW's format);
	// LoadOptimizer reads one written by any engine for a model of the same size.
	SaveOptimizer(w io.Writer) error
	LoadOptimizer(r io.Reader) error
	// Device names where the engine runs ("cpu", or the GPU and its precision).
	Device() string
	// Close frees what the engine holds outside the Go heap.
	Close() error
}

// The devices of DeviceConfig.Name.
const (
	DeviceCPU  = "cpu"
	DeviceCUDA = "cuda"
)

// Devices lists the values of DeviceConfig.Name.
var Devices = []string{DeviceCPU, DeviceCUDA}

// DeviceConfig says where a run's models run.
type DeviceConfig struct {
	// Name is DeviceCPU (also when empty) or DeviceCUDA.
	Name string
	// Precision on the GPU is that of the activations (cuda.BF16 when empty). On the CPU,
	// cuda.BF16 makes the dense layers' matrix products round their inputs to bfloat16 and
	// sum in float32 (model.SetMixedBF16: twice the products' throughput with AVX512_BF16,
	// emulated and slow without); cuda.Float32, also when empty, keeps every product float32.
	// NewEngine sets the model's mode from it either way. GPU is the GPU's ordinal.
	Precision cuda.Precision
	GPU       int
}

// cpu reports whether d is the CPU.
func (d DeviceConfig) cpu() bool { return d.Name == "" || d.Name == DeviceCPU }

// Check returns an error for an unknown device or precision, and cuda.ErrNotBuilt (wrapped)
// for DeviceCUDA in a binary built without the cuda tag, before anything is loaded.
func (d DeviceConfig) Check() error {
	switch {
	case d.Precision != "" && d.Precision != cuda.BF16 && d.Precision != cuda.Float32:
		return fmt.Errorf("unknown precision %q (want %s or %s)", d.Precision, cuda.BF16, cuda.Float32)
	case d.cpu():
		return nil
	case d.Name != DeviceCUDA:
		return fmt.Errorf("unknown device %q (want %s or %s)", d.Name, DeviceCPU, DeviceCUDA)
	case d.GPU < 0:
		return fmt.Errorf("GPU ordinal %d must not be negative", d.GPU)
	case !cuda.Built:
		return cuda.ErrNotBuilt
	}
	return nil
}

// Hyper are the AdamW hyper-parameters of a policy engine.
type Hyper struct {
	Beta1, Beta2, Eps, WeightDecay float64
}

// NewEngine returns the engine of m on device d: a policy engine with AdamW hyper-parameters h,
// or, with inference, a forward-only engine (a frozen reference model). ws is the workspace of
// a CPU engine (engines of one Stepper share it; nil: a new one); other devices ignore it.
func NewEngine(d DeviceConfig, m *model.Model, ws *model.Workspace, h Hyper, inference bool) (Engine, error) {
	if err := d.Check(); err != nil {
		return nil, err
	}
	if d.cpu() {
		if ws == nil {
			ws = model.NewWorkspace()
		}
		m.SetMixedBF16(d.Precision == cuda.BF16)
		return NewCPUEngine(m, ws, h, inference), nil
	}
	return NewCUDAEngine(m, cuda.Options{Precision: d.Precision, Device: d.GPU, Beta1: h.Beta1, Beta2: h.Beta2, Eps: h.Eps,
		WeightDecay: h.WeightDecay, Inference: inference})
}

// CPUEngine is the host path: model.Forward/Backward on M with workspace WS, and (unless
// forward-only) clipping and Opt, an optim.AdamW over M's parameters.
type CPUEngine struct {
	M   *model.Model
	WS  *model.Workspace
	Opt *optim.AdamW // nil for a forward-only engine
}

// NewCPUEngine returns the CPU engine of m on workspace ws.
func NewCPUEngine(m *model.Model, ws *model.Workspace, h Hyper, inference bool) *CPUEngine {
	e := &CPUEngine{M: m, WS: ws}
	if !inference {
		e.Opt = optim.NewAdamW(m.Params(), h.Beta1, h.Beta2, h.Eps, h.WeightDecay)
	}
	return e
}

var errForwardOnly = errors.New("a forward-only (reference) engine has no gradients or optimizer")

// Forward is model.Forward.
func (e *CPUEngine) Forward(b model.Batch) ([]float32, error) { return e.M.Forward(e.WS, b), nil }

// Backward is model.Backward.
func (e *CPUEngine) Backward(dlogp []float32) error {
	e.M.Backward(e.WS, dlogp)
	return nil
}

// ZeroGrad is model.ZeroGrad.
func (e *CPUEngine) ZeroGrad() error {
	e.M.ZeroGrad()
	return nil
}

// Step is optim.ClipGradNorm and, for a finite norm, optim.AdamW.Step, computed with the
// clipping folded into the update (optim.GlobalNorm, ClipScale, AdamW.StepScaled: the same
// weights bit for bit, one pass over the gradients fewer). The gradients are left unscaled.
func (e *CPUEngine) Step(lr, maxNorm float64) (float64, error) {
	if e.Opt == nil {
		return 0, errForwardOnly
	}
	norm := optim.GlobalNorm(e.M.Params())
	if loss.Finite(norm) {
		e.Opt.StepScaled(lr, optim.ClipScale(norm, maxNorm))
	}
	return norm, nil
}

// Steps is the optimizer's step count.
func (e *CPUEngine) Steps() int64 {
	if e.Opt == nil {
		return 0
	}
	return e.Opt.Steps()
}

// Sync does nothing: the host model is the engine's.
func (e *CPUEngine) Sync() error { return nil }

// Upload does nothing: the host model is the engine's.
func (e *CPUEngine) Upload() error { return nil }

// SaveOptimizer is optim.AdamW.Save.
func (e *CPUEngine) SaveOptimizer(w io.Writer) error {
	if e.Opt == nil {
		return errForwardOnly
	}
	return e.Opt.Save(w)
}

// LoadOptimizer is optim.AdamW.Load.
func (e *CPUEngine) LoadOptimizer(r io.Reader) error {
	if e.Opt == nil {
		return errForwardOnly
	}
	return e.Opt.Load(r)
}

// Device is "cpu", or "cpu (bf16 products)" when the model multiplies in mixed precision,
// "cpu (bf16 products emulated in Go: slow)" on a CPU without AVX512_BF16 (or with the
// assembly turned off), where each product runs about 100 times slower than in float32.
func (e *CPUEngine) Device() string {
	if !e.M.MixedBF16() {
		return DeviceCPU
	}
	if gemm.MixedBF16Impl() == "go" {
		return DeviceCPU + " (bf16 products emulated in Go: slow)"
	}
	return DeviceCPU + " (bf16 products)"
}

// Close does nothing.
func (e *CPUEngine) Close() error { return nil }

// cudaEngine is an Engine on a cuda.Trainer.
type cudaEngine struct {
	tr cuda.Trainer
	P  int // parameters
}

// NewCUDAEngine returns the engine of m on a GPU (cuda.New with opts): cuda.ErrNotBuilt in a
// binary built without the cuda tag.
func NewCUDAEngine(m *model.Model, opts cuda.Options) (Engine, error) {
	tr, err := cuda.New(m, opts)
	if err != nil {
		return nil, err
	}
	return &cudaEngine{tr: tr, P: m.NumParams()}, nil
}

func (e *cudaEngine) Forward(b model.Batch) ([]float32, error) { return e.tr.Forward(b) }
func (e *cudaEngine) Backward(dlogp []float32) error           { return e.tr.Backward(dlogp) }
func (e *cudaEngine) ZeroGrad() error                          { return e.tr.ZeroGrad() }
func (e *cudaEngine) Steps() int64                             { return e.tr.Steps() }
func (e *cudaEngine) Sync() error                              { return e.tr.Download(false) }
func (e *cudaEngine) Upload() error                            { return e.tr.Upload() }
func (e *cudaEngine) Device() string                           { return "cuda: " + e.tr.Device() }
func (e *cudaEngine) Close() error                             { return e.tr.Close() }

// Step is cuda.Trainer.Step, which like the CPU engine takes no step on a non-finite norm;
// should a device applying the update anyway (its step count moved) ever be seen, that is
// an error, since its weights are then no longer usable.
func (e *cudaEngine) Step(lr, maxNorm float64) (float64, error) {
	before := e.tr.Steps()
	norm, err := e.tr.Step(lr, maxNorm)
	if err != nil {
		return norm, err
	}
	if !loss.Finite(norm) && e.tr.Steps() != before {
		return norm, fmt.Errorf("gradient norm %v: the GPU applied the update, so its weights are lost; resume from the last checkpoint", norm)
	}
	return norm, nil
}

func (e *cudaEngine) SaveOptimizer(w io.Writer) error {
	m, v, err := e.tr.Moments()
	if err != nil {
		return err
	}
	return writeAdamState(w, e.tr.Steps(), m, v)
}

func (e *cudaEngine) LoadOptimizer(r io.Reader) error {
	step, m, v, err := readAdamState(r, e.P)
	if err != nil {
		return err
	}
	return e.tr.SetMoments(m, v, step)
}

// adamMagic opens optimizer.bin; it is optim's stateMagic, checked against optim.AdamW.Save
// and Load by TestAdamStateFormat.
const adamMagic = "CPO-ADAMW-v1\n"

// writeAdamState writes the AdamW state step, m, v (each in the parameter arena's layout) in
// the format of optim.AdamW.Save: the magic line, little-endian int64 step and element count,
// the first moments, the second moments (float32).
func writeAdamState(w io.Writer, step int64, m, v []float32) error {
	if len(m) != len(v) {
		return fmt.Errorf("optimizer state: %d first and %d second moments", len(m), len(v))
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	bw.WriteString(adamMagic)
	var hdr [16]byte
	binary.LittleEndian.PutUint64(hdr[:], uint64(step))
	binary.LittleEndian.PutUint64(hdr[8:], uint64(len(m)))
	bw.Write(hdr[:])
	var b [4]byte
	for _, arr := range [][]float32{m, v} {
		for _, x := range arr {
			binary.LittleEndian.PutUint32(b[:], math.Float32bits(x))
			if _, err := bw.Write(b[:]); err != nil {
				return err
			}
		}
	}
	return bw.Flush()
}

// readAdamState reads a state written by writeAdamState or optim.AdamW.Save for n parameters.
func readAdamState(r io.Reader, n int) (step int64, m, v []float32, err error) {
	br := bufio.NewReaderSize(r, 1<<20)
	magic := make([]byte, len(adamMagic))
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != adamMagic {
		return 0, nil, nil, errors.New("optimizer state: not a CPO AdamW state file")
	}
	var hdr [16]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return 0, nil, nil, fmt.Errorf("optimizer state: %w", err)
	}
	step = int64(binary.LittleEndian.Uint64(hdr[:]))
	cnt := int64(binary.LittleEndian.Uint64(hdr[8:]))
	if cnt != int64(n) || step < 0 {
		return 0, nil, nil, fmt.Errorf("optimizer state: holds %d moments, the model has %d parameters", cnt, n)
	}
	m, v = make([]float32, n), make([]float32, n)
	buf := make([]byte, 4*min(n, 1<<16))
	for _, arr := range [][]float32{m, v} {
		for lo := 0; lo < n; lo += len(buf) / 4 {
			chunk := buf[:4*min(len(buf)/4, n-lo)]
			if _, err := io.ReadFull(br, chunk); err != nil {
				return 0, nil, nil, fmt.Errorf("optimizer state: %w", err)
			}
			for i := range len(chunk) / 4 {
				arr[lo+i] = math.Float32frombits(binary.LittleEndian.Uint32(chunk[4*i:]))
			}
		}
	}
	if _, err := br.ReadByte(); err != io.EOF {
		return 0, nil, nil, errors.New("optimizer state: trailing bytes")
	}
	return step, m, v, nil
}
