// Package embed ranks the candidates of each row the way the paper's section 4.3 does: by the
// cosine similarity of each candidate's embedding to the ground truth's, the ground truth first,
// then the negatives from the most to the least similar. It can instead rank by scores the user
// brings (a reward model's, say), the paper's other signal (scores.go).
//
// # Embeddings
//
// The embedding of a candidate y of prompt x comes from a causal LM's final hidden states (after
// the last norm, model.Hidden; the model API exposes no other layer): the forward pass runs
// prompt + y, so y's states are conditioned on the prompt as in generation, and the states of y's
// positions only are pooled, so the prompt, which every candidate shares, does not dilute the
// differences. Pooling "mean" averages them (default), "last" takes the state of y's last token.
// With NoPrompt the pass runs y alone. A row's sequences longer than the model's context keep the
// end of the prompt that fits (and, should y alone not fit, the start of y), counted in Stats.
// An empty candidate has the zero embedding.
//
// # Scores and ranking
//
// Score_i = <e_i, e_1> / (|e_i| |e_1|) in float64, stored as float32; the ground truth's is 1,
// and a similarity with a zero embedding is 0. Ranking = [0] then the other indices by score,
// descending, ties by lower index. RankBy = "cosine:<model fingerprint>:<pooling>:last", with
// pooling "mean" or "last", suffixed "-noprompt" under NoPrompt.
package embed

import (
	"context"
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"

	"github.com/cpo-toolchain/cpo/pkg/model"
	"github.com/cpo-toolchain/cpo/pkg/parallel"
	"github.com/cpo-toolchain/cpo/pkg/shard"
)

// Poolings.
const (
	Mean = "mean" // the average of the candidate's hidden states
	Last = "last" // the hidden state of the candidate's last token
)

// Defaults of Options.
const (
	DefaultBatchTokens = 4096
	DefaultGroupRows   = 128
)

// Options configure Run.
type Options struct {
	// Model computes the embeddings; Fingerprint identifies it in RankBy.
	Model       *model.Model
	Fingerprint string
	// Pooling is Mean (default) or Last.
	Pooling string
	// NoPrompt embeds the candidates without their prompt.
	NoPrompt bool
	// Tokenizer, when not empty, is the fingerprint every row's tokenizer must have.
	Tokenizer string
	// Workers is the number of batches run at once (default GOMAXPROCS).
	Workers int
	// BatchTokens bounds the tokens of one packed forward pass (default 4096).
	BatchTokens int
	// GroupRows is how many rows are read, embedded in parallel and written at a time (default 128).
	GroupRows int
	// Embeddings, if set, receives every row's candidate embeddings (K vectors of C floats), in
	// input order, before the row is written. The slices are reused afterwards.
	Embeddings func(row *shard.Candidates, emb [][]float32) error
	// Progress, if set, is called after every group with its number of rows.
	Progress func(rows int64)
}

// RankBy is the RankBy label of a cosine ranking.
func RankBy(fingerprint, pooling string, noPrompt bool) string {
	if noPrompt {
		pooling += "-noprompt"
	}
	return "cosine:" + fingerprint + ":" + pooling + ":last"
}

// Stats counts what Run did.
type Stats struct {
	Rows       int64 // rows ranked
	Candidates int64 // candidates embedded
	Tokens     int64 // tokens run through the model
	Truncated  int64 // candidates whose sequence was cut to the model's context
	Empty      int64 // empty candidates (zero embedding)
}

// Notable reports whether anything in s deserves the user's attention even when they asked
// for quiet: candidates cut to the model's context or empty.
func (s *Stats) Notable() bool { return s.Truncated > 0 || s.Empty > 0 }

// Report writes the final report.
func (s *Stats) Report(w io.Writer) {
	fmt.Fprintf(w, "rows: %d ranked; candidates: %d embedded (%d tokens), %d empty, %d cut to the model's context\n",
		s.Rows, s.Candidates, s.Tokens, s.Empty, s.Truncated)
}

// Source yields candidates rows in order; *shard.Reader[shard.Candidates] is one.
type Source interface {
	Next() (shard.Candidates, error)
	Pos() (file string, row int64)
}

