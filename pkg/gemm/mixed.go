package gemm

import (
	"math"
	"sync/atomic"
	"unsafe"
)

// Mixed precision: SgemmMixedBF16 takes float32 operands, rounds them to bfloat16 while
// packing, and multiplies pairs of bfloat16 with float32 sums, the way AVX512_BF16's
// VDPBF16PS does (twice the multiply-adds per cycle of float32 FMAs on these CPUs). This is
// what PyTorch's bf16 autocast does to a Linear layer: the inputs lose all but 8 bits of
// mantissa, the accumulation and the result stay float32.
//
// Packed layout (the blocked driver's, with k counting pairs of K): a word of a packed panel
// holds op(X)[.][2p] rounded to bfloat16 in its low 16 bits and op(X)[.][2p+1] in its high
// 16 bits (zero past an odd K). Rounding is to nearest even; NaN stays NaN; a float32 whose
// exponent is zero (a denormal) becomes a signed zero, so the kernels never see bfloat16
// denormals.

// SgemmMixedBF16 computes C = alpha*bf16(op(A))*bf16(op(B)) + beta*C, every element of op(A)
// and op(B) rounded to bfloat16 (see BF16FromFloat32; denormals flushed to zero), the
// products of each pair of K summed in float32 (each product is exact; the sums round to
// nearest even, and a denormal sum is flushed to zero). Shapes, strides and the beta == 0
// rule are those of Sgemm; C must not alias A or B. Expect a relative error of about 2⁻⁸
// per element of op(A) and op(B) against Sgemm: it is for training in mixed precision, not a
// replacement for Sgemm.
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
	sgemmBlocked(kn, workers, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// MixedBF16Impl reports the kernel SgemmMixedBF16 uses now: "avx512bf16" or "go".
func MixedBF16Impl() string { return mixedKernel().name }

// goPairKernel is the pure Go kernel of SgemmMixedBF16 (4×4 tiles of pairs).
var goPairKernel = &kernel{name: "go", mr: 4, nr: 4, kc: 128, mc: 128, nc: 512, fn: pairKernelGo, pairs: true}

// asmPairKernel is the VDPBF16PS kernel, or nil when this CPU or build has none.
var asmPairKernel atomic.Pointer[kernel]

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
				*x = alpha*s + beta**x
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

// dpbf16 is one lane of VDPBF16PS: acc + hi(a)*hi(b), then + lo(a)*lo(b), each sum rounded
// to float32 and flushed to zero when denormal (the products of two bfloat16 are exact).
func dpbf16(acc float32, a, b uint32) float32 {
	acc = ftz(acc + ftz(math.Float32frombits(a&0xffff0000)*math.Float32frombits(b&0xffff0000)))
	return ftz(acc + ftz(math.Float32frombits(a<<16)*math.Float32frombits(b<<16)))
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
				row[j] = alpha*acc[4*i+j] + beta*row[j]
			}
		}
	}
}

// packAPairs is packA for a pair kernel: rows i0..i0+h of op(A) (K = kfull columns) as one
// panel of mr rows by k2 pairs, k-major: dst[p*mr+i] = pair(op(A)[i0+i][2p], op(A)[i0+i][2p+1]),
// zero past K and in rows h..mr. len(dst) = mr*k2.
func packAPairs(dst []uint32, transA bool, a []float32, lda, i0, h, k2, kfull, mr int) {
	dst = dst[:mr*k2]
	if h < mr {
		clear(dst)
	}
	even := kfull / 2 // pairs with both halves inside K
	if transA {
		// op(A)[i][p] = a[p*lda+i]: rows 2p and 2p+1 of the stored matrix, h floats each.
		for p := 0; p < even; p++ {
			r0 := a[2*p*lda+i0 : 2*p*lda+i0+h]
			r1 := a[(2*p+1)*lda+i0 : (2*p+1)*lda+i0+h]
			d := dst[p*mr : p*mr+h]
			for i := range d {
				d[i] = bf16Pair(r0[i], r1[i])
			}
		}
		if even < k2 {
			r0 := a[2*even*lda+i0 : 2*even*lda+i0+h]
			d := dst[even*mr : even*mr+h]
			for i := range d {
				d[i] = bf16Bits(r0[i])
			}
		}
		return
	}
	for i := 0; i < h; i++ {
		row := a[(i0+i)*lda : (i0+i)*lda+kfull]
		for p := 0; p < even; p++ {
			dst[p*mr+i] = bf16Pair(row[2*p], row[2*p+1])
		}
		if even < k2 {
			dst[even*mr+i] = bf16Bits(row[2*even])
		}
	}
}

// packBPairs is packB for a pair kernel: op(B)[2*pc2 : 2*(pc2+kcb2), j0:j0+cols] (K = kfull
// rows in all) as panels of nr columns by kcb2 pairs: panel q holds
// dst[q*kcb2*nr + p*nr + j] = pair(op(B)[2(pc2+p)][j0+q*nr+j], op(B)[2(pc2+p)+1][j0+q*nr+j]),
// zero past K and past cols.
func packBPairs(dst []uint32, transB bool, b []float32, ldb, pc2, kcb2, j0, cols, kfull, nr int) {
	nq := (cols + nr - 1) / nr
	for q := 0; q < nq; q++ {
		panel := dst[q*kcb2*nr : (q+1)*kcb2*nr]
		w := min(nr, cols-q*nr)
		if w < nr {
			clear(panel)
		}
		jc := j0 + q*nr
		for p := 0; p < kcb2; p++ {
			r := 2 * (pc2 + p) // the row of op(B) in the low halves
			d := panel[p*nr : p*nr+w]
			switch {
			case !transB && r+1 < kfull:
				r0 := b[r*ldb+jc : r*ldb+jc+w]
				r1 := b[(r+1)*ldb+jc : (r+1)*ldb+jc+w]
				for j := range d {
					d[j] = bf16Pair(r0[j], r1[j])
				}
			case !transB:
				r0 := b[r*ldb+jc : r*ldb+jc+w]
				for j := range d {
					d[j] = bf16Bits(r0[j])
				}
			case r+1 < kfull:
				for j := range d {
					x := (jc+j)*ldb + r
					d[j] = bf16Pair(b[x], b[x+1])
				}
			default:
				for j := range d {
					d[j] = bf16Bits(b[(jc+j)*ldb+r])
				}
			}
		}
	}
}
