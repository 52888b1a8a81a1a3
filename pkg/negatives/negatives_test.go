package negatives

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/cpo-toolchain/cpo/pkg/model"
	"github.com/cpo-toolchain/cpo/pkg/shard"
)

// sliceSource serves rows from memory as a shard reader would, naming them "mem.parquet".
type sliceSource struct {
	rows []shard.Example
	i    int
}

func (s *sliceSource) Next() (shard.Example, error) {
	if s.i >= len(s.rows) {
		return shard.Example{}, io.EOF
	}
	s.i++
	return s.rows[s.i-1], nil
}

func (s *sliceSource) Pos() (string, int64) { return "mem.parquet", int64(s.i - 1) }

func run(t *testing.T, rows []shard.Example, o Options) ([]shard.Candidates, Stats) {
	t.Helper()
	var out []shard.Candidates
	st, err := Run(context.Background(), &sliceSource{rows: rows}, func(r ...shard.Candidates) error {
		for i := range r {
			if err := r[i].Validate(); err != nil {
				t.Fatalf("invalid row: %v", err)
			}
		}
		out = append(out, r...)
		return nil
	}, o)
	if err != nil {
		t.Fatal(err)
	}
	return out, st
}

const eos = 3

// makeRows returns n examples with random prompts and responses over ids [4, v), responses
// ending in EOS, some of them duplicates of their neighbours.
func makeRows(n, v int, seed uint64) []shard.Example {
	rng := rand.New(rand.NewPCG(seed, 1))
	rows := make([]shard.Example, n)
	for i := range rows {
		p := make([]int32, 1+rng.IntN(6))
		for j := range p {
			p[j] = int32(4 + rng.IntN(v-4))
		}
		r := make([]int32, 1+rng.IntN(12))
		for j := range r {
			r[j] = int32(4 + rng.IntN(v-4))
		}
		r = append(r, eos)
		if i > 0 && i%7 == 0 {
			r = slices.Clone(rows[i-1].ResponseIDs) // identical responses must never be a BN
		}
		rows[i] = shard.Example{ID: fmt.Sprintf("r%d", i), PromptIDs: p, ResponseIDs: r, Tokenizer: "tok"}
	}
	return rows
}

func TestParseMix(t *testing.T) {
	m, err := ParseMix("bn=3, MN=5,tn=3")
	if err != nil || m != MixN || m.Total() != 11 || m.String() != "bn=3,mn=5,tn=3" {
		t.Fatalf("ParseMix: %v %v %q", m, err, m.String())
	}
	if m, _ := ParseMix("mixn"); m != MixN {
		t.Fatal("mixn")
	}
	for _, bad := range []string{"", "bn", "xx=3", "gt=1", "bn=-1", "bn=2000", "bn=1,bn=2", "bn=0", "bn=x"} {
		if _, err := ParseMix(bad); err == nil {
			t.Errorf("ParseMix(%q) accepted", bad)
		}
	}
	if _, err := ParseMix("zz=1"); err == nil || !strings.Contains(err.Error(), `unknown kind "zz"`) {
		t.Errorf("unknown kind message: %v", err)
	}
}

