package gemm

import (
	"fmt"
	"math"
	"math/rand"
	"os"
	"testing"
)

// eps is the float32 unit roundoff (2^-24) scaled to the machine epsilon 2^-23.
const eps = 1.0 / (1 << 23)

// withImpl runs f once per implementation this CPU has (asm AVX-512, asm AVX2, pure Go),
// restoring the selection afterwards.
func withImpl(t *testing.T, f func(t *testing.T)) {
	old := Impl()
	defer SetImpl(old)
	for _, name := range Impls() {
		if err := SetImpl(name); err != nil {
			t.Fatal(err)
		}
		t.Run(name, f)
	}
}

func randSlice(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = 2*r.Float32() - 1
	}
	return s
}

func maxAbs(s []float32) float64 {
	var m float64
	for _, v := range s {
		m = math.Max(m, math.Abs(float64(v)))
	}
	return m
}

type problem struct {
	transA, transB bool
	m, n, k        int
	alpha, beta    float32
	pad            int // extra elements per row of A, B and C
	nanC           bool
}

func (p problem) String() string {
	t := func(b bool) string {
		if b {
			return "T"
		}
		return "N"
	}
	return fmt.Sprintf("%s%s/m%d_n%d_k%d/a%g_b%g/pad%d", t(p.transA), t(p.transB), p.m, p.n, p.k, p.alpha, p.beta, p.pad)
}

// layout returns how p's operands are stored: A has ar rows of stride lda, B br rows of
// stride ldb, C m rows of stride ldc (each stride pad elements past the row).
func (p problem) layout() (ar, lda, br, ldb, ldc int) {
	ar, ac := p.m, p.k
	if p.transA {
		ar, ac = p.k, p.m
	}
	br, bc := p.k, p.n
	if p.transB {
		br, bc = p.n, p.k
	}
	return ar, ac + p.pad, br, bc + p.pad, p.n + p.pad
}

// check runs SgemmRef and then Sgemm with every implementation this CPU has (asm AVX-512,
// asm AVX2, pure Go) on the same random data, and compares them.
// Tolerance: |ours-ref| ≤ 2*K*max|a|*max|b|*|alpha|*eps + 2*|beta|*max|C|*eps + 1e-30 per
// element; both sum K products in float32, in different orders (and ours with FMA).
// Elements of C outside the M×N window (the row padding) must be left untouched.
func check(t *testing.T, r *rand.Rand, p problem) {
	t.Helper()
	ar, lda, br, ldb, ldc := p.layout()
	a := randSlice(r, max(0, ar*lda))
	b := randSlice(r, max(0, br*ldb))
	c := randSlice(r, max(0, p.m*ldc))
	if p.nanC {
		for i := range c {
			if i%3 != 1 {
				c[i] = float32(math.NaN())
			}
		}
	}
	want := append([]float32(nil), c...)
	SgemmRef(p.transA, p.transB, p.m, p.n, p.k, p.alpha, a, lda, b, ldb, p.beta, want, ldc)
	maxC := 0.0
	if !p.nanC {
		maxC = maxAbs(c)
	}
	tol := 2*float64(p.k)*maxAbs(a)*maxAbs(b)*math.Abs(float64(p.alpha))*eps + 2*math.Abs(float64(p.beta))*maxC*eps + 1e-30
	old := Impl()
	defer SetImpl(old)
	for _, name := range Impls() {
		if err := SetImpl(name); err != nil {
			t.Fatal(err)
		}
		got := append([]float32(nil), c...)
		Sgemm(p.transA, p.transB, p.m, p.n, p.k, p.alpha, a, lda, b, ldb, p.beta, got, ldc)
		bad := 0
		for i := 0; i < p.m; i++ {
			for j := 0; j < ldc; j++ {
				x := i*ldc + j
				g, w := got[x], want[x]
				if j >= p.n {
					if math.Float32bits(g) != math.Float32bits(c[x]) {
						t.Fatalf("%s %v: C[%d][%d] in the row padding changed: %v -> %v", name, p, i, j, c[x], g)
					}
					continue
				}
				if math.IsNaN(float64(g)) || math.Abs(float64(g-w)) > tol {
					bad++
					if bad <= 3 {
						t.Errorf("%s %v: C[%d][%d] = %v, reference %v (tol %g)", name, p, i, j, g, w, tol)
					}
				}
			}
		}
		if bad > 0 {
			t.Fatalf("%s %v: %d of %d elements differ", name, p, bad, p.m*p.n)
		}
	}
}

