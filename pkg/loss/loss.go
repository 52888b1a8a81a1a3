// Package loss holds the training objectives of the CPO tool chain as pure functions of
// sequence log-probabilities, each with its analytic gradient.
//
// Every sequence-level objective has the same shape. For one prompt x with K candidate
// continuations y_1..y_K (candidate 0 in Go indexing is the ground truth), the trainer computes
//
//	s[j]    = log pi_theta(y_j | x)   summed over the continuation's tokens (natural log)
//	sref[j] = log pi_ref(y_j | x)     the same under the frozen reference model
//
// and the implicit reward z[j] = beta * (s[j] - sref[j]). A loss here returns its value and
// writes g[j] = dL/ds[j]; the trainer spreads g[j] over the token positions of candidate j
// (dlogp[t] = g[j]) and calls model.Backward. Losses are in nats, for one example; the trainer
// averages over the examples of a batch. All sums use a max-shifted log-sum-exp, so no
// exponential overflows whatever the size of s.
package loss

import (
	"fmt"
	"math"
)

// LogSumExp returns log(sum_j exp(z[j])), shifted by the maximum so that it never overflows.
// It returns -Inf for an empty z.
func LogSumExp(z []float64) float64 {
	if len(z) == 0 {
		return math.Inf(-1)
	}
	m := z[0]
	for _, v := range z[1:] {
		m = max(m, v)
	}
	if math.IsInf(m, 0) {
		return m
	}
	var sum float64
	for _, v := range z {
		sum += math.Exp(v - m)
	}
	return m + math.Log(sum)
}

// rewards writes z[j] = beta*(s[j]-sref[j]) into a new slice.
func rewards(s, sref []float64, beta float64) []float64 {
	if len(s) != len(sref) {
		panic(fmt.Sprintf("loss: %d sequence log-probs but %d reference log-probs", len(s), len(sref)))
	}
	z := make([]float64, len(s))
	for j := range s {
		z[j] = beta * (s[j] - sref[j])
	}
	return z
}

// CPO is eq. 7 of the paper for one example: the negative log-softmax of the ground truth's
// reward among the K candidates,
//
//	L = -log( exp(z[0]) / sum_{j=0}^{K-1} exp(z[j]) ) = -z[0] + logsumexp(z),
//	z[j] = beta * (s[j] - sref[j]),
//
// with gradient g[j] = dL/ds[j] = beta * (softmax(z)[j] - [j == 0]). At pi_theta = pi_ref
// (s = sref) the loss is exactly ln K. s, sref and g have length K >= 1; g may be nil.
func CPO(s, sref []float64, beta float64, g []float64) float64 {
	z := rewards(s, sref, beta)
	lse := LogSumExp(z)
	if g != nil {
		for j := range z {
			g[j] = beta * math.Exp(z[j]-lse)
		}
		g[0] -= beta
	}
	return lse - z[0]
}

// RankedCPO is eq. 8 of the paper for one example: the negative log Plackett-Luce likelihood
// of the ranking tau (candidate indices from best to worst, tau[0] normally the ground truth),
//
//	L = -sum_{k=0}^{K-1} [ z[tau[k]] - logsumexp_{i>=k} z[tau[i]] ],
//
// with gradient dL/dz[tau[i]] = -1 + sum_{k<=i} softmax over {tau[k..K-1]} at tau[i], and
// g = beta * dL/dz. The last term (k = K-1) is always 0. At pi_theta = pi_ref the loss is
// ln K!. With K = 2 it equals CPO and DPO. tau must be a permutation of 0..K-1.
func RankedCPO(s, sref []float64, tau []int32, beta float64, g []float64) float64 {
	z := rewards(s, sref, beta)
	K := len(z)
	if len(tau) != K {
		panic(fmt.Sprintf("loss: ranking of %d entries for %d candidates", len(tau), K))
	}
	zt := make([]float64, K) // z in ranked order
	for k, j := range tau {
		zt[k] = z[j]
	}
	// Suffix log-sum-exps, each stable: lse[k] = logsumexp(zt[k:]).
	lse := make([]float64, K)
	var L float64
	for k := K - 1; k >= 0; k-- {
		lse[k] = LogSumExp(zt[k:])
		L += lse[k] - zt[k]
	}
	if g != nil {
		for i := 0; i < K; i++ {
			d := -1.0
			for k := 0; k <= i; k++ {
				d += math.Exp(zt[i] - lse[k])
			}
			g[tau[i]] = beta * d
		}
	}
	return L
}

// Softplus returns log(1 + exp(x)) without overflow or loss of precision.
func Softplus(x float64) float64 {
	return max(x, 0) + math.Log1p(math.Exp(-math.Abs(x)))
}

// sigmoid is 1/(1+exp(-x)), stable for both signs.
func sigmoid(x float64) float64 {
	if x >= 0 {
		return 1 / (1 + math.Exp(-x))
	}
	e := math.Exp(x)
	return e / (1 + e)
}

// DPO is eq. 5 of the paper (Rafailov et al.'s objective) for one preference pair, the chosen
// sequence w and the rejected sequence l:
//
//	L = -log sigmoid( beta*(sw - refw) - beta*(sl - refl) ) = softplus(zl - zw),
//
// with gradients gw = dL/dsw = -beta*sigmoid(zl - zw) and gl = dL/dsl = -gw. It equals CPO at
// K = 2 (candidate 0 chosen) and is ln 2 at pi_theta = pi_ref.
func DPO(sw, sl, refw, refl, beta float64) (L, gw, gl float64) {
	d := beta*(sl-refl) - beta*(sw-refw)
	L = Softplus(d)
	gw = -beta * sigmoid(d)
	return L, gw, -gw
}

// MLE is the next-token loss over the selected positions of a packed batch: with logp[t] the
// model's log-probability of token t+1 (model.Forward) and mask[t] selecting the positions
// that are trained (response tokens, or every position of a document),
//
//	L = -sum_t mask[t]*logp[t] / norm,     dlogp[t] = -mask[t] / norm,
//
// where norm is normally the number of selected positions of the whole batch (so micro-batches
// of one batch share one norm). dlogp may be nil; otherwise it is overwritten (0 where the mask
// is false). logp, mask and dlogp have length N.
func MLE(logp []float32, mask []bool, norm float64, dlogp []float32) float64 {
	var sum float64
	inv := float32(1 / norm)
	for t, on := range mask {
		if on {
			sum += float64(logp[t])
		}
		if dlogp != nil {
			if on {
				dlogp[t] = -inv
			} else {
				dlogp[t] = 0
			}
		}
	}
	return -sum / norm
}
