package simd

import (
	"math"
	"math/rand/v2"
	"testing"
)

// withAsm runs f with the assembly kernels on (skipping where the CPU has none) and
// restores the previous setting.
func withAsm(t *testing.T, f func()) {
	t.Helper()
	if !hasAsm {
		t.Skip("no AVX-512 on this CPU")
	}
	prev := useAsm
	useAsm = true
	defer func() { useAsm = prev }()
	f()
}

// ulps is the distance between a and b in units in the last place (both finite or equal
// infinities, same sign or zero).
func ulps(a, b float32) int64 {
	if a == b {
		return 0
	}
	ia, ib := int64(math.Float32bits(a)), int64(math.Float32bits(b))
	if ia < 0 || ib < 0 || math.IsInf(float64(a), 0) || math.IsInf(float64(b), 0) {
		return math.MaxInt64
	}
	if d := ia - ib; d < 0 {
		return -d
	} else {
		return d
	}
}

// TestExpULP sweeps float32 inputs over the whole range where e^x is neither 0 nor +Inf
// (every 509th bit pattern, both signs) and checks the vector e^x against the correctly
// rounded float32 of math.Exp within 2 ULP, and the special inputs exactly.
func TestExpULP(t *testing.T) {
	withAsm(t, func() {
		var xs []float32
		for b := uint32(0); b <= 0x42b20000; b += 509 { // 0 .. 89
			xs = append(xs, math.Float32frombits(b))
		}
		for b := uint32(0x80000000); b <= 0xc2d20000; b += 509 { // -0 .. -105
			xs = append(xs, math.Float32frombits(b))
		}
		for x := float32(-110); x < 95; x += 0.001 {
			xs = append(xs, x)
		}
		got := make([]float32, len(xs))
		ExpShift(got, xs, 0, 1)
		worst, at, val := int64(0), float32(0), float32(0)
		for i, x := range xs {
			want := Expf(x)
			if d := ulps(got[i], want); d > worst {
				worst, at, val = d, x, got[i]
			}
		}
		if worst > 2 {
			t.Fatalf("e^%g off by %d ULP (got %g want %g)", at, worst, val, Expf(at))
		}
		t.Logf("worst error %d ULP at x = %g over %d inputs", worst, at, len(xs))

		inf := float32(math.Inf(1))
		special := []float32{inf, -inf, float32(math.NaN()), 0, 1e30, -1e30, 88.72, 88.73, -87.3, -103.9, -104.5, math.MaxFloat32, -math.MaxFloat32}
		out := make([]float32, len(special))
		ExpShift(out, special, 0, 1)
		for i, x := range special {
			want := Expf(x)
			if math.IsNaN(float64(want)) != math.IsNaN(float64(out[i])) || (!math.IsNaN(float64(want)) && ulps(out[i], want) > 2) {
				t.Errorf("e^%g = %g, want %g", x, out[i], want)
			}
		}
	})
}

func randVec(rng *rand.Rand, n int, scale float32) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = scale * float32(rng.NormFloat64())
	}
	return v
}

// close32 reports whether a and b agree to rel relative error plus 1e-7 absolute (the
// float32 rounding of intermediate terms near a cancellation, such as 1+g*(1-s) in the
// SwiGLU gradient or e^(-2u) at large |u| in GELU, is not small relative to the result).
func close32(a, b float32, rel float64) bool {
	if math.IsNaN(float64(a)) || math.IsNaN(float64(b)) {
		return math.IsNaN(float64(a)) && math.IsNaN(float64(b))
	}
	return math.Abs(float64(a)-float64(b)) <= rel*math.Abs(float64(b))+1e-7
}

// lengths covers the empty slice, every tail length and several full vectors.
var lengths = []int{0, 1, 7, 15, 16, 17, 31, 32, 33, 63, 65, 129, 1000, 8195}

