package gemm

import (
	"fmt"
	"math"
	"math/rand"
	"testing"
)

// withPairKernels runs f with each kernel SgemmMixedBF16 can use on this CPU (VDPBF16PS,
// then pure Go), restoring the selection afterwards.
func withPairKernels(t *testing.T, f func(t *testing.T)) {
	old := Impl()
	defer SetImpl(old)
	names := []string{"go"}
	if asmPairKernel.Load() != nil {
		names = []string{Impls()[0], "go"}
	}
	for _, name := range names {
		if err := SetImpl(name); err != nil {
			t.Fatal(err)
		}
		t.Run(MixedBF16Impl(), f)
	}
}

func TestBF16Bits(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	var want [1]uint16
	for i := 0; i < 100000; i++ {
		v := math.Float32frombits(r.Uint32())
		BF16FromFloat32(want[:], []float32{v})
		got := bf16Bits(v)
		if u := math.Float32bits(v); u&0x7f800000 == 0 {
			if got != u>>16&0x8000 {
				t.Fatalf("denormal %#x → %#x, want a signed zero", u, got)
			}
			continue
		}
		if got != uint32(want[0]) {
			t.Fatalf("%g (%#x) → %#x, BF16FromFloat32 gives %#x", v, math.Float32bits(v), got, want[0])
		}
	}
	if got := bf16Pair(1, -2); got != 0xc0003f80 {
		t.Fatalf("bf16Pair(1, -2) = %#x, want 0xc0003f80", got)
	}
}

// TestPairKernelExact checks that every pair kernel computes, for one tile, exactly the sums
// of dpbf16 (VDPBF16PS's arithmetic), with beta 0 and beta a power of two (the assembly fuses
// beta*C into its last addition, the Go kernel not: equal when beta*C is exact). The tiny
// case puts products and sums around float32's smallest normal (2⁻¹²⁶), where the
// instruction flushes denormal sums but keeps denormal products.
func TestPairKernelExact(t *testing.T) {
	r := rand.New(rand.NewSource(2))
	kernels := []*kernel{goPairKernel}
	if kn := asmPairKernel.Load(); kn != nil {
		kernels = append(kernels, kn)
	}
	for _, kn := range kernels {
		mr, nr := kn.mr, kn.nr
		for _, k := range []int{1, 2, 3, 4, 5, 17, 100, 384, -64} {
			tiny := k < 0
			if tiny {
				k = -k
			}
			a := make([]uint32, mr*k)
			b := make([]uint32, k*nr)
			for i := range a {
				a[i] = bf16Pair(float32(r.NormFloat64()), float32(r.NormFloat64()*100))
				if tiny {
					a[i] = bf16Pair(float32(r.NormFloat64()*0x1p-60), float32(r.NormFloat64()*0x1p-63))
				}
			}
			for i := range b {
				b[i] = bf16Pair(float32(r.NormFloat64()*1e-3), float32(r.NormFloat64()))
				if tiny {
					b[i] = bf16Pair(float32(r.NormFloat64()*0x1p-66), float32(r.NormFloat64()*0x1p-63))
				}
			}
			for _, beta := range []float32{0, 0.5} {
				ldc := nr + 3
				c := make([]float32, mr*ldc)
				for i := range c {
					c[i] = float32(r.NormFloat64())
					if tiny {
						c[i] *= 0x1p-120 // beta*C stays normal, hence exact
					}
				}
				want := append([]float32(nil), c...)
				for i := 0; i < mr; i++ {
					for j := 0; j < nr; j++ {
						var s float32
						for p := 0; p < k; p++ {
							s = dpbf16(s, a[p*mr+i], b[p*nr+j])
						}
						if beta == 0 {
							want[i*ldc+j] = 1.5 * s
						} else {
							want[i*ldc+j] = float32(1.5*s) + beta*want[i*ldc+j]
						}
					}
				}
				af := make([]float32, len(a))
				bf := make([]float32, len(b))
				copy(words(af), a)
				copy(words(bf), b)
				c0 := append([]float32(nil), c...)
				kn.fn(k, &af[0], &bf[0], &c[0], ldc, 1.5, beta)
				for x := range c {
					if math.Float32bits(c[x]) != math.Float32bits(want[x]) {
						t.Fatalf("%s k=%d beta=%g: C[%d][%d] = %g, want %g", kn.name, k, beta, x/ldc, x%ldc, c[x], want[x])
					}
				}
				if kn.fnU == nil {
					continue
				}
				// The same with A's words row-major, lda apart (unpacked).
				lda := k + 3
				au := make([]float32, mr*lda)
				for i := 0; i < mr; i++ {
					for p := 0; p < k; p++ {
						words(au)[i*lda+p] = a[p*mr+i]
					}
				}
				kn.fnU(k, &au[0], lda, &bf[0], &c0[0], ldc, 1.5, beta)
				for x := range c0 {
					if math.Float32bits(c0[x]) != math.Float32bits(want[x]) {
						t.Fatalf("%s unpacked k=%d beta=%g: C[%d][%d] = %g, want %g", kn.name, k, beta, x/ldc, x%ldc, c0[x], want[x])
					}
				}
			}
		}
	}
}

