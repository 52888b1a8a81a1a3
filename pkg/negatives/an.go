package negatives

import (
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/cpo-toolchain/cpo/pkg/generate"
	"github.com/cpo-toolchain/cpo/pkg/model"
)

// Defaults of ANOptions: the paper's top-k sampling with k = 50 at temperature 1.
const (
	DefaultANTopK        = 50
	DefaultANTemperature = 1.0
	DefaultANMaxNew      = 256
	DefaultANBatch       = 32
	DefaultANCacheMiB    = 1024
)

// ANOptions configure autoregressive negatives: continuations of the prompt sampled from the
// reference model with the KV cache, token by token, from softmax(logits/Temperature)
// restricted to the TopK largest logits (generate.Sampler, HF's warpers), until EOS (kept as the
// last id) or MaxNewTokens tokens (also bounded by the model's context). Up to Batch sequences
// are decoded at once with continuous batching (see decode); the samples of one prompt share one
// prefill (Cache.Copy). Sample s of a row draws from its own PCG stream of the row seed, so
// batching does not change a sample (tests check batch sizes 1, 3 and 8 agree). A sample identical to the ground truth is redrawn (from a fresh stream) up to MaxRedraws times.
// Rows with an empty prompt, or a prompt that leaves no room in the context, get no AN
// (counted as skipped).
type ANOptions struct {
	TopK         int     // k, in [1, V] (default 50)
	Temperature  float64 // > 0 (default 1)
	MaxNewTokens int     // >= 1 (default 256)
	Batch        int     // sequences decoded at once per worker (default 32)
	// CacheMiB bounds each worker's KV cache (default 1024): Batch is lowered to fit
	// 2·L·(prompt+MaxNewTokens)·NKV·hd float32 per sequence.
	CacheMiB int
}

func (a *ANOptions) defaults(m *model.Model) error {
	if a.TopK == 0 {
		a.TopK = DefaultANTopK
	}
	if a.Temperature == 0 {
		a.Temperature = DefaultANTemperature
	}
	if a.MaxNewTokens == 0 {
		a.MaxNewTokens = DefaultANMaxNew
	}
	if a.Batch <= 0 {
		a.Batch = DefaultANBatch
	}
	if a.CacheMiB <= 0 {
		a.CacheMiB = DefaultANCacheMiB
	}
	if a.TopK < 1 || a.TopK > m.Config.VocabSize {
		return fmt.Errorf("AN top-k %d out of range: want 1 <= k <= V = %d", a.TopK, m.Config.VocabSize)
	}
	if a.MaxNewTokens < 1 {
		return fmt.Errorf("AN max new tokens %d: must be >= 1", a.MaxNewTokens)
	}
	return a.params().Validate()
}

func (a *ANOptions) params() generate.SampleParams {
	return generate.SampleParams{Temperature: a.Temperature, TopK: a.TopK, TopP: 1}
}

// anSeq is one autoregressive sample being decoded.
type anSeq struct {
	row, sample int // row within the task, sample number within the row (redraws continue it)
	prompt      []int32
	maxNew      int
	rng         *rand.Rand
	ids         []int32
}

// anRNG is the random stream of AN sample s of a row.
func anRNG(rowSeed int64, s int) *rand.Rand {
	return kindRNG(rowSeed, streamAN+uint64(s))
}

