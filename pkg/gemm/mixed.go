package gemm

import (
	"math"
	"sync/atomic"
	"unsafe"

	"github.com/cpo-toolchain/cpo/pkg/parallel"
)

// Mixed precision: SgemmMixedBF16 takes float32 operands, rounds them to bfloat16, and
// multiplies pairs of bfloat16 with float32 sums, the way AVX512_BF16's VDPBF16PS does (twice
// the multiply-adds per cycle of float32 FMAs on these CPUs). This is what PyTorch's bf16
// autocast does to the inputs of a Linear layer; the sums and the result stay float32.
//
// How: op(A) and op(B) are first converted into matrices of 32-bit words, each holding two
// consecutive elements along K rounded to bfloat16 (the even one in the low half; zero past
// an odd K): op(A) M×K becomes M×⌈K/2⌉ words, op(B) K×N becomes ⌈K/2⌉×N, each stored in the
// orientation of its source. Rounding is to nearest even, NaN stays NaN, a float32 denormal
// becomes a signed zero (VCVTNE2PS2BF16's rules). The blocked driver then runs on the words
// exactly as on float32 (packing only moves 32-bit elements) with a kernel that multiplies
// pairs (kernel.fn over k pairs).

// SgemmMixedBF16 computes C = alpha*bf16(op(A))*bf16(op(B)) + beta*C, every element of op(A)
// and op(B) rounded to bfloat16 (see BF16FromFloat32; denormals flushed to zero), the
// products of each pair of K summed in float32 (each product is exact; the sums round to
// nearest even, and a denormal sum is flushed to zero). Shapes, strides and the beta == 0
// rule are those of Sgemm; C must not alias A or B. Expect a relative error of about 2⁻⁸
// per element of op(A) and op(B) against Sgemm: it is for training in mixed precision, not a
// replacement for Sgemm. It takes (M+N)·⌈K/2⌉ words of scratch.
//
// With AVX512_BF16 it runs the VDPBF16PS kernel; elsewhere (or with CPO_NOASM=1, SetImpl("go")
// or -tags purego) a Go kernel that computes the same sums in the same order within one
// K block of the driver.
func SgemmMixedBF16(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	checkArgs(transA, transB, m, n, k, len(a), lda, len(b), ldb, len(c), ldc)
	if done(m, n, k, alpha, &beta, c, ldc) {
		return
	}
	kn := mixedKernel()
	workers := 1
	if 2*float64(m)*float64(n)*float64(k) >= parallelFlops {
		workers = Threads()
	}
	k2 := (k + 1) / 2
	// Words of op(A) stored as A is: M×k2 (ldaw k2) or, transposed, k2×M (ldaw M).
	abuf := getBuffer(m * k2)
	defer putBuffer(abuf)
	ldaw := k2
	if transA {
		ldaw = m
	}
	toPairs(abuf.f, ldaw, !transA, a, lda, m, k, workers, kn == goPairKernel)
	// Words of op(B) stored as B is: k2×N (ldbw N) or, transposed, N×k2 (ldbw k2).
	bbuf := getBuffer(n * k2)
	defer putBuffer(bbuf)
	ldbw := n
	if transB {
		ldbw = k2
	}
	toPairs(bbuf.f, ldbw, transB, b, ldb, n, k, workers, kn == goPairKernel)
	sgemmBlocked(kn, workers, transA, transB, m, n, k2, alpha, abuf.f, ldaw, bbuf.f, ldbw, beta, c, ldc)
}

// toPairs writes the words of bfloat16 pairs of an operand with `other` elements across and
// k along K into dst (row stride ldd): alongRows means K runs along the rows of src (stored
// other×k, row stride lds; dst other×⌈k/2⌉), else down its columns (stored k×other; dst
// ⌈k/2⌉×other). Rows are split over up to workers goroutines; plainGo avoids the assembly.
func toPairs(dst []float32, ldd int, alongRows bool, src []float32, lds, other, k, workers int, plainGo bool) {
	k2 := (k + 1) / 2
	dw := words(dst)
	asm := !plainGo && pairsAsm
	if alongRows {
		parallelRows(other, k, workers, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				pairsOfRow(dw[i*ldd:i*ldd+k2], src[i*lds:i*lds+k], asm)
			}
		})
		return
	}
	parallelRows(k2, 2*other, workers, func(lo, hi int) {
		for p := lo; p < hi; p++ {
			r0 := src[2*p*lds : 2*p*lds+other]
			var r1 []float32
			if 2*p+1 < k {
				r1 = src[(2*p+1)*lds : (2*p+1)*lds+other]
			}
			pairsOfRows(dw[p*ldd:p*ldd+other], r0, r1, asm)
		}
	})
}

