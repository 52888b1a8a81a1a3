package gemm

import (
	"fmt"
	"math/rand"
	"runtime"
	"testing"
)

// benchShapes are GPT-2 small's layer products, M×K×N with M = 512 tokens:
// attention qkv (768→2304), MLP up (768→3072), MLP down (3072→768), LM head (768→50304);
// then the tiny config's (width 256, vocab 8192) with M = 1024 tokens (batch 8×128).
var benchShapes = [][3]int{{512, 768, 3072}, {512, 3072, 768}, {512, 768, 2304}, {512, 768, 50304},
	{1024, 256, 768}, {1024, 256, 1024}, {1024, 1024, 256}, {1024, 256, 8192}}

// BenchmarkSgemm reports GFLOP/s (2*M*N*K per product) for each shape, transposition
// (NN: C=A·B, NT: C=A·Bᵀ as in a forward pass with out×in weights, TN: C=Aᵀ·B as in a
// weight gradient) and thread count, with the implementation Sgemm selects.
// Names: Sgemm/MxKxN/TT/tThreads.
func BenchmarkSgemm(b *testing.B) { benchProducts(b, Sgemm) }

// BenchmarkSgemmMixedBF16 is BenchmarkSgemm for SgemmMixedBF16 (inputs converted to bfloat16
// pairs, then packed; VDPBF16PS): same shapes and names, FLOP counted the same way.
func BenchmarkSgemmMixedBF16(b *testing.B) { benchProducts(b, SgemmMixedBF16) }

// benchProducts runs BenchmarkSgemm's shapes with product fn (Sgemm's signature).
func benchProducts(b *testing.B, fn func(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)) {
	defer SetThreads(0)
	r := rand.New(rand.NewSource(1))
	for _, s := range benchShapes {
		m, k, n := s[0], s[1], s[2]
		var A, B, C []float32 // allocated on first use, so that a -bench filter skips them
		for _, tt := range []string{"NN", "NT", "TN"} {
			ta, tb := tt[0] == 'T', tt[1] == 'T'
			lda, ldb := k, n
			if ta {
				lda = m
			}
			if tb {
				ldb = k
			}
			for _, th := range []int{1, 2} {
				b.Run(fmt.Sprintf("%dx%dx%d/%s/t%d", m, k, n, tt, th), func(b *testing.B) {
					if A == nil {
						A, B, C = randSlice(r, m*k), randSlice(r, k*n), make([]float32, m*n)
					}
					SetThreads(th)
					runtime.LockOSThread()
					defer runtime.UnlockOSThread()
					fn(ta, tb, m, n, k, 1, A, lda, B, ldb, 0, C, n) // warm up buffers
					b.ResetTimer()
					cpu0 := threadCPU()
					for i := 0; i < b.N; i++ {
						fn(ta, tb, m, n, k, 1, A, lda, B, ldb, 0, C, n)
					}
					cpu := threadCPU() - cpu0
					flop := 2 * float64(m) * float64(n) * float64(k) * float64(b.N)
					b.ReportMetric(flop/b.Elapsed().Seconds()/1e9, "GFLOP/s")
					if th == 1 && cpu > 0 {
						// One thread runs inline on this goroutine: throughput per CPU-second
						// of the thread, insensitive to other processes on the machine.
						b.ReportMetric(flop/cpu/1e9, "GFLOP/cpu-s")
					}
				})
			}
		}
	}
}

// BenchmarkSgemv reports GFLOP/s and GB/s of B for products of a few rows (decoding steps
// through GPT-2 small's layers, batch M = 1 to 32): Sgemv/MxKxN/NN|NT/tThreads. With one
// thread it also reports GB per CPU-second of the thread.
func BenchmarkSgemv(b *testing.B) {
	defer SetThreads(0)
	r := rand.New(rand.NewSource(1))
	for _, s := range [][2]int{{768, 3072}, {3072, 768}, {768, 50304}} {
		k, n := s[0], s[1]
		B := randSlice(r, k*n)
		for _, m := range []int{1, 4, 8, 16, 32} {
			A := randSlice(r, m*k)
			C := make([]float32, m*n)
			for _, tb := range []bool{false, true} {
				ldb, tt := n, "NN"
				if tb {
					ldb, tt = k, "NT"
				}
				for _, th := range []int{1, 2} {
					b.Run(fmt.Sprintf("%dx%dx%d/%s/t%d", m, k, n, tt, th), func(b *testing.B) {
						SetThreads(th)
						runtime.LockOSThread()
						defer runtime.UnlockOSThread()
						cpu0 := threadCPU()
						for i := 0; i < b.N; i++ {
							Sgemm(false, tb, m, n, k, 1, A, k, B, ldb, 0, C, n)
						}
						cpu := threadCPU() - cpu0
						sec := b.Elapsed().Seconds()
						b.ReportMetric(2*float64(m*n*k)*float64(b.N)/sec/1e9, "GFLOP/s")
						b.ReportMetric(4*float64(n*k)*float64(b.N)/sec/1e9, "GB/s")
						if th == 1 && cpu > 0 {
							b.ReportMetric(4*float64(n*k)*float64(b.N)/cpu/1e9, "GB/cpu-s")
						}
					})
				}
			}
		}
	}
}

