// Package gemm holds the single-precision matrix products that every forward and
// backward pass in this project is built from.
//
// All matrices are row-major. For Sgemm, op(A) is M×K, op(B) is K×N and C is M×N;
// lda, ldb and ldc are the row strides (in elements) of A, B and C as stored, so with
// transA=false A is stored M×K (lda ≥ K) and with transA=true A is stored K×M (lda ≥ M).
//
// Sgemm dispatches to the fastest implementation for this CPU; SgemmRef is the plain
// Go reference every fast path is tested against.
//
// The fast path is the usual packed, cache-blocked scheme (Goto/BLIS): op(A) is packed into
// panels of MR rows, op(B) into panels of NR columns, K is cut into blocks of KC, and an
// assembly micro-kernel computes each MR×NR tile of C in registers (AVX-512: 12×32 with 24
// ZMM accumulators, packing by in-register transposes; AVX2+FMA: 6×16 with 12 YMM
// accumulators; a pure Go 4×4 kernel otherwise). Work is spread over GOMAXPROCS goroutines
// (see SetThreads) by column and row blocks of C, handed out dynamically. Products of at
// most 16 rows (decoding) skip packing on AVX-512 and read B once. SgemmBF16 takes B in
// bfloat16 (inference weights). The assembly is generated: go run ./_generate > kernel_amd64.s.
//
// Setting the environment variable CPO_NOASM=1 (read at start-up) or calling SetImpl("go")
// forces the pure Go kernel; building with -tags purego leaves the assembly out.
package gemm

import (
	"fmt"
	"sync/atomic"

	"github.com/cpo-toolchain/cpo/pkg/parallel"
)

