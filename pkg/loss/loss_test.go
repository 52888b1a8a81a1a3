package loss

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// At pi_theta = pi_ref every reward is 0: the CPO loss is exactly ln K, the ranked loss ln K!,
// DPO ln 2.
func TestLossAtReference(t *testing.T) {
	for _, K := range []int{1, 2, 3, 12, 40} {
		s := make([]float64, K)
		for j := range s {
			s[j] = -3.7 * float64(j+1)
		}
		if got := CPO(s, s, 5, nil); got != math.Log(float64(K)) {
			t.Errorf("K=%d: CPO at reference = %v, want ln K = %v", K, got, math.Log(float64(K)))
		}
		tau := make([]int32, K)
		lf := 0.0
		for j := range tau {
			tau[j] = int32(K - 1 - j)
			lf += math.Log(float64(j + 1))
		}
		if got := RankedCPO(s, s, tau, 5, nil); math.Abs(got-lf) > 1e-12 {
			t.Errorf("K=%d: ranked CPO at reference = %v, want ln K! = %v", K, got, lf)
		}
	}
	if L, _, _ := DPO(-4, -9, -4, -9, 5); L != math.Log(2) {
		t.Errorf("DPO at reference = %v, want ln 2", L)
	}
}

func TestDPOEqualsCPOAtK2(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 200; i++ {
		s := []float64{-20 + 10*r.NormFloat64(), -20 + 10*r.NormFloat64()}
		sref := []float64{-20 + 10*r.NormFloat64(), -20 + 10*r.NormFloat64()}
		beta := 0.01 + 10*r.Float64()
		g := make([]float64, 2)
		gr := make([]float64, 2)
		Lc := CPO(s, sref, beta, g)
		Lr := RankedCPO(s, sref, []int32{0, 1}, beta, gr)
		Ld, gw, gl := DPO(s[0], s[1], sref[0], sref[1], beta)
		tol := 1e-12 * max(1, math.Abs(Ld))
		if math.Abs(Lc-Ld) > tol || math.Abs(Lr-Ld) > tol {
			t.Fatalf("case %d: cpo %v ranked %v dpo %v", i, Lc, Lr, Ld)
		}
		for j, want := range []float64{gw, gl} {
			if math.Abs(g[j]-want) > 1e-12*beta || math.Abs(gr[j]-want) > 1e-12*beta {
				t.Fatalf("case %d: grad %d cpo %v ranked %v dpo %v", i, j, g[j], gr[j], want)
			}
		}
	}
}

// Central finite differences of every objective against its analytic gradient.
func TestGradientsFiniteDifferences(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, K := range []int{2, 5, 12} {
		s, sref := make([]float64, K), make([]float64, K)
		for j := range s {
			s[j], sref[j] = -10+3*r.NormFloat64(), -10+3*r.NormFloat64()
		}
		beta := 0.7
		perm := r.Perm(K)
		tau := make([]int32, K)
		for i, p := range perm {
			tau[i] = int32(p)
		}
		fns := map[string]func(s, g []float64) float64{
			"cpo":      func(s, g []float64) float64 { return CPO(s, sref, beta, g) },
			"cpo-rank": func(s, g []float64) float64 { return RankedCPO(s, sref, tau, beta, g) },
		}
		for name, f := range fns {
			g := make([]float64, K)
			f(s, g)
			for j := range s {
				h := 1e-5
				sp := append([]float64(nil), s...)
				sm := append([]float64(nil), s...)
				sp[j] += h
				sm[j] -= h
				fd := (f(sp, nil) - f(sm, nil)) / (2 * h)
				if math.Abs(fd-g[j]) > 1e-7 {
					t.Errorf("%s K=%d: dL/ds[%d] = %v, finite difference %v", name, K, j, g[j], fd)
				}
			}
		}
	}
}