// Cosine is <a, b> / (|a| |b|) in float64; 0 when either vector is zero.
func Cosine(a, b []float32) float64 {
	var ab, aa, bb float64
	for i := range a {
		x, y := float64(a[i]), float64(b[i])
		ab += x * y
		aa += x * x
		bb += y * y
	}
	if aa == 0 || bb == 0 {
		return 0
	}
	return ab / (math.Sqrt(aa) * math.Sqrt(bb))
}

// Rank returns [0] followed by the indices 1..K-1 ordered by score, descending, ties by lower
// index. scores[0] (the ground truth's) is not looked at.
func Rank(scores []float32) []int32 {
	r := make([]int32, len(scores))
	for i := range r {
		r[i] = int32(i)
	}
	if len(r) > 1 {
		slices.SortStableFunc(r[1:], func(a, b int32) int {
			switch sa, sb := scores[a], scores[b]; {
			case sa > sb:
				return -1
			case sa < sb:
				return 1
			}
			return 0
		})
	}
	return r
}

// Fill sets a row's Scores from the cosine similarities of emb (K vectors) to emb[0], its Ranking
// and its RankBy.
func Fill(row *shard.Candidates, emb [][]float32, rankBy string) {
	scores := make([]float32, len(emb))
	for i := range emb {
		s := float32(1)
		if i > 0 {
			s = float32(Cosine(emb[i], emb[0]))
		}
		scores[i] = s
		row.Candidates[i].Score = &scores[i]
	}
	row.Ranking = Rank(scores)
	row.RankBy = rankBy
}

// seq is one candidate's forward pass: the tokens run and where the candidate's part starts.
type seq struct {
	row, cand int
	tokens    []int32
	from      int // first position of the candidate in tokens
}

// sequence builds the forward pass of candidate ids of prompt p, cut to maxLen tokens.
func sequence(p, ids []int32, noPrompt bool, maxLen int) (s seq, cut bool) {
	if noPrompt {
		p = nil
	}
	if len(ids) > maxLen {
		ids, p, cut = ids[:maxLen], nil, true
	}
	if len(p)+len(ids) > maxLen {
		p, cut = p[len(p)+len(ids)-maxLen:], true
	}
	s.tokens = append(append(make([]int32, 0, len(p)+len(ids)), p...), ids...)
	s.from = len(p)
	return s, cut
}

// pool writes into dst (C) the pooling of hidden rows [from, to) of h (N×C, the sequence's
// rows), or zeros when the range is empty.
func pool(dst, h []float32, from, to, c int, pooling string) {
	clear(dst)
	if to <= from {
		return
	}
	if pooling == Last {
		copy(dst, h[(to-1)*c:to*c])
		return
	}
	acc := make([]float64, c)
	for t := from; t < to; t++ {
		for j, x := range h[t*c : (t+1)*c] {
			acc[j] += float64(x)
		}
	}
	for j := range dst {
		dst[j] = float32(acc[j] / float64(to-from))
	}
}

