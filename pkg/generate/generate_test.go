package generate

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/cpo-toolchain/cpo/pkg/model"
)

// tinyModel is a small random model whose logits are spread enough (weights scaled up) that
// argmax decisions are not near-ties.
func tinyModel(t testing.TB, arch string, V int, seed uint64, scale float32) *model.Model {
	t.Helper()
	cfg := model.Config{Arch: arch, VocabSize: V, MaxSeqLen: 64, NLayer: 2, NHead: 4, NKVHead: 4, DModel: 32,
		DFF: 48, NormEps: 1e-5, RopeTheta: 10000, TieEmbeddings: arch == model.ArchGPT2, BOS: -1, EOS: -1}
	if arch == model.ArchLlama {
		cfg.NKVHead = 2
	}
	m, err := model.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m.InitGPT2Style(seed)
	for _, p := range m.Params() {
		if len(p.Shape) == 2 {
			for i := range p.Data {
				p.Data[i] *= scale
			}
		}
	}
	return m
}

// fullLogits runs a full forward of seq and returns the logits of its last position.
func fullLogits(m *model.Model, ws *model.Workspace, seq []int32) []float32 {
	V := m.Config.VocabSize
	lg := m.Logits(ws, model.Pack([][]int32{seq}))
	return slices.Clone(lg[(len(seq)-1)*V : len(seq)*V])
}

// fullLogp is log Q(ids|prompt) by full forward passes.
func fullLogp(m *model.Model, ws *model.Workspace, prompt, ids []int32) float64 {
	seq := slices.Clone(prompt)
	s := 0.0
	for _, id := range ids {
		s += LogSoftmax(fullLogits(m, ws, seq), id)
		seq = append(seq, id)
	}
	return s
}

func randomPrompts(rng *rand.Rand, n, V, maxLen int) []Request {
	reqs := make([]Request, n)
	for i := range reqs {
		p := make([]int32, 1+rng.IntN(maxLen))
		for j := range p {
			p[j] = int32(rng.IntN(V))
		}
		reqs[i] = Request{Prompt: p, Seed: RowSeed(1, string(rune('a'+i)), 0)}
	}
	return reqs
}

func TestGreedyMatchesFullForward(t *testing.T) {
	for _, arch := range []string{model.ArchGPT2, model.ArchLlama} {
		m := tinyModel(t, arch, 50, 3, 8)
		rng := rand.New(rand.NewPCG(1, 1))
		reqs := randomPrompts(rng, 7, 50, 12)
		cfg := Config{Strategy: Greedy, MaxNewTokens: 20, EOS: 7}
		gen, err := New(m, cfg, 3)
		if err != nil {
			t.Fatal(err)
		}
		res, err := gen.Generate(context.Background(), reqs, nil)
		if err != nil {
			t.Fatal(err)
		}
		ws := model.NewWorkspace()
		finishes := map[string]int{}
		for i, r := range reqs {
			// Reference: argmax of a full forward pass at every step.
			seq := slices.Clone(r.Prompt)
			var want []int32
			logp := 0.0
			for len(want) < cfg.MaxNewTokens {
				lg := fullLogits(m, ws, seq)
				tok := Argmax(lg)
				logp += LogSoftmax(lg, tok)
				want = append(want, tok)
				seq = append(seq, tok)
				if tok == cfg.EOS {
					break
				}
			}
			if !slices.Equal(res[i].IDs, want) {
				t.Fatalf("%s prompt %d: cached greedy %v, full forward %v", arch, i, res[i].IDs, want)
			}
			if math.Abs(res[i].Logp-logp) > 1e-3 {
				t.Fatalf("%s prompt %d: logp %v, full forward %v", arch, i, res[i].Logp, logp)
			}
			wantFin := FinishLength
			if want[len(want)-1] == cfg.EOS {
				wantFin = FinishEOS
			}
			if res[i].Finish != wantFin {
				t.Fatalf("%s prompt %d: finish %q, want %q", arch, i, res[i].Finish, wantFin)
			}
			finishes[wantFin]++
		}
		t.Logf("%s: finishes %v", arch, finishes)
	}
}

