package model

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// golden is one case written by scripts/reference/make_golden.py.
type golden struct {
	cfg     Config
	f32     map[string][]float32
	i32     map[string][]int32
	names   []string // param names in file order
	seqLens []int
}

func loadGolden(t testing.TB, name string) *golden {
	t.Helper()
	dir := filepath.Join("..", "..", "testdata", "golden", "model")
	js, err := os.ReadFile(filepath.Join(dir, name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	blob, err := os.ReadFile(filepath.Join(dir, name+".bin"))
	if err != nil {
		t.Fatal(err)
	}
	var idx struct {
		HFConfig json.RawMessage `json:"hf_config"`
		SeqLens  []int           `json:"seq_lens"`
		Tensors  []struct {
			Name   string `json:"name"`
			DType  string `json:"dtype"`
			Shape  []int  `json:"shape"`
			Offset int    `json:"offset"`
		} `json:"tensors"`
	}
	if err := json.Unmarshal(js, &idx); err != nil {
		t.Fatalf("%s.json: %v", name, err)
	}
	g := &golden{f32: map[string][]float32{}, i32: map[string][]int32{}, seqLens: idx.SeqLens}
	if g.cfg, err = ParseHFConfig(idx.HFConfig); err != nil {
		t.Fatalf("%s.json hf_config: %v", name, err)
	}
	for _, ts := range idx.Tensors {
		n := 1
		for _, d := range ts.Shape {
			n *= d
		}
		if ts.Offset < 0 || ts.Offset+4*n > len(blob) {
			t.Fatalf("%s.bin: tensor %s [%d, +%d) outside %d bytes", name, ts.Name, ts.Offset, 4*n, len(blob))
		}
		raw := blob[ts.Offset : ts.Offset+4*n]
		switch ts.DType {
		case "f32":
			v := make([]float32, n)
			for i := range v {
				v[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
			}
			g.f32[ts.Name] = v
		case "i32":
			v := make([]int32, n)
			for i := range v {
				v[i] = int32(binary.LittleEndian.Uint32(raw[4*i:]))
			}
			g.i32[ts.Name] = v
		default:
			t.Fatalf("%s: tensor %s has dtype %q", name, ts.Name, ts.DType)
		}
		if len(ts.Name) > 6 && ts.Name[:6] == "param/" {
			g.names = append(g.names, ts.Name[6:])
		}
	}
	return g
}

// model builds the golden model with its weights, checking names and shapes.
func (g *golden) model(t testing.TB) *Model {
	t.Helper()
	m, err := New(g.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Params()) != len(g.names) {
		t.Fatalf("model has %d params, golden %d", len(m.Params()), len(g.names))
	}
	for i, p := range m.Params() {
		if p.Name != g.names[i] {
			t.Fatalf("param %d: model %s, golden %s", i, p.Name, g.names[i])
		}
		d := g.f32["param/"+p.Name]
		if len(d) != len(p.Data) {
			t.Fatalf("%s: %d values, golden %d", p.Name, len(p.Data), len(d))
		}
		copy(p.Data, d)
	}
	return m
}

func (g *golden) batch() Batch {
	s := g.i32["starts"]
	b := Batch{Tokens: g.i32["tokens"], Starts: make([]int, len(s))}
	for i, v := range s {
		b.Starts[i] = int(v)
	}
	return b
}

// relErr is max|a-b| / max|b| (the max-norm relative error), or +Inf on length mismatch.
func relErr(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	var d, n float64
	for i := range a {
		d = math.Max(d, math.Abs(float64(a[i])-float64(b[i])))
		n = math.Max(n, math.Abs(float64(b[i])))
	}
	if n == 0 {
		return d
	}
	return d / n
}

// goldenTol is the bound on relErr for every compared tensor.
const goldenTol = 1e-5

// TestGolden runs every case with the default and a small attention row block, with the
// attention probabilities kept by the forward pass and (budget 0) recomputed by the
// backward pass.
func TestGolden(t *testing.T) {
	defer func(rb, pb int) { attnRowBlock, attnProbBudget = rb, pb }(attnRowBlock, attnProbBudget)
	for _, pb := range []int{attnProbBudget, 0} {
		attnProbBudget = pb
		for _, rb := range []int{attnRowBlock, 5} { // 5: several causal row blocks, ragged ends
			attnRowBlock = rb
			for _, name := range goldenCases {
				testGolden(t, fmt.Sprintf("%s/rowblock%d/probs%v", name, rb, pb > 0), name)
			}
		}
	}
}

// testGolden checks Forward, Backward and Logits of golden case name against PyTorch
// (subtest sub).
func testGolden(t *testing.T, sub, name string) {
	t.Run(sub, func(t *testing.T) {
		g := loadGolden(t, name)
		m := g.model(t)
		ws := NewWorkspace()
		b := g.batch()
		// Twice: the second pass reuses the workspace and must give the same result.
		for rep := 0; rep < 2; rep++ {
			logp := m.Forward(ws, b)
			worst, worstName := 0.0, ""
			check := func(what string, got, want []float32) {
				e := relErr(got, want)
				if !(e <= goldenTol) {
					t.Errorf("rep %d %s: relative error %.3g > %g", rep, what, e, goldenTol)
				}
				if e > worst {
					worst, worstName = e, what
				}
			}
			check("logp", logp, g.f32["logp"])
			check("logits", ws.LastLogits(), g.f32["logits"])
			mask := g.f32["mask"]
			var loss float64
			var cnt int
			for i, v := range mask {
				if v != 0 {
					loss -= float64(logp[i])
					cnt++
				}
			}
			check("loss", []float32{float32(loss / float64(cnt))}, g.f32["loss"])
			m.ZeroGrad()
			dlogp := g.f32["dlogp"]
			if rep == 1 {
				// Negligible instead of zero gradients: every row goes through the lm
				// head, which takes Backward's uncompacted path.
				dlogp = append([]float32(nil), dlogp...)
				for i, v := range dlogp {
					if v == 0 {
						dlogp[i] = 1e-30
					}
				}
			}
			m.Backward(ws, dlogp)
			for _, p := range m.Params() {
				check("grad "+p.Name, p.Grad, g.f32["grad/"+p.Name])
			}
			if rep == 0 {
				t.Logf("largest relative error %.3g (%s)", worst, worstName)
			}
		}
		// Inference paths agree with the training forward.
		lg := m.Logits(NewWorkspace(), b)
		if e := relErr(lg, g.f32["logits"]); e > goldenTol {
			t.Errorf("Logits: relative error %.3g", e)
		}
	})
}

func ExamplePack() {
	b := Pack([][]int32{{5, 6, 7}, {8}, {9, 10}})
	fmt.Println(b.Tokens, b.Starts)
	// Output: [5 6 7 8 9 10] [0 3 4 6]
}