// BenchmarkSgemvBF16 is BenchmarkSgemv with B in bfloat16 (SgemmBF16): the same products
// read half the bytes. GB/s counts the bytes of B read.
func BenchmarkSgemvBF16(b *testing.B) {
	defer SetThreads(0)
	r := rand.New(rand.NewSource(1))
	for _, s := range [][2]int{{768, 3072}, {3072, 768}, {768, 50304}} {
		k, n := s[0], s[1]
		B := make([]uint16, k*n)
		BF16FromFloat32(B, randSlice(r, k*n))
		for _, m := range []int{1, 4, 8} {
			A := randSlice(r, m*k)
			C := make([]float32, m*n)
			for _, tb := range []bool{false, true} {
				ldb, tt := n, "NN"
				if tb {
					ldb, tt = k, "NT"
				}
				for _, th := range []int{1, 2} {
					b.Run(fmt.Sprintf("%dx%dx%d/%s/t%d", m, k, n, tt, th), func(b *testing.B) {
						SetThreads(th)
						runtime.LockOSThread()
						defer runtime.UnlockOSThread()
						cpu0 := threadCPU()
						for i := 0; i < b.N; i++ {
							SgemmBF16(false, tb, m, n, k, 1, A, k, B, ldb, 0, C, n)
						}
						cpu := threadCPU() - cpu0
						sec := b.Elapsed().Seconds()
						b.ReportMetric(2*float64(m*n*k)*float64(b.N)/sec/1e9, "GFLOP/s")
						b.ReportMetric(2*float64(n*k)*float64(b.N)/sec/1e9, "GB/s")
						if th == 1 && cpu > 0 {
							b.ReportMetric(2*float64(n*k)*float64(b.N)/cpu/1e9, "GB/cpu-s")
						}
					})
				}
			}
		}
	}
}

// BenchmarkSgemmSmall reports GFLOP/s of the single-threaded products inside attention
// (T tokens, head size 64): scores Q·Kᵀ (T×64×T, NT), output P·V (T×T×64, NN), and their
// gradients (TN). Names: SgemmSmall/MxKxN/TT.
func BenchmarkSgemmSmall(b *testing.B) {
	r := rand.New(rand.NewSource(1))
	for _, T := range []int{64, 128, 512} {
		for _, c := range []struct {
			tt      string
			m, k, n int
		}{{"NT", T, 64, T}, {"NN", T, T, 64}, {"TN", T, T, 64}} {
			ta, tb := c.tt[0] == 'T', c.tt[1] == 'T'
			A := randSlice(r, c.m*c.k)
			B := randSlice(r, c.k*c.n)
			C := make([]float32, c.m*c.n)
			lda, ldb := c.k, c.n
			if ta {
				lda = c.m
			}
			if tb {
				ldb = c.k
			}
			b.Run(fmt.Sprintf("%dx%dx%d/%s", c.m, c.k, c.n, c.tt), func(b *testing.B) {
				b.ReportAllocs()
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				cpu0 := threadCPU()
				for i := 0; i < b.N; i++ {
					SgemmStrided(ta, tb, c.m, c.n, c.k, 1, A, lda, 0, B, ldb, 0, 0, C, c.n, 0, 1)
				}
				flop := 2 * float64(c.m*c.n*c.k) * float64(b.N)
				b.ReportMetric(flop/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				if cpu := threadCPU() - cpu0; cpu > 0 {
					b.ReportMetric(flop/cpu/1e9, "GFLOP/cpu-s")
				}
			})
		}
	}
}