// TestSgemmMixedBF16 compares SgemmMixedBF16 with SgemmMixedBF16Ref on odd shapes, both
// transposition flags, alpha and beta, padding, NaN in C with beta 0, one and two threads,
// each pair kernel. Both sum the same exact products in float32; the driver splits K into
// blocks (C = alpha*s + beta*C, then C += alpha*s), so the tolerance is that of a float32
// sum in another order.
func TestSgemmMixedBF16(t *testing.T) {
	sizes := []int{1, 7, 12, 13, 33, 65, 129}
	ks := []int{1, 2, 3, 63, 300, 801}
	withPairKernels(t, func(t *testing.T) {
		r := rand.New(rand.NewSource(3))
		for _, threads := range []int{1, 2} {
			SetThreads(threads)
			for _, ta := range []bool{false, true} {
				for _, tb := range []bool{false, true} {
					for trial := 0; trial < 6; trial++ {
						p := problem{transA: ta, transB: tb,
							m: sizes[r.Intn(len(sizes))], n: sizes[r.Intn(len(sizes))], k: ks[r.Intn(len(ks))],
							alpha: []float32{1, -0.5}[r.Intn(2)], beta: []float32{0, 1, 0.25}[r.Intn(3)],
							pad: r.Intn(3), nanC: trial == 0}
						if p.nanC {
							p.beta = 0
						}
						checkMixed(t, r, p)
					}
				}
			}
		}
		SetThreads(0)
		// Large enough for the parallel shared-B path and several row blocks.
		checkMixed(t, r, problem{m: 300, n: 200, k: 1000, alpha: 1, beta: 1})
		checkMixed(t, r, problem{transA: true, transB: true, m: 97, n: 520, k: 129, alpha: 1})
	})
}

func checkMixed(t *testing.T, r *rand.Rand, p problem) {
	t.Helper()
	ar, lda, br, ldb, ldc := p.layout()
	a := randSlice(r, ar*lda)
	b := randSlice(r, br*ldb)
	c := randSlice(r, p.m*ldc)
	if p.nanC {
		for i := range c {
			c[i] = float32(math.NaN())
		}
	}
	want := append([]float32(nil), c...)
	got := append([]float32(nil), c...)
	SgemmMixedBF16Ref(p.transA, p.transB, p.m, p.n, p.k, p.alpha, a, lda, b, ldb, p.beta, want, ldc)
	SgemmMixedBF16(p.transA, p.transB, p.m, p.n, p.k, p.alpha, a, lda, b, ldb, p.beta, got, ldc)
	tol := 2*float64(p.k)*math.Abs(float64(p.alpha))*eps + 2*math.Abs(float64(p.beta))*eps + 1e-30
	for i := 0; i < p.m; i++ {
		for j := 0; j < ldc; j++ {
			x := i*ldc + j
			if j >= p.n {
				if math.Float32bits(got[x]) != math.Float32bits(c[x]) {
					t.Fatalf("%v: padding C[%d][%d] changed", p, i, j)
				}
				continue
			}
			if d := math.Abs(float64(got[x]) - float64(want[x])); !(d <= tol) {
				t.Fatalf("%v: C[%d][%d] = %g, reference %g (|diff| %g > %g)", p, i, j, got[x], want[x], d, tol)
			}
		}
	}
}

