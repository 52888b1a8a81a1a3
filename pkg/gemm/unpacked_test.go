package gemm

import (
	"math"
	"math/rand"
	"testing"
)

// kernelURef is the plain Go reference of a kernel's fnU (mr×nr tile, A unpacked):
// C[i*ldc+j] = alpha*Σ_p a[i*lda+p]*b[p*nr+j] + beta*C[i*ldc+j]; C is not read when beta
// is +0.
func kernelURef(mr, nr, k int, a []float32, lda int, b, c []float32, ldc int, alpha, beta float32) {
	for i := 0; i < mr; i++ {
		for j := 0; j < nr; j++ {
			var s float32
			for p := 0; p < k; p++ {
				s += a[i*lda+p] * b[p*nr+j]
			}
			if math.Float32bits(beta) == 0 {
				c[i*ldc+j] = alpha * s
			} else {
				c[i*ldc+j] = alpha*s + beta*c[i*ldc+j]
			}
		}
	}
}

// TestKernelUnpacked compares each kernel's fnU with kernelURef for k around the unroll
// by 4, padded lda and ldc, and beta 0 (C full of NaN, which must not be read) or not.
func TestKernelUnpacked(t *testing.T) {
	r := rand.New(rand.NewSource(9))
	n := 0
	for _, kn := range kernels {
		if kn.fnU == nil {
			continue
		}
		n++
		mr, nr := kn.mr, kn.nr
		for _, k := range []int{1, 2, 3, 4, 5, 7, 8, 13, 64, 255, 768} {
			for _, pad := range []int{0, 3, 16} {
				for _, beta := range []float32{0, 1, -0.5} {
					lda, ldc := k+pad, nr+pad
					a := randSlice(r, (mr-1)*lda+k)
					b := randSlice(r, k*nr)
					c := randSlice(r, (mr-1)*ldc+nr)
					if beta == 0 {
						for i := range c {
							c[i] = float32(math.NaN())
						}
					}
					want := append([]float32(nil), c...)
					kernelURef(mr, nr, k, a, lda, b, want, ldc, 1.5, beta)
					kn.fnU(k, &a[0], lda, &b[0], &c[0], ldc, 1.5, beta)
					tol := 2 * float64(k) * 1.5 * eps
					if beta != 0 {
						tol += 2 * eps
					}
					for i := 0; i < mr; i++ {
						for j := 0; j < ldc && i*ldc+j < len(c); j++ {
							x := i*ldc + j
							if j >= nr {
								if math.Float32bits(c[x]) != math.Float32bits(want[x]) {
									t.Fatalf("%s k=%d pad=%d: C[%d][%d] outside the tile changed", kn.name, k, pad, i, j)
								}
								continue
							}
							if d := math.Abs(float64(c[x] - want[x])); !(d <= tol) {
								t.Fatalf("%s k=%d pad=%d beta=%g: C[%d][%d] = %v, reference %v", kn.name, k, pad, beta, i, j, c[x], want[x])
							}
						}
					}
				}
			}
		}
	}
	t.Logf("%d kernels with fnU", n)
}

// TestBlockedUnpacked runs the blocked driver with A read unpacked (useUnpackedA) on 1 and
// 2 workers for row counts around the 12-row panel (including fewer than 12 rows, which
// Sgemm would send to fewRows), odd N and K (K past kc), padded lda/ldb/ldc, B as stored
// and transposed, and alpha/beta including beta = 0 over a C full of NaN, against
// SgemmRef. The row padding of C must stay untouched.
func TestBlockedUnpacked(t *testing.T) {
	old := useUnpackedA
	defer func() { useUnpackedA = old }()
	useUnpackedA = true
	r := rand.New(rand.NewSource(10))
	sizes := []int{1, 7, 11, 12, 13, 63, 65, 129}
	ab := [][2]float32{{1, 0}, {0.5, -2}, {-1.5, 1}}
	for _, kn := range kernels {
		if kn.fnU == nil {
			continue
		}
		for _, m := range sizes {
			for it := 0; it < 6; it++ {
				n := sizes[r.Intn(len(sizes))]
				k := []int{1, 7, 13, 129, 800}[r.Intn(5)]
				pad := r.Intn(4)
				transB := it%2 == 1
				x := ab[it%3]
				nanC := x[1] == 0
				lda, ldc := k+pad, n+pad
				ldb := n + pad
				if transB {
					ldb = k + pad
				}
				a := randSlice(r, m*lda)
				b := randSlice(r, max(k, n)*ldb)
				c := randSlice(r, m*ldc)
				if nanC {
					for i := range c {
						c[i] = float32(math.NaN())
					}
				}
				want := append([]float32(nil), c...)
				SgemmRef(false, transB, m, n, k, x[0], a, lda, b, ldb, x[1], want, ldc)
				tol := 2*float64(k)*math.Abs(float64(x[0]))*eps + 2*math.Abs(float64(x[1]))*eps + 1e-30
				for _, w := range []int{1, 2} {
					got := append([]float32(nil), c...)
					sgemmBlocked(kn, w, false, transB, m, n, k, x[0], a, lda, b, ldb, x[1], got, ldc)
					for i := 0; i < m; i++ {
						for j := 0; j < ldc; j++ {
							o := i*ldc + j
							if j >= n {
								if math.Float32bits(got[o]) != math.Float32bits(c[o]) {
									t.Fatalf("%s m%d n%d k%d: C[%d][%d] in the row padding changed", kn.name, m, n, k, i, j)
								}
								continue
							}
							if d := math.Abs(float64(got[o] - want[o])); !(d <= tol) {
								t.Fatalf("%s workers %d m%d n%d k%d transB %v alpha %g beta %g pad %d: C[%d][%d] = %v, reference %v",
									kn.name, w, m, n, k, transB, x[0], x[1], pad, i, j, got[o], want[o])
							}
						}
					}
				}
			}
		}
	}
}
