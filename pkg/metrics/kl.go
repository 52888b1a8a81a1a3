package metrics

import (
	"fmt"
	"math"
)

// Scored is one generation with its log-probabilities, the input of Likelihood.
type Scored struct {
	Group
	// Prompt identifies the prompt x (the generation's id); Y identifies the continuation y
	// (e.g. its token ids as a string), so that one continuation generated twice for the same
	// prompt counts once.
	Prompt, Y string
	// LogQ = log Q(y|x) under the generating model (Generation.Logp); LogP = log P̂(y|x) under
	// the scoring model; Tokens = |y|, the number of tokens the scoring model scored.
	LogQ, LogP float64
	Tokens     int
	Where      string
}

// LikelihoodResult holds eq. (9) and eq. (10) of one group.
type LikelihoodResult struct {
	Group
	ReverseKL, NLL Interval // N is |X|, the number of prompts
	// Generations is the number of distinct (prompt, continuation) pairs summed over.
	Generations int
}

// Likelihood computes, per group (model, decoding) in order of first appearance, with b
// bootstrap resamples of the prompts:
//
//	eq. (9)  reverse_kl = 1/|X| Σ_x Σ_{y ∈ Y_x} Q(y|x) · (log Q(y|x) − log P̂(y|x))
//	eq. (10) nll        = 1/|X| Σ_x Σ_{y ∈ Y_x} −log P̂(y|x) / |y|
//
// where X is the set of prompts of the group, Y_x the set of distinct continuations generated
// for x (duplicates of one continuation count once, since Y is a set), Q(y|x) = exp(LogQ) the
// generating model's probability of the whole continuation, P̂ the scoring ("larger") model and
// |y| the number of scored tokens. All logs are natural, so eq. (9) is in nats. As the paper
// notes, Q(y|x) of a long continuation is tiny (exp underflows to 0 below about e^-745), so
// eq. (9) is dominated by short, likely continuations; eq. (10) is the stable surrogate. The
// intervals resample prompts (each prompt with all its continuations). A continuation with no
// scored token is an error naming where.
func Likelihood(items []Scored, b int, seed uint64) ([]LikelihoodResult, error) {
	type promptSums struct {
		kl, nll float64
	}
	type groupData struct {
		g       Group
		prompts map[string]int
		sums    []promptSums
		seen    map[[2]string]bool
	}
	var order []*groupData
	groups := map[Group]*groupData{}
	for _, it := range items {
		gd := groups[it.Group]
		if gd == nil {
			gd = &groupData{g: it.Group, prompts: map[string]int{}, seen: map[[2]string]bool{}}
			groups[it.Group] = gd
			order = append(order, gd)
		}
		if it.Tokens <= 0 {
			return nil, fmt.Errorf("%s: generation for prompt %q has no scored token; eq. (10) divides by |y|", it.Where, it.Prompt)
		}
		if math.IsNaN(it.LogQ) || math.IsNaN(it.LogP) || it.LogP > 1e-9 || it.LogQ > 1e-9 {
			return nil, fmt.Errorf("%s: log-probabilities must be finite and <= 0 (log Q %g, log P̂ %g)", it.Where, it.LogQ, it.LogP)
		}
		k := [2]string{it.Prompt, it.Y}
		if gd.seen[k] {
			continue
		}
		gd.seen[k] = true
		i, ok := gd.prompts[it.Prompt]
		if !ok {
			i = len(gd.sums)
			gd.prompts[it.Prompt] = i
			gd.sums = append(gd.sums, promptSums{})
		}
		q := math.Exp(it.LogQ)
		if q > 0 { // 0 · (−∞ …) is 0: a vanishing Q contributes nothing
			gd.sums[i].kl += q * (it.LogQ - it.LogP)
		}
		gd.sums[i].nll += -it.LogP / float64(it.Tokens)
	}
	out := make([]LikelihoodResult, 0, len(order))
	for _, gd := range order {
		kl := make([]float64, len(gd.sums))
		nll := make([]float64, len(gd.sums))
		for i, s := range gd.sums {
			kl[i], nll[i] = s.kl, s.nll
		}
		name := gd.g.Model + "\x00" + gd.g.ModelName + "\x00" + gd.g.Decoding
		out = append(out, LikelihoodResult{Group: gd.g, Generations: len(gd.seen),
			ReverseKL: BootstrapMean(kl, b, NewRand(seed, "rkl\x00"+name)),
			NLL:       BootstrapMean(nll, b, NewRand(seed, "nll\x00"+name))})
	}
	return out, nil
}