var edgeSizes = []int{1, 2, 7, 12, 13, 31, 33, 48, 63, 65, 129}

func TestSgemmEdgeSizes(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	for _, tr := range [][2]bool{{false, false}, {false, true}, {true, false}, {true, true}} {
		for _, m := range edgeSizes {
			for _, n := range edgeSizes {
				k := edgeSizes[r.Intn(len(edgeSizes))]
				check(t, r, problem{transA: tr[0], transB: tr[1], m: m, n: n, k: k, alpha: 1, beta: 0, pad: r.Intn(3)})
			}
		}
	}

}

func TestSgemmAlphaBeta(t *testing.T) {
	r := rand.New(rand.NewSource(2))
	ab := [][2]float32{{1, 0}, {1, 1}, {0.5, -2}, {-1.5, 0.25}, {0, 0}, {0, 1.5}, {2, float32(math.Copysign(0, -1))}}
	for _, x := range ab {
		for _, nan := range []bool{false, true} {
			if nan && x[1] != 0 {
				continue
			}
			for _, tr := range [][2]bool{{false, false}, {false, true}, {true, false}} {
				p := problem{transA: tr[0], transB: tr[1], m: 37, n: 70, k: 300, alpha: x[0], beta: x[1], pad: 5, nanC: nan}
				check(t, r, p)
			}
		}
	}

}

// TestSgemmBlocking covers K past several kc blocks, many tasks, the row split for narrow
// C, several packed-A row blocks, and 1 and 2 threads, in parallel both with op(B) packed
// whole up front (sharedB) and packed per task (maxPackB 0); A as stored both read
// unpacked (fnU) and packed.
func TestSgemmBlocking(t *testing.T) {
	defer SetThreads(0)
	oldPack, oldPackB, oldU := maxPackA, maxPackB, useUnpackedA
	defer func() { maxPackA, maxPackB, useUnpackedA = oldPack, oldPackB, oldU }()
	r := rand.New(rand.NewSource(3))
	for _, th := range []int{1, 2, 3} {
		SetThreads(min(th, 2))
		maxPackB = oldPackB
		if th == 3 {
			maxPackB = 0
		}
		for _, tr := range [][3]bool{{false, false, true}, {false, true, true}, {false, false, false}, {false, true, false}, {true, false}, {true, true}} {
			useUnpackedA = tr[2]
			maxPackA = oldPack
			check(t, r, problem{transA: tr[0], transB: tr[1], m: 30, n: 517, k: 600, alpha: 0.75, beta: 0.5, pad: 3})
			check(t, r, problem{transA: tr[0], transB: tr[1], m: 25, n: 70, k: 1700, alpha: 1, beta: 1, pad: 0})
			check(t, r, problem{transA: tr[0], transB: tr[1], m: 700, n: 40, k: 129, alpha: 1, beta: 0, pad: 1, nanC: true})
			maxPackA = 40 * 100 // a few rows per packed block of A
			check(t, r, problem{transA: tr[0], transB: tr[1], m: 95, n: 130, k: 257, alpha: -1, beta: 1, pad: 2})
			// Transposed A packed in tiles of atGroup panels × atDepth rows, in two row blocks
			// (300 rows, then 103 ending in a partial panel), K not a multiple of atDepth.
			maxPackA = 300 * 50
			check(t, r, problem{transA: tr[0], transB: tr[1], m: 403, n: 45, k: 50, alpha: 1, beta: 0, pad: 5})
			// Many small tiles (rows and columns split), partial edge panels, K past kc.
			maxPackA = oldPack
			check(t, r, problem{transA: tr[0], transB: tr[1], m: 257, n: 161, k: 1000, alpha: 0.5, beta: 1, pad: 1})
		}
	}

}

func TestSgemmRandomShapes(t *testing.T) {
	r := rand.New(rand.NewSource(4))
	for it := 0; it < 60; it++ {
		p := problem{
			transA: r.Intn(2) == 0, transB: r.Intn(2) == 0,
			m: 1 + r.Intn(150), n: 1 + r.Intn(150), k: 1 + r.Intn(300),
			alpha: float32(r.NormFloat64()), beta: []float32{0, 1, float32(r.NormFloat64())}[r.Intn(3)],
			pad: r.Intn(9), nanC: r.Intn(4) == 0,
		}
		if p.beta != 0 {
			p.nanC = false
		}
		check(t, r, p)
	}

}