// TestSgemmMixedBF16CloseToSgemm checks the size of the rounding against the float32
// product: each element of A and B is off by at most 2⁻⁹ relative, so C is within
// about 2⁻⁸·Σ|a||b| of Sgemm's.
func TestSgemmMixedBF16CloseToSgemm(t *testing.T) {
	r := rand.New(rand.NewSource(4))
	m, n, k := 40, 70, 513
	a, b := randSlice(r, m*k), randSlice(r, k*n)
	want, got := make([]float32, m*n), make([]float32, m*n)
	Sgemm(false, false, m, n, k, 1, a, k, b, n, 0, want, n)
	SgemmMixedBF16(false, false, m, n, k, 1, a, k, b, n, 0, got, n)
	var worst float64
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var bound float64
			for p := 0; p < k; p++ {
				bound += math.Abs(float64(a[i*k+p]) * float64(b[p*n+j]))
			}
			d := math.Abs(float64(got[i*n+j] - want[i*n+j]))
			worst = math.Max(worst, d/bound)
			if d > bound/256 {
				t.Fatalf("C[%d][%d] = %g, float32 product %g: off by %g > Σ|a||b|/256 = %g", i, j, got[i*n+j], want[i*n+j], d, bound/256)
			}
		}
	}
	if worst == 0 {
		t.Fatal("mixed precision equals float32 everywhere: inputs were not rounded")
	}
}

// TestSgemmMixedBF16Special: NaN and Inf in A propagate, denormal inputs count as zero,
// k = 0 and alpha = 0 scale C only.
func TestSgemmMixedBF16Special(t *testing.T) {
	withPairKernels(t, func(t *testing.T) {
		a := []float32{1, float32(math.NaN()), 2, float32(math.Inf(1)), 3, 1e-40}
		b := []float32{1, 1, 1, 1, 1, 1}
		c := make([]float32, 3)
		// A is 3×2, B is 2×1.
		SgemmMixedBF16(false, false, 3, 1, 2, 1, a, 2, b, 1, 0, c, 1)
		if !math.IsNaN(float64(c[0])) || !math.IsInf(float64(c[1]), 1) || c[2] != 3 {
			t.Fatalf("got %v, want [NaN +Inf 3]", c)
		}
		c = []float32{2, 4}
		SgemmMixedBF16(false, false, 1, 2, 0, 1, nil, 1, nil, 2, 0.5, c, 2)
		if c[0] != 1 || c[1] != 2 {
			t.Fatalf("k=0: got %v, want [1 2]", c)
		}
	})
}

func ExampleSgemmMixedBF16() {
	// 1.00390625 = 1 + 2⁻⁸ is not a bfloat16: it rounds to 1 (ties to even).
	a := []float32{1.00390625, 2}
	b := []float32{3, 0.5}
	c := make([]float32, 1)
	SgemmMixedBF16(false, false, 1, 1, 2, 1, a, 2, b, 1, 0, c, 1)
	fmt.Println(c[0])
	// Output: 4
}

// TestPairsConversion: the assembly conversions into words of pairs equal the Go ones bit
// for bit on random bit patterns (NaN, Inf, denormals, ties), every length 0..100.
func TestPairsConversion(t *testing.T) {
	if !pairsAsm {
		t.Skip("no AVX512_BF16 conversion on this CPU or build")
	}
	r := rand.New(rand.NewSource(5))
	special := []uint32{0x7f800000, 0xff800000, 0x7fc00000, 0x7f800001, 0xffbfffff, 0x00000001, 0x807fffff,
		0x3f808000, 0x3f818000, 0x3f80ffff, 0x7f7fffff, 0x00800000, 0x80000000, 0}
	rnd := func(n int) []float32 {
		s := make([]float32, n)
		for i := range s {
			u := r.Uint32()
			if r.Intn(4) == 0 {
				u = special[r.Intn(len(special))]
			}
			s[i] = math.Float32frombits(u)
		}
		return s
	}
	for n := 0; n <= 100; n++ {
		src := rnd(n)
		want, got := make([]uint32, (n+1)/2), make([]uint32, (n+1)/2)
		pairsOfRow(want, src, false)
		pairsOfRow(got, src, true)
		for i := range want {
			if want[i] != got[i] {
				t.Fatalf("pairsOfRow n=%d: word %d = %#x, want %#x (from %#x, %#x)", n, i, got[i], want[i],
					math.Float32bits(src[2*i]), math.Float32bits(src[min(2*i+1, n-1)]))
			}
		}
		r0, r1 := rnd(n), rnd(n)
		want, got = make([]uint32, n), make([]uint32, n)
		pairsOfRows(want, r0, r1, false)
		pairsOfRows(got, r0, r1, true)
		for i := range want {
			if want[i] != got[i] {
				t.Fatalf("pairsOfRows n=%d: word %d = %#x, want %#x (from %#x, %#x)", n, i, got[i], want[i],
					math.Float32bits(r0[i]), math.Float32bits(r1[i]))
			}
		}
	}
}
