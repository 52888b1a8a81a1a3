// Package metrics computes the paper's evaluation numbers from judgment and generation shards:
// win rates against the ground truth with bootstrap confidence intervals, paired differences
// between two models, the approximate reverse-KL of eq. (9) and the length-normalised NLL of
// eq. (10) under a larger scoring model, and the tables of the paper's shape (Markdown, CSV).
//
// Confidence intervals are 95% percentile bootstrap intervals: B resamples (with
// replacement, of the same size) of the items, the statistic recomputed on each, and the
// 2.5th and 97.5th percentiles of the B values taken (linear interpolation between order
// statistics). The random source is PCG seeded from the user's seed and a hash of the group's
// name, so a result does not depend on which other groups are scored or in what order.
package metrics

import (
	"hash/fnv"
	"math"
	"math/rand/v2"
	"sort"
)

// Interval is a value with its 95% confidence interval [Lo, Hi] over N items.
type Interval struct {
	Value, Lo, Hi float64
	N             int
}

// Mean returns the arithmetic mean of xs (NaN when empty).
func Mean(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// NewRand returns the seeded random source of one group: PCG(seed, FNV-1a(group)).
func NewRand(seed uint64, group string) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte(group))
	return rand.New(rand.NewPCG(seed, h.Sum64()))
}

// BootstrapMean returns the mean of xs with its 95% percentile-bootstrap interval from b
// resamples drawn with r. With b <= 0 or fewer than two items the interval is [NaN, NaN].
func BootstrapMean(xs []float64, b int, r *rand.Rand) Interval {
	iv := Interval{Value: Mean(xs), Lo: math.NaN(), Hi: math.NaN(), N: len(xs)}
	n := len(xs)
	if b <= 0 || n < 2 {
		return iv
	}
	stats := make([]float64, b)
	for k := range stats {
		var s float64
		for i := 0; i < n; i++ {
			s += xs[r.IntN(n)]
		}
		stats[k] = s / float64(n)
	}
	iv.Lo, iv.Hi = Percentile(stats, 0.025), Percentile(stats, 0.975)
	return iv
}

// Percentile returns the q-quantile (0 <= q <= 1) of xs by linear interpolation between the
// order statistics (numpy's default "linear" method). It sorts xs in place.
func Percentile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	sort.Float64s(xs)
	pos := q * float64(len(xs)-1)
	i := int(math.Floor(pos))
	if i >= len(xs)-1 {
		return xs[len(xs)-1]
	}
	f := pos - float64(i)
	return xs[i]*(1-f) + xs[i+1]*f
}
