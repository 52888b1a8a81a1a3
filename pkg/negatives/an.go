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
)

// ANOptions configure autoregressive negatives: continuations of the prompt sampled from the
// reference model with the KV cache, token by token, from softmax(logits/Temperature)
// restricted to the TopK largest logits (generate.Sampler, HF's warpers), until EOS (kept as the
// last id) or MaxNewTokens tokens (also bounded by the model's context). Up to Batch sequences
// are decoded at once; the samples of one prompt share one prefill (Cache.Copy). Sample s of a
// row draws from its own PCG stream of the row seed, so batching never changes a sample. A
// sample identical to the ground truth is redrawn (from a fresh stream) up to MaxRedraws times.
// Rows with an empty prompt, or a prompt that leaves no room in the context, get no AN
// (counted as skipped).
type ANOptions struct {
	TopK         int     // k, in [1, V] (default 50)
	Temperature  float64 // > 0 (default 1)
	MaxNewTokens int     // >= 1 (default 256)
	Batch        int     // sequences decoded at once per worker (default 32)
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
	var todo []*anSeq
	want := func(i, n int) {
		ex := &rows[i].ex
		maxNew := min(o.AN.MaxNewTokens, m.Config.MaxSeqLen-len(ex.PromptIDs))
		for range n {
			s := next[i]
			next[i]++
			todo = append(todo, &anSeq{row: i, sample: s, prompt: ex.PromptIDs, maxNew: maxNew, rng: anRNG(rows[i].seed, s)})
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
	for len(todo) > 0 {
		if err := g.decode(todo, &smp); err != nil {
			return nil, err
		}
		var again []int
		for _, q := range todo {
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
		todo = todo[:0]
		for _, i := range again {
			want(i, 1)
		}
	}
	return out, nil
}

// decode samples every sequence of seqs, up to Batch at a time.
func (g *generator) decode(seqs []*anSeq, smp *generate.Sampler) error {
	o := &g.o
	m := o.Model
	v := m.Config.VocabSize
	p := o.AN.params()
	eos := o.EOS
	for lo := 0; lo < len(seqs); lo += o.AN.Batch {
		wave := seqs[lo:min(lo+o.AN.Batch, len(seqs))]
		maxLen := 0
		for _, q := range wave {
			maxLen = max(maxLen, len(q.prompt)+q.maxNew)
		}
		cache := m.NewCache(len(wave), maxLen)
		// Prefill each distinct prompt once (consecutive samples of a row share it), then copy.
		var slots []int
		var toks [][]int32
		first := make([]int, len(wave)) // slot whose prefill logits serve slot i
		for i, q := range wave {
			if i > 0 && wave[i-1].row == q.row {
				first[i] = first[i-1]
				continue
			}
			first[i] = i
			slots = append(slots, i)
			toks = append(toks, q.prompt)
		}
		pre := m.Extend(cache, slots, toks) // (len(slots), V)
		logits := make([]float32, len(wave)*v)
		at := map[int]int{}
		for j, s := range slots {
			at[s] = j
		}
		for i := range wave {
			if first[i] != i {
				cache.Copy(i, first[i])
			}
			copy(logits[i*v:(i+1)*v], pre[at[first[i]]*v:(at[first[i]]+1)*v])
		}
		active := make([]int, len(wave))
		for i := range active {
			active[i] = i
		}
		for len(active) > 0 {
			var stepSlots []int
			var stepToks [][]int32
			for _, i := range active {
				q := wave[i]
				t := smp.Sample(logits[i*v:(i+1)*v], p, q.rng)
				q.ids = append(q.ids, t)
				if t == eos || len(q.ids) >= q.maxNew {
					continue
				}
				stepSlots = append(stepSlots, i)
				stepToks = append(stepToks, []int32{t})
			}
			active = stepSlots
			if len(active) == 0 {
				break
			}
			step := m.Extend(cache, stepSlots, stepToks) // (len(active), V)
			for j, i := range active {
				copy(logits[i*v:(i+1)*v], step[j*v:(j+1)*v])
			}
		}
	}
	return nil
}
