package train

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/cpo-toolchain/cpo/pkg/checkpoint"
	"github.com/cpo-toolchain/cpo/pkg/model"
)

func presetModel(b *testing.B, name string) *model.Model {
	cfg, err := checkpoint.Preset(name)
	if err != nil {
		b.Fatal(err)
	}
	m, err := model.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	m.InitGPT2Style(1)
	return m
}

// benchSteps times b.N training steps of the tiny preset (GPT-2, 4 layers, width 256, vocab
// 8192) and reports tokens/s.
func benchSteps(b *testing.B, bc BenchConfig) {
	m := presetModel(b, "tiny")
	bc.Warmup, bc.Steps = 1, b.N
	b.ResetTimer()
	r, err := Bench(context.Background(), m, bc)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(r.TokensPerSec, "tokens/s")
	b.ReportMetric(r.Median, "ms/step")
}

// The same tokens per step: MLE over 12 sequences of 64 tokens, CPO over one example with
// K = 12 candidates of 64 tokens (reference log-probs precomputed), and CPO with the
// reference pass.
func BenchmarkStepMLE(b *testing.B) {
	benchSteps(b, BenchConfig{Objective: MLE, Batch: 12, SeqLen: 64})
}

func BenchmarkStepCPO12(b *testing.B) {
	benchSteps(b, BenchConfig{Objective: CPO, Batch: 1, K: 12, SeqLen: 64})
}

func BenchmarkStepCPO12WithRef(b *testing.B) {
	benchSteps(b, BenchConfig{Objective: CPO, Batch: 1, K: 12, SeqLen: 64, RefPass: true})
}

// BenchmarkCPOOverMLE alternates MLE and CPO (K = 12, reference precomputed) steps over the same
// number of tokens on two copies of the tiny preset, so that both see the same machine load, and
// reports the ratio of the median step times (the target is at most 1.1).
func BenchmarkCPOOverMLE(b *testing.B) {
	steps := max(b.N, 5)
	mle, err := benchTrainer(presetModel(b, "tiny"), BenchConfig{Objective: MLE, Batch: 12, SeqLen: 64, Steps: steps + 1})
	if err != nil {
		b.Fatal(err)
	}
	cpo, err := benchTrainer(presetModel(b, "tiny"), BenchConfig{Objective: CPO, Batch: 1, K: 12, SeqLen: 64, Steps: steps + 1})
	if err != nil {
		b.Fatal(err)
	}
	var tm, tc []float64
	var tokens [2]int
	for i := 0; i <= steps; i++ {
		for j, tr := range []*Trainer{mle, cpo} {
			start := time.Now()
			r, err := tr.TrainStep(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			tokens[j] = r.Tokens
			if i > 0 {
				if j == 0 {
					tm = append(tm, time.Since(start).Seconds())
				} else {
					tc = append(tc, time.Since(start).Seconds())
				}
			}
		}
	}
	if tokens[0] != tokens[1] {
		b.Fatalf("tokens per step differ: mle %d, cpo %d", tokens[0], tokens[1])
	}
	sort.Float64s(tm)
	sort.Float64s(tc)
	b.ReportMetric(tc[len(tc)/2]/tm[len(tm)/2], "cpo/mle")
	b.ReportMetric(float64(tokens[0])/tm[len(tm)/2], "mle-tokens/s")
	b.ReportMetric(float64(tokens[1])/tc[len(tc)/2], "cpo-tokens/s")
}