func TestKernelsMatchReference(t *testing.T) {
	withAsm(t, func() {
		rng := rand.New(rand.NewPCG(3, 4))
		for _, n := range lengths {
			x := randVec(rng, n+3, 4)[3:] // unaligned start
			y := randVec(rng, n, 2)
			d := randVec(rng, n, 1)

			if n > 0 {
				x[rng.IntN(n)] = 9 // a unique maximum, anywhere including the tail
			}
			if got, want := Max(x), MaxRef(x); got != want {
				t.Fatalf("n=%d: Max %g, reference %g", n, got, want)
			}

			a, b := make([]float32, n+1), make([]float32, n+1)
			a[n], b[n] = 42, 42 // the element after the end must stay untouched
			ExpShift(a, x, 1.5, -0.25)
			ExpShiftRef(b, x, 1.5, -0.25)
			checkVec(t, "ExpShift", n, a, b, 5e-7)

			s1 := ExpShiftSum(a, x, 2)
			s2 := ExpShiftSumRef(b, x, 2)
			checkVec(t, "ExpShiftSum values", n, a, b, 5e-7)
			if math.Abs(s1-s2) > 1e-6*math.Abs(s2) {
				t.Fatalf("n=%d: ExpShiftSum %g, reference %g", n, s1, s2)
			}
			if s3 := ExpShiftSum(nil, x, 2); s3 != s1 {
				t.Fatalf("n=%d: ExpShiftSum without dst %g, with %g", n, s3, s1)
			}

			GELU(a, x)
			GELURef(b, x)
			checkVec(t, "GELU", n, a, b, 1e-6)
			GELUBackward(a, x, d)
			GELUBackwardRef(b, x, d)
			checkVec(t, "GELUBackward", n, a, b, 2e-6)

			SwiGLU(a[:n], x, y)
			SwiGLURef(b[:n], x, y)
			checkVec(t, "SwiGLU", n, a, b, 1e-6)
			a2, b2 := make([]float32, n+1), make([]float32, n+1)
			a2[n], b2[n] = 42, 42
			SwiGLUBackward(a, a2, x, y, d)
			SwiGLUBackwardRef(b, b2, x, y, d)
			checkVec(t, "SwiGLUBackward dgate", n, a, b, 2e-6)
			checkVec(t, "SwiGLUBackward dup", n, a2, b2, 1e-6)
		}
	})
}

func checkVec(t *testing.T, name string, n int, got, want []float32, rel float64) {
	t.Helper()
	for i := range got {
		if !close32(got[i], want[i], rel) {
			t.Fatalf("%s n=%d: element %d is %g, reference %g", name, n, i, got[i], want[i])
		}
	}
}

// TestKernelsInPlace checks the documented aliasing: dst may be the input.
func TestKernelsInPlace(t *testing.T) {
	withAsm(t, func() {
		rng := rand.New(rand.NewPCG(5, 6))
		x := randVec(rng, 100, 3)
		d := randVec(rng, 100, 1)
		want := make([]float32, 100)
		GELURef(want, x)
		got := append([]float32(nil), x...)
		GELU(got, got)
		checkVec(t, "GELU in place", 100, got, want, 1e-6)
		GELUBackwardRef(want, x, d)
		got = append(got[:0], d...)
		GELUBackward(got, x, got)
		checkVec(t, "GELUBackward in place", 100, got, want, 2e-6)
		ExpShiftRef(want, x, 1, 3)
		got = append(got[:0], x...)
		ExpShift(got, got, 1, 3)
		checkVec(t, "ExpShift in place", 100, got, want, 5e-7)
	})
}

// TestExtremes: GELU and SwiGLU saturate cleanly (no NaN from Inf/Inf) far out.
func TestExtremes(t *testing.T) {
	withAsm(t, func() {
		x := []float32{-1e4, -200, -60, -10, 0, 10, 60, 200, 1e4}
		d := make([]float32, len(x))
		for i := range d {
			d[i] = 1
		}
		for _, f := range []struct {
			name      string
			fast, ref func(dst []float32)
		}{
			{"GELU", func(o []float32) { GELU(o, x) }, func(o []float32) { GELURef(o, x) }},
			{"GELUBackward", func(o []float32) { GELUBackward(o, x, d) }, func(o []float32) { GELUBackwardRef(o, x, d) }},
			{"SwiGLU", func(o []float32) { SwiGLU(o, x, d) }, func(o []float32) { SwiGLURef(o, x, d) }},
		} {
			a, b := make([]float32, len(x)), make([]float32, len(x))
			f.fast(a)
			f.ref(b)
			checkVec(t, f.name, len(x), a, b, 1e-6)
		}
	})
}

func TestSetAsm(t *testing.T) {
	prev := useAsm
	defer func() { useAsm = prev }()
	if SetAsm(false) || Asm() {
		t.Fatal("SetAsm(false) left the assembly on")
	}
	if SetAsm(true) != hasAsm {
		t.Fatal("SetAsm(true) disagrees with the CPU features")
	}
}