func TestResultsDoNotDependOnBatch(t *testing.T) {
	m := tinyModel(t, model.ArchLlama, 60, 5, 8)
	reqs := randomPrompts(rand.New(rand.NewPCG(2, 2)), 9, 60, 15)
	for _, cfg := range []Config{
		{Strategy: Greedy, MaxNewTokens: 12, EOS: 3},
		{Strategy: Sample, Temperature: 1, TopK: 50, TopP: 0.7, MaxNewTokens: 12, EOS: 3},
		{Strategy: Sample, Temperature: 1.5, TopK: 0, TopP: 1, MaxNewTokens: 12, EOS: 3},
		{Strategy: Beam, Beams: 3, LengthPenalty: 1, MaxNewTokens: 12, EOS: 3},
	} {
		var first []Result
		for _, batch := range []int{1, 4, 9} {
			gen, err := New(m, cfg, batch)
			if err != nil {
				t.Fatal(err)
			}
			var order []int
			res, err := gen.Generate(context.Background(), reqs, func(i int, r Result) { order = append(order, i) })
			if err != nil {
				t.Fatal(err)
			}
			if len(order) != len(reqs) {
				t.Fatalf("done called %d times for %d requests", len(order), len(reqs))
			}
			if first == nil {
				first = res
				continue
			}
			for i := range res {
				if !slices.Equal(res[i].IDs, first[i].IDs) || res[i].Finish != first[i].Finish {
					t.Fatalf("%s batch %d request %d: %v, batch 1: %v", cfg.Label(), batch, i, res[i].IDs, first[i].IDs)
				}
				if math.Abs(res[i].Logp-first[i].Logp) > 1e-4 {
					t.Fatalf("%s batch %d request %d: logp %v, batch 1: %v", cfg.Label(), batch, i, res[i].Logp, first[i].Logp)
				}
			}
		}
	}
}

func TestSamplingStaysInAllowedSet(t *testing.T) {
	m := tinyModel(t, model.ArchGPT2, 40, 9, 8)
	reqs := randomPrompts(rand.New(rand.NewPCG(3, 3)), 6, 40, 8)
	for i := range reqs {
		reqs[i].Seed = int64(i)
	}
	cfg := Config{Strategy: Sample, Temperature: 1, TopK: 3, TopP: 0.9, MaxNewTokens: 15, EOS: -1}
	gen, err := New(m, cfg, 4)
	if err != nil {
		t.Fatal(err)
	}
	res, err := gen.Generate(context.Background(), reqs, nil)
	if err != nil {
		t.Fatal(err)
	}
	ws := model.NewWorkspace()
	var s Sampler
	distinct := map[int32]bool{}
	for i, r := range res {
		if len(r.IDs) != cfg.MaxNewTokens || r.Finish != FinishLength {
			t.Fatalf("request %d: %d ids, finish %q with EOS disabled", i, len(r.IDs), r.Finish)
		}
		seq := slices.Clone(reqs[i].Prompt)
		for j, id := range r.IDs {
			ids, _ := s.Distribution(fullLogits(m, ws, seq), cfg.SampleParams())
			if !slices.Contains(ids, id) {
				t.Fatalf("request %d step %d: token %d is not in the allowed set %v", i, j, id, ids)
			}
			distinct[id] = true
			seq = append(seq, id)
		}
		if lp := fullLogp(m, ws, reqs[i].Prompt, r.IDs); math.Abs(lp-r.Logp) > 1e-3 {
			t.Fatalf("request %d: logp %v, full forward %v", i, r.Logp, lp)
		}
	}
	if len(distinct) < 5 {
		t.Fatalf("sampling produced only %d distinct tokens", len(distinct))
	}
}