// Run reads every row of src, embeds its candidates, fills Score, Ranking and RankBy, and passes
// the rows, in input order, to write.
func Run(ctx context.Context, src Source, write func(rows ...shard.Candidates) error, o Options) (Stats, error) {
	var st Stats
	if o.Model == nil {
		return st, fmt.Errorf("embed: no model")
	}
	if o.Pooling == "" {
		o.Pooling = Mean
	}
	if o.Pooling != Mean && o.Pooling != Last {
		return st, fmt.Errorf("pooling %q: want %s or %s", o.Pooling, Mean, Last)
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.BatchTokens <= 0 {
		o.BatchTokens = DefaultBatchTokens
	}
	if o.GroupRows <= 0 {
		o.GroupRows = DefaultGroupRows
	}
	rankBy := RankBy(o.Fingerprint, o.Pooling, o.NoPrompt)
	e := &embedder{o: o, ws: make([]*model.Workspace, o.Workers)}
	var group []shard.Candidates
	flush := func() error {
		if len(group) == 0 {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		embs := e.group(group, &st)
		for i := range group {
			Fill(&group[i], embs[i], rankBy)
			if o.Embeddings != nil {
				if err := o.Embeddings(&group[i], embs[i]); err != nil {
					return err
				}
			}
		}
		if err := write(group...); err != nil {
			return err
		}
		st.Rows += int64(len(group))
		if o.Progress != nil {
			o.Progress(int64(len(group)))
		}
		group = group[:0]
		return nil
	}
	v := int32(o.Model.Config.VocabSize)
	for {
		row, err := src.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return st, err
		}
		if err := check(&row, o.Tokenizer, v); err != nil {
			file, i := src.Pos()
			return st, fmt.Errorf("%s row %d: %w", file, i, err)
		}
		group = append(group, row)
		if len(group) >= o.GroupRows {
			if err := flush(); err != nil {
				return st, err
			}
		}
	}
	return st, flush()
}

// check validates a row against the model: its tokenizer and token ids.
func check(row *shard.Candidates, tokenizer string, v int32) error {
	if tokenizer != "" && row.Tokenizer != tokenizer {
		return fmt.Errorf("row %q was tokenized with tokenizer %.12s…, but the model's tokenizer is %.12s…", row.ID, row.Tokenizer, tokenizer)
	}
	bad := func(ids []int32) (int32, bool) {
		for _, t := range ids {
			if t < 0 || t >= v {
				return t, true
			}
		}
		return 0, false
	}
	if t, ok := bad(row.PromptIDs); ok {
		return fmt.Errorf("row %q: prompt token id %d outside the model's vocabulary of %d", row.ID, t, v)
	}
	for j, c := range row.Candidates {
		if t, ok := bad(c.IDs); ok {
			return fmt.Errorf("row %q: candidate %d token id %d outside the model's vocabulary of %d", row.ID, j, t, v)
		}
	}
	return nil
}

// embedder holds what the workers share.
type embedder struct {
	o  Options
	ws []*model.Workspace
}

// group embeds every candidate of rows: emb[row][cand] is a C-vector.
func (e *embedder) group(rows []shard.Candidates, st *Stats) [][][]float32 {
	m := e.o.Model
	c := m.Config.DModel
	emb := make([][][]float32, len(rows))
	var seqs []seq
	for i := range rows {
		k := len(rows[i].Candidates)
		flat := make([]float32, k*c)
		emb[i] = make([][]float32, k)
		for j := range k {
			emb[i][j] = flat[j*c : (j+1)*c]
			ids := rows[i].Candidates[j].IDs
			st.Candidates++
			if len(ids) == 0 {
				st.Empty++
				continue
			}
			s, cut := sequence(rows[i].PromptIDs, ids, e.o.NoPrompt, m.Config.MaxSeqLen)
			if cut {
				st.Truncated++
			}
			s.row, s.cand = i, j
			seqs = append(seqs, s)
			st.Tokens += int64(len(s.tokens))
		}
	}
	// Batches: consecutive sequences up to BatchTokens (a longer sequence alone), fixed by the
	// input, never by the number of workers.
	var bounds []int
	tok := 0
	for i, s := range seqs {
		if i > 0 && tok+len(s.tokens) > e.o.BatchTokens {
			bounds = append(bounds, i)
			tok = 0
		}
		tok += len(s.tokens)
	}
	bounds = append(bounds, len(seqs))
	parallel.Tasks(len(bounds), e.o.Workers, func(w, b int) {
		lo := 0
		if b > 0 {
			lo = bounds[b-1]
		}
		batch := seqs[lo:bounds[b]]
		if len(batch) == 0 {
			return
		}
		if e.ws[w] == nil {
			e.ws[w] = model.NewWorkspace()
		}
		toks := make([][]int32, len(batch))
		for i, s := range batch {
			toks[i] = s.tokens
		}
		pb := model.Pack(toks)
		h := m.Hidden(e.ws[w], pb) // (N, C)
		for i, s := range batch {
			start, end := pb.Starts[i], pb.Starts[i+1]
			pool(emb[s.row][s.cand], h[start*c:end*c], s.from, end-start, c, e.o.Pooling)
		}
	})
	return emb
}
