package loss

import (
	"math"
	"sort"
)

// Metric names, as Hugging Face TRL's preference trainers log them.
const (
	MetricRewardsChosen     = "rewards/chosen"     // beta*(s[0]-sref[0]), the ground truth's reward
	MetricRewardsRejected   = "rewards/rejected"   // mean over the negatives of beta*(s[j]-sref[j])
	MetricRewardsMargins    = "rewards/margins"    // chosen - rejected
	MetricRewardsAccuracies = "rewards/accuracies" // fraction of examples whose ground truth has the strictly highest reward
	MetricLogpsChosen       = "logps/chosen"       // s[0], nats
	MetricLogpsRejected     = "logps/rejected"     // mean over the negatives of s[j], nats
	// MetricMarginPrefix + kind (bn, mn, tn, an) is the mean over the negatives of that kind of
	// the ground truth's reward minus the negative's: "rewards/margins/bn", ...
	MetricMarginPrefix = "rewards/margins/"
)

// Stats accumulates the preference metrics of many examples; Map averages them. The zero
// value is ready to use.
type Stats struct {
	n                             int
	chosen, rejected, margin, acc float64
	logpChosen, logpRejected      float64
	kindMargin                    map[string]float64
	kindCount                     map[string]int
}

// Add records one example: s and sref are its K sequence log-probabilities under the policy
// and the reference (candidate 0 the ground truth), kinds the candidates' kinds (nil: no
// per-kind margins). An example with K < 2 has no negatives and is ignored.
func (st *Stats) Add(s, sref []float64, kinds []string, beta float64) {
	K := len(s)
	if K < 2 {
		return
	}
	z := rewards(s, sref, beta)
	var rej, lrej float64
	best := true
	for j := 1; j < K; j++ {
		rej += z[j]
		lrej += s[j]
		if z[j] >= z[0] {
			best = false
		}
		if kinds != nil {
			if st.kindMargin == nil {
				st.kindMargin, st.kindCount = map[string]float64{}, map[string]int{}
			}
			st.kindMargin[kinds[j]] += z[0] - z[j]
			st.kindCount[kinds[j]]++
		}
	}
	rej /= float64(K - 1)
	st.n++
	st.chosen += z[0]
	st.rejected += rej
	st.margin += z[0] - rej
	st.logpChosen += s[0]
	st.logpRejected += lrej / float64(K-1)
	if best {
		st.acc++
	}
}

// Merge adds the examples recorded in o to st.
func (st *Stats) Merge(o *Stats) {
	st.n += o.n
	st.chosen += o.chosen
	st.rejected += o.rejected
	st.margin += o.margin
	st.acc += o.acc
	st.logpChosen += o.logpChosen
	st.logpRejected += o.logpRejected
	for k, v := range o.kindMargin {
		if st.kindMargin == nil {
			st.kindMargin, st.kindCount = map[string]float64{}, map[string]int{}
		}
		st.kindMargin[k] += v
		st.kindCount[k] += o.kindCount[k]
	}
}

// N is the number of examples recorded.
func (st *Stats) N() int { return st.n }

// Map returns the averaged metrics under their TRL names (empty when no example was added).
func (st *Stats) Map() map[string]float64 {
	out := map[string]float64{}
	if st.n == 0 {
		return out
	}
	n := float64(st.n)
	out[MetricRewardsChosen] = st.chosen / n
	out[MetricRewardsRejected] = st.rejected / n
	out[MetricRewardsMargins] = st.margin / n
	out[MetricRewardsAccuracies] = st.acc / n
	out[MetricLogpsChosen] = st.logpChosen / n
	out[MetricLogpsRejected] = st.logpRejected / n
	kinds := make([]string, 0, len(st.kindCount))
	for k := range st.kindCount {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		out[MetricMarginPrefix+k] = st.kindMargin[k] / float64(st.kindCount[k])
	}
	return out
}

// Finite reports whether x is neither NaN nor infinite.
func Finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
