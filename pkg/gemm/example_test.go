package gemm_test

import (
	"fmt"

	"github.com/cpo-toolchain/cpo/pkg/gemm"
)

// A linear layer's forward pass, out (N, OC) = inp (N, IC) · Wᵀ with W stored (OC, IC) as a
// PyTorch Linear weight: op(B) = Wᵀ, so transB is true.
func ExampleSgemm() {
	const N, IC, OC = 2, 3, 2
	inp := []float32{1, 2, 3, 4, 5, 6}
	w := []float32{1, 0, 0, 0, 1, 1}
	out := make([]float32, N*OC)
	gemm.Sgemm(false, true, N, OC, IC, 1, inp, IC, w, IC, 0, out, OC)
	fmt.Println(out)
	// Output: [1 5 4 11]
}