func TestBatchNegatives(t *testing.T) {
	rows := makeRows(60, 50, 1)
	rows[10].ResponseIDs = nil // an empty response is never a BN
	const w = 8
	out, st := run(t, rows, Options{Mix: Mix{BN: 4}, Window: w, Seed: 7, EOS: eos, GroupRows: 5, Workers: 2})
	if len(out) != len(rows) {
		t.Fatalf("%d rows out", len(out))
	}
	made := 0
	for i, c := range out {
		if c.ID != rows[i].ID || c.Seed != RowSeed(7, int64(i)) {
			t.Fatalf("row %d: id %s seed %d", i, c.ID, c.Seed)
		}
		var from []int
		for _, cd := range c.Candidates[1:] {
			if cd.Kind != "bn" {
				t.Fatalf("kind %s", cd.Kind)
			}
			if len(cd.IDs) == 0 || slices.Equal(cd.IDs, rows[i].ResponseIDs) {
				t.Fatalf("row %d: BN %v is empty or the row's own response", i, cd.IDs)
			}
			// It must come from another row within the window.
			src := -1
			for j := max(0, i-w/2); j <= min(len(rows)-1, i+w/2); j++ {
				if j != i && slices.Equal(rows[j].ResponseIDs, cd.IDs) && !slices.Contains(from, j) {
					src = j
					break
				}
			}
			if src < 0 {
				t.Fatalf("row %d: BN %v is no other row's response within the window", i, cd.IDs)
			}
			from = append(from, src)
			made++
		}
	}
	if st.Made[BN] != int64(made) || st.Wanted[BN] != int64(4*len(rows)) || st.Made[BN]+st.Skipped[BN] != st.Wanted[BN] {
		t.Fatalf("stats %+v, counted %d", st, made)
	}
	if st.Redraws[BN] == 0 {
		t.Fatal("duplicated responses were not counted as identical")
	}
	// A window of 2 rows leaves each row one neighbour at most: the shortfall is counted.
	_, st = run(t, rows, Options{Mix: Mix{BN: 3}, Window: 2, EOS: eos})
	if st.Skipped[BN] == 0 || st.SkipReasons["bn: window too small (too few other rows with a different, non-empty response)"] != st.Skipped[BN] {
		t.Fatalf("skips %+v", st)
	}
}

func TestStreamingIsBounded(t *testing.T) {
	// Rows are written while the input is read: at every write, the reader is at most W/2 +
	// GroupRows rows ahead of the last row written.
	const w, group = 16, 10
	rows := makeRows(3000, 50, 9)
	src := &sliceSource{rows: rows}
	written := 0
	_, err := Run(context.Background(), src, func(r ...shard.Candidates) error {
		written += len(r)
		if ahead := src.i - written; ahead > w/2+group {
			t.Fatalf("reader %d rows ahead of the writer", ahead)
		}
		return nil
	}, Options{Mix: Mix{BN: 2, TN: 1}, EOS: eos, Window: w, GroupRows: group})
	if err != nil || written != len(rows) {
		t.Fatal(written, err)
	}
}

func TestBatchNegativesUniform(t *testing.T) {
	// Pool of 10: row 0 is self, row 3 empty, row 5 identical to self; the other 7 are eligible
	// and each must be picked with probability 3/7.
	pool := make([][]int32, 10)
	for j := range pool {
		pool[j] = []int32{int32(j + 10)}
	}
	pool[3] = nil
	pool[5] = []int32{10}
	rng := rand.New(rand.NewPCG(1, 1))
	counts := make([]int, 10)
	var scratch []int
	const trials = 70000
	for range trials {
		var chosen []int
		chosen, _, scratch = pickBN(rng, 3, 0, pool, pool[0], scratch)
		if len(chosen) != 3 {
			t.Fatalf("chose %v", chosen)
		}
		for _, j := range chosen {
			counts[j]++
		}
	}
	elig := []int{1, 2, 4, 6, 7, 8, 9}
	p := make([]float64, len(elig))
	obs := make([]int, len(elig))
	for i, j := range elig {
		p[i] = 1.0 / 7
		obs[i] = counts[j]
	}
	if counts[0]+counts[3]+counts[5] != 0 {
		t.Fatalf("ineligible rows picked: %v", counts)
	}
	// 6 dof: P(chi2 > 22.46) = 0.001.
	if x := chiSquare(obs, p); x > 22.46 {
		t.Fatalf("chi-square %.1f, counts %v", x, counts)
	}
	// With only 2 eligible rows, both are taken.
	chosen, _, _ := pickBN(rng, 3, 0, [][]int32{{1}, {2}, {1}, {3}, nil}, []int32{1}, nil)
	if slices.Sort(chosen); !slices.Equal(chosen, []int{1, 3}) {
		t.Fatalf("small pool: %v", chosen)
	}
}