// TestBeamEqualsBruteForce: with a tiny vocabulary and a beam wide enough that nothing is
// ever pruned, beam search must return the best of all sequences by sum/len^lp.
func TestBeamEqualsBruteForce(t *testing.T) {
	const V, maxNew = 4, 3
	const eos = int32(3)
	B := 36 // expansions per step: 4, 12, 36 (non-EOS beams 1, 3, 9)
	for _, arch := range []string{model.ArchGPT2, model.ArchLlama} {
		m := tinyModel(t, arch, V, 11, 4)
		ws := model.NewWorkspace()
		prompts := [][]int32{{0, 1, 2}, {2}, {1, 1, 0, 3, 2}, {3}, {0, 0}, {2, 1, 0, 1, 2, 3, 1}}
		// Every candidate continuation: sequences of non-EOS tokens of length < maxNew
		// followed by EOS, and every non-EOS sequence of length maxNew.
		var all [][]int32
		var rec func(p []int32)
		rec = func(p []int32) {
			if len(p) == maxNew {
				all = append(all, slices.Clone(p))
				return
			}
			all = append(all, append(slices.Clone(p), eos))
			for tok := int32(0); tok < V; tok++ {
				if tok != eos {
					rec(append(slices.Clone(p), tok))
				}
			}
		}
		rec(nil)
		for _, lp := range []float64{1, 0, 2, -0.7} {
			reqs := make([]Request, len(prompts))
			for i, p := range prompts {
				reqs[i].Prompt = p
			}
			gen, err := New(m, Config{Strategy: Beam, Beams: B, LengthPenalty: lp, MaxNewTokens: maxNew, EOS: eos}, 2)
			if err != nil {
				t.Fatal(err)
			}
			res, err := gen.Generate(context.Background(), reqs, nil)
			if err != nil {
				t.Fatal(err)
			}
			for i, p := range prompts {
				var best []int32
				bestScore := math.Inf(-1)
				for _, y := range all {
					sc := fullLogp(m, ws, p, y) / math.Pow(float64(len(y)), lp)
					if sc > bestScore {
						best, bestScore = y, sc
					}
				}
				if !slices.Equal(res[i].IDs, best) {
					t.Fatalf("%s lp=%v prompt %d: beam %v, brute force %v (score %v)", arch, lp, i, res[i].IDs, best, bestScore)
				}
				if want := fullLogp(m, ws, p, best); math.Abs(res[i].Logp-want) > 1e-4 {
					t.Fatalf("%s lp=%v prompt %d: logp %v, full forward %v", arch, lp, i, res[i].Logp, want)
				}
			}
		}
	}
}

