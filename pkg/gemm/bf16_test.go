package gemm

import (
	"math"
	"math/rand"
	"testing"
)

func TestBF16Conversion(t *testing.T) {
	cases := []struct {
		in   float32
		want uint16
	}{
		{1, 0x3f80},
		{-2, 0xc000},
		{1 + 1.0/256, 0x3f80},        // halfway: ties to even (down)
		{1 + 3.0/256, 0x3f82},        // halfway: ties to even (up)
		{1 + 1.0/256 + 1e-6, 0x3f81}, // just above halfway
		{float32(math.Inf(1)), 0x7f80},
		{math.MaxFloat32, 0x7f80}, // rounds to +Inf
		{float32(math.Copysign(0, -1)), 0x8000},
	}
	for _, c := range cases {
		var got [1]uint16
		BF16FromFloat32(got[:], []float32{c.in})
		if got[0] != c.want {
			t.Errorf("BF16FromFloat32(%v) = %#04x, want %#04x", c.in, got[0], c.want)
		}
	}
	var nan [1]uint16
	BF16FromFloat32(nan[:], []float32{float32(math.NaN())})
	if f := bf16ToF32(nan[0]); !math.IsNaN(float64(f)) {
		t.Errorf("NaN became %v", f)
	}
	// Every bfloat16 survives the round trip float32 -> bfloat16 unchanged.
	w := make([]float32, 1<<16)
	all := make([]uint16, 1<<16)
	for i := range all {
		all[i] = uint16(i)
	}
	BF16ToFloat32(w, all)
	back := make([]uint16, len(w))
	BF16FromFloat32(back, w)
	for i := range all {
		if f := w[i]; !math.IsNaN(float64(f)) && back[i] != all[i] {
			t.Fatalf("round trip of %#04x gave %#04x", all[i], back[i])
		}
	}
}

// TestSgemmBF16 checks SgemmBF16 (few-row kernels for M ≤ 16, widened blocks past that, with
// N past one block) against SgemmBF16Ref on every implementation; tolerance as in check.
func TestSgemmBF16(t *testing.T) {
	defer SetThreads(0)
	old := Impl()
	defer SetImpl(old)
	r := rand.New(rand.NewSource(9))
	for _, th := range []int{1, 2} {
		SetThreads(th)
		for _, m := range []int{1, 2, 4, 5, 8, 9, 16, 17} {
			for _, n := range []int{1, 5, 17, 130, 1100} {
				for _, k := range []int{1, 16, 33, 300} {
					for _, tr := range [][2]bool{{false, false}, {false, true}, {true, false}, {true, true}} {
						if n == 1100 && k == 300 && m > 5 {
							continue // keep the reference cheap
						}
						beta := []float32{0, 1, -0.5}[r.Intn(3)]
						checkBF16(t, r, problem{transA: tr[0], transB: tr[1], m: m, n: n, k: k, alpha: 0.75, beta: beta, pad: r.Intn(3), nanC: beta == 0})
					}
				}
			}
		}
	}
}

func checkBF16(t *testing.T, r *rand.Rand, p problem) {
	t.Helper()
	ar, lda, br, ldb, ldc := p.layout()
	a := randSlice(r, ar*lda)
	b := make([]uint16, br*ldb)
	BF16FromFloat32(b, randSlice(r, len(b)))
	c := randSlice(r, p.m*ldc)
	if p.nanC {
		for i := range c {
			c[i] = float32(math.NaN())
		}
	}
	want := append([]float32(nil), c...)
	SgemmBF16Ref(p.transA, p.transB, p.m, p.n, p.k, p.alpha, a, lda, b, ldb, p.beta, want, ldc)
	checkEveryImpl(t, p, a, c, want, ldc, func(got []float32) {
		SgemmBF16(p.transA, p.transB, p.m, p.n, p.k, p.alpha, a, lda, b, ldb, p.beta, got, ldc)
	})
}

// checkEveryImpl runs product (on a copy of c) under every implementation and compares the
// result with want (B's elements bounded by 1 as randSlice makes them): within the
// rounding-error bound of check for the m×n elements, unchanged in C's row padding.
func checkEveryImpl(t *testing.T, p problem, a, c, want []float32, ldc int, product func(got []float32)) {
	t.Helper()
	maxC := 0.0
	if !p.nanC {
		maxC = maxAbs(c)
	}
	tol := 2*float64(p.k)*maxAbs(a)*math.Abs(float64(p.alpha))*eps + 2*math.Abs(float64(p.beta))*maxC*eps + 1e-30
	for _, name := range Impls() {
		if err := SetImpl(name); err != nil {
			t.Fatal(err)
		}
		got := append([]float32(nil), c...)
		product(got)
		for i := 0; i < p.m; i++ {
			for j := 0; j < ldc; j++ {
				x := i*ldc + j
				if j >= p.n {
					if math.Float32bits(got[x]) != math.Float32bits(c[x]) {
						t.Fatalf("%s %v: C[%d][%d] in the row padding changed", name, p, i, j)
					}
					continue
				}
				if d := math.Abs(float64(got[x] - want[x])); math.IsNaN(float64(got[x])) || d > tol {
					t.Fatalf("%s %v: C[%d][%d] = %v, reference %v (tol %g)", name, p, i, j, got[x], want[x], tol)
				}
			}
		}
	}
}