func TestTruncationNegatives(t *testing.T) {
	rows := makeRows(40, 50, 2)
	rows[3].ResponseIDs = []int32{eos} // body empty: skipped
	rows[4].ResponseIDs = nil
	rows[5].ResponseIDs = []int32{9, 9, 9} // no trailing EOS
	out, st := run(t, rows, Options{Mix: Mix{TN: 5}, EOS: eos})
	for i, c := range out {
		b := body(rows[i].ResponseIDs, eos)
		n := 0
		for _, cd := range c.Candidates[1:] {
			n++
			ids := cd.IDs
			if cd.Kind != "tn" || len(ids) == 0 || ids[len(ids)-1] != eos {
				t.Fatalf("row %d: TN %v does not end in EOS", i, ids)
			}
			if len(ids)-1 >= len(b) || !slices.Equal(ids[:len(ids)-1], b[:len(ids)-1]) {
				t.Fatalf("row %d: TN %v is not a strict prefix of %v plus EOS", i, ids, b)
			}
			if slices.Equal(ids, rows[i].ResponseIDs) {
				t.Fatalf("row %d: TN equals the ground truth", i)
			}
		}
		if want := map[bool]int{true: 0, false: 5}[len(b) == 0]; n != want {
			t.Fatalf("row %d: %d TN, want %d", i, n, want)
		}
	}
	if st.Skipped[TN] != 10 || st.SkipReasons["tn: empty response"] != 10 || st.EmptyResponse != 1 {
		t.Fatalf("stats %+v", st)
	}
	// --strict-k drops the two short rows.
	out, st = run(t, rows, Options{Mix: Mix{TN: 5}, EOS: eos, StrictK: true})
	if len(out) != len(rows)-2 || st.StrictDropped != 2 || st.RowsOut != int64(len(rows)-2) || st.Made[TN] != int64(5*len(out)) {
		t.Fatalf("strict: %d rows, %+v", len(out), st)
	}
	// A single-token body cuts at 0: the negative is EOS alone.
	out, _ = run(t, []shard.Example{{ID: "a", PromptIDs: []int32{5}, ResponseIDs: []int32{7, eos}, Tokenizer: "t"}}, Options{Mix: Mix{TN: 2}, EOS: eos})
	for _, cd := range out[0].Candidates[1:] {
		if !slices.Equal(cd.IDs, []int32{eos}) {
			t.Fatalf("TN of a one-token body: %v", cd.IDs)
		}
	}
}

// controlled returns a GPT-2 model whose next-token logits are the same vector b at every
// position, whatever the input: V = C, wte = identity, every block weight zero (the residual
// stream passes through), and the final LayerNorm's weight zero and bias b, so the hidden state
// is b and the tied head gives logits wte·b = b.
func controlled(t testing.TB, b []float32) *model.Model {
	v := len(b)
	m, err := model.New(model.Config{Arch: model.ArchGPT2, VocabSize: v, MaxSeqLen: 64, NLayer: 1, NHead: 2, NKVHead: 2,
		DModel: v, DFF: 4 * v, NormEps: 1e-5, TieEmbeddings: true, BOS: -1, EOS: eos})
	if err != nil {
		t.Fatal(err)
	}
	wte := m.Param("transformer.wte.weight").Data
	for i := 0; i < v; i++ {
		wte[i*v+i] = 1
	}
	copy(m.Param("transformer.ln_f.bias").Data, b)
	return m
}

