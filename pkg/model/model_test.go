package model

import (
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
)

var goldenCases = []string{"gpt2", "llama", "llama_tied", "gpt2_long", "llama_long"}

// seqsOf splits a batch into its sequences.
func seqsOf(b Batch) [][]int32 {
	var s [][]int32
	for i := 0; i+1 < len(b.Starts); i++ {
		s = append(s, b.Tokens[b.Starts[i]:b.Starts[i+1]])
	}
	return s
}

// A packed batch gives the same log-probabilities and gradients as its sequences run
// one at a time.
func TestPackedEqualsAlone(t *testing.T) {
	for _, name := range goldenCases {
		t.Run(name, func(t *testing.T) {
			g := loadGolden(t, name)
			m := g.model(t)
			b := g.batch()
			dlogp := g.f32["dlogp"]
			ws := NewWorkspace()
			packed := append([]float32(nil), m.Forward(ws, b)...)
			m.ZeroGrad()
			m.Backward(ws, dlogp)
			packedGrad := append([]float32(nil), m.GradArena()...)

			m.ZeroGrad()
			var alone []float32
			for i, s := range seqsOf(b) {
				lp := m.Forward(ws, Pack([][]int32{s}))
				alone = append(alone, lp...)
				m.Backward(ws, dlogp[b.Starts[i]:b.Starts[i+1]])
			}
			if e := relErr(packed, alone); e > 1e-6 {
				t.Errorf("logp packed vs alone: relative error %.3g", e)
			}
			// Gradients summed over separate backward passes add the same terms in another
			// order than one packed pass (and the blocked GEMM splits its K sums by the batch
			// size), so they agree to float32 rounding of the sums: the golden tolerance.
			if e := relErr(packedGrad, m.GradArena()); e > 1e-5 {
				t.Errorf("gradients packed vs summed over sequences: relative error %.3g", e)
			}
		})
	}
}

// Decoding through the KV cache (prefill, then one token at a time, in several slots at
// once, with a slot copied mid-way) gives the logits of a full forward.
func TestCacheMatchesForward(t *testing.T) {
	for _, name := range goldenCases {
		t.Run(name, func(t *testing.T) {
			g := loadGolden(t, name)
			m := g.model(t)
			V := m.Config.VocabSize
			rng := rand.New(rand.NewPCG(7, 7))
			seq := func(n int) []int32 {
				s := make([]int32, n)
				for i := range s {
					s[i] = int32(rng.IntN(V))
				}
				return s
			}
			T := m.Config.MaxSeqLen
			a, b := seq(T), seq(T)
			c := append(append([]int32(nil), a[:5]...), seq(T-5)...) // shares a's first 5 tokens
			// Reference logits of every position of each full sequence.
			ref := func(s []int32) []float32 {
				return append([]float32(nil), m.Logits(NewWorkspace(), Pack([][]int32{s}))...)
			}
			ra, rb, rc := ref(a), ref(b), ref(c)
			cache := m.NewCache(4, T)
			check := func(what string, got []float32, want []float32, pos int) {
				t.Helper()
				if e := relErr(got, want[pos*V:(pos+1)*V]); e > 1e-5 {
					t.Errorf("%s at position %d: relative error %.3g", what, pos, e)
				}
			}
			// Prefill slot 0 with 4 tokens of a and slot 2 with 2 tokens of b.
			out := m.Extend(cache, []int{0, 2}, [][]int32{a[:4], b[:2]})
			check("a prefill", out[:V], ra, 3)
			check("b prefill", out[V:2*V], rb, 1)
			// Slot 0 one token, then copy it to slot 3 (5 tokens of a = first 5 of c).
			out = m.Extend(cache, []int{0}, [][]int32{a[4:5]})
			check("a step", out, ra, 4)
			cache.Copy(3, 0)
			if cache.Len(3) != 5 {
				t.Fatalf("copied slot has %d tokens", cache.Len(3))
			}
			for p := 5; p < T; p++ {
				slots := []int{3, 0}
				toks := [][]int32{c[p : p+1], a[p : p+1]}
				if p-3 < T { // slot 2 (b) runs 3 behind, with two tokens at once at the start
					slots = append(slots, 2)
					if p == 5 {
						toks = append(toks, b[2:4])
					} else {
						toks = append(toks, b[p-2:p-1])
					}
				}
				out = m.Extend(cache, slots, toks)
				check("c step", out[:V], rc, p)
				check("a step", out[V:2*V], ra, p)
				if len(slots) == 3 {
					check("b step", out[2*V:3*V], rb, cache.Len(2)-1)
				}
			}
			if cache.Len(0) != T || cache.Len(3) != T {
				t.Fatalf("lengths %d %d", cache.Len(0), cache.Len(3))
			}
			cache.Reset(0)
			out = m.Extend(cache, []int{0}, [][]int32{b[:6]})
			check("after reset", out, rb, 5)
			func() {
				defer func() {
					if r := recover(); r == nil || !strings.Contains(r.(string), "exceed") {
						t.Errorf("overfull slot: recovered %v", r)
					}
				}()
				m.Extend(cache, []int{3}, [][]int32{{1}})
			}()
		})
	}
}