func BenchmarkExpShiftSum8192(b *testing.B) {
	x := randVec(rand.New(rand.NewPCG(1, 1)), 8192, 3)
	b.SetBytes(4 * 8192)
	for i := 0; i < b.N; i++ {
		ExpShiftSum(nil, x, 1)
	}
}

func BenchmarkGELUBackward(b *testing.B) {
	x := randVec(rand.New(rand.NewPCG(1, 1)), 8192, 3)
	d := randVec(rand.New(rand.NewPCG(1, 2)), 8192, 1)
	o := make([]float32, 8192)
	b.SetBytes(4 * 8192)
	for i := 0; i < b.N; i++ {
		GELUBackward(o, x, d)
	}
}

// TestAdamWMatchesReference runs the AdamW kernel against AdamWRef, bit for bit, on every
// tail length, with and without decay, with and without a gradient scale (0 = 1), including
// zero gradients and moments; a scaled update equals scaling g in place first, and g itself
// is left as it was.
func TestAdamWMatchesReference(t *testing.T) {
	withAsm(t, func() {
		r := rand.New(rand.NewPCG(7, 8))
		for k, decay := range []float32{1, 1 - 1e-3*0.1, 1, 1 - 1e-3*0.1} {
			p := &AdamWParams{Decay: decay, B1: 0.9, B2: 0.999, A1: 1 - float32(0.9), A2: 1 - float32(0.999),
				Bc2Sqrt: float32(math.Sqrt(1 - math.Pow(0.999, 3))), Eps: 1e-8, StepSize: float32(1e-3 / (1 - math.Pow(0.9, 3)))}
			if k >= 2 {
				p.GradScale = 0.3721 // clipping
			}
			for _, n := range append([]int{0, 1, 7, 15, 16, 17, 31, 33, 63, 65, 129}, 1000) {
				w, g, m, v := make([]float32, n), make([]float32, n), make([]float32, n), make([]float32, n)
				for i := range w {
					w[i] = float32(r.NormFloat64())
					if i%5 != 0 {
						g[i] = float32(r.NormFloat64() * 1e-2)
					}
					if i%3 != 0 {
						m[i] = float32(r.NormFloat64() * 1e-2)
						v[i] = float32(r.Float64() * 1e-4)
					}
				}
				w2, g2, m2, v2 := append([]float32(nil), w...), append([]float32(nil), g...), append([]float32(nil), m...), append([]float32(nil), v...)
				w0, m0, v0 := append([]float32(nil), w...), append([]float32(nil), m...), append([]float32(nil), v...)
				// Guard elements past n must stay untouched.
				guard := func(s []float32) []float32 { return append(s, 42)[:len(s)] }
				w, m, v = guard(w), guard(m), guard(v)
				g0 := append([]float32(nil), g...)
				AdamW(w, g, m, v, p)
				AdamWRef(w2, g2, m2, v2, p)
				for i := range g {
					if math.Float32bits(g[i]) != math.Float32bits(g0[i]) || math.Float32bits(g2[i]) != math.Float32bits(g0[i]) {
						t.Fatalf("n=%d: the gradient was written at %d", n, i)
					}
				}
				if p.GradScale != 0 {
					// The same as scaling the gradient first and updating with no scale.
					w3, g3, m3, v3 := append([]float32(nil), w0...), append([]float32(nil), g0...), append([]float32(nil), m0...), append([]float32(nil), v0...)
					for i := range g3 {
						g3[i] *= p.GradScale
					}
					q := *p
					q.GradScale = 0
					AdamWRef(w3, g3, m3, v3, &q)
					for i := range w3 {
						if math.Float32bits(w3[i]) != math.Float32bits(w2[i]) || math.Float32bits(m3[i]) != math.Float32bits(m2[i]) {
							t.Fatalf("n=%d i=%d: scaled update %v, pre-scaled %v", n, i, w2[i], w3[i])
						}
					}
				}
				for i := range w {
					if math.Float32bits(w[i]) != math.Float32bits(w2[i]) || math.Float32bits(m[i]) != math.Float32bits(m2[i]) || math.Float32bits(v[i]) != math.Float32bits(v2[i]) {
						t.Fatalf("decay %v n=%d i=%d: asm (w %v m %v v %v), ref (w %v m %v v %v)", decay, n, i, w[i], m[i], v[i], w2[i], m2[i], v2[i])
					}
				}
				if n > 0 && (w[:n+1][n] != 42 || m[:n+1][n] != 42 || v[:n+1][n] != 42) {
					t.Fatalf("n=%d: wrote past the end", n)
				}
			}
		}
	})
}
