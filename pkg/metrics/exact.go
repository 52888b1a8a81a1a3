package metrics

import (
	"strings"

	"github.com/cpo-toolchain/cpo/pkg/shard"
)

// MetricExactMatch is the fraction of generations equal to their reference.
const MetricExactMatch = "exact_match"

// ExactResult is the exact-match rate of one group (model, decoding).
type ExactResult struct {
	Group
	Interval
}

// ExactMatch computes, per group (model, decoding) in order of first appearance, the fraction
// of generations whose text equals the reference text, both with surrounding white space
// trimmed (the generation's text never holds its EOS; a reference that ends in the
// tokenizer's literal EOS text is compared without it), with a 95% bootstrap interval from b
// resamples. It is the natural score for data with one right answer, such as the demo's.
func ExactMatch(gens []shard.Generation, b int, seed uint64) []ExactResult {
	type acc struct {
		g    Group
		vals []float64
	}
	var order []*acc
	byKey := map[Group]*acc{}
	for _, r := range gens {
		g := Group{Model: r.Model, ModelName: r.ModelName, Decoding: r.Decoding}
		a := byKey[g]
		if a == nil {
			a = &acc{g: g}
			byKey[g] = a
			order = append(order, a)
		}
		a.vals = append(a.vals, b2f(sameAnswer(r.Text, r.Reference)))
	}
	out := make([]ExactResult, 0, len(order))
	for _, a := range order {
		name := a.g.Model + "\x00" + a.g.ModelName + "\x00" + a.g.Decoding
		out = append(out, ExactResult{Group: a.g, Interval: BootstrapMean(a.vals, b, NewRand(seed, "exact\x00"+name))})
	}
	return out
}

// sameAnswer compares a generation with its reference, ignoring surrounding white space and
// a trailing special-token spelling of EOS in the reference (<|endoftext|>, </s>).
func sameAnswer(gen, ref string) bool {
	ref = strings.TrimSpace(ref)
	for _, eos := range []string{"<|endoftext|>", "</s>"} {
		ref = strings.TrimSpace(strings.TrimSuffix(ref, eos))
	}
	return strings.TrimSpace(gen) == ref
}

// ExactRows turns exact-match results into score-shard rows.
func ExactRows(res []ExactResult) []shard.Score {
	out := make([]shard.Score, 0, len(res))
	for _, r := range res {
		out = append(out, shard.Score{Model: r.Model, ModelName: r.ModelName, Decoding: r.Decoding, Metric: MetricExactMatch,
			Value: r.Value, Lo: r.Lo, Hi: r.Hi, N: int64(r.N)})
	}
	return out
}