// Central finite differences of L = sum dlogp*logp agree with Backward on a sample of
// parameters from every tensor.
func TestFiniteDifference(t *testing.T) {
	for _, name := range goldenCases {
		t.Run(name, func(t *testing.T) {
			g := loadGolden(t, name)
			m := g.model(t)
			b := g.batch()
			dlogp := g.f32["dlogp"]
			ws := NewWorkspace()
			lossOf := func() float64 {
				lp := m.Forward(ws, b)
				var s float64
				for i, v := range lp {
					s += float64(dlogp[i]) * float64(v)
				}
				return s
			}
			lossOf()
			m.ZeroGrad()
			m.Backward(ws, dlogp)
			rng := rand.New(rand.NewPCG(3, 4))
			const eps = 1e-2
			checked := 0
			for _, p := range m.Params() {
				// The entry with the largest gradient, and a random one.
				imax := 0
				for i, v := range p.Grad {
					if math.Abs(float64(v)) > math.Abs(float64(p.Grad[imax])) {
						imax = i
					}
				}
				for _, i := range []int{imax, rng.IntN(len(p.Data))} {
					orig := p.Data[i]
					p.Data[i] = orig + eps
					up := lossOf()
					p.Data[i] = orig - eps
					down := lossOf()
					p.Data[i] = orig
					fd := (up - down) / (2 * eps)
					an := float64(p.Grad[i])
					if math.Abs(fd-an) > 2e-3+1e-2*math.Abs(an) {
						t.Errorf("%s[%d]: finite difference %.6g, backward %.6g", p.Name, i, fd, an)
					}
					checked++
				}
			}
			t.Logf("%d entries checked", checked)
		})
	}
}

