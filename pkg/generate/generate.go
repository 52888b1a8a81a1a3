package generate

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/cpo-toolchain/cpo/pkg/model"
	"github.com/cpo-toolchain/cpo/pkg/parallel"
)

// Finish reasons.
const (
	FinishEOS    = "eos"    // the sequence ended with EOS (kept as its last id)
	FinishLength = "length" // MaxNewTokens were generated without EOS
)

// Request is one sequence to generate: a non-empty prompt and the seed of its random draws
// (sampling only; see RowSeed).
type Request struct {
	Prompt []int32
	Seed   int64
}

// Result is one generated continuation.
type Result struct {
	// IDs are the generated ids (the prompt excluded), ending with EOS when Finish is "eos".
	IDs []int32
	// Logp is log Q(y|x) = sum over the generated ids of log softmax(logits)[id] at
	// temperature 1, in float64, whatever the decoding temperature or truncation: the
	// sequence's log-probability under the model itself (eq. 9's reverse-KL term).
	Logp float64
	// Finish is FinishEOS or FinishLength.
	Finish string
}

// Generator decodes batches of requests with one model and one configuration. It keeps a
// KV cache of Batch sequences (Batch*Beams slots for beam search), each sequence in a slot
// of its own: prompts of different lengths are prefilled together as one packed batch,
// with no padding, and a slot freed by a finished sequence takes the next waiting prompt
// at the next step (continuous batching). A Generator is not safe for concurrent use.
type Generator struct {
	m     *model.Model
	cfg   Config
	limit int // ids are generated below this: cfg.VocabLimit, or the model's vocabulary
	batch int
	cache *model.Cache

	rows []rowScratch // per active row: sampler and log-softmax scratch
}

type rowScratch struct{ s Sampler }

// New returns a Generator decoding up to batch sequences at once (batch >= 1).
func New(m *model.Model, cfg Config, batch int) (*Generator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if batch < 1 {
		return nil, fmt.Errorf("batch %d must be >= 1", batch)
	}
	if cfg.MaxNewTokens >= m.Config.MaxSeqLen {
		return nil, fmt.Errorf("max new tokens %d leave no room for a prompt in the model's context of %d tokens", cfg.MaxNewTokens, m.Config.MaxSeqLen)
	}
	if cfg.VocabLimit > m.Config.VocabSize {
		return nil, fmt.Errorf("vocabulary limit %d exceeds the model's %d tokens", cfg.VocabLimit, m.Config.VocabSize)
	}
	limit := cfg.VocabLimit
	if limit == 0 {
		limit = m.Config.VocabSize
	}
	if cfg.EOS >= int32(limit) {
		return nil, fmt.Errorf("EOS id %d is outside the vocabulary of %d tokens", cfg.EOS, limit)
	}
	return &Generator{m: m, cfg: cfg, limit: limit, batch: batch}, nil
}

// Config returns the decoding configuration as given (VocabLimit 0 when no limit was set).
func (g *Generator) Config() Config { return g.cfg }

// MaxPromptLen is the longest prompt that fits the model's context with MaxNewTokens.
func (g *Generator) MaxPromptLen() int { return g.m.Config.MaxSeqLen - g.cfg.MaxNewTokens }

// ensureCache gives the generator a cache of at least slots slots of maxLen tokens.
func (g *Generator) ensureCache(slots, maxLen int) {
	if g.cache != nil && g.cache.S >= slots && g.cache.MaxLen() >= maxLen {
		return
	}
	if g.cache != nil {
		maxLen = max(maxLen, g.cache.MaxLen())
	}
	g.cache = nil // let the old one go before allocating the new one
	g.cache = g.m.NewCache(slots, maxLen)
}