func TestMeanfieldChangesOnlyChosenPositions(t *testing.T) {
	// All mass on token 15, which no response holds: every chosen position changes to 15.
	b := make([]float32, 16)
	b[15] = 60
	m := controlled(t, b)
	rows := makeRows(50, 15, 3)
	rows[0].PromptIDs = nil // position 0 is then not eligible
	for _, c := range []float64{0.15, 0.5, 1} {
		out, st := run(t, rows, Options{Mix: Mix{MN: 3}, Model: m, EOS: eos, MNFraction: c, BatchTokens: 40})
		for i, row := range out {
			gt := rows[i].ResponseIDs
			lo, hi := mnEligible(len(rows[i].PromptIDs), gt, eos)
			j := mnCount(c, hi-lo)
			if len(row.Candidates) != 1+3 && j > 0 {
				t.Fatalf("row %d: %d candidates", i, len(row.Candidates))
			}
			for _, cd := range row.Candidates[1:] {
				if cd.Kind != "mn" || len(cd.IDs) != len(gt) {
					t.Fatalf("row %d: %v", i, cd)
				}
				changed := 0
				for p := range gt {
					if cd.IDs[p] == gt[p] {
						continue
					}
					if p < lo || p >= hi || cd.IDs[p] != 15 {
						t.Fatalf("row %d c=%g: position %d (eligible [%d,%d)) changed to %d", i, c, p, lo, hi, cd.IDs[p])
					}
					changed++
				}
				if changed != j || j != max(1, min(hi-lo, int(math.Round(c*float64(hi-lo))))) {
					t.Fatalf("row %d c=%g: %d positions changed, want %d of %d", i, c, changed, j, hi-lo)
				}
			}
		}
		if st.Made[MN] == 0 || st.Redraws[MN] != 0 {
			t.Fatalf("stats %+v", st)
		}
	}
}

// chiSquare returns the statistic of counts against probabilities p (n draws in all).
func chiSquare(counts []int, p []float64) float64 {
	n := 0
	for _, c := range counts {
		n += c
	}
	x := 0.0
	for i, c := range counts {
		e := p[i] * float64(n)
		x += (float64(c) - e) * (float64(c) - e) / e
	}
	return x
}

func TestMeanfieldDrawsFromTheModel(t *testing.T) {
	b := []float32{0, 0.5, 1, 1.5, -1, 0.2, 2, -0.5, 0.1, 0.8, -2, 0.3, 1.2, 0.7, -0.2, 0.4}
	m := controlled(t, b)
	for _, temp := range []float64{1, 0.5} {
		p := make([]float64, len(b))
		z := 0.0
		for i, x := range b {
			p[i] = math.Exp(float64(x) / temp)
			z += p[i]
		}
		for i := range p {
			p[i] /= z
		}
		// 300 rows × 8 negatives × 10 resampled positions = 24000 draws.
		rows := make([]shard.Example, 300)
		rng := rand.New(rand.NewPCG(5, 5))
		for i := range rows {
			r := make([]int32, 20)
			for j := range r {
				r[j] = int32(4 + rng.IntN(12))
			}
			rows[i] = shard.Example{ID: fmt.Sprint(i), PromptIDs: []int32{1, 2}, ResponseIDs: r, Tokenizer: "t"}
		}
		out, st := run(t, rows, Options{Mix: Mix{MN: 8}, Model: m, EOS: eos, MNFraction: 0.5, MNTemperature: temp, Seed: 11})
		if st.Redraws[MN] != 0 {
			t.Fatal("a redraw would break the replay below")
		}
		counts := make([]int, len(b))
		for i, row := range out {
			// Recover the resampled positions by replaying the row's MN stream as meanfield
			// consumes it: 10 draws choose the positions, then one draw per position's token.
			rng := kindRNG(row.Seed, streamMN)
			gt := rows[i].ResponseIDs
			for k := 1; k < len(row.Candidates); k++ {
				pos := make([]int, 0, 20)
				for t := 0; t < 20; t++ {
					pos = append(pos, t)
				}
				for x := 0; x < 10; x++ {
					kk := x + rng.IntN(20-x)
					pos[x], pos[kk] = pos[kk], pos[x]
				}
				chosen := slices.Clone(pos[:10])
				slices.Sort(chosen)
				for _, tpos := range chosen {
					counts[row.Candidates[k].IDs[tpos]]++
					rng.Float64() // the draw of this position's token
				}
				for tpos := range gt {
					if !slices.Contains(chosen, tpos) && row.Candidates[k].IDs[tpos] != gt[tpos] {
						t.Fatalf("row %d: unchosen position %d changed", i, tpos)
					}
				}
			}
		}
		x := chiSquare(counts, p)
		// 15 degrees of freedom: P(χ² > 37.7) = 0.001.
		if x > 37.7 {
			t.Fatalf("temperature %g: chi-square %.1f over 15 dof, counts %v", temp, x, counts)
		}
		t.Logf("temperature %g: chi-square %.1f (15 dof)", temp, x)
	}
}

