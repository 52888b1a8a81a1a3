package gemm

import (
	"fmt"
	"os"
	"runtime"
	"sync/atomic"
	"unsafe"

	"github.com/cpo-toolchain/cpo/pkg/parallel"
)

// kernel is one micro-kernel with the blocking sizes tuned for it.
type kernel struct {
	name   string
	mr, nr int // register tile: MR rows × NR columns of C
	kc     int // depth of a packed block (K direction)
	mc     int // rows of packed A walked per B micro-panel (A block kept in L2)
	nc     int // most columns of B packed by one task
	// fn computes C[i*ldc+j] = alpha*Σ_p a[p*mr+i]*b[p*nr+j] + beta*C[i*ldc+j] for the
	// mr×nr tile at c; C is not read when beta is +0.
	fn func(k int, a, b, c *float32, ldc int, alpha, beta float32)
	// fnU, if not nil (mr = 12 only), is fn with A read as stored instead of packed:
	// C[i*ldc+j] = alpha*Σ_p a[i*lda+p]*b[p*nr+j] + beta*C[i*ldc+j] for i < 12, j < nr.
	fnU func(k int, a *float32, lda int, b, c *float32, ldc int, alpha, beta float32)
	// gemv, if not nil, computes a single-row product without packing (see gemvAVX512):
	// c[j] = alpha*Σ_p a[p]*op(B)[p][j] + beta*c[j] for j0 ≤ j < j1; beta is +0 when zero.
	gemv func(transB bool, j0, j1, k int, alpha float32, a, b []float32, ldb int, beta float32, c []float32)
	// fewRows, if not nil, computes products of a few rows (2 ≤ m ≤ maxFewNN with B as
	// stored, m ≤ maxFewNT transposed) without packing (see fewRowsAVX512); A is row-major.
	fewRows func(transB bool, m, j0, j1, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)
	// bf16Rows, if not nil, computes products of m ≤ maxFewNT rows with B in bfloat16
	// without packing (see bf16RowsAVX512); A is row-major.
	bf16Rows func(transB bool, m, j0, j1, k int, alpha float32, a []float32, lda int, b []uint16, ldb int, beta float32, c []float32, ldc int)
	// packBT16, if not nil (nr = 32 only), packs 16 columns of a transposed B:
	// dst[p*32+j] = src[j*ldb+p] for p < 16*k16, j < 16.
	packBT16 func(k16 int, src *float32, ldb int, dst *float32)
	// packBN32, if not nil (nr = 32 only), packs one full panel of B as stored:
	// dst[p*32+j] = src[p*ldb+j] for p < k, j < 32.
	packBN32 func(k int, src *float32, ldb int, dst *float32)
	// packAT12, if not nil (mr = 12 only), packs one full panel of a transposed A:
	// dst[p*12+i] = src[p*lda+i] for p < k, i < 12.
	packAT12 func(k int, src *float32, lda int, dst *float32)
	// packAN12, if not nil (mr = 12 only), packs one full panel of A as stored:
	// dst[p*12+i] = src[i*lda+p] for p < 16*k16, i < 12.
	packAN12 func(k16 int, src *float32, lda int, dst *float32)
}

var goKernel = &kernel{name: "go", mr: 4, nr: 4, kc: 256, mc: 128, nc: 512, fn: sgemmKernelGo}

// kernels lists the implementations this CPU runs, fastest first; filled by init.
var kernels []*kernel

var impl atomic.Pointer[kernel]

func init() {
	kernels = append(asmKernels(), goKernel)
	impl.Store(kernels[0])
	if os.Getenv("CPO_NOASM") == "1" {
		impl.Store(goKernel)
	}
}

// Impls lists the implementations available on this CPU, fastest first ("avx512", "avx2",
// "go"); "go" is always present.
func Impls() []string {
	var s []string
	for _, k := range kernels {
		s = append(s, k.name)
	}
	return s
}

// Impl reports the implementation Sgemm uses now.
func Impl() string { return impl.Load().name }

// SetImpl selects the implementation Sgemm uses (one of Impls()), for tests and benchmarks.
// It returns an error, leaving the selection unchanged, if this CPU cannot run it.
func SetImpl(name string) error {
	for _, k := range kernels {
		if k.name == name {
			impl.Store(k)
			return nil
		}
	}
	return fmt.Errorf("gemm: implementation %q not available on this CPU (have %v)", name, Impls())
}

func workersDefault() int { return runtime.GOMAXPROCS(0) }

func runBatch(n, workers int, fn func(i int)) {
	parallel.Tasks(n, workers, func(_, i int) { fn(i) })
}

// sgemmKernelGo is the pure Go 4×4 micro-kernel (same contract as kernel.fn).
func sgemmKernelGo(k int, a, b, c *float32, ldc int, alpha, beta float32) {
	as := unsafe.Slice(a, 4*k)
	bs := unsafe.Slice(b, 4*k)
	var c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33 float32
	for p := 0; p < k; p++ {
		ap := as[4*p : 4*p+4 : 4*p+4]
		bp := bs[4*p : 4*p+4 : 4*p+4]
		a0, a1, a2, a3 := ap[0], ap[1], ap[2], ap[3]
		b0, b1, b2, b3 := bp[0], bp[1], bp[2], bp[3]
		c00 += a0 * b0
		c01 += a0 * b1
		c02 += a0 * b2
		c03 += a0 * b3
		c10 += a1 * b0
		c11 += a1 * b1
		c12 += a1 * b2
		c13 += a1 * b3
		c20 += a2 * b0
		c21 += a2 * b1
		c22 += a2 * b2
		c23 += a2 * b3
		c30 += a3 * b0
		c31 += a3 * b1
		c32 += a3 * b2
		c33 += a3 * b3
	}
	cs := unsafe.Slice(c, 3*ldc+4)
	acc := [16]float32{c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33}
	for i := 0; i < 4; i++ {
		row := cs[i*ldc : i*ldc+4 : i*ldc+4]
		r := acc[4*i : 4*i+4 : 4*i+4]
		if beta == 0 {
			row[0], row[1], row[2], row[3] = alpha*r[0], alpha*r[1], alpha*r[2], alpha*r[3]
		} else {
			row[0] = alpha*r[0] + beta*row[0]
			row[1] = alpha*r[1] + beta*row[1]
			row[2] = alpha*r[2] + beta*row[2]
			row[3] = alpha*r[3] + beta*row[3]
		}
	}
}