// Huge rewards neither overflow nor produce NaN.
func TestStable(t *testing.T) {
	s := []float64{-1e4, -10, -5e3}
	sref := []float64{-10, -1e4, -10}
	g := make([]float64, 3)
	for _, L := range []float64{CPO(s, sref, 5, g), RankedCPO(s, sref, []int32{0, 2, 1}, 5, g)} {
		if !Finite(L) {
			t.Fatalf("loss %v", L)
		}
	}
	for _, v := range g {
		if !Finite(v) {
			t.Fatalf("grad %v", g)
		}
	}
	if L, gw, _ := DPO(-1e4, 0, 0, 0, 5); !Finite(L) || !Finite(gw) || math.Abs(L-5e4) > 1e-6 {
		t.Fatalf("dpo %v %v", L, gw)
	}
}

// Goldens of scripts/reference/train_golden.py: autograd of the paper's equations in PyTorch.
func TestLossGolden(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "golden", "train", "loss.json"))
	if err != nil {
		t.Fatal(err)
	}
	var gold struct {
		Cases []struct {
			Objective string
			Beta      float64
			S, Sref   []float64
			Ranking   []int32
			Loss      float64
			Grad      []float64
		}
	}
	if err := json.Unmarshal(b, &gold); err != nil {
		t.Fatal(err)
	}
	if len(gold.Cases) < 10 {
		t.Fatalf("only %d golden cases", len(gold.Cases))
	}
	for i, c := range gold.Cases {
		g := make([]float64, len(c.S))
		var L float64
		switch c.Objective {
		case "cpo":
			L = CPO(c.S, c.Sref, c.Beta, g)
		case "cpo-rank":
			L = RankedCPO(c.S, c.Sref, c.Ranking, c.Beta, g)
		case "dpo":
			L, g[0], g[1] = DPO(c.S[0], c.S[1], c.Sref[0], c.Sref[1], c.Beta)
		default:
			t.Fatalf("case %d: objective %q", i, c.Objective)
		}
		if math.Abs(L-c.Loss) > 1e-10*max(1, math.Abs(c.Loss)) {
			t.Errorf("case %d %s K=%d: loss %v, torch %v", i, c.Objective, len(c.S), L, c.Loss)
		}
		for j := range g {
			if math.Abs(g[j]-c.Grad[j]) > 1e-10*max(1, c.Beta) {
				t.Errorf("case %d %s: grad[%d] %v, torch %v", i, c.Objective, j, g[j], c.Grad[j])
			}
		}
	}
}

func TestMLE(t *testing.T) {
	logp := []float32{-1, -2, -3, 0}
	mask := []bool{false, true, true, false}
	d := make([]float32, 4)
	if L := MLE(logp, mask, 4, d); L != 5.0/4 {
		t.Fatalf("loss %v", L)
	}
	if d[0] != 0 || d[1] != -0.25 || d[2] != -0.25 || d[3] != 0 {
		t.Fatalf("dlogp %v", d)
	}
}

func TestStats(t *testing.T) {
	var st Stats
	// Rewards beta*(s-sref) with beta 2: gt 2, bn -2, mn 0.
	st.Add([]float64{-1, -3, -5}, []float64{-2, -2, -5}, []string{"gt", "bn", "mn"}, 2)
	// gt 0, tn 2: gt not best.
	st.Add([]float64{-4, -1}, []float64{-4, -2}, []string{"gt", "tn"}, 2)
	m := st.Map()
	want := map[string]float64{
		MetricRewardsChosen:     1,
		MetricRewardsRejected:   (-1 + 2) / 2.0,
		MetricRewardsMargins:    (3 + -2) / 2.0,
		MetricRewardsAccuracies: 0.5,
		MetricLogpsChosen:       -2.5,
		MetricLogpsRejected:     (-4 + -1) / 2.0,
		"rewards/margins/bn":    4,
		"rewards/margins/mn":    2,
		"rewards/margins/tn":    -2,
	}
	for k, v := range want {
		if math.Abs(m[k]-v) > 1e-12 {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
	if len(m) != len(want) {
		t.Errorf("metrics %v", m)
	}
}
