package generate

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/cpo-toolchain/cpo/pkg/model"
)

// BenchResult is the timing of greedy decoding of Batch random prompts of PromptLen tokens,
// NewTokens new tokens each (EOS disabled, so every sequence runs to NewTokens).
type BenchResult struct {
	Batch, PromptLen, NewTokens int
	// Prefill is the time to run the prompts and choose the first token; Total the time of the
	// whole generation. Decode = Total - Prefill covers the NewTokens-1 incremental steps.
	Prefill, Total time.Duration
}

// DecodeMsPerStep is the mean time of one incremental step (one new token for every sequence
// of the batch) in milliseconds.
func (r BenchResult) DecodeMsPerStep() float64 {
	if r.NewTokens <= 1 {
		return 0
	}
	return float64(r.Total-r.Prefill) / float64(time.Millisecond) / float64(r.NewTokens-1)
}

// DecodeMsPerToken is DecodeMsPerStep divided by the batch: the time per generated token.
func (r BenchResult) DecodeMsPerToken() float64 { return r.DecodeMsPerStep() / float64(r.Batch) }

// DecodeTokensPerSec is the new tokens per second of the incremental steps (batch included).
func (r BenchResult) DecodeTokensPerSec() float64 {
	d := (r.Total - r.Prefill).Seconds()
	if d <= 0 {
		return 0
	}
	return float64(r.Batch*(r.NewTokens-1)) / d
}

// TokensPerSec is all new tokens over the whole time, prefill included.
func (r BenchResult) TokensPerSec() float64 {
	return float64(r.Batch*r.NewTokens) / r.Total.Seconds()
}

// Bench times greedy decoding with m: a warm-up run, then a prefill-only run (one new token)
// and a full run on the same prompts, drawn from seed.
func Bench(m *model.Model, batch, promptLen, newTokens int, seed uint64) (BenchResult, error) {
	rng := rand.New(rand.NewPCG(seed, 1))
	reqs := make([]Request, batch)
	for i := range reqs {
		p := make([]int32, promptLen)
		for j := range p {
			p[j] = int32(rng.IntN(m.Config.VocabSize))
		}
		reqs[i].Prompt = p
	}
	run := func(n int) (time.Duration, error) {
		g, err := New(m, Config{Strategy: Greedy, MaxNewTokens: n, EOS: -1}, batch)
		if err != nil {
			return 0, err
		}
		g.ensureCache(batch, promptLen+newTokens) // allocation is not timed
		t0 := time.Now()
		_, err = g.Generate(context.Background(), reqs, nil)
		return time.Since(t0), err
	}
	res := BenchResult{Batch: batch, PromptLen: promptLen, NewTokens: newTokens}
	if _, err := run(min(newTokens, 4)); err != nil { // warm-up: page in weights, size workspaces
		return res, err
	}
	var err error
	if res.Prefill, err = run(1); err != nil {
		return res, err
	}
	res.Total, err = run(newTokens)
	return res, err
}
