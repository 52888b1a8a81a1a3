package train

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/cpo-toolchain/cpo/pkg/model"
	"github.com/cpo-toolchain/cpo/pkg/shard"
)

// modelGolden is testdata/golden/train/model.{json,bin} of scripts/reference/train_golden.py.
type modelGolden struct {
	HFConfig json.RawMessage `json:"hf_config"`
	Beta     float64
	Alpha    float64
	Examples []struct {
		Prompt     []int32
		Candidates [][]int32
		Kinds      []string
		Ranking    []int32
	}
	Sref       [][]float64
	Objectives map[string]float64
	Tensors    []struct {
		Name   string
		Shape  []int
		Offset int
	}
	f32 map[string][]float32
}

func loadModelGolden(t *testing.T) *modelGolden {
	t.Helper()
	dir := filepath.Join("..", "..", "testdata", "golden", "train")
	js, err := os.ReadFile(filepath.Join(dir, "model.json"))
	if err != nil {
		t.Fatal(err)
	}
	blob, err := os.ReadFile(filepath.Join(dir, "model.bin"))
	if err != nil {
		t.Fatal(err)
	}
	g := &modelGolden{f32: map[string][]float32{}}
	if err := json.Unmarshal(js, g); err != nil {
		t.Fatal(err)
	}
	for _, ts := range g.Tensors {
		n := 1
		for _, d := range ts.Shape {
			n *= d
		}
		v := make([]float32, n)
		for i := range v {
			v[i] = math.Float32frombits(binary.LittleEndian.Uint32(blob[ts.Offset+4*i:]))
		}
		g.f32[ts.Name] = v
	}
	return g
}

// The whole training path (sequence building, packing, forward, sequence log-probs, objective,
// gradient spreading, backward) against PyTorch autograd through the same tiny GPT-2, for every
// objective, with precomputed reference log-probs.
func TestModelPathGolden(t *testing.T) {
	g := loadModelGolden(t)
	cfg, err := model.ParseHFConfig(g.HFConfig)
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range m.Params() {
		src, ok := g.f32["param/"+p.Name]
		if !ok || len(src) != len(p.Data) {
			t.Fatalf("golden lacks param %s", p.Name)
		}
		copy(p.Data, src)
	}
	var items []*Item
	for i, ex := range g.Examples {
		items = append(items, &Item{ID: "ex", Where: "golden", Prompt: ex.Prompt, Conts: ex.Candidates,
			Kinds: ex.Kinds, Ranking: ex.Ranking, RefLogp: g.Sref[i], RefModel: "golden"})
	}
	if len(g.Objectives) != len(Objectives) {
		t.Fatalf("golden has objectives %v", g.Objectives)
	}
	for _, name := range Objectives {
		its := items
		if name == DPO { // pairwise: candidates 0 and 1
			its = nil
			for _, it := range items {
				c := *it
				c.Conts, c.Kinds, c.RefLogp = it.Conts[:2], it.Kinds[:2], it.RefLogp[:2]
				its = append(its, &c)
			}
		}
		if err := CheckItems(its, name); err != nil {
			t.Fatal(err)
		}
		st := NewStepper(m, nil, Objective{Name: name, Beta: g.Beta, Alpha: g.Alpha})
		m.ZeroGrad()
		// Two micro-batches of one example each must add up to the batch.
		norm := float64(st.MLETokens(its))
		var L float64
		for _, it := range its {
			mb, err := st.Accumulate([]*Item{it}, len(its), norm)
			if err != nil {
				t.Fatal(err)
			}
			L += mb.Loss
		}
		want := g.Objectives[name]
		if math.Abs(L-want) > 2e-5*max(1, math.Abs(want)) {
			t.Errorf("%s: loss %v, torch %v", name, L, want)
		}
		var maxRef, maxErr float64
		for _, p := range m.Params() {
			ref := g.f32["grad/"+name+"/"+p.Name]
			for i, v := range ref {
				maxRef = max(maxRef, math.Abs(float64(v)))
				maxErr = max(maxErr, math.Abs(float64(p.Grad[i]-v)))
			}
		}
		if maxRef == 0 || maxErr > 1e-4*maxRef {
			t.Errorf("%s: max gradient error %.3g (largest gradient %.3g)", name, maxErr, maxRef)
		}
		t.Logf("%s: loss %.6f (torch %.6f), max grad err %.2g of %.2g", name, L, want, maxErr, maxRef)
	}
}

// With pi_theta = pi_ref (a reference model identical to the policy, run over the same packed
// batch) the cpo loss is exactly ln K and the dpo loss ln 2 at step 0.
func TestInitialLoss(t *testing.T) {
	m := tinyModel(t, 5)
	ref := cloneModel(m)
	items := madeUpItems(6, 4, 7)
	for _, tc := range []struct {
		obj  string
		K    int
		want float64
	}{{CPO, 4, math.Log(4)}, {DPO, 2, math.Log(2)}, {CPORank, 4, math.Log(24)}} {
		its := items
		if tc.K == 2 {
			its = nil
			for _, it := range items {
				c := *it
				c.Conts, c.Kinds, c.Ranking = it.Conts[:2], it.Kinds[:2], []int32{0, 1}
				its = append(its, &c)
			}
		}
		st := NewStepper(m, ref, Objective{Name: tc.obj, Beta: 5})
		mb, err := st.Accumulate(its, len(its), 0)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(mb.Loss-tc.want) > 1e-12 {
			t.Errorf("%s: initial loss %.15f, want %.15f", tc.obj, mb.Loss, tc.want)
		}
		if acc := mb.Stats.Map()["rewards/margins"]; acc != 0 {
			t.Errorf("%s: initial margin %v", tc.obj, acc)
		}
	}
	_ = shard.KindGT
}

// Central finite differences of the batch loss through the float32 model against the gradient
// Accumulate leaves in Param.Grad, on the largest-gradient elements of a few tensors.
func TestModelPathFiniteDifferences(t *testing.T) {
	items := madeUpItems(3, 4, 11)
	for _, name := range []string{CPO, CPORank, MLECPO} {
		m := tinyModel(t, 7)
		ref := tinyModel(t, 8)
		st := NewStepper(m, ref, Objective{Name: name, Beta: 1, Alpha: 0.5})
		norm := float64(st.MLETokens(items))
		m.ZeroGrad()
		if _, err := st.Accumulate(items, len(items), norm); err != nil {
			t.Fatal(err)
		}
		lossAt := func() float64 {
			s := NewStepper(m, ref, st.Obj)
			mb, err := s.Accumulate(items, len(items), norm)
			if err != nil {
				t.Fatal(err)
			}
			return mb.Loss
		}
		grads := map[*model.Param][]float32{}
		for _, p := range m.Params() {
			grads[p] = append([]float32(nil), p.Grad...)
		}
		for _, p := range []*model.Param{m.Params()[0], m.Params()[4], m.Params()[len(m.Params())-5]} {
			g := grads[p]
			best := 0
			for i := range g {
				if math.Abs(float64(g[i])) > math.Abs(float64(g[best])) {
					best = i
				}
			}
			const h = 1e-2
			x := p.Data[best]
			p.Data[best] = x + h
			lp := lossAt()
			p.Data[best] = x - h
			lm := lossAt()
			p.Data[best] = x
			fd := (lp - lm) / (2 * h)
			if d := math.Abs(fd - float64(g[best])); d > 0.03*math.Abs(fd)+1e-3 {
				t.Errorf("%s %s[%d]: gradient %v, finite difference %v", name, p.Name, best, g[best], fd)
			}
		}
	}
}