// TestNarrowBeamCache: with pruning and slot copies, every result's logp must still equal the
// full-forward log-probability of its ids (a wrongly copied cache slot would change it).
func TestNarrowBeamCache(t *testing.T) {
	m := tinyModel(t, model.ArchLlama, 30, 13, 8)
	ws := model.NewWorkspace()
	reqs := randomPrompts(rand.New(rand.NewPCG(4, 4)), 5, 30, 10)
	for _, B := range []int{1, 2, 4} {
		gen, err := New(m, Config{Strategy: Beam, Beams: B, LengthPenalty: 0, MaxNewTokens: 10, EOS: 5}, 2)
		if err != nil {
			t.Fatal(err)
		}
		res, err := gen.Generate(context.Background(), reqs, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range res {
			if want := fullLogp(m, ws, reqs[i].Prompt, r.IDs); math.Abs(r.Logp-want) > 1e-3 {
				t.Fatalf("beam %d request %d: logp %v, full forward %v", B, i, r.Logp, want)
			}
		}
	}
}

func TestGenerateErrors(t *testing.T) {
	m := tinyModel(t, model.ArchGPT2, 20, 1, 8)
	bad := []struct {
		cfg  Config
		want string
	}{
		{Config{Strategy: Beam, Beams: 0, MaxNewTokens: 5, EOS: -1}, "beam width"},
		{Config{Strategy: Sample, Temperature: 1, TopP: 0, MaxNewTokens: 5, EOS: -1}, "top-p"},
		{Config{Strategy: Sample, Temperature: 1, TopP: 1.2, MaxNewTokens: 5, EOS: -1}, "top-p"},
		{Config{Strategy: "nucleus", MaxNewTokens: 5, EOS: -1}, "unknown decoding"},
		{Config{Strategy: Greedy, MaxNewTokens: 0, EOS: -1}, "max new tokens"},
		{Config{Strategy: Greedy, MaxNewTokens: 64, EOS: -1}, "no room"},
		{Config{Strategy: Greedy, MaxNewTokens: 5, EOS: 20}, "EOS"},
	}
	for _, b := range bad {
		if _, err := New(m, b.cfg, 1); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%+v: error %v, want one mentioning %q", b.cfg, err, b.want)
		}
	}
	gen, err := New(m, Config{Strategy: Greedy, MaxNewTokens: 10, EOS: -1}, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, reqs := range [][]Request{{{Prompt: nil}}, {{Prompt: make([]int32, 55)}}, {{Prompt: []int32{1, 20}}}} {
		if _, err := gen.Generate(context.Background(), reqs, nil); err == nil {
			t.Errorf("prompt %v: no error", reqs[0].Prompt)
		}
	}
}

func TestLabelsAndJSON(t *testing.T) {
	cases := []struct {
		cfg         Config
		label, json string
	}{
		{Config{Strategy: Greedy, MaxNewTokens: 256, EOS: 2, Seed: 1, TopK: 9}, "greedy",
			`{"eos":2,"max_new_tokens":256,"seed":1,"strategy":"greedy"}`},
		{Config{Strategy: Sample, Temperature: 1, TopK: 50, TopP: 0.7, MaxNewTokens: 8, EOS: 2}, "top-k50-p0.7",
			`{"eos":2,"max_new_tokens":8,"seed":0,"strategy":"sample","temperature":1,"top_k":50,"top_p":0.7}`},
		{Config{Strategy: Sample, Temperature: 0.8, TopP: 0.9, MaxNewTokens: 8, EOS: 2}, "top-p0.9-t0.8", ""},
		{Config{Strategy: Beam, Beams: 4, LengthPenalty: 1, MaxNewTokens: 8, EOS: 2}, "beam4",
			`{"beams":4,"eos":2,"length_penalty":1,"max_new_tokens":8,"seed":0,"strategy":"beam"}`},
		{Config{Strategy: Beam, Beams: 2, LengthPenalty: 0.6, MaxNewTokens: 8, EOS: 2}, "beam2-lp0.6", ""},
	}
	for _, c := range cases {
		if got := c.cfg.Label(); got != c.label {
			t.Errorf("label %q, want %q", got, c.label)
		}
		if c.json != "" && c.cfg.JSON() != c.json {
			t.Errorf("JSON %s, want %s", c.cfg.JSON(), c.json)
		}
	}
}

func TestVocabLimit(t *testing.T) {
	m := tinyModel(t, model.ArchGPT2, 50, 17, 8)
	ws := model.NewWorkspace()
	reqs := randomPrompts(rand.New(rand.NewPCG(6, 6)), 4, 50, 8)
	for _, cfg := range []Config{
		{Strategy: Greedy, MaxNewTokens: 8, EOS: -1, VocabLimit: 10},
		{Strategy: Sample, Temperature: 1.5, TopK: 0, TopP: 1, MaxNewTokens: 8, EOS: -1, VocabLimit: 10},
		{Strategy: Beam, Beams: 2, LengthPenalty: 1, MaxNewTokens: 8, EOS: -1, VocabLimit: 10},
	} {
		gen, err := New(m, cfg, 2)
		if err != nil {
			t.Fatal(err)
		}
		res, err := gen.Generate(context.Background(), reqs, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range res {
			for _, id := range r.IDs {
				if id >= 10 {
					t.Fatalf("%s request %d: id %d above the limit", cfg.Label(), i, id)
				}
			}
			// log Q is over the whole vocabulary.
			if want := fullLogp(m, ws, reqs[i].Prompt, r.IDs); math.Abs(r.Logp-want) > 1e-3 {
				t.Fatalf("%s request %d: logp %v, full forward %v", cfg.Label(), i, r.Logp, want)
			}
		}
	}
	if _, err := New(m, Config{Strategy: Greedy, MaxNewTokens: 8, EOS: 12, VocabLimit: 10}, 1); err == nil {
		t.Fatal("EOS above the vocabulary limit accepted")
	}
}

// refBeam is a plain reference of Hugging Face's beam search (BeamSearchScorer with
// early_stopping=False, one returned sequence) that recomputes every sequence with a full
// forward pass: no cache, no slots.
func refBeam(m *model.Model, ws *model.Workspace, prompt []int32, B, maxNew int, lp float64, eos int32) ([]int32, float64) {
	type hyp struct {
		ids        []int32
		sum, score float64
	}
	V := m.Config.VocabSize
	var fin []hyp
	add := func(ids []int32, sum float64) {
		h := hyp{ids, sum, sum / math.Pow(float64(len(ids)), lp)}
		if len(fin) < B {
			fin = append(fin, h)
			return
		}
		w := 0
		for i := range fin {
			if fin[i].score < fin[w].score {
				w = i
			}
		}
		if h.score > fin[w].score {
			fin = append(append(fin[:w:w], fin[w+1:]...), h)
		}
	}
	worst := func() float64 {
		w := math.Inf(1)
		for _, h := range fin {
			w = math.Min(w, h.score)
		}
		return w
	}
	beams := []hyp{{}}
	for step := 1; ; step++ {
		type cand struct {
			b     int
			t     int32
			score float64
		}
		var cands []cand
		for bi, b := range beams {
			lg := fullLogits(m, ws, append(slices.Clone(prompt), b.ids...))
			for tok := 0; tok < V; tok++ {
				cands = append(cands, cand{bi, int32(tok), b.sum + LogSoftmax(lg, int32(tok))})
			}
		}
		slices.SortStableFunc(cands, func(x, y cand) int {
			if x.score != y.score {
				if x.score > y.score {
					return -1
				}
				return 1
			}
			return 0
		})
		cands = cands[:min(2*B, len(cands))]
		var next []hyp
		for rank, c := range cands {
			ids := append(slices.Clone(beams[c.b].ids), c.t)
			if c.t == eos {
				if rank < B {
					add(ids, c.score)
				}
			} else {
				next = append(next, hyp{ids: ids, sum: c.score})
			}
			if len(next) == B {
				break
			}
		}
		if len(fin) >= B && worst() >= cands[0].score/math.Pow(float64(step), lp) {
			break
		}
		if step == maxNew || len(next) == 0 {
			for _, h := range next {
				add(h.ids, h.sum)
			}
			break
		}
		beams = next
	}
	best := fin[0]
	for _, h := range fin[1:] {
		if h.score > best.score {
			best = h
		}
	}
	return best.ids, best.sum
}

// TestBeamMatchesReference compares pruned beam search (slot reuse and copies in the cache)
// with the cache-free reference, with EOS reachable, for several widths and length penalties.
func TestBeamMatchesReference(t *testing.T) {
	m := tinyModel(t, model.ArchLlama, 12, 23, 2)
	ws := model.NewWorkspace()
	reqs := randomPrompts(rand.New(rand.NewPCG(8, 8)), 8, 12, 6)
	eosEnds, n := 0, 0
	for _, eos := range []int32{4, 7, 0} {
		for _, B := range []int{1, 2, 4} {
			for _, lp := range []float64{1, 0, 2} {
				gen, err := New(m, Config{Strategy: Beam, Beams: B, LengthPenalty: lp, MaxNewTokens: 7, EOS: eos}, 2)
				if err != nil {
					t.Fatal(err)
				}
				res, err := gen.Generate(context.Background(), reqs, nil)
				if err != nil {
					t.Fatal(err)
				}
				for i, r := range res {
					want, sum := refBeam(m, ws, reqs[i].Prompt, B, 7, lp, eos)
					if !slices.Equal(r.IDs, want) {
						t.Fatalf("eos %d beams %d lp %v request %d: %v, reference %v", eos, B, lp, i, r.IDs, want)
					}
					if math.Abs(r.Logp-sum) > 1e-3 {
						t.Fatalf("eos %d beams %d lp %v request %d: logp %v, reference %v", eos, B, lp, i, r.Logp, sum)
					}
					if r.Finish == FinishEOS {
						eosEnds++
					}
					n++
				}
			}
		}
	}
	if eosEnds == 0 || eosEnds == n {
		t.Fatalf("%d of %d results end with EOS: the test must see both kinds", eosEnds, n)
	}
	t.Logf("%d of %d results end with EOS", eosEnds, n)
}
