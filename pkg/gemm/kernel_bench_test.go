package gemm

import (
	"math/rand"
	"testing"
)

// BenchmarkKernel times each micro-kernel alone on L1-resident panels (k = 256), the
// ceiling the blocked driver can approach.
func BenchmarkKernel(b *testing.B) {
	r := rand.New(rand.NewSource(1))
	ks := append([]*kernel(nil), kernels...)
	if kn := asmPairKernel.Load(); kn != nil {
		ks = append(ks, kn) // k = 256 pairs: 512 bfloat16 products per element
	}
	for _, kn := range ks {
		b.Run(kn.name, func(b *testing.B) {
			const k = 256
			flopPerK := 2.0
			if kn == asmPairKernel.Load() {
				flopPerK = 4
			}
			a := randSlice(r, kn.mr*k)
			bb := randSlice(r, kn.nr*k)
			c := make([]float32, kn.mr*kn.nr)
			for i := 0; i < b.N; i++ {
				kn.fn(k, &a[0], &bb[0], &c[0], kn.nr, 1, 1)
			}
			b.ReportMetric(flopPerK*float64(kn.mr*kn.nr*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
