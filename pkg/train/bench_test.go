package train

import (
	"context"
	"testing"

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

// BenchmarkCPOOverMLE runs both steps alternately on one model and reports the ratio of the CPO
// step's median time to the MLE step's (the target is at most 1.1).
func BenchmarkCPOOverMLE(b *testing.B) {
	m := presetModel(b, "tiny")
	steps := max(b.N, 5)
	mle, err := Bench(context.Background(), m, BenchConfig{Objective: MLE, Batch: 12, SeqLen: 64, Steps: steps, Warmup: 1})
	if err != nil {
		b.Fatal(err)
	}
	cpo, err := Bench(context.Background(), m, BenchConfig{Objective: CPO, Batch: 1, K: 12, SeqLen: 64, Steps: steps, Warmup: 1})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(cpo.Median/mle.Median, "cpo/mle")
	b.ReportMetric(mle.TokensPerSec, "mle-tokens/s")
	b.ReportMetric(cpo.TokensPerSec, "cpo-tokens/s")
}