// randomModel returns a small random model with sharp distributions (weights scaled up).
func randomModel(t testing.TB, arch string, v int, seed uint64) *model.Model {
	cfg := model.Config{Arch: arch, VocabSize: v, MaxSeqLen: 64, NLayer: 2, NHead: 4, NKVHead: 4, DModel: 32, DFF: 64,
		NormEps: 1e-5, RopeTheta: 10000, TieEmbeddings: arch == model.ArchGPT2, BOS: -1, EOS: eos}
	if arch == model.ArchLlama {
		cfg.NKVHead = 2
	}
	m, err := model.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m.InitGPT2Style(seed)
	for _, p := range m.Params() {
		if p.Decay {
			for i := range p.Data {
				p.Data[i] *= 20
			}
		}
	}
	return m
}

func TestMeanfieldConditionsOnTheGroundTruthPrefix(t *testing.T) {
	// At a temperature near 0 the sample is the argmax: every changed token must be the argmax of
	// the model's logits given the prompt and the ground-truth prefix, computed row by row.
	for _, arch := range []string{model.ArchGPT2, model.ArchLlama} {
		m := randomModel(t, arch, 40, 9)
		rows := makeRows(30, 40, 4)
		rows[2].PromptIDs = nil
		out, _ := run(t, rows, Options{Mix: Mix{MN: 2}, Model: m, EOS: eos, MNFraction: 0.6, MNTemperature: 1e-6, BatchTokens: 37, Workers: 2})
		ws := model.NewWorkspace()
		v := m.Config.VocabSize
		changed := 0
		for i, row := range out {
			ex := rows[i]
			seq := append(slices.Clone(ex.PromptIDs), ex.ResponseIDs...)
			lg := m.Logits(ws, model.Pack([][]int32{seq}))
			for _, cd := range row.Candidates[1:] {
				for p, tok := range cd.IDs {
					if tok == ex.ResponseIDs[p] {
						continue
					}
					at := len(ex.PromptIDs) + p - 1
					want := argmax(lg[at*v : (at+1)*v])
					if tok != want {
						t.Fatalf("%s row %d position %d: sampled %d, argmax given the prefix is %d", arch, i, p, tok, want)
					}
					changed++
				}
			}
		}
		if changed < 50 {
			t.Fatalf("%s: only %d tokens changed", arch, changed)
		}
	}
}

func TestHeadLogitsMatchModel(t *testing.T) {
	for _, m := range []*model.Model{randomModel(t, model.ArchGPT2, 40, 1), randomModel(t, model.ArchLlama, 40, 2), untiedLlama(t)} {
		seq := []int32{5, 9, 7, 30, 2, 11}
		ws := model.NewWorkspace()
		want := slices.Clone(m.Logits(ws, model.Pack([][]int32{seq})))
		h := m.Hidden(ws, model.Pack([][]int32{seq}))
		got := headLogits(m, h, len(seq), nil)
		for i := range want {
			if d := math.Abs(float64(got[i] - want[i])); d > 1e-4*(1+math.Abs(float64(want[i]))) {
				t.Fatalf("%s tied=%v: logit %d: %g, model %g", m.Config.Arch, m.Config.TieEmbeddings, i, got[i], want[i])
			}
		}
	}
}

func untiedLlama(t testing.TB) *model.Model {
	m, err := model.New(model.Config{Arch: model.ArchLlama, VocabSize: 40, MaxSeqLen: 16, NLayer: 1, NHead: 2, NKVHead: 1, DModel: 16, DFF: 32,
		NormEps: 1e-5, RopeTheta: 10000, BOS: -1, EOS: eos})
	if err != nil {
		t.Fatal(err)
	}
	m.InitGPT2Style(4)
	return m
}