func TestSgemmZeroSizes(t *testing.T) {
	c := []float32{1, 2, 3, 4}
	Sgemm(false, false, 2, 2, 0, 1, nil, 0, nil, 2, 3, c, 2)
	for i, v := range []float32{3, 6, 9, 12} {
		if c[i] != v {
			t.Fatalf("k=0: C = %v, want beta*C", c)
		}
	}
	Sgemm(false, false, 0, 5, 5, 1, nil, 5, nil, 5, 0, nil, 5) // m = 0: nothing to do
	nan := float32(math.NaN())
	c = []float32{nan, nan}
	Sgemm(false, false, 1, 2, 0, 1, nil, 0, nil, 2, 0, c, 2)
	if c[0] != 0 || c[1] != 0 {
		t.Fatalf("k=0, beta=0: C = %v, want zeros", c)
	}
}

func TestSgemmPanicsOnShortSlices(t *testing.T) {
	cases := []struct {
		name string
		f    func()
	}{
		{"short C", func() {
			Sgemm(false, false, 4, 4, 4, 1, make([]float32, 16), 4, make([]float32, 16), 4, 0, make([]float32, 15), 4)
		}},
		{"short A", func() {
			Sgemm(false, false, 4, 4, 4, 1, make([]float32, 15), 4, make([]float32, 16), 4, 0, make([]float32, 16), 4)
		}},
		{"short B^T", func() {
			Sgemm(false, true, 4, 5, 4, 1, make([]float32, 16), 4, make([]float32, 16), 4, 0, make([]float32, 20), 5)
		}},
		{"ldc < n", func() {
			Sgemm(false, false, 4, 4, 4, 1, make([]float32, 16), 4, make([]float32, 16), 4, 0, make([]float32, 64), 3)
		}},
	}
	for _, tc := range cases {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", tc.name)
				}
			}()
			tc.f()
		}()
	}
}

func TestSgemmStrided(t *testing.T) {
	withImpl(t, func(t *testing.T) {
		r := rand.New(rand.NewSource(5))
		// Attention-like: (B*NH) products of T×hs by (T×hs)^T, then T×T by T×hs.
		const batch, T, hs = 6, 33, 16
		q := randSlice(r, batch*T*hs)
		kk := randSlice(r, batch*T*hs)
		att := randSlice(r, batch*T*T)
		want := append([]float32(nil), att...)
		for i := 0; i < batch; i++ {
			SgemmRef(false, true, T, T, hs, 0.25, q[i*T*hs:], hs, kk[i*T*hs:], hs, 0, want[i*T*T:], T)
		}
		SgemmStrided(false, true, T, T, hs, 0.25, q, hs, T*hs, kk, hs, T*hs, 0, att, T, T*T, batch)
		tol := 2 * hs * eps * 0.25
		for i := range att {
			if d := math.Abs(float64(att[i] - want[i])); d > tol {
				t.Fatalf("att[%d] = %v, reference %v", i, att[i], want[i])
			}
		}
		out := randSlice(r, batch*T*hs)
		want = append([]float32(nil), out...)
		for i := 0; i < batch; i++ {
			SgemmRef(false, false, T, hs, T, 1, att[i*T*T:], T, kk[i*T*hs:], hs, 1, want[i*T*hs:], hs)
		}
		SgemmStrided(false, false, T, hs, T, 1, att, T, T*T, kk, hs, T*hs, 1, out, hs, T*hs, batch)
		tol = 2*T*eps*maxAbs(att) + 2*eps
		for i := range out {
			if d := math.Abs(float64(out[i] - want[i])); d > tol {
				t.Fatalf("out[%d] = %v, reference %v", i, out[i], want[i])
			}
		}
	})
}

func TestNoAsmEnv(t *testing.T) {
	if os.Getenv("CPO_NOASM") == "1" && Impl() != "go" {
		t.Fatalf("CPO_NOASM=1 but Sgemm uses %q", Impl())
	}
	if err := SetImpl("no-such-kernel"); err == nil {
		t.Fatal("SetImpl accepted an unknown name")
	}
}

