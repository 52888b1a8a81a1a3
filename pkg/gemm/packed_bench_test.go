package gemm

import (
	"fmt"
	"math/rand"
	"testing"
)

// BenchmarkDecodeWeights times one decoding step's matrix products at GPT-2 small's shapes
// with the weights streaming from memory (12 blocks of 768×2304, 768×768, 768×3072,
// 3072×768 and the 768×50257 head, 248 MB in bfloat16: larger than the caches), for M = 1 and
// 16 rows: packed bfloat16 (SgemmPackedBF16), plain bfloat16 (SgemmBF16, B as stored; the
// head transposed as a tied embedding is) and float32 (Sgemm). GB/s counts the weight bytes.
//
//	go test -run '^$' -bench DecodeWeights -benchtime 20x ./pkg/gemm
func BenchmarkDecodeWeights(b *testing.B) {
	defer SetThreads(0)
	r := rand.New(rand.NewSource(1))
	type mat struct {
		k, n   int
		transB bool
		f      []float32
		h      []uint16
		p      *PackedBF16
	}
	var mats []mat
	add := func(k, n int, transB bool) {
		f := randSlice(r, k*n)
		h := make([]uint16, k*n)
		BF16FromFloat32(h, f)
		ld := n
		if transB {
			ld = k
		}
		mats = append(mats, mat{k: k, n: n, transB: transB, f: f, h: h, p: PackBF16(transB, k, n, f, ld)})
	}
	for l := 0; l < 12; l++ {
		add(768, 2304, false)
		add(768, 768, false)
		add(768, 3072, false)
		add(3072, 768, false)
	}
	add(768, 50257, true)
	elems := 0
	for _, m := range mats {
		elems += m.k * m.n
	}
	for _, rows := range []int{1, 16} {
		a := randSlice(r, rows*3072)
		c := make([]float32, rows*50257)
		for _, kind := range []string{"packed-bf16", "bf16", "fp32"} {
			for _, th := range []int{1, 2} {
				b.Run(fmt.Sprintf("M%d/%s/t%d", rows, kind, th), func(b *testing.B) {
					SetThreads(th)
					for i := 0; i < b.N; i++ {
						for _, m := range mats {
							ld := m.n
							if m.transB {
								ld = m.k
							}
							switch kind {
							case "packed-bf16":
								SgemmPackedBF16(rows, 1, a, m.k, m.p, 0, c, m.n)
							case "bf16":
								SgemmBF16(false, m.transB, rows, m.n, m.k, 1, a, m.k, m.h, ld, 0, c, m.n)
							default:
								Sgemm(false, m.transB, rows, m.n, m.k, 1, a, m.k, m.f, ld, 0, c, m.n)
							}
						}
					}
					sec := b.Elapsed().Seconds() / float64(b.N)
					bytes := 2 * float64(elems)
					if kind == "fp32" {
						bytes *= 2
					}
					b.ReportMetric(sec*1e3, "ms/step")
					b.ReportMetric(bytes/sec/1e9, "GB/s")
				})
			}
		}
	}
}