// parallelRows runs fn over [0, rows) in chunks on up to workers goroutines when the work
// (rows × cols elements) is large enough to pay for it.
func parallelRows(rows, cols, workers int, fn func(lo, hi int)) {
	if workers == 1 || rows*cols < 1<<16 {
		fn(0, rows)
		return
	}
	parallel.For(rows, workers, fn)
}

// pairsOfRow: d[t] = pair(s[2t], s[2t+1]) (zero past len(s)); len(d) = ⌈len(s)/2⌉.
func pairsOfRow(d []uint32, s []float32, asm bool) {
	t := 0
	if n16 := len(s) / 32; asm && n16 > 0 {
		pairsRow(n16, &s[0], (*float32)(unsafe.Pointer(&d[0])))
		t = 16 * n16
	}
	for ; 2*t+1 < len(s); t++ {
		d[t] = bf16Pair(s[2*t], s[2*t+1])
	}
	if 2*t < len(s) {
		d[t] = bf16Bits(s[2*t])
	}
}

// pairsOfRows: d[t] = pair(r0[t], r1[t]), or bf16(r0[t]) alone when r1 is nil.
func pairsOfRows(d []uint32, r0, r1 []float32, asm bool) {
	if r1 == nil {
		for t, v := range r0 {
			d[t] = bf16Bits(v)
		}
		return
	}
	t := 0
	if n16 := len(r0) / 16; asm && n16 > 0 {
		pairsInterleave(n16, &r0[0], &r1[0], (*float32)(unsafe.Pointer(&d[0])), &interleaveIdx[0])
		t = 16 * n16
	}
	for ; t < len(r0); t++ {
		d[t] = bf16Pair(r0[t], r1[t])
	}
}

// interleaveIdx is VPERMW's index for pairsInterleave: word t of the result takes 16-bit
// elements t (the first row's) and 16+t (the second's).
var interleaveIdx = func() (x [32]uint16) {
	for t := 0; t < 16; t++ {
		x[2*t], x[2*t+1] = uint16(t), uint16(16+t)
	}
	return
}()

// MixedBF16Impl reports the kernel SgemmMixedBF16 uses now: "avx512bf16" or "go".
func MixedBF16Impl() string { return mixedKernel().name }

// goPairKernel is the pure Go kernel of SgemmMixedBF16 (4×4 tiles of pairs).
var goPairKernel = &kernel{name: "go", mr: 4, nr: 4, kc: 128, mc: 128, nc: 512, fn: pairKernelGo}

// asmPairKernel is the VDPBF16PS kernel, or nil when this CPU or build has none.
var asmPairKernel atomic.Pointer[kernel]

// pairsAsm: this CPU and build convert to pairs in assembly (pairsRow, pairsInterleave).
var pairsAsm bool

// mixedKernel is the pair kernel that goes with the current Sgemm implementation: the
// assembly one unless Sgemm was forced to pure Go.
func mixedKernel() *kernel {
	if impl.Load() != goKernel {
		if kn := asmPairKernel.Load(); kn != nil {
			return kn
		}
	}
	return goPairKernel
}

