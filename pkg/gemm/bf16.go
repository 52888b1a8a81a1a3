package gemm

import (
	"math"

	"github.com/cpo-toolchain/cpo/pkg/parallel"
)

// bfloat16 numbers are stored as uint16: the high half of the bits of a float32 (8-bit
// exponent, 7-bit mantissa). They halve the memory that weights take and the bytes a
// decoding step reads.

// BF16FromFloat32 rounds each src[i] to the nearest bfloat16 (ties to even) into dst[i];
// NaN stays NaN. len(dst) must be at least len(src).
func BF16FromFloat32(dst []uint16, src []float32) {
	dst = dst[:len(src)]
	for i, v := range src {
		u := math.Float32bits(v)
		if u&0x7fffffff > 0x7f800000 { // NaN: keep it quiet and non-zero
			dst[i] = uint16(u>>16) | 0x40
			continue
		}
		dst[i] = uint16((u + 0x7fff + (u>>16)&1) >> 16)
	}
}

// BF16ToFloat32 widens each bfloat16 src[i] to float32 into dst[i] (exact).
func BF16ToFloat32(dst []float32, src []uint16) {
	dst = dst[:len(src)]
	for i, v := range src {
		dst[i] = bf16ToF32(v)
	}
}

func bf16ToF32(v uint16) float32 { return math.Float32frombits(uint32(v) << 16) }

// SgemmBF16 is Sgemm with B in bfloat16 (for inference with bf16 weights):
// C = alpha*op(A)*op(B) + beta*C, op(B) K×N with B stored K×N (ldb ≥ N) or, with transB,
// N×K (ldb ≥ K). The products are those of B widened to float32, accumulated in float32.
// Up to 16 rows of A (decoding) read B once without packing; more rows widen B a block of
// columns at a time and run Sgemm on the block.
func SgemmBF16(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []uint16, ldb int, beta float32, c []float32, ldc int) {
	checkArgs(transA, transB, m, n, k, len(a), lda, len(b), ldb, len(c), ldc)
	if done(m, n, k, alpha, &beta, c, ldc) {
		return
	}
	kern := impl.Load()
	threads := Threads()
	if m <= maxFewNT && kern.bf16Rows != nil {
		if transA {
			bf := getBuffer(m * k)
			defer putBuffer(bf)
			for p := 0; p < k; p++ {
				for i := 0; i < m; i++ {
					bf.f[i*k+p] = a[p*lda+i]
				}
			}
			a, lda = bf.f, k
		}
		const chunk = 128
		nch := (n + chunk - 1) / chunk
		workers := 1
		if n*k >= 2*gemvParallel {
			workers = threads
		}
		if workers == 1 || nch == 1 {
			kern.bf16Rows(transB, m, 0, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
			return
		}
		parallel.For(nch, workers, func(lo, hi int) {
			kern.bf16Rows(transB, m, lo*chunk, min(n, hi*chunk), k, alpha, a, lda, b, ldb, beta, c, ldc)
		})
		return
	}
	// Widen bf16Block columns of op(B) at a time and multiply them with Sgemm.
	nb := min(n, bf16Block)
	bf := getBuffer(nb * k)
	defer putBuffer(bf)
	w := bf.f
	for j0 := 0; j0 < n; j0 += nb {
		cols := min(nb, n-j0)
		if transB {
			// op(B) columns j0.. are rows j0.. of B (N×K): widen them, still transposed.
			for j := 0; j < cols; j++ {
				BF16ToFloat32(w[j*k:(j+1)*k], b[(j0+j)*ldb:(j0+j)*ldb+k])
			}
			sgemm(kern, threads, transA, true, m, cols, k, alpha, a, lda, w, k, beta, c[j0:], ldc)
		} else {
			for p := 0; p < k; p++ {
				BF16ToFloat32(w[p*cols:(p+1)*cols], b[p*ldb+j0:p*ldb+j0+cols])
			}
			sgemm(kern, threads, transA, false, m, cols, k, alpha, a, lda, w, cols, beta, c[j0:], ldc)
		}
	}
}

// bf16Block is the number of columns of a bfloat16 B that SgemmBF16 widens at a time.
const bf16Block = 1024

// SgemmBF16Ref is the plain Go reference of SgemmBF16 (same contract): B widened to float32,
// then SgemmRef.
func SgemmBF16Ref(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []uint16, ldb int, beta float32, c []float32, ldc int) {
	w := make([]float32, len(b))
	BF16ToFloat32(w, b)
	SgemmRef(transA, transB, m, n, k, alpha, a, lda, w, ldb, beta, c, ldc)
}
