package gemm

import (
	"math/rand"
	"runtime"
	"testing"
)

// BenchmarkPackB times packing one kc×nc block of op(B) (kc = 768, nc = 1024), as stored
// (N) and transposed (T); GB/s counts the bytes of B read.
func BenchmarkPackB(b *testing.B) {
	const kcb, cols, nr = 768, 1024, 32
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
				packB(dst, tb, src, ldb, 0, kcb, 0, cols, nr, kernels[0].packBT16)
			}
			b.ReportMetric(4*kcb*cols*float64(b.N)/(threadCPU()-c0)/1e9, "GB/cpu-s")
		})
	}
}
