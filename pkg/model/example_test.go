package model_test

import (
	"fmt"

	"github.com/cpo-toolchain/cpo/pkg/model"
)

// One maximum-likelihood step on a packed batch of two sequences, then greedy decoding
// of both through the KV cache.
func Example() {
	cfg := model.Config{Arch: model.ArchLlama, VocabSize: 50, MaxSeqLen: 32, NLayer: 2, NHead: 4, NKVHead: 2,
		DModel: 32, DFF: 64, NormEps: 1e-5, RopeTheta: 10000, BOS: -1, EOS: -1}
	m, err := model.New(cfg)
	if err != nil {
		panic(err)
	}
	m.InitGPT2Style(1)

	b := model.Pack([][]int32{{1, 2, 3, 4}, {5, 6, 7}})
	ws := model.NewWorkspace()
	logp := m.Forward(ws, b) // (N) log p(next token); 0 at each sequence's last token
	dlogp := make([]float32, len(logp))
	for t := range logp {
		dlogp[t] = -1.0 / 5 // mean negative log-likelihood over the 5 predicted tokens
	}
	m.ZeroGrad()
	m.Backward(ws, dlogp) // sequence ends are ignored
	fmt.Println("logp:", len(logp), "last of sequence 1:", logp[3])

	cache := m.NewCache(2, 16)
	logits := m.Extend(cache, []int{0, 1}, [][]int32{{1, 2, 3}, {5, 6}}) // prefill: 2×V
	fmt.Println("logits:", len(logits), "cached:", cache.Len(0), cache.Len(1))
	// Output:
	// logp: 7 last of sequence 1: 0
	// logits: 100 cached: 3 2
}