func argmax(x []float32) int32 {
	b := 0
	for i, v := range x {
		if v > x[b] {
			b = i
		}
	}
	return int32(b)
}

func TestMeanfieldIdenticalIsRedrawnThenDropped(t *testing.T) {
	// All mass on token 4 and responses made only of 4: every draw is the ground truth.
	b := make([]float32, 16)
	b[4] = 60
	m := controlled(t, b)
	rows := []shard.Example{{ID: "a", PromptIDs: []int32{1}, ResponseIDs: []int32{4, 4, 4, eos}, Tokenizer: "t"}}
	out, st := run(t, rows, Options{Mix: Mix{MN: 2, TN: 1}, Model: m, EOS: eos, MaxRedraws: 3})
	if len(out[0].Candidates) != 2 || st.Redraws[MN] != 6 || st.Dropped[MN] != 2 {
		t.Fatalf("candidates %v stats %+v", out[0].Candidates, st)
	}
	out, st = run(t, rows, Options{Mix: Mix{MN: 2, TN: 1}, Model: m, EOS: eos, MaxRedraws: 3, StrictK: true})
	if len(out) != 0 || st.StrictDropped != 1 {
		t.Fatalf("strict: %d rows %+v", len(out), st)
	}
}

func TestAutoregressiveTopK(t *testing.T) {
	const v, k, maxNew = 300, 50, 10
	m := randomModel(t, model.ArchGPT2, v, 3)
	rows := makeRows(12, v, 6)
	rows[1].PromptIDs = nil // skipped
	out, st := run(t, rows, Options{Mix: Mix{AN: 3}, Model: m, EOS: eos, AN: ANOptions{TopK: k, MaxNewTokens: maxNew, Batch: 5}, Workers: 2})
	ws := model.NewWorkspace()
	tokens := 0
	for i, row := range out {
		ex := rows[i]
		if len(ex.PromptIDs) == 0 {
			if len(row.Candidates) != 1 {
				t.Fatalf("row %d: AN for an empty prompt", i)
			}
			continue
		}
		if len(row.Candidates) != 4 {
			t.Fatalf("row %d: %d candidates", i, len(row.Candidates))
		}
		for _, cd := range row.Candidates[1:] {
			ids := cd.IDs
			if cd.Kind != "an" || len(ids) == 0 || len(ids) > maxNew || (len(ids) < maxNew && ids[len(ids)-1] != eos) {
				t.Fatalf("row %d: AN %v", i, ids)
			}
			seq := append(slices.Clone(ex.PromptIDs), ids...)
			lg := m.Logits(ws, model.Pack([][]int32{seq}))
			for s, tok := range ids {
				at := len(ex.PromptIDs) + s - 1
				row := slices.Clone(lg[at*v : (at+1)*v])
				slices.SortFunc(row, func(a, b float32) int { return -cmpF(a, b) })
				if lg[at*v+int(tok)] < row[k-1]-1e-4 {
					t.Fatalf("row %d step %d: token %d has logit %g below the %d-th largest %g", i, s, tok, lg[at*v+int(tok)], k, row[k-1])
				}
				tokens++
			}
		}
	}
	if st.Skipped[AN] != 3 || st.SkipReasons["an: empty prompt"] != 3 || tokens < 100 {
		t.Fatalf("stats %+v tokens %d", st, tokens)
	}
	// Continuous batching: the samples do not depend on how many sequences share the cache.
	var ref []shard.Candidates
	for _, batch := range []int{1, 3, 8} {
		got, _ := run(t, rows, Options{Mix: Mix{AN: 3}, Model: m, EOS: eos, AN: ANOptions{TopK: k, MaxNewTokens: maxNew, Batch: batch}, Workers: 1})
		if ref == nil {
			ref = got
		} else if !reflect.DeepEqual(got, ref) {
			t.Fatalf("batch %d gives other samples than batch 1", batch)
		}
	}
	// top-k 1 is greedy: every sample of a row is the same.
	out, _ = run(t, rows[:3], Options{Mix: Mix{AN: 2}, Model: m, EOS: eos, AN: ANOptions{TopK: 1, MaxNewTokens: maxNew}})
	if !slices.Equal(out[0].Candidates[1].IDs, out[0].Candidates[2].IDs) {
		t.Fatal("top-1 samples differ")
	}
}

