package cuda

import (
	"errors"
	"fmt"

	"github.com/cpo-toolchain/cpo/pkg/model"
)

// Precision is the storage type of activations and of the weight copy the matrix
// products read.
type Precision string

// The precisions. Gradients, master weights and optimizer moments are float32 in both.
const (
	Float32 Precision = "fp32"
	BF16    Precision = "bf16"
)

// ErrNotBuilt is returned by New in a binary built without the cuda tag.
var ErrNotBuilt = errors.New("cuda: this binary was built without GPU support (build with -tags cuda, see make cuda)")

// Options configure a Trainer.
type Options struct {
	// Precision of activations (default BF16).
	Precision Precision
	// Device is the GPU ordinal (default 0).
	Device int
	// Beta1, Beta2, Eps and WeightDecay are AdamW's hyper-parameters as in pkg/optim
	// (defaults 0.9, 0.999, 1e-8 and 0). Weight decay applies where model.Param.Decay.
	Beta1, Beta2, Eps, WeightDecay float64
	// Inference skips the gradient and optimizer buffers: Forward only (a frozen
	// reference model).
	Inference bool
	// OwnGEMM uses our own matrix-product kernels even when a cuBLAS library loads.
	OwnGEMM bool
	// Attention picks the attention path: AttnFlash (default: kernels/attention.cu's tiled
	// kernels, memory linear in T) or AttnCUBLAS (per sequence, the (T, T) scores of all
	// heads materialised by cuBLAS batched products on the tensor cores; needs cuBLAS,
	// else the flash path is used).
	Attention string
}

// The attention paths of Options.Attention.
const (
	AttnFlash  = "flash"
	AttnCUBLAS = "cublas"
)

func (o Options) withDefaults() (Options, error) {
	if o.Precision == "" {
		o.Precision = BF16
	}
	if o.Precision != Float32 && o.Precision != BF16 {
		return o, fmt.Errorf("cuda: unknown precision %q (want %q or %q)", o.Precision, Float32, BF16)
	}
	if o.Attention == "" {
		o.Attention = AttnFlash
	}
	if o.Attention != AttnFlash && o.Attention != AttnCUBLAS {
		return o, fmt.Errorf("cuda: unknown attention path %q (want %q or %q)", o.Attention, AttnFlash, AttnCUBLAS)
	}
	if o.Beta1 == 0 {
		o.Beta1 = 0.9
	}
	if o.Beta2 == 0 {
		o.Beta2 = 0.999
	}
	if o.Eps == 0 {
		o.Eps = 1e-8
	}
	return o, nil
}

// Trainer is a model resident on a GPU: float32 master weights, gradients and AdamW
// moments in the layout of the host model's arenas (model.ParamArena), activations in the
// chosen Precision. The host model is the source of the weights at New and Upload and
// receives them back at Download. A Trainer is used from one goroutine at a time, and a
// process drives one GPU.
//
// How a trainer uses it (what pkg/train's Stepper does with model.Forward/Backward and
// optim): policy, _ := cuda.New(m, cuda.Options{WeightDecay: wd}) and, when reference
// log-probabilities are not precomputed, ref, _ := cuda.New(refModel,
// cuda.Options{Inference: true}); per micro-batch logp, _ := policy.Forward(b), the
// objective's dlogp on the host, policy.Backward(dlogp); per optimizer step
// norm, _ := policy.Step(lr, clip) then policy.ZeroGrad(); before a checkpoint
// policy.Download(false) (the host model then holds the weights to save) and Moments for
// the optimizer state. In a binary built without the cuda tag New returns ErrNotBuilt, so
// the same trainer code compiles either way.
type Trainer interface {
	// Forward runs the packed batch and returns, as model.Forward does, logp (N): the
	// log-probability of every packed position's next token, 0 at sequence ends. The slice
	// belongs to the Trainer until the next Forward. Activations stay on the GPU for
	// Backward. It returns an error for a malformed batch (model.CheckBatch) or a CUDA
	// failure.
	Forward(b model.Batch) ([]float32, error)
	// Backward adds to the device gradients the gradient of L given dlogp[t] = dL/dlogp[t]
	// (length N of the last Forward; entries at sequence ends are ignored), exactly the
	// contract of model.Backward.
	Backward(dlogp []float32) error
	// ZeroGrad clears the device gradients (Backward accumulates).
	ZeroGrad() error
	// Step clips the gradients by global norm maxNorm (maxNorm <= 0: no clipping, as
	// optim.ClipGradNorm) and takes one AdamW step with learning rate lr (as optim.AdamW,
	// torch's order of operations). It returns the norm before clipping. When that norm is
	// NaN or infinite it changes nothing (no update, the step count stays), as the CPU
	// engine does, so that a caller can skip the step.
	Step(lr, maxNorm float64) (gradNorm float64, err error)
	// Steps is the number of AdamW steps taken (including those set by SetMoments).
	Steps() int64
	// Download copies the master weights into the host model's parameter arena and, with
	// grads, the gradients into its gradient arena (for checkpoints and checks).
	Download(grads bool) error
	// Upload copies the host model's parameters to the device (after loading a checkpoint).
	Upload() error
	// Moments copies the AdamW moments (each the size of the parameter arena) to the host,
	// for a checkpoint; SetMoments restores them with the step count.
	Moments() (m, v []float32, err error)
	SetMoments(m, v []float32, step int64) error
	// Logits copies the (N, V) logits of the last Forward to the host as float32 (before
	// Backward, which overwrites them with their gradient).
	Logits() ([]float32, error)
	// Device names the GPU and the matrix-product path ("cuBLAS 12.x" or "own kernels").
	Device() string
	// Close frees the device memory.
	Close() error
}
