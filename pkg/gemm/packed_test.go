package gemm

import (
	"fmt"
	"math"
	"math/rand"
	"testing"
)

// TestPackBF16Layout checks that packing rounds like BF16FromFloat32 and puts every element
// where At (the documented layout) finds it, padding the last panel with zeros.
func TestPackBF16Layout(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	for _, sz := range [][2]int{{1, 1}, {3, 31}, {7, 32}, {5, 33}, {16, 65}, {9, 100}} {
		k, n := sz[0], sz[1]
		for _, tb := range []bool{false, true} {
			ldb := n + 2
			if tb {
				ldb = k + 3
			}
			rows := k
			if tb {
				rows = n
			}
			b := randSlice(r, rows*ldb)
			pb := PackBF16(tb, k, n, b, ldb)
			var one [1]uint16
			for p := 0; p < k; p++ {
				for j := 0; j < n; j++ {
					v := b[p*ldb+j]
					if tb {
						v = b[j*ldb+p]
					}
					BF16FromFloat32(one[:], []float32{v})
					if got := pb.At(p, j); got != bf16ToF32(one[0]) {
						t.Fatalf("k=%d n=%d trans=%v: At(%d,%d) = %v, want %v", k, n, tb, p, j, got, bf16ToF32(one[0]))
					}
				}
			}
			if w := n % PanelWidth; w != 0 {
				last := pb.panel(pb.panels() - 1)
				for p := 0; p < k; p++ {
					for c := w; c < PanelWidth; c++ {
						if v := last[p*PanelWidth+2*(c%16)+c/16]; v != 0 {
							t.Fatalf("k=%d n=%d: padding column %d of row %d is %#x", k, n, c, p, v)
						}
					}
				}
			}
		}
	}
}

// TestSgemmPackedBF16 checks SgemmPackedBF16 (panel kernels for every row count 1..8 and
// groups past 8, blocks of rows past panelRowBlock) against SgemmBF16Ref on the same rounded
// weights, on every implementation, one and two threads, with alpha, beta and padded strides.
func TestSgemmPackedBF16(t *testing.T) {
	defer SetThreads(0)
	old := Impl()
	defer SetImpl(old)
	r := rand.New(rand.NewSource(11))
	for _, th := range []int{1, 2} {
		SetThreads(th)
		for _, m := range []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 17, 33, 64, 71, 130} {
			for _, n := range []int{1, 31, 32, 33, 130, 1100} {
				for _, k := range []int{1, 2, 3, 16, 63, 300} {
					if n == 1100 && k == 300 && m > 9 || m > 64 && n*k > 10000 {
						continue // keep the reference cheap
					}
					beta := []float32{0, 1, -0.5}[r.Intn(3)]
					checkPacked(t, r, problem{transB: r.Intn(2) == 1, m: m, n: n, k: k, alpha: 0.75, beta: beta, pad: r.Intn(3), nanC: beta == 0})
				}
			}
		}
	}
}

func checkPacked(t *testing.T, r *rand.Rand, p problem) {
	t.Helper()
	br, bc := p.k, p.n
	if p.transB {
		br, bc = p.n, p.k
	}
	lda, ldb, ldc := p.k+p.pad, bc+p.pad, p.n+p.pad
	a := randSlice(r, p.m*lda)
	bf := randSlice(r, br*ldb)
	b := make([]uint16, len(bf))
	BF16FromFloat32(b, bf)
	pb := PackBF16(p.transB, p.k, p.n, bf, ldb)
	c := randSlice(r, p.m*ldc)
	if p.nanC {
		for i := range c {
			c[i] = float32(math.NaN())
		}
	}
	want := append([]float32(nil), c...)
	SgemmBF16Ref(false, p.transB, p.m, p.n, p.k, p.alpha, a, lda, b, ldb, p.beta, want, ldc)
	checkEveryImpl(t, p, a, c, want, ldc, func(got []float32) {
		SgemmPackedBF16(p.m, p.alpha, a, lda, pb, p.beta, got, ldc)
	})
}

// TestPanelKernelsMatchGo runs each assembly panel kernel (when this CPU has them) against
// panelRowsGo on odd depths; the sums are in the same order, so they must agree closely.
func TestPanelKernelsMatchGo(t *testing.T) {
	asm := panelAsm(impl.Load())
	if asm == nil {
		t.Skip("no assembly panel kernels on this CPU/build")
	}
	r := rand.New(rand.NewSource(5))
	for rows := 1; rows <= 8; rows++ {
		for _, k := range []int{1, 2, 3, 7, 64, 129} {
			t.Run(fmt.Sprintf("R%d/k%d", rows, k), func(t *testing.T) {
				lda := k + 5
				a := randSlice(r, rows*lda)
				pb := PackBF16(false, k, PanelWidth, randSlice(r, k*PanelWidth), PanelWidth)
				want := make([]float32, 8*PanelWidth)
				got := make([]float32, 8*PanelWidth)
				panelRowsGo(rows, k, a, lda, pb.panel(0), want)
				asm[rows](k, &a[0], lda, &pb.panel(0)[0], &got[0])
				for i := 0; i < rows*PanelWidth; i++ {
					if d := math.Abs(float64(got[i] - want[i])); d > 1e-5*float64(k) {
						t.Fatalf("out[%d] = %v, Go %v", i, got[i], want[i])
					}
				}
			})
		}
	}
}
