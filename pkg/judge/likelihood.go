package judge

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/cpo-toolchain/cpo/pkg/metrics"
	"github.com/cpo-toolchain/cpo/pkg/shard"
)

// LikelihoodTemplate is the Template field of likelihood judgments (no prompt template is
// involved).
const LikelihoodTemplate = "likelihood:mean-logp"

// Likelihood is the offline judge: of two responses to a prompt it prefers the one with the
// higher length-normalised log-probability, mean over its tokens of log p(token | prompt,
// previous tokens), under a local model. It is deterministic and symmetric, so the two
// presentation orders agree unless the two means are exactly equal: then the judge prefers
// response A (the first shown) in both orders, which makes the outcome a tie. A response with
// no token has no mean and loses to any other (two empty responses tie).
//
// Token ids: the rows' own ids when the model's tokenizer is the rows' (or the model ships
// none), else the texts encoded again with the model's tokenizer (metrics.Texts.Tokens; the
// generation gets EOS when it finished at EOS, the reference always).
type Likelihood struct {
	Scorer *metrics.Scorer
	Texts  *metrics.Texts
	// Name is the judge's name in judgments: "likelihood:<model fingerprint>".
	Name string
	// Chunk is the number of generations scored per progress step (default 32).
	Chunk int
	// Progress, if set, is called with the number of verdicts done after each chunk.
	Progress func(n int)
}

// Run judges every item and returns one judgment per item, in input order. Errors name the
// item's position (a sequence longer than the model's context, a token outside its
// vocabulary).
func (l *Likelihood) Run(ctx context.Context, items []Item) ([]shard.Judgment, Stats, error) {
	if err := CheckItems(items); err != nil {
		return nil, Stats{}, err
	}
	chunk := l.Chunk
	if chunk <= 0 {
		chunk = 32
	}
	out := make([]shard.Judgment, 0, len(items))
	for lo := 0; lo < len(items); lo += chunk {
		if err := ctx.Err(); err != nil {
			return nil, Stats{}, err
		}
		hi := min(lo+chunk, len(items))
		var prompts, resps [][]int32
		for _, it := range items[lo:hi] {
			g := it.Gen
			p, y := l.Texts.Tokens(g.Tokenizer, g.PromptIDs, g.IDs, g.Prompt, g.Text, g.Finish == "eos")
			_, ref := l.Texts.Tokens(g.Tokenizer, g.PromptIDs, g.ReferenceIDs, g.Prompt, g.Reference, true)
			if len(ref) == 0 {
				// Scored as empty, the reference would lose to every generation.
				return nil, Stats{}, fmt.Errorf("%s: the reference of generation %q has no token ids (joined from examples of another tokenizer?) and the judge model ships no tokenizer to encode its text", it.Where, g.ID)
			}
			prompts = append(prompts, p, p)
			resps = append(resps, y, ref)
		}
		lp, err := l.Scorer.Score(prompts, resps)
		if err != nil {
			var pe *metrics.PairError
			if errors.As(err, &pe) && lo+pe.Index/2 < hi {
				what := "generation"
				if pe.Index%2 == 1 {
					what = "reference"
				}
				return nil, Stats{}, fmt.Errorf("%s: %s: %w", items[lo+pe.Index/2].Where, what, pe.Err)
			}
			return nil, Stats{}, err
		}
		for k, it := range items[lo:hi] {
			gen, ref := meanOrInf(lp[2*k]), meanOrInf(lp[2*k+1])
			first := l.verdict(gen, ref)  // generation shown as A
			second := l.verdict(ref, gen) // generation shown as B
			out = append(out, MakeJudgment(it.Gen, l.Name, LikelihoodTemplate, first, second))
		}
		if l.Progress != nil {
			l.Progress(2 * (hi - lo))
		}
	}
	return out, Stats{Asked: int64(2 * len(items))}, nil
}

func meanOrInf(s metrics.SeqLogp) float64 {
	if s.Tokens == 0 {
		return math.Inf(-1)
	}
	return s.Mean()
}

// verdict prefers A unless B's mean log-probability is strictly higher.
func (l *Likelihood) verdict(a, b float64) verdict {
	raw := "mean logp A=" + strconv.FormatFloat(a, 'g', 9, 64) + " B=" + strconv.FormatFloat(b, 'g', 9, 64)
	if b > a {
		return verdict{VerdictB, raw}
	}
	return verdict{VerdictA, raw}
}
