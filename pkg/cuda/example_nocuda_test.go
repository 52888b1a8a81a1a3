//go:build !cuda

package cuda_test

import (
	"errors"
	"fmt"

	"github.com/cpo-toolchain/cpo/pkg/cuda"
	"github.com/cpo-toolchain/cpo/pkg/model"
)

// A trainer asks for the GPU backend and falls back to the CPU model when the binary has
// none (built without -tags cuda), or when New fails for want of a GPU.
func ExampleNew() {
	cfg := model.Config{Arch: model.ArchGPT2, VocabSize: 16, MaxSeqLen: 8, NLayer: 1, NHead: 2, NKVHead: 2, DModel: 8,
		DFF: 32, NormEps: 1e-5, TieEmbeddings: true, BOS: -1, EOS: -1}
	m, _ := model.New(cfg)
	m.InitGPT2Style(1)
	tr, err := cuda.New(m, cuda.Options{Precision: cuda.BF16, WeightDecay: 0.05})
	if errors.Is(err, cuda.ErrNotBuilt) {
		fmt.Println("no GPU backend in this binary: training on the CPU")
		return
	}
	defer tr.Close()
	b := model.Pack([][]int32{{1, 2, 3, 4}})
	logp, _ := tr.Forward(b)
	dlogp := make([]float32, len(logp))
	for i := 0; i < len(logp)-1; i++ {
		dlogp[i] = -1 / float32(len(logp)-1) // MLE over the sequence
	}
	tr.Backward(dlogp)
	tr.Step(1e-3, 1)
	tr.ZeroGrad()
	tr.Download(false) // m now holds the updated weights
	// Output: no GPU backend in this binary: training on the CPU
}