// Sgemm computes C = alpha*op(A)*op(B) + beta*C.
// When beta == 0, C is overwritten and its prior contents (even NaN) are ignored.
// C must not alias A or B.
//
// Shapes: op(A) is M×K, op(B) is K×N, C is M×N, all row-major with row strides lda, ldb, ldc.
// Sgemm panics if a slice is too short for the shape and stride it is given. When k == 0 or
// alpha == 0, A and B are not read (C = beta*C).
// Products of more than about 2 MFLOP (or, for M ≤ 16, with B of more than 1 MB) run on up
// to Threads() goroutines.
func Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	checkArgs(transA, transB, m, n, k, len(a), lda, len(b), ldb, len(c), ldc)
	if m == 0 || n == 0 {
		return
	}
	if beta == 0 {
		beta = 0 // turn -0 into +0: the kernels test the bits of beta
	}
	if k == 0 || alpha == 0 {
		scaleC(m, n, beta, c, ldc)
		return
	}
	sgemm(impl.Load(), Threads(), transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// sgemm picks the method for a product with k > 0 and alpha != 0 (beta +0 when zero), on
// up to threads goroutines.
func sgemm(kern *kernel, threads int, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	// Few rows (decoding): memory-bound, so they skip packing and use every thread from
	// 1 MB of B on; the packed path from parallelFlops on.
	fewWorkers, maxWorkers := 1, 1
	if n*k >= gemvParallel {
		fewWorkers = threads
	}
	if 2*float64(m)*float64(n)*float64(k) >= parallelFlops {
		maxWorkers = threads
	}
	switch {
	case m == 1 && kern.gemv != nil:
		sgemv(kern, fewWorkers, transA, transB, n, k, alpha, a, lda, b, ldb, beta, c)
	case m >= 2 && kern.fewRows != nil && (m <= maxFewNN || transB && m <= maxFewNT):
		sfew(kern, fewWorkers, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
	default:
		sgemmBlocked(kern, maxWorkers, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
	}
}

// gemvParallel is the size of B (in floats) from which a single-row product uses more than
// one goroutine.
const gemvParallel = 1 << 18

// sgemv is Sgemm for m == 1 with kern.gemv, over column chunks on up to workers goroutines.
func sgemv(kern *kernel, workers int, transA, transB bool, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32) {
	if transA && lda != 1 {
		// op(A) is one row stored as a column with stride lda: gather it.
		bf := getBuffer(k)
		defer putBuffer(bf)
		for p := range bf.f {
			bf.f[p] = a[p*lda]
		}
		a = bf.f
	}
	const chunk = 128
	nch := (n + chunk - 1) / chunk
	if workers == 1 || nch == 1 {
		kern.gemv(transB, 0, n, k, alpha, a, b, ldb, beta, c)
		return
	}
	parallel.For(nch, workers, func(lo, hi int) {
		kern.gemv(transB, lo*chunk, min(n, hi*chunk), k, alpha, a, b, ldb, beta, c)
	})
}

// Largest M that Sgemm computes without packing (kernel.fewRows), with B as stored and
// with B transposed.
const (
	maxFewNN = 16
	maxFewNT = 16
)

// sfew is Sgemm for a few rows with kern.fewRows, over column chunks on up to workers
// goroutines.
func sfew(kern *kernel, workers int, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if transA {
		// op(A) is stored K×M: gather its m rows (m×k, row-major).
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
	if workers == 1 || nch == 1 {
		kern.fewRows(transB, m, 0, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	parallel.For(nch, workers, func(lo, hi int) {
		kern.fewRows(transB, m, lo*chunk, min(n, hi*chunk), k, alpha, a, lda, b, ldb, beta, c, ldc)
	})
}

// parallelFlops is the size (in FLOP) from which Sgemm uses more than one goroutine.
const parallelFlops = 2 << 20

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

// SgemmStrided computes batch independent products C_i = alpha*op(A_i)*op(B_i) + beta*C_i,
// where A_i starts at a[i*strideA], B_i at b[i*strideB] and C_i at c[i*strideC] (strides in
// elements). It is meant for attention, where each (batch, head) pair is a small product:
// the batch is spread over Threads() goroutines, each product running single-threaded.
// The C_i must not overlap each other, A or B.
func SgemmStrided(transA, transB bool, m, n, k int, alpha float32, a []float32, lda, strideA int, b []float32, ldb, strideB int, beta float32, c []float32, ldc, strideC int, batch int) {
	if batch <= 0 || m == 0 || n == 0 {
		return
	}
	if beta == 0 {
		beta = 0
	}
	kern := impl.Load()
	one := func(i int) {
		ai, bi, ci := a[i*strideA:], b[i*strideB:], c[i*strideC:]
		checkArgs(transA, transB, m, n, k, len(ai), lda, len(bi), ldb, len(ci), ldc)
		if k == 0 || alpha == 0 {
			scaleC(m, n, beta, ci, ldc)
			return
		}
		sgemm(kern, 1, transA, transB, m, n, k, alpha, ai, lda, bi, ldb, beta, ci, ldc)
	}
	workers := 1
	if 2*float64(m)*float64(n)*float64(k)*float64(batch) >= parallelFlops {
		workers = Threads()
	}
	runBatch(batch, workers, one)
}

// scaleC sets C = beta*C (C = 0 when beta == 0, ignoring NaN in C).
func scaleC(m, n int, beta float32, c []float32, ldc int) {
	for i := 0; i < m; i++ {
		row := c[i*ldc : i*ldc+n]
		if beta == 0 {
			clear(row)
			continue
		}
		if beta == 1 {
			continue
		}
		for j := range row {
			row[j] *= beta
		}
	}
}

// checkArgs panics unless slices of lengths lenA, lenB, lenC hold the shapes and strides.
func checkArgs(transA, transB bool, m, n, k int, lenA, lda, lenB, ldb, lenC, ldc int) {
	if m < 0 || n < 0 || k < 0 {
		panic(fmt.Sprintf("gemm: negative size m=%d n=%d k=%d", m, n, k))
	}
	need := func(name string, rows, cols, ld, have int) {
		if rows == 0 || cols == 0 {
			return
		}
		if ld < cols {
			panic(fmt.Sprintf("gemm: ld%s=%d < %d columns", name, ld, cols))
		}
		if want := (rows-1)*ld + cols; have < want {
			panic(fmt.Sprintf("gemm: len(%s)=%d < %d needed for %d×%d with stride %d", name, have, want, rows, cols, ld))
		}
	}
	need("c", m, n, ldc, lenC)
	if m == 0 || n == 0 || k == 0 {
		return // A and B are not read
	}
	if transA {
		need("a", k, m, lda, lenA)
	} else {
		need("a", m, k, lda, lenA)
	}
	if transB {
		need("b", n, k, ldb, lenB)
	} else {
		need("b", k, n, ldb, lenB)
	}
}

var threads atomic.Int64

// SetThreads sets the number of goroutines Sgemm may use; n <= 0 restores the default,
// GOMAXPROCS at the time of each call.
func SetThreads(n int) { threads.Store(int64(n)) }

// Threads reports the number of goroutines a large Sgemm uses.
func Threads() int {
	if n := int(threads.Load()); n > 0 {
		return n
	}
	return workersDefault()
}