// Generate decodes every request and returns the results in request order. done, when not
// nil, is called as each request finishes (in finishing order) with its index and result.
// A request with an empty prompt, a token outside the vocabulary or a prompt longer than
// MaxPromptLen is an error naming it; ctx cancellation stops between steps.
func (g *Generator) Generate(ctx context.Context, reqs []Request, done func(i int, r Result)) ([]Result, error) {
	V := int32(g.m.Config.VocabSize)
	maxLen := 0
	for i, r := range reqs {
		if len(r.Prompt) == 0 {
			return nil, fmt.Errorf("request %d: empty prompt", i)
		}
		if len(r.Prompt) > g.MaxPromptLen() {
			return nil, fmt.Errorf("request %d: prompt of %d tokens + %d new tokens exceed the model's context of %d", i, len(r.Prompt), g.cfg.MaxNewTokens, g.m.Config.MaxSeqLen)
		}
		for j, t := range r.Prompt {
			if t < 0 || t >= V {
				return nil, fmt.Errorf("request %d: prompt token %d = %d is outside the vocabulary [0, %d)", i, j, t, V)
			}
		}
		maxLen = max(maxLen, len(r.Prompt)+g.cfg.MaxNewTokens)
	}
	if len(reqs) == 0 {
		return nil, nil
	}
	out := make([]Result, len(reqs))
	finish := func(i int, r Result) {
		out[i] = r
		if done != nil {
			done(i, r)
		}
	}
	if g.cfg.Strategy == Beam {
		g.ensureCache(g.batch*g.cfg.Beams, maxLen)
		return out, g.beamSearch(ctx, reqs, finish)
	}
	g.ensureCache(g.batch, maxLen)
	return out, g.decode(ctx, reqs, finish)
}

// seqState is one sequence being decoded greedily or by sampling.
type seqState struct {
	req    int
	slot   int
	next   []int32 // tokens to append at the next Extend (the prompt, then the last id)
	ids    []int32
	logp   float64
	rng    *rand.Rand
	finish string
}

// decode runs greedy decoding or sampling over the requests with continuous batching.
func (g *Generator) decode(ctx context.Context, reqs []Request, finish func(int, Result)) error {
	V := g.m.Config.VocabSize
	free := make([]int, 0, g.batch)
	for s := g.batch - 1; s >= 0; s-- {
		free = append(free, s)
	}
	var active []*seqState
	nextReq := 0
	var slots []int
	var toks [][]int32
	for nextReq < len(reqs) || len(active) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		for len(free) > 0 && nextReq < len(reqs) {
			s := free[len(free)-1]
			free = free[:len(free)-1]
			g.cache.Reset(s)
			st := &seqState{req: nextReq, slot: s, next: reqs[nextReq].Prompt}
			if g.cfg.Strategy == Sample {
				st.rng = NewRand(reqs[nextReq].Seed)
			}
			active = append(active, st)
			nextReq++
		}
		slots, toks = slots[:0], toks[:0]
		for _, st := range active {
			slots = append(slots, st.slot)
			toks = append(toks, st.next)
		}
		logits := g.m.Extend(g.cache, slots, toks)
		if cap(g.rows) < len(active) {
			g.rows = make([]rowScratch, len(active))
		}
		g.rows = g.rows[:len(active)]
		// Choose the next token of every row (rows are independent; each has its own RNG).
		parallel.For(len(active), 0, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				st := active[i]
				row := logits[i*V : (i+1)*V]
				var tok int32
				if g.cfg.Strategy == Sample {
					tok = g.rows[i].s.Sample(row[:g.limit], g.cfg.SampleParams(), st.rng)
				} else {
					tok = Argmax(row[:g.limit])
				}
				st.logp += LogSoftmax(row, tok)
				st.ids = append(st.ids, tok)
				st.next = []int32{tok}
				switch {
				case tok == g.cfg.EOS:
					st.finish = FinishEOS
				case len(st.ids) >= g.cfg.MaxNewTokens:
					st.finish = FinishLength
				}
			}
		})
		kept := active[:0]
		for _, st := range active {
			if st.finish == "" {
				kept = append(kept, st)
				continue
			}
			free = append(free, st.slot)
			finish(st.req, Result{IDs: st.ids, Logp: st.logp, Finish: st.finish})
		}
		clear(active[len(kept):])
		active = kept
	}
	return nil
}

// logSoftmaxRow writes log softmax(logits) into dst (length V) in float64.
func logSoftmaxRow(dst []float64, logits []float32) {
	mx := math.Inf(-1)
	for _, l := range logits {
		mx = max(mx, float64(l))
	}
	sum := 0.0
	for _, l := range logits {
		sum += math.Exp(float64(l) - mx)
	}
	lse := mx + math.Log(sum)
	for i, l := range logits {
		dst[i] = float64(l) - lse
	}
}
