package optim

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/cpo-toolchain/cpo/pkg/model"
)

func f32s(x []float64) []float32 {
	out := make([]float32, len(x))
	for i, v := range x {
		out[i] = float32(v)
	}
	return out
}

// Several steps with changing lr against torch.optim.AdamW (two groups: decayed, not decayed).
func TestAdamWGolden(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "golden", "train", "adamw.json"))
	if err != nil {
		t.Fatal(err)
	}
	var g struct {
		B1    float64 `json:"beta1"`
		B2    float64 `json:"beta2"`
		E     float64 `json:"eps"`
		WD    float64 `json:"weight_decay"`
		W0    []float64
		B0    []float64
		Steps []struct {
			LR     float64
			GW, GB []float64
			W, B   []float64
		}
	}
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	w := &model.Param{Name: "w", Data: f32s(g.W0), Grad: make([]float32, len(g.W0)), Decay: true}
	bias := &model.Param{Name: "b", Data: f32s(g.B0), Grad: make([]float32, len(g.B0))}
	opt := NewAdamW([]*model.Param{w, bias}, g.B1, g.B2, g.E, g.WD)
	for i, st := range g.Steps {
		copy(w.Grad, f32s(st.GW))
		copy(bias.Grad, f32s(st.GB))
		opt.Step(st.LR)
		for _, c := range []struct {
			p    *model.Param
			want []float64
		}{{w, st.W}, {bias, st.B}} {
			for j, v := range c.want {
				if d := math.Abs(float64(c.p.Data[j]) - v); d > 2e-7*max(1, math.Abs(v)) {
					t.Fatalf("step %d %s[%d] = %v, torch %v", i+1, c.p.Name, j, c.p.Data[j], v)
				}
			}
		}
	}
	if len(g.Steps) < 5 {
		t.Fatalf("only %d golden steps", len(g.Steps))
	}
}

func TestStateRoundTrip(t *testing.T) {
	p := &model.Param{Data: []float32{1, 2, 3}, Grad: []float32{0.5, -1, 2}, Decay: true}
	q := &model.Param{Data: []float32{1, 2, 3}, Grad: []float32{0.5, -1, 2}, Decay: true}
	a := NewAdamW([]*model.Param{p}, 0.9, 0.999, 1e-8, 0.05)
	a.Step(0.1)
	a.Step(0.1)
	var buf bytes.Buffer
	if err := a.Save(&buf); err != nil {
		t.Fatal(err)
	}
	b := NewAdamW([]*model.Param{q}, 0.9, 0.999, 1e-8, 0.05)
	copy(q.Data, p.Data)
	if err := b.Load(bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	if b.Steps() != 2 {
		t.Fatalf("steps %d", b.Steps())
	}
	a.Step(0.1)
	b.Step(0.1)
	for i := range p.Data {
		if p.Data[i] != q.Data[i] {
			t.Fatalf("after reload: %v vs %v", p.Data, q.Data)
		}
	}
	small := NewAdamW([]*model.Param{{Data: []float32{1}, Grad: []float32{1}}}, 0.9, 0.999, 1e-8, 0)
	if err := small.Load(bytes.NewReader(buf.Bytes())); err == nil {
		t.Fatal("loaded a state of another size")
	}
}

func TestClip(t *testing.T) {
	p := &model.Param{Data: make([]float32, 2), Grad: []float32{3, 0}}
	q := &model.Param{Data: make([]float32, 1), Grad: []float32{4}}
	ps := []*model.Param{p, q}
	if n := ClipGradNorm(ps, 10); n != 5 || p.Grad[0] != 3 {
		t.Fatalf("norm %v grad %v", n, p.Grad)
	}
	if n := ClipGradNorm(ps, 1); n != 5 {
		t.Fatalf("norm %v", n)
	}
	if n := GlobalNorm(ps); math.Abs(n-1) > 1e-6 {
		t.Fatalf("clipped norm %v", n)
	}
	big := &model.Param{Grad: make([]float32, 3*normChunk+5)}
	for i := range big.Grad {
		big.Grad[i] = 1
	}
	if n := GlobalNorm([]*model.Param{big}); math.Abs(n-math.Sqrt(float64(len(big.Grad)))) > 1e-9 {
		t.Fatalf("norm %v", n)
	}
}

func TestSchedule(t *testing.T) {
	const peak = 1e-3
	c := Schedule{Kind: Constant, Peak: peak, Warmup: 4}
	if c.LR(0) != peak/4 || c.LR(3) != peak || c.LR(100) != peak {
		t.Fatalf("constant %v %v %v", c.LR(0), c.LR(3), c.LR(100))
	}
	l := Schedule{Kind: Linear, Peak: peak, Warmup: 10, Total: 110}
	if l.LR(10) != peak || math.Abs(l.LR(60)-peak/2) > 1e-15 || l.LR(110) != 0 || l.LR(200) != 0 {
		t.Fatalf("linear %v %v %v", l.LR(10), l.LR(60), l.LR(110))
	}
	cs := Schedule{Kind: Cosine, Peak: peak, Total: 100, MinRatio: 0.1}
	if cs.LR(0) != peak || math.Abs(cs.LR(50)-peak*0.55) > 1e-15 || math.Abs(cs.LR(100)-peak*0.1) > 1e-15 {
		t.Fatalf("cosine %v %v %v", cs.LR(0), cs.LR(50), cs.LR(100))
	}
	for _, bad := range []Schedule{{Kind: "step"}, {Kind: Cosine, Peak: 1}, {Kind: Constant, Peak: -1}} {
		if bad.Validate() == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

// StepScaled with ClipScale's factor gives the weights and moments of ClipGradNorm then Step,
// bit for bit, and leaves the gradients as they were.
func TestStepScaledEqualsClipThenStep(t *testing.T) {
	mk := func() []*model.Param {
		r := rand.New(rand.NewPCG(3, 4))
		var ps []*model.Param
		for _, n := range []int{5, 70000, 33} {
			p := &model.Param{Data: make([]float32, n), Grad: make([]float32, n), Decay: n != 33}
			for i := range p.Data {
				p.Data[i] = float32(r.NormFloat64())
				p.Grad[i] = float32(r.NormFloat64())
			}
			ps = append(ps, p)
		}
		return ps
	}
	a, b := mk(), mk()
	oa, ob := NewAdamW(a, 0.9, 0.999, 1e-8, 0.05), NewAdamW(b, 0.9, 0.999, 1e-8, 0.05)
	for step := 0; step < 3; step++ {
		na := ClipGradNorm(a, 1)
		oa.Step(1e-3)
		nb := GlobalNorm(b)
		g0 := append([]float32(nil), b[1].Grad...)
		ob.StepScaled(1e-3, ClipScale(nb, 1))
		if na != nb || ClipScale(nb, 1) == 1 {
			t.Fatalf("norms %v, %v (clipping must be active)", na, nb)
		}
		for i := range a {
			for j := range a[i].Data {
				if math.Float32bits(a[i].Data[j]) != math.Float32bits(b[i].Data[j]) {
					t.Fatalf("step %d param %d[%d]: %v vs %v", step, i, j, a[i].Data[j], b[i].Data[j])
				}
			}
		}
		if !slices.Equal(g0, b[1].Grad) {
			t.Fatal("StepScaled wrote the gradients")
		}
		// The clipped gradients of a are now scaled; start the next step from equal ones.
		for i := range a {
			copy(a[i].Grad, b[i].Grad)
		}
	}
	if ClipScale(0.5, 1) != 1 || ClipScale(5, 0) != 1 {
		t.Fatal("ClipScale clips below maxNorm or with clipping off")
	}
}
