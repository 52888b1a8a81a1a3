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
