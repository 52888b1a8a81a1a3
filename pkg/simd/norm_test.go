package simd

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestNormKernelsMatchReference runs every norm row kernel against its Go reference on
// all tail lengths, with and without bias and mean, and checks the element after the end
// is never written.
func TestNormKernelsMatchReference(t *testing.T) {
	withAsm(t, func() {
		rng := rand.New(rand.NewPCG(8, 9))
		for _, n := range lengths {
			x := randVec(rng, n+1, 2)[1:] // unaligned
			for i := range x {
				x[i] += 0.5 // a nonzero mean
			}
			w, b, d := randVec(rng, n, 1), randVec(rng, n, 1), randVec(rng, n, 1)
			const m, r = float32(0.45), float32(1.7)

			a, c := randVec(rng, n+1, 1), make([]float32, n+1)
			copy(c, a)
			Add(a[:n], d)
			AddRef(c[:n], d)
			checkVec(t, "Add", n, a, c, 0)

			if s, ref := Sum64(x), sumDevRef(x, 0, false); math.Abs(s-ref) > 1e-12*(1+math.Abs(ref)) {
				t.Fatalf("n=%d: Sum64 %g, reference %g", n, s, ref)
			}
			if s, ref := SumSqDev64(x, 0.45), sumDevRef(x, 0.45, true); math.Abs(s-ref) > 1e-12*(1+math.Abs(ref)) {
				t.Fatalf("n=%d: SumSqDev64 %g, reference %g", n, s, ref)
			}

			for _, bias := range [][]float32{b, nil} {
				a[n], c[n] = 42, 42
				NormRow(a, x, w, bias, m, r)
				NormRowRef(c, x, w, bias, m, r)
				checkVec(t, "NormRow", n, a, c, 1e-6)
			}

			sd, sdn := NormBackwardSums(x, w, d, m, r)
			rsd, rsdn := NormBackwardSumsRef(x, w, d, m, r)
			if math.Abs(sd-rsd) > 1e-9*(1+math.Abs(rsd)) || math.Abs(sdn-rsdn) > 1e-5*(1+math.Abs(rsdn)) {
				t.Fatalf("n=%d: NormBackwardSums (%g, %g), reference (%g, %g)", n, sd, sdn, rsd, rsdn)
			}

			di := randVec(rng, n+1, 1)
			copy(c, di)
			copy(a, di)
			NormBackwardApply(a, x, w, d, m, r, 0.3, -0.2)
			NormBackwardApplyRef(c, x, w, d, m, r, 0.3, -0.2)
			checkVecMax(t, "NormBackwardApply", n, a, c, 1e-6)

			sp := randVec(rng, n, 1)
			copy(a, di)
			copy(c, di)
			SoftmaxBackward(sp, a)
			SoftmaxBackwardRef(sp, c)
			checkVecMax(t, "SoftmaxBackward", n, a, c, 1e-6)

			copy(a, di)
			copy(c, di)
			NormWeightGrad(a[:n], d, x, m, r)
			NormWeightGradRef(c[:n], d, x, m, r)
			checkVecMax(t, "NormWeightGrad", n, a, c, 1e-6)
		}
	})
}

// checkVecMax compares in the max norm: max|got-want| <= tol*max|want| (accumulating
// kernels cancel in single elements, so an element-wise relative bound is too strict).
func checkVecMax(t *testing.T, name string, n int, got, want []float32, tol float64) {
	t.Helper()
	var d, m float64
	for i := range want {
		d = math.Max(d, math.Abs(float64(got[i])-float64(want[i])))
		m = math.Max(m, math.Abs(float64(want[i])))
		if math.IsNaN(float64(got[i])) {
			t.Fatalf("%s n=%d: element %d is NaN", name, n, i)
		}
	}
	if d > tol*m {
		t.Fatalf("%s n=%d: max error %.3g over max %.3g", name, n, d, m)
	}
}