func cmpF(a, b float32) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func TestDeterministicAcrossWorkers(t *testing.T) {
	m := randomModel(t, model.ArchLlama, 60, 2)
	rows := makeRows(70, 60, 8)
	mix := Mix{BN: 2, MN: 2, TN: 2, AN: 1}
	base := Options{Mix: mix, Model: m, EOS: eos, Seed: 42, Window: 16, GroupRows: 20, BatchTokens: 64, AN: ANOptions{MaxNewTokens: 6, Batch: 4}}
	o1 := base
	o1.Workers = 1
	a, _ := run(t, rows, o1)
	o3 := base
	o3.Workers = 3
	b, _ := run(t, rows, o3)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("1 and 3 workers give different shards")
	}
	o4 := base
	o4.Seed = 43
	c, _ := run(t, rows, o4)
	if reflect.DeepEqual(a, c) {
		t.Fatal("another seed gives the same shard")
	}
	// Kinds appear in canonical order.
	for _, r := range a {
		order := []string{}
		for _, cd := range r.Candidates {
			order = append(order, cd.Kind)
		}
		if !slices.IsSortedFunc(order, func(x, y string) int { return slices.Index(shard.Kinds, x) - slices.Index(shard.Kinds, y) }) {
			t.Fatalf("kinds out of order: %v", order)
		}
	}
}

func TestBadInput(t *testing.T) {
	m := randomModel(t, model.ArchGPT2, 40, 1)
	rows := makeRows(5, 40, 1)
	errOf := func(rows []shard.Example, o Options) error {
		_, err := Run(context.Background(), &sliceSource{rows: rows}, func(...shard.Candidates) error { return nil }, o)
		return err
	}
	cases := []struct {
		o    Options
		want string
	}{
		{Options{Mix: Mix{MN: 1}, Model: m, EOS: eos, MNFraction: 1.5}, "out of range"},
		{Options{Mix: Mix{MN: 1}, Model: m, EOS: eos, MNFraction: -0.1}, "out of range"},
		{Options{Mix: Mix{MN: 1}, Model: m, EOS: eos, MNTemperature: -1}, "temperature"},
		{Options{Mix: Mix{AN: 1}, Model: m, EOS: eos, AN: ANOptions{TopK: 41}}, "top-k 41 out of range"},
		{Options{Mix: Mix{AN: 1}, Model: m, EOS: eos, AN: ANOptions{TopK: -2}}, "top-k -2 out of range"},
		{Options{Mix: Mix{MN: 1}, EOS: eos}, "need a model"},
		{Options{Mix: Mix{TN: 1}, EOS: -1}, "EOS"},
		{Options{}, "no negatives"},
		{Options{Mix: Mix{TN: 1}, EOS: eos, Tokenizer: "other"}, `mem.parquet row 0: example "r0" was tokenized with tokenizer tok`},
	}
	for _, c := range cases {
		if err := errOf(rows, c.o); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want %q", c.o.Mix, err, c.want)
		}
	}
	bad := slices.Clone(rows)
	bad[3].ResponseIDs = []int32{5, 99}
	if err := errOf(bad, Options{Mix: Mix{MN: 1}, Model: m, EOS: eos}); err == nil || !strings.Contains(err.Error(), "mem.parquet row 3") || !strings.Contains(err.Error(), "token id 99") {
		t.Errorf("out-of-vocabulary id: %v", err)
	}
	// A row longer than the model's context gets no MN, counted.
	long := []shard.Example{{ID: "l", PromptIDs: make([]int32, 60), ResponseIDs: make([]int32, 20), Tokenizer: "t"}}
	_, st := run(t, long, Options{Mix: Mix{MN: 2}, Model: m, EOS: eos})
	if st.SkipReasons["mn: row longer than the model's context"] != 2 {
		t.Errorf("long row: %+v", st)
	}
}
