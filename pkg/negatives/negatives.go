package negatives

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"

	"github.com/cpo-toolchain/cpo/pkg/gemm"
	"github.com/cpo-toolchain/cpo/pkg/model"
	"github.com/cpo-toolchain/cpo/pkg/parallel"
	"github.com/cpo-toolchain/cpo/pkg/shard"
)

// Defaults of Options.
const (
	DefaultWindow        = 1024
	DefaultMNFraction    = 0.15
	DefaultMNTemperature = 1.0
	DefaultMaxRedraws    = 10
	DefaultBatchTokens   = 2048
	DefaultGroupRows     = 256
)

// Options configure Run. Zero values take the defaults above.
type Options struct {
	// Mix is the number of negatives of each kind per row.
	Mix Mix
	// Seed is the run seed; every row's own seed is RowSeed(Seed, position).
	Seed int64
	// Window is W, the BN window: row i draws from rows i-W/2 .. i+W/2 (default 1024, at least 2).
	Window int
	// MNFraction is c, the fraction of eligible response positions a meanfield negative
	// resamples, in (0, 1] (default 0.15).
	MNFraction float64
	// MNTemperature is τ > 0 of the meanfield sampling distribution softmax(logits/τ) (default 1).
	MNTemperature float64
	// MaxRedraws is how often a negative identical to the ground truth is drawn again before it
	// is dropped (default 10; negative means 0).
	MaxRedraws int
	// StrictK drops rows that end up with fewer than 1+Mix.Total() candidates.
	StrictK bool
	// EOS is the end-of-sequence id that truncation negatives end with (needed by TN and MN).
	EOS int32
	// Tokenizer, when not empty, is the tokenizer fingerprint every row must carry (that of the
	// model's tokenizer); a row with another one is an error naming its file and row.
	Tokenizer string
	// Model is the reference model (needed by MN and AN).
	Model *model.Model
	// AN configures autoregressive negatives (needed when Mix[AN] > 0).
	AN ANOptions
	// Workers is the number of batches processed at once (default GOMAXPROCS).
	Workers int
	// BatchTokens bounds the packed tokens of one meanfield forward pass (default 2048). A batch
	// holds the logits of its response positions only, at most BatchTokens×V float32.
	BatchTokens int
	// GroupRows is how many rows are read before they are processed in parallel and written
	// (default 256); it bounds memory together with Window.
	GroupRows int
	// Progress, if set, is called after every group with the number of rows it read.
	Progress func(rows int64)
}