// randomModel is a GPT-2 style initialised model large enough that every parallel pass
// splits its work.
func randomModel(t testing.TB, arch string) *Model {
	cfg := Config{Arch: arch, VocabSize: 301, MaxSeqLen: 160, NLayer: 2, NHead: 4, NKVHead: 4, DModel: 64,
		DFF: 150, NormEps: 1e-5, RopeTheta: 10000, TieEmbeddings: arch == ArchGPT2, BOS: -1, EOS: -1}
	if arch == ArchLlama {
		cfg.NKVHead = 2
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m.InitGPT2Style(11)
	// Larger weights than the init so attention is far from uniform.
	for _, p := range m.Params() {
		if len(p.Shape) == 2 {
			for i := range p.Data {
				p.Data[i] *= 8
			}
		}
	}
	return m
}

func randomBatch(rng *rand.Rand, V int, lens ...int) (Batch, []float32) {
	var seqs [][]int32
	for _, n := range lens {
		s := make([]int32, n)
		for i := range s {
			s[i] = int32(rng.IntN(V))
		}
		seqs = append(seqs, s)
	}
	b := Pack(seqs)
	d := make([]float32, len(b.Tokens))
	for i := range d {
		d[i] = float32(rng.NormFloat64())
	}
	return b, d
}

// Results are bit-identical whatever the number of workers.
func TestDeterministicAcrossWorkers(t *testing.T) {
	for _, arch := range []string{ArchGPT2, ArchLlama} {
		m := randomModel(t, arch)
		rng := rand.New(rand.NewPCG(5, 6))
		b, dlogp := randomBatch(rng, m.Config.VocabSize, 150, 37, 1, 99)
		run := func(procs int) ([]float32, []float32) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
			ws := NewWorkspace()
			lp := append([]float32(nil), m.Forward(ws, b)...)
			m.ZeroGrad()
			m.Backward(ws, dlogp)
			return lp, append([]float32(nil), m.GradArena()...)
		}
		lp1, g1 := run(1)
		lp4, g4 := run(4)
		for i := range lp1 {
			if lp1[i] != lp4[i] {
				t.Fatalf("%s: logp[%d] %v with 1 worker, %v with 4", arch, i, lp1[i], lp4[i])
			}
		}
		for i := range g1 {
			if g1[i] != g4[i] {
				t.Fatalf("%s: grad[%d] %v with 1 worker, %v with 4", arch, i, g1[i], g4[i])
			}
		}
		// Hidden and Logits agree with the training forward.
		ws := NewWorkspace()
		lg := append([]float32(nil), m.Logits(ws, b)...)
		ws2 := NewWorkspace()
		m.Forward(ws2, b)
		if e := relErr(lg, ws2.LastLogits()); e != 0 {
			t.Errorf("%s: Logits differs from Forward's logits by %.3g", arch, e)
		}
		if h := m.Hidden(ws, b); len(h) != len(b.Tokens)*m.Config.DModel {
			t.Errorf("%s: Hidden has %d values", arch, len(h))
		}
	}
}

func TestBadBatches(t *testing.T) {
	g := loadGolden(t, "gpt2")
	m := g.model(t)
	cases := []struct {
		b    Batch
		frag string
	}{
		{Batch{Tokens: []int32{1, 2}, Starts: []int{0, 1}}, "end with len(Tokens)"},
		{Batch{Tokens: []int32{1, 2}, Starts: []int{1, 2}}, "begin with 0"},
		{Batch{Tokens: []int32{1, 2}, Starts: []int{0, 2, 1, 2}}, "decrease"},
		{Batch{Tokens: []int32{1, 67}, Starts: []int{0, 2}}, "outside the vocabulary"},
		{Batch{Tokens: make([]int32, 12), Starts: []int{0, 12}}, "more than"},
	}
	for _, c := range cases {
		err := m.CheckBatch(c.b)
		if err == nil || !strings.Contains(err.Error(), c.frag) {
			t.Errorf("%+v: error %v, want %q", c.b, err, c.frag)
		}
	}
	// An empty batch runs.
	ws := NewWorkspace()
	if lp := m.Forward(ws, Pack(nil)); len(lp) != 0 {
		t.Fatalf("empty batch gave %d logp", len(lp))
	}
	m.Backward(ws, nil)
}

// Empty sequences in a packed batch (and a batch of only empty sequences) are allowed: they
// contribute no positions and change nothing for the others.
func TestEmptySequences(t *testing.T) {
	for _, name := range []string{"gpt2", "llama"} {
		g := loadGolden(t, name)
		m := g.model(t)
		ws := NewWorkspace()
		seqs := seqsOf(g.batch())
		want := append([]float32(nil), m.Forward(ws, Pack(seqs))...)
		withEmpty := append([][]int32{{}}, seqs...)
		withEmpty = append(withEmpty, []int32{})
		got := m.Forward(ws, Pack(withEmpty))
		if e := relErr(got, want); e > 1e-6 || len(got) != len(want) {
			t.Fatalf("%s: logp with empty sequences differ (%d vs %d values, rel err %.3g)", name, len(got), len(want), e)
		}
		m.Backward(ws, make([]float32, len(got)))
		if lp := m.Forward(ws, Pack([][]int32{{}})); len(lp) != 0 {
			t.Fatalf("%s: %d values for an empty batch", name, len(lp))
		}
	}
}
