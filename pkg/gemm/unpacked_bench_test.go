package gemm

import (
	"fmt"
	"math/rand"
	"testing"
)

// unpackedShapes are M×K×N products with A as stored (NN and NT) of the tiny preset's
// training step (M = 1024 tokens, width 256, MLP 1024, vocab 8192: 1024×8192×256 is the
// LM head's input gradient from the logits' gradient) and of GPT-2 small (M = 256 tokens).
var unpackedShapes = [][3]int{{1024, 256, 256}, {1024, 256, 768}, {1024, 768, 256}, {1024, 256, 1024}, {1024, 1024, 256},
	{1024, 256, 8192}, {1024, 8192, 256},
	{256, 768, 768}, {256, 768, 2304}, {256, 768, 3072}, {256, 3072, 768}, {256, 768, 50304}}

// BenchmarkUnpackedA compares, per shape, transposition of B and thread count, the blocked
// driver with A packed (pack) against A read as stored by the kernel's fnU (direct).
// Names: UnpackedA/MxKxN/NT/tThreads/{pack,direct}; metric GFLOP/s.
func BenchmarkUnpackedA(b *testing.B) {
	defer SetThreads(0)
	old := useUnpackedA
	defer func() { useUnpackedA = old }()
	r := rand.New(rand.NewSource(1))
	for _, s := range unpackedShapes {
		m, k, n := s[0], s[1], s[2]
		var A, B, C []float32
		for _, tt := range []string{"NN", "NT"} {
			tb := tt[1] == 'T'
			ldb := n
			if tb {
				ldb = k
			}
			for _, th := range []int{1, 2} {
				for _, mode := range []string{"pack", "direct"} {
					b.Run(fmt.Sprintf("%dx%dx%d/%s/t%d/%s", m, k, n, tt, th, mode), func(b *testing.B) {
						if A == nil {
							A, B, C = randSlice(r, m*k), randSlice(r, k*n), make([]float32, m*n)
						}
						useUnpackedA = mode == "direct"
						SetThreads(th)
						for i := 0; i < b.N; i++ {
							Sgemm(false, tb, m, n, k, 1, A, k, B, ldb, 0, C, n)
						}
						b.ReportMetric(2*float64(m)*float64(n)*float64(k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
					})
				}
			}
		}
	}
}