// SgemmMixedBF16Ref is the plain Go reference of SgemmMixedBF16: for each element of C one
// float32 sum over the pairs of K in order (high half's product first, as VDPBF16PS), then
// alpha*sum + beta*C.
func SgemmMixedBF16Ref(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	at := func(i, p int) float32 {
		if p >= k {
			return 0
		}
		if transA {
			return a[p*lda+i]
		}
		return a[i*lda+p]
	}
	bt := func(p, j int) float32 {
		if p >= k {
			return 0
		}
		if transB {
			return b[j*ldb+p]
		}
		return b[p*ldb+j]
	}
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float32
			for p := 0; p < k; p += 2 {
				s = dpbf16(s, bf16Pair(at(i, p), at(i, p+1)), bf16Pair(bt(p, j), bt(p+1, j)))
			}
			x := &c[i*ldc+j]
			if beta == 0 {
				*x = alpha * s
			} else {
				*x = float32(alpha*s) + beta**x
			}
		}
	}
}

// bf16Bits rounds v to bfloat16 (nearest even; NaN stays NaN), a denormal v to a signed
// zero, and returns the 16 bits in the low half.
func bf16Bits(v float32) uint32 {
	u := math.Float32bits(v)
	if u&0x7f800000 == 0 {
		return u >> 16 & 0x8000
	}
	if u&0x7fffffff > 0x7f800000 {
		return u>>16 | 0x40
	}
	return (u + 0x7fff + u>>16&1) >> 16
}

// bf16Pair is the packed word of a pair: bfloat16 of lo in the low half, of hi in the high.
func bf16Pair(lo, hi float32) uint32 { return bf16Bits(lo) | bf16Bits(hi)<<16 }

// dpbf16 is one lane of VDPBF16PS: acc + hi(a)*hi(b), then + lo(a)*lo(b), each step a fused
// multiply-add (the product exact, even below float32's normal range) rounded to float32 and
// flushed to zero when denormal. The product of two bfloat16 is exact in float64 and the
// float64 sum rounds to float32 as the exact sum would (53 ≥ 2·24+2 bits), up to results in
// the last float32 step below 2⁻¹²⁶, where the hardware decides tininess after rounding to 24
// bits.
func dpbf16(acc float32, a, b uint32) float32 {
	hi := float64(math.Float32frombits(a&0xffff0000)) * float64(math.Float32frombits(b&0xffff0000))
	acc = ftz(float32(float64(acc) + hi))
	lo := float64(math.Float32frombits(a<<16)) * float64(math.Float32frombits(b<<16))
	return ftz(float32(float64(acc) + lo))
}

// ftz flushes a denormal float32 to a zero of the same sign.
func ftz(x float32) float32 {
	if u := math.Float32bits(x); u&0x7f800000 == 0 {
		return math.Float32frombits(u & 0x80000000)
	}
	return x
}

// words views a float32 buffer as the 32-bit words of packed pairs.
func words(f []float32) []uint32 {
	if len(f) == 0 {
		return nil
	}
	return unsafe.Slice((*uint32)(unsafe.Pointer(&f[0])), len(f))
}

// pairKernelGo is the pure Go 4×4 kernel over pairs (same contract as kernel.fn, with k
// pairs: a is 4×k words, b is k×4 words, both k-major).
func pairKernelGo(k int, a, b, c *float32, ldc int, alpha, beta float32) {
	as := unsafe.Slice((*uint32)(unsafe.Pointer(a)), 4*k)
	bs := unsafe.Slice((*uint32)(unsafe.Pointer(b)), 4*k)
	var acc [16]float32
	for p := 0; p < k; p++ {
		ap := as[4*p : 4*p+4 : 4*p+4]
		bp := bs[4*p : 4*p+4 : 4*p+4]
		for i, aw := range ap {
			r := acc[4*i : 4*i+4 : 4*i+4]
			for j, bw := range bp {
				r[j] = dpbf16(r[j], aw, bw)
			}
		}
	}
	cs := unsafe.Slice(c, 3*ldc+4)
	for i := 0; i < 4; i++ {
		row := cs[i*ldc : i*ldc+4 : i*ldc+4]
		for j := range row {
			if beta == 0 {
				row[j] = alpha * acc[4*i+j]
			} else {
				// alpha*acc rounded on its own, as the assembly's VMULPS does (Go may fuse it
				// into the next addition from GOAMD64=v3 on).
				row[j] = float32(alpha*acc[4*i+j]) + beta*row[j]
			}
		}
	}
}
