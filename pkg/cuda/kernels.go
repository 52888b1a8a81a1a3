// Package cuda is the GPU backend of the trainer: the same GPT-2 and Llama model as
// pkg/model (same parameter arena and Hugging Face layout, same layer order), run forward
// and backward with AdamW on an NVIDIA GPU through our own kernels (kernels/*.cu, compiled
// to fatbins that are embedded in the binary) and cuBLAS when a libcublas can be loaded.
//
// The GPU code is behind the `cuda` build tag: gorgonia.org/cu, which it uses, initialises
// the driver in its package init and exits the process when no GPU is present, so the
// default build never imports it. Without the tag, New returns ErrNotBuilt. The untagged
// files (this one, manifest.go, device.go) need no GPU: the kernel table, the manifest
// check and the interface the trainer programs against.
//
// Precision: Float32 runs everything in float32 (parity with the CPU path to ~1e-5);
// BF16 keeps activations and a copy of the weights in bf16 for the forward and backward
// products, with float32 accumulation everywhere, float32 master weights, gradients and
// optimizer moments.
package cuda

import (
	"fmt"
	"io/fs"

	"github.com/cpo-toolchain/cpo/kernels"
)

// Families maps every kernel family (kernels/<family>.cu, compiled to
// kernels/build/<family>.fatbin) to the C names of the kernels the backend launches from
// it. Names ending in "*" exist twice, with the suffixes _f32 and _bf16 (the storage type
// of activations).
var Families = map[string][]string{
	"embedding":  {"encoder_fwd*", "encoder_bwd*"},
	"norm":       {"layernorm_fwd*", "layernorm_bwd*", "rmsnorm_fwd*", "rmsnorm_bwd*"},
	"activation": {"gelu_fwd*", "gelu_bwd*", "swiglu_fwd*", "swiglu_bwd*", "rope*", "bias_add*"},
	"attention":  {"attn_fwd*", "attn_bwd_dot*", "attn_bwd_dq*", "attn_bwd_dkdv*", "attn_softmax_fwd*", "attn_probs*", "attn_dsoft*"},
	"classifier": {"logprob_fwd*", "logprob_bwd*"},
	"adamw":      {"adamw*"},
	"reduce":     {"sumsq_partial", "sum_f64", "sum_f32", "colsum*"},
	"cast":       {"f32_to_bf16", "bf16_to_f32"},
	"gemm":       {"gemm_f32", "gemm_bf16", "gemm_bf16_f32"},
}

// KernelNames expands Families[family] into the C names of its kernels.
func KernelNames(family string) []string {
	var out []string
	for _, n := range Families[family] {
		if len(n) > 0 && n[len(n)-1] == '*' {
			out = append(out, n[:len(n)-1]+"_f32", n[:len(n)-1]+"_bf16")
		} else {
			out = append(out, n)
		}
	}
	return out
}

// Fatbin returns the embedded compiled image of a kernel family.
func Fatbin(family string) ([]byte, error) {
	b, err := fs.ReadFile(kernels.FS, "build/"+family+".fatbin")
	if err != nil {
		return nil, fmt.Errorf("cuda: no compiled kernels for family %q (run make cuda): %w", family, err)
	}
	return b, nil
}