// autoregressive makes the AN negatives of rows: for each row, up to Mix[AN] samples, none
// identical to the row's response.
func (g *generator) autoregressive(rows []job, st *Stats) ([][][]int32, error) {
	o := &g.o
	m := o.Model
	out := make([][][]int32, len(rows))
	next := make([]int, len(rows)) // next sample number per row
	var pending []*anSeq
	want := func(i, n int) {
		ex := &rows[i].ex
		maxNew := min(o.AN.MaxNewTokens, m.Config.MaxSeqLen-len(ex.PromptIDs))
		for range n {
			s := next[i]
			next[i]++
			pending = append(pending, &anSeq{row: i, sample: s, prompt: ex.PromptIDs, maxNew: maxNew, rng: anRNG(rows[i].seed, s)})
		}
	}
	for i := range rows {
		ex := &rows[i].ex
		switch {
		case len(ex.PromptIDs) == 0:
			st.skip(AN, "empty prompt", o.Mix[AN])
		case len(ex.PromptIDs) >= m.Config.MaxSeqLen:
			st.skip(AN, "prompt fills the model's context", o.Mix[AN])
		default:
			want(i, o.Mix[AN])
		}
	}
	redraws := make([]int, len(rows))
	var smp generate.Sampler
	for len(pending) > 0 {
		if err := g.decode(pending, &smp); err != nil {
			return nil, err
		}
		var again []int
		for _, q := range pending {
			resp := rows[q.row].ex.ResponseIDs
			if !slices.Equal(q.ids, resp) {
				out[q.row] = append(out[q.row], q.ids)
				continue
			}
			if redraws[q.row] >= o.MaxRedraws {
				st.Dropped[AN]++
				continue
			}
			redraws[q.row]++
			st.Redraws[AN]++
			again = append(again, q.row)
		}
		pending = pending[:0]
		for _, i := range again {
			want(i, 1)
		}
	}
	return out, nil
}

// decode samples every sequence of seqs with continuous batching: a KV cache of S slots
// (S = Batch, fewer if the cache would pass CacheMiB), each sequence in a slot of its own; a slot
// freed by a finished sequence takes the next waiting one at the next step, whose prompt is
// prefilled in the same packed Extend as the other slots' next tokens. Consecutive samples of one
// prompt admitted together share one prefill (Cache.Copy). Each sequence draws from its own
// stream, so the tokens do not depend on which slot or step it ran in (only, through float
// rounding, on what it was packed with, which the input fixes).
func (g *generator) decode(seqs []*anSeq, smp *generate.Sampler) error {
	o := &g.o
	m := o.Model
	v := m.Config.VocabSize
	p := o.AN.params()
	maxLen := 0
	for _, q := range seqs {
		maxLen = max(maxLen, len(q.prompt)+q.maxNew)
	}
	cfg := m.Config
	perSlot := int64(2*cfg.NLayer*maxLen*cfg.NKVHead*cfg.HeadDim()) * 4
	S := min(o.AN.Batch, len(seqs), max(1, int(int64(o.AN.CacheMiB)<<20/perSlot)))
	cache := m.NewCache(S, maxLen)
	slot := make([]*anSeq, S)   // nil: free
	pending := make([]int32, S) // the token a busy slot feeds next
	logits := make([]float32, S*v)
	next := 0
	for {
		var slots, sibs, firstOf []int
		var toks [][]int32
		for s, q := range slot {
			if q != nil {
				slots = append(slots, s)
				toks = append(toks, []int32{pending[s]})
			}
		}
		lastNew := -1 // slot of the previous sequence admitted in this step
		for s := range slot {
			if slot[s] != nil || next >= len(seqs) {
				continue
			}
			q := seqs[next]
			next++
			slot[s] = q
			cache.Reset(s)
			if lastNew >= 0 && slot[lastNew].row == q.row {
				sibs = append(sibs, s)
				firstOf = append(firstOf, lastNew)
				continue
			}
			slots = append(slots, s)
			toks = append(toks, q.prompt)
			lastNew = s
		}
		if len(slots) == 0 {
			return nil
		}
		out := m.Extend(cache, slots, toks) // (len(slots), V)
		for j, s := range slots {
			copy(logits[s*v:(s+1)*v], out[j*v:(j+1)*v])
		}
		for j, s := range sibs {
			cache.Copy(s, firstOf[j])
			copy(logits[s*v:(s+1)*v], logits[firstOf[j]*v:(firstOf[j]+1)*v])
		}
		for s, q := range slot {
			if q == nil {
				continue
			}
			t := smp.Sample(logits[s*v:(s+1)*v], p, q.rng)
			q.ids = append(q.ids, t)
			if t == o.EOS || len(q.ids) >= q.maxNew {
				slot[s] = nil
				continue
			}
			pending[s] = t
		}
	}
}
