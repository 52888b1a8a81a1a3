package gemm

import (
	"math/rand"
	"runtime"
	"testing"
)

// BenchmarkPackB times packing one kc×nc block of op(B) (kc = 768, nc = 1024), as stored
// (N) and transposed (T); GB/s counts the bytes of B read.
func BenchmarkPackB(b *testing.B) {
	const kcb, cols = 768, 1024
	r := rand.New(rand.NewSource(1))
	src := randSlice(r, kcb*cols)
	dst := make([]float32, kcb*cols)
	for _, tb := range []bool{false, true} {
		name, ldb := "N", cols
		if tb {
			name, ldb = "T", kcb
		}
		b.Run(name, func(b *testing.B) {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			c0 := threadCPU()
			for i := 0; i < b.N; i++ {
				packB(dst, tb, src, ldb, 0, kcb, 0, cols, kernels[0])
			}
			b.ReportMetric(4*kcb*cols*float64(b.N)/(threadCPU()-c0)/1e9, "GB/cpu-s")
		})
	}
}

// BenchmarkPackA times packing 516×768 of op(A) into 12-row panels, as stored (N) and
// transposed (T); GB/s counts the bytes of A read.
func BenchmarkPackA(b *testing.B) {
	rows, k, mr := 516, 768, kernels[0].mr // 12 with AVX-512
	r := rand.New(rand.NewSource(1))
	src := randSlice(r, rows*k)
	dst := make([]float32, (rows+mr)*k)
	for _, ta := range []bool{false, true} {
		name, lda := "N", k
		if ta {
			name, lda = "T", rows
		}
		b.Run(name, func(b *testing.B) {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			c0 := threadCPU()
			for i := 0; i < b.N; i++ {
				for p := 0; p < rows/mr; p++ {
					packA(dst[p*mr*k:(p+1)*mr*k], ta, src, lda, p*mr, mr, k, kernels[0])
				}
			}
			b.ReportMetric(4*float64(rows*k)*float64(b.N)/(threadCPU()-c0)/1e9, "GB/cpu-s")
		})
	}
}
