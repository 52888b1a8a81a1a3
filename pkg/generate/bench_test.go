package generate

import (
	"fmt"
	"testing"

	"github.com/cpo-toolchain/cpo/pkg/checkpoint"
	"github.com/cpo-toolchain/cpo/pkg/model"
)

// BenchmarkGreedyGPT2Small times greedy decoding of the 124M GPT-2 architecture (random
// weights, 64-token prompts, 64 new tokens, EOS disabled) at batch 1 and 16 and reports
// new tokens per second (prefill included) and ms per incremental step.
//
//	go test ./pkg/generate -run '^$' -bench GreedyGPT2Small -benchtime 1x
func BenchmarkGreedyGPT2Small(b *testing.B) {
	cfg, err := checkpoint.Preset("gpt2-small")
	if err != nil {
		b.Fatal(err)
	}
	benchGreedy(b, cfg)
}

// BenchmarkGreedyTiny is the same on the tiny preset (4 layers, width 256, vocab 8192).
func BenchmarkGreedyTiny(b *testing.B) {
	cfg, err := checkpoint.Preset("tiny")
	if err != nil {
		b.Fatal(err)
	}
	benchGreedy(b, cfg)
}

func benchGreedy(b *testing.B, cfg model.Config) {
	m, err := checkpoint.NewRandom(cfg, 1)
	if err != nil {
		b.Fatal(err)
	}
	for _, batch := range []int{1, 16} {
		b.Run(fmt.Sprintf("batch%d", batch), func(b *testing.B) {
			var tokS, msStep float64
			for i := 0; i < b.N; i++ {
				r, err := Bench(m, batch, 64, 64, 1)
				if err != nil {
					b.Fatal(err)
				}
				tokS += r.TokensPerSec()
				msStep += r.DecodeMsPerStep()
			}
			b.ReportMetric(tokS/float64(b.N), "tok/s")
			b.ReportMetric(msStep/float64(b.N), "ms/step")
		})
	}
}