func (o *Options) defaults() error {
	if o.Window == 0 {
		o.Window = DefaultWindow
	}
	if o.MNFraction == 0 {
		o.MNFraction = DefaultMNFraction
	}
	if o.MNTemperature == 0 {
		o.MNTemperature = DefaultMNTemperature
	}
	if o.MaxRedraws == 0 {
		o.MaxRedraws = DefaultMaxRedraws
	}
	if o.MaxRedraws < 0 {
		o.MaxRedraws = 0
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
	switch {
	case o.Mix.Total() == 0:
		return fmt.Errorf("the mix asks for no negatives")
	case o.Window < 2:
		return fmt.Errorf("BN window %d: must be at least 2", o.Window)
	case !(o.MNFraction > 0 && o.MNFraction <= 1):
		return fmt.Errorf("MN fraction %g out of range: want 0 < c <= 1 (percent: 0 < c <= 100)", o.MNFraction)
	case !(o.MNTemperature > 0):
		return fmt.Errorf("MN temperature %g: must be > 0", o.MNTemperature)
	case (o.Mix[MN] > 0 || o.Mix[AN] > 0) && o.Model == nil:
		return fmt.Errorf("meanfield and autoregressive negatives need a model")
	case (o.Mix[MN] > 0 || o.Mix[TN] > 0) && o.EOS < 0:
		return fmt.Errorf("truncation and meanfield negatives need the EOS id")
	}
	if o.Model != nil && int(o.EOS) >= o.Model.Config.VocabSize {
		return fmt.Errorf("EOS id %d outside the model's vocabulary of %d", o.EOS, o.Model.Config.VocabSize)
	}
	if o.Mix[AN] > 0 {
		if err := o.AN.defaults(o.Model); err != nil {
			return err
		}
	}
	return nil
}

// Stats counts what Run did, per kind (indexed by Kind) and per row.
type Stats struct {
	RowsIn  int64 // rows read
	RowsOut int64 // rows written
	// StrictDropped counts rows left out by StrictK.
	StrictDropped int64
	// EmptyResponse counts rows whose response is empty.
	EmptyResponse int64
	Wanted        [numKinds]int64 // negatives asked for (rows × mix)
	Made          [numKinds]int64 // negatives written (rows dropped by StrictK not counted)
	Tokens        [numKinds]int64 // tokens of the negatives written
	Redraws       [numKinds]int64 // draws repeated because the negative equalled the ground truth (bn: a window row with the same response)
	Dropped       [numKinds]int64 // negatives still identical after MaxRedraws redraws, left out
	Skipped       [numKinds]int64 // negatives not made for lack of material (see SkipReasons)
	// SkipReasons counts skipped negatives by reason, e.g. "bn: window too small",
	// "tn: empty response", "mn: no eligible position", "mn: row longer than the model's context".
	SkipReasons map[string]int64
}

func (s *Stats) skip(k Kind, reason string, n int) {
	if n <= 0 {
		return
	}
	s.Skipped[k] += int64(n)
	if s.SkipReasons == nil {
		s.SkipReasons = map[string]int64{}
	}
	s.SkipReasons[k.String()+": "+reason] += int64(n)
}

func (s *Stats) add(o *Stats) {
	s.RowsIn += o.RowsIn
	s.RowsOut += o.RowsOut
	s.StrictDropped += o.StrictDropped
	s.EmptyResponse += o.EmptyResponse
	for k := range numKinds {
		s.Wanted[k] += o.Wanted[k]
		s.Made[k] += o.Made[k]
		s.Tokens[k] += o.Tokens[k]
		s.Redraws[k] += o.Redraws[k]
		s.Dropped[k] += o.Dropped[k]
		s.Skipped[k] += o.Skipped[k]
	}
	for r, n := range o.SkipReasons {
		if s.SkipReasons == nil {
			s.SkipReasons = map[string]int64{}
		}
		s.SkipReasons[r] += n
	}
}

// Notable reports whether anything in s deserves the user's attention even when they asked
// for quiet: rows dropped or with an empty response, negatives dropped or skipped.
func (s *Stats) Notable() bool {
	if s.StrictDropped > 0 || s.EmptyResponse > 0 {
		return true
	}
	for k := range numKinds {
		if s.Dropped[k] > 0 || s.Skipped[k] > 0 {
			return true
		}
	}
	return false
}

// Report writes the final report: rows, then per kind the negatives asked for, made, redrawn,
// dropped and skipped, then the skip reasons.
func (s *Stats) Report(w io.Writer) {
	fmt.Fprintf(w, "rows: %d read, %d written, %d dropped by --strict-k, %d with an empty response\n",
		s.RowsIn, s.RowsOut, s.StrictDropped, s.EmptyResponse)
	for k := range numKinds {
		if s.Wanted[k] == 0 {
			continue
		}
		fmt.Fprintf(w, "%s: %d asked, %d written (%d tokens), %d redraws, %d dropped as identical to the ground truth, %d skipped\n",
			Kind(k), s.Wanted[k], s.Made[k], s.Tokens[k], s.Redraws[k], s.Dropped[k], s.Skipped[k])
	}
	keys := make([]string, 0, len(s.SkipReasons))
	for r := range s.SkipReasons {
		keys = append(keys, r)
	}
	slices.Sort(keys)
	for _, r := range keys {
		fmt.Fprintf(w, "skipped %s: %d\n", r, s.SkipReasons[r])
	}
}

// Source yields example rows in order; *shard.Reader[shard.Example] is one.
type Source interface {
	Next() (shard.Example, error)
	Pos() (file string, row int64)
}

// item is one input row waiting in the BN window.
type item struct {
	ex    shard.Example
	file  string
	row   int64
	index int64
}

// job is one row ready for its negatives: the example, where it came from, its seed and its
// chosen batch negatives.
type job struct {
	item
	seed        int64
	bn          [][]int32
	bnIdentical int
}

// Run reads every row of src, makes its negatives and passes the candidates rows, in input
// order, to write. It returns the counts of what it did, also on error.
func Run(ctx context.Context, src Source, write func(rows ...shard.Candidates) error, o Options) (Stats, error) {
	var st Stats
	if err := o.defaults(); err != nil {
		return st, err
	}
	g := &generator{o: o, ws: make([]*model.Workspace, o.Workers), scratch: make([]scratch, o.Workers)}
	half := int64(o.Window / 2)
	var (
		win   []item // rows index base .. base+len(win)-1
		base  int64
		next  int64 // index of the next row to emit
		eof   bool
		group []job
		pool  [][]int32
		pick  []int
	)
	flush := func() error {
		if len(group) == 0 {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rows, gst, err := g.process(group)
		st.add(&gst)
		if err != nil {
			return err
		}
		if len(rows) > 0 {
			if err := write(rows...); err != nil {
				return err
			}
		}
		if o.Progress != nil {
			o.Progress(int64(len(group)))
		}
		group = group[:0]
		return nil
	}
	for {
		// Read until row next+half is in the window, or the input ends.
		for !eof && base+int64(len(win)) <= next+half {
			ex, err := src.Next()
			if err == io.EOF {
				eof = true
				break
			}
			if err != nil {
				return st, err
			}
			file, row := src.Pos()
			if err := g.check(&ex); err != nil {
				return st, fmt.Errorf("%s row %d: %w", file, row, err)
			}
			win = append(win, item{ex: ex, file: file, row: row, index: base + int64(len(win))})
		}
		if next >= base+int64(len(win)) {
			break
		}
		// Emit row next: its BN come from the window rows within half of it.
		lo := max(base, next-half)
		hi := min(base+int64(len(win)), next+half+1)
		it := win[next-base]
		j := job{item: it, seed: RowSeed(o.Seed, it.index)}
		if o.Mix[BN] > 0 {
			pool = pool[:0]
			for x := lo; x < hi; x++ {
				pool = append(pool, win[x-base].ex.ResponseIDs)
			}
			var chosen []int
			chosen, j.bnIdentical, pick = pickBN(kindRNG(j.seed, streamBN), o.Mix[BN], int(next-lo), pool, it.ex.ResponseIDs, pick)
			for _, c := range chosen {
				j.bn = append(j.bn, pool[c])
			}
		}
		group = append(group, j)
		next++
		// Rows before next-half are no longer needed by any window.
		if drop := next - half - base; drop > 0 {
			drop = min(drop, int64(len(win)))
			clear(win[:drop])
			win = win[drop:]
			base += drop
		}
		if len(group) >= o.GroupRows {
			if err := flush(); err != nil {
				return st, err
			}
		}
	}
	return st, flush()
}

// generator holds what the workers share.
type generator struct {
	o       Options
	ws      []*model.Workspace // one per worker, allocated on first use
	scratch []scratch          // one per worker
}

// scratch is a worker's reusable meanfield memory.
type scratch struct {
	sel    []float32 // (R, C) hidden states of the response positions
	logits []float32 // (R, V) their logits, turned into cumulative sums in place
}

// check validates a row as it is read.
func (g *generator) check(ex *shard.Example) error {
	if g.o.Tokenizer != "" && ex.Tokenizer != g.o.Tokenizer {
		return fmt.Errorf("example %q was tokenized with tokenizer %.12s…, but the model's tokenizer is %.12s…: re-tokenize the data with the model's tokenizer",
			ex.ID, ex.Tokenizer, g.o.Tokenizer)
	}
	if g.o.Model != nil && (g.o.Mix[MN] > 0 || g.o.Mix[AN] > 0) {
		v := int32(g.o.Model.Config.VocabSize)
		for _, ids := range [][]int32{ex.PromptIDs, ex.ResponseIDs} {
			for _, t := range ids {
				if t < 0 || t >= v {
					return fmt.Errorf("example %q: token id %d outside the model's vocabulary of %d", ex.ID, t, v)
				}
			}
		}
	}
	return nil
}

// task is a contiguous range of a group's rows handled by one worker, with the packed MN
// batch of those rows when meanfield negatives are asked for.
type task struct{ lo, hi int }

// process makes the negatives of a group of rows in parallel and returns the rows to write,
// in order.
func (g *generator) process(group []job) ([]shard.Candidates, Stats, error) {
	o := &g.o
	// Tasks: rows packed greedily, in order, up to BatchTokens model tokens (only MN and AN use the
	// model; otherwise fixed chunks of rows). The split depends on the rows alone, never on the
	// number of workers.
	var tasks []task
	if o.Mix[MN] > 0 {
		lo, tok := 0, 0
		for i := range group {
			n := mnSeqLen(&group[i].ex, o.EOS)
			if i > lo && tok+n > o.BatchTokens {
				tasks = append(tasks, task{lo, i})
				lo, tok = i, 0
			}
			tok += n
		}
		tasks = append(tasks, task{lo, len(group)})
	} else {
		const chunk = 32
		for lo := 0; lo < len(group); lo += chunk {
			tasks = append(tasks, task{lo, min(lo+chunk, len(group))})
		}
	}
	out := make([]shard.Candidates, len(group))
	keep := make([]bool, len(group))
	stats := make([]Stats, len(tasks))
	errs := make([]error, len(tasks))
	parallel.Tasks(len(tasks), o.Workers, func(w, ti int) {
		if g.ws[w] == nil {
			g.ws[w] = model.NewWorkspace()
		}
		errs[ti] = g.runTask(g.ws[w], &g.scratch[w], group, tasks[ti], out, keep, &stats[ti])
	})
	var st Stats
	for i := range tasks {
		st.add(&stats[i])
	}
	if err := errors.Join(errs...); err != nil {
		return nil, st, err
	}
	rows := out[:0]
	for i := range out {
		if keep[i] {
			rows = append(rows, out[i])
		}
	}
	return rows, st, nil
}

// headWeight is the lm head of m, (V, C) row-major: the token embedding when tied.
func headWeight(m *model.Model) []float32 {
	name := "lm_head.weight"
	switch {
	case m.Config.Arch == model.ArchGPT2:
		name = "transformer.wte.weight"
	case m.Config.TieEmbeddings:
		name = "model.embed_tokens.weight"
	}
	return m.Param(name).Data
}

// headLogits returns the (R, V) logits of R final hidden states h (R, C): h · W^T with W the lm
// head, the product model.Logits ends with (checked against it in the tests). out is reused
// when it is large enough.
func headLogits(m *model.Model, h []float32, r int, out []float32) []float32 {
	v, c := m.Config.VocabSize, m.Config.DModel
	if cap(out) < r*v {
		out = make([]float32, r*v)
	}
	out = out[:r*v]
	gemm.Sgemm(false, true, r, v, c, 1, h, c, headWeight(m), c, 0, out, v)
	return out
}

// mnSeqLen is the number of tokens the MN forward pass of ex runs: the prompt and the response
// up to the last eligible position's prefix.
func mnSeqLen(ex *shard.Example, eos int32) int {
	lo, hi := mnEligible(len(ex.PromptIDs), ex.ResponseIDs, eos)
	if hi <= lo {
		return 0
	}
	return len(ex.PromptIDs) + hi - 1
}

// runTask makes the negatives of rows t.lo..t.hi-1 of group.
func (g *generator) runTask(ws *model.Workspace, sc *scratch, group []job, t task, out []shard.Candidates, keep []bool, st *Stats) error {
	o := &g.o
	rows := group[t.lo:t.hi]
	// Meanfield: one packed forward pass for the task's rows.
	var (
		dists  = make([]*dist, len(rows))
		mnSkip = make([]string, len(rows))
	)
	if o.Mix[MN] > 0 {
		var seqs [][]int32
		var who []int
		maxLen := o.Model.Config.MaxSeqLen
		for i := range rows {
			ex := &rows[i].ex
			n := mnSeqLen(ex, o.EOS)
			switch {
			case n == 0:
				mnSkip[i] = "no eligible position"
			case n > maxLen:
				mnSkip[i] = "row longer than the model's context"
			default:
				_, hi := mnEligible(len(ex.PromptIDs), ex.ResponseIDs, o.EOS)
				seq := make([]int32, 0, n)
				seq = append(append(seq, ex.PromptIDs...), ex.ResponseIDs[:hi-1]...)
				seqs = append(seqs, seq)
				who = append(who, i)
			}
		}
		if len(seqs) > 0 {
			// Only the response positions need logits: run the hidden states of the whole
			// batch, gather the rows that predict eligible positions, and apply the lm head to
			// those alone (the prompt's logits are never computed).
			b := model.Pack(seqs)
			c := o.Model.Config.DModel
			h := o.Model.Hidden(ws, b) // (N, C)
			firsts := make([]int, len(who))
			r := 0
			for s, i := range who {
				ex := &rows[i].ex
				lo, hi := mnEligible(len(ex.PromptIDs), ex.ResponseIDs, o.EOS)
				firsts[s] = b.Starts[s] + len(ex.PromptIDs) + lo - 1 // predicts response position lo
				r += hi - lo
			}
			sel := sc.sel[:0] // (R, C)
			for s, i := range who {
				ex := &rows[i].ex
				lo, hi := mnEligible(len(ex.PromptIDs), ex.ResponseIDs, o.EOS)
				sel = append(sel, h[firsts[s]*c:(firsts[s]+hi-lo)*c]...)
			}
			sc.sel = sel
			sc.logits = headLogits(o.Model, sel, r, sc.logits) // (R, V)
			logits := sc.logits
			v := o.Model.Config.VocabSize
			at := 0
			for _, i := range who {
				ex := &rows[i].ex
				lo, hi := mnEligible(len(ex.PromptIDs), ex.ResponseIDs, o.EOS)
				dists[i] = &dist{rows: logits[at*v : (at+hi-lo)*v], v: v, temp: o.MNTemperature, done: make([]bool, hi-lo)}
				at += hi - lo
			}
		}

	}
	var an [][][]int32
	if o.Mix[AN] > 0 {
		var err error
		an, err = g.autoregressive(rows, st)
		if err != nil {
			return err
		}
	}
	var pos []int
	for i := range rows {
		j := &rows[i]
		ex := &j.ex
		st.RowsIn++
		if len(ex.ResponseIDs) == 0 {
			st.EmptyResponse++
		}
		c := shard.Candidates{Seed: j.seed}
		c.SetExample(*ex)
		c.Candidates = append(c.Candidates, shard.Candidate{Kind: shard.KindGT, IDs: ex.ResponseIDs})
		var made, tokens [numKinds]int64 // counted only if the row is written
		add := func(k Kind, ids []int32) {
			c.Candidates = append(c.Candidates, shard.Candidate{Kind: kindNames[k], IDs: ids})
			made[k]++
			tokens[k] += int64(len(ids))
		}
		for k := range numKinds {
			st.Wanted[k] += int64(o.Mix[k])
		}
		// BN: chosen while reading (they need the window).
		st.Redraws[BN] += int64(j.bnIdentical)
		for _, ids := range j.bn {
			add(BN, ids)
		}
		st.skip(BN, "window too small (too few other rows with a different, non-empty response)", o.Mix[BN]-len(j.bn))
		// MN.
		if o.Mix[MN] > 0 {
			if d := dists[i]; d != nil {
				rng := kindRNG(j.seed, streamMN)
				lo, hi := mnEligible(len(ex.PromptIDs), ex.ResponseIDs, o.EOS)
				n := mnCount(o.MNFraction, hi-lo)
				for range o.Mix[MN] {
					for try := 0; ; try++ {
						neg, chosen := meanfield(rng, d, ex.ResponseIDs, lo, hi, n, pos)
						pos = chosen[:0]
						if !slices.Equal(neg, ex.ResponseIDs) {
							add(MN, neg)
							break
						}
						if try == o.MaxRedraws {
							st.Dropped[MN]++
							break
						}
						st.Redraws[MN]++
					}
				}
			} else {
				st.skip(MN, mnSkip[i], o.Mix[MN])
			}
		}
		// TN: never identical to the ground truth by construction.
		if o.Mix[TN] > 0 {
			rng := kindRNG(j.seed, streamTN)
			for range o.Mix[TN] {
				neg, ok := truncation(rng, ex.ResponseIDs, o.EOS)
				if !ok {
					st.skip(TN, "empty response", o.Mix[TN])
					break
				}
				add(TN, neg)
			}
		}
		// AN.
		if o.Mix[AN] > 0 {
			for _, ids := range an[i] {
				add(AN, ids)
			}
		}
		if o.StrictK && len(c.Candidates) < 1+o.Mix.Total() {
			st.StrictDropped++
			continue
		}
		out[t.lo+i] = c
		keep[t.lo+i] = true
		st.RowsOut++
		for k := range numKinds {
			st.Made[k] += made[k]
			st.Tokens[k] += tokens[k]
		}
	}
	return nil
}
