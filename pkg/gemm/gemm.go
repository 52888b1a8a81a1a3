// Package gemm holds the single-precision matrix products that every forward and
// backward pass in this project is built from.
//
// All matrices are row-major. For Sgemm, op(A) is M×K, op(B) is K×N and C is M×N;
// lda, ldb and ldc are the row strides (in elements) of A, B and C as stored, so with
// transA=false A is stored M×K (lda ≥ K) and with transA=true A is stored K×M (lda ≥ M).
//
// Sgemm dispatches to the fastest implementation for this CPU; SgemmRef is the plain
// Go reference every fast path is tested against.
package gemm

// Sgemm computes C = alpha*op(A)*op(B) + beta*C.
// When beta == 0, C is overwritten and its prior contents (even NaN) are ignored.
// C must not alias A or B.
func Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	SgemmRef(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// SgemmRef is the plain Go reference implementation of Sgemm (same contract).
// It accumulates each dot product in float32, in order of increasing k.
func SgemmRef(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	for i := 0; i < m; i++ {
		crow := c[i*ldc : i*ldc+n]
		for j := 0; j < n; j++ {
			var s float32
			for p := 0; p < k; p++ {
				var av, bv float32
				if transA {
					av = a[p*lda+i]
				} else {
					av = a[i*lda+p]
				}
				if transB {
					bv = b[j*ldb+p]
				} else {
					bv = b[p*ldb+j]
				}
				s += av * bv
			}
			if beta == 0 {
				crow[j] = alpha * s
			} else {
				crow[j] = alpha*s + beta*crow[j]
			}
		}
	}
}