// TestSgemmFewRows covers M = 1 (decoding) and M ≤ 16 (batched decoding), which the AVX-512
// path computes without packing, on one and two threads, with A also given transposed.
func TestSgemmFewRows(t *testing.T) {
	defer SetThreads(0)
	r := rand.New(rand.NewSource(6))
	for _, th := range []int{1, 2} {
		SetThreads(th)
		for _, m := range []int{1, 2, 3, 4, 5, 8, 13, 16, 17} {
			for _, n := range []int{1, 5, 16, 17, 130, 1000} {
				for _, k := range []int{1, 15, 16, 33, 300} {
					for _, tr := range [][2]bool{{false, false}, {false, true}, {true, false}, {true, true}} {
						beta := []float32{0, 1, -0.5}[r.Intn(3)]
						check(t, r, problem{transA: tr[0], transB: tr[1], m: m, n: n, k: k, alpha: 1.5, beta: beta, pad: r.Intn(4), nanC: beta == 0})
					}
				}
			}
		}
	}
}

// TestSgemmConcurrent runs products from several goroutines at once (as attention does),
// each also parallel inside, and checks every result.
func TestSgemmConcurrent(t *testing.T) {
	const m, n, k = 70, 300, 200
	r := rand.New(rand.NewSource(7))
	a, b := randSlice(r, m*k), randSlice(r, k*n)
	want := make([]float32, m*n)
	SgemmRef(false, true, m, n, k, 1, a, k, b, k, 0, want, n)
	errs := make(chan string, 8)
	for g := 0; g < 8; g++ {
		go func() {
			c := make([]float32, m*n)
			for it := 0; it < 3; it++ {
				Sgemm(false, true, m, n, k, 1, a, k, b, k, 0, c, n)
				for i := range c {
					if d := math.Abs(float64(c[i] - want[i])); d > 2*k*eps {
						errs <- fmt.Sprintf("C[%d] = %v, reference %v", i, c[i], want[i])
						return
					}
				}
			}
			errs <- ""
		}()
	}
	for g := 0; g < 8; g++ {
		if e := <-errs; e != "" {
			t.Fatal(e)
		}
	}
}

// TestPackAsm compares the assembly packing routines of each kernel with the Go packing.
func TestPackAsm(t *testing.T) {
	r := rand.New(rand.NewSource(8))
	for _, kn := range kernels {
		plain := *kn
		plain.packBT16, plain.packBN32, plain.packAT12, plain.packAN12 = nil, nil, nil, nil
		for _, trans := range []bool{false, true} {
			for _, kcb := range []int{1, 3, 15, 16, 17, 40, 256} {
				for _, cols := range []int{1, 15, 16, 17, 32, 33, 64, 100} {
					const pc, j0, pad = 3, 5, 2
					// B: op(B) is (pc+kcb)×(j0+cols), stored transposed or not.
					rows, width := pc+kcb, j0+cols
					if trans {
						rows, width = width, rows
					}
					ldb := width + pad
					b := randSlice(r, rows*ldb)
					nq := (cols + kn.nr - 1) / kn.nr
					want := randSlice(r, nq*kcb*kn.nr)
					got := append([]float32(nil), want...)
					packB(want, trans, b, ldb, pc, kcb, j0, cols, &plain)
					packB(got, trans, b, ldb, pc, kcb, j0, cols, kn)
					for i := range want {
						if got[i] != want[i] {
							t.Fatalf("%s packB trans=%v kcb=%d cols=%d: packed[%d] = %v, want %v", kn.name, trans, kcb, cols, i, got[i], want[i])
						}
					}
					// A: rows i0..i0+h of op(A) (h ≤ mr), all kcb columns.
					h := min(kn.mr, cols)
					ar, ac := j0+h, kcb
					if trans {
						ar, ac = ac, ar
					}
					lda := ac + pad
					a := randSlice(r, ar*lda)
					wantA := randSlice(r, kn.mr*kcb)
					gotA := append([]float32(nil), wantA...)
					packA(wantA, trans, a, lda, j0, h, kcb, &plain)
					packA(gotA, trans, a, lda, j0, h, kcb, kn)
					for i := range wantA {
						if gotA[i] != wantA[i] {
							t.Fatalf("%s packA trans=%v k=%d h=%d: packed[%d] = %v, want %v", kn.name, trans, kcb, h, i, gotA[i], wantA[i])
						}
					}
				}
			}
		}
	}
}
