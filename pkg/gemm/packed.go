package gemm

import (
	"fmt"
	"unsafe"

	"github.com/cpo-toolchain/cpo/pkg/parallel"
)

// PackedBF16 is a K×N matrix op(B) in bfloat16, laid out for products with few rows of A
// (decoding): column panels of PanelWidth columns, each panel K rows of 64 bytes stored one
// after the other, so that a product streams every panel once, sequentially. Within a panel
// row, 32-bit word d holds column d in its low half and column 16+d in its high half (both
// widen to float32 with one shift or one mask). The last panel is padded with zero columns.
//
// Element (p, j) of op(B), with q = j/32 and r = j%32, is
//
//	data[q*K*32 + p*32 + 2*(r%16) + r/16]
type PackedBF16 struct {
	k, n int      // op(B) is k×n
	data []uint16 // ceil(n/32) panels of k×32, 64-byte aligned
}

// Dims returns the shape of op(B): K rows (the product's depth) by N columns.
func (pb *PackedBF16) Dims() (k, n int) { return pb.k, pb.n }

// PanelWidth is the number of columns of op(B) in one panel of a PackedBF16.
const PanelWidth = 32

// PackBF16 rounds op(B) (K×N; B stored K×N with ldb ≥ N, or with transB N×K with ldb ≥ K) to
// bfloat16 (nearest, ties to even, as BF16FromFloat32) and packs it.
func PackBF16(transB bool, k, n int, b []float32, ldb int) *PackedBF16 {
	if k < 0 || n < 0 {
		panic(fmt.Sprintf("gemm: PackBF16 with k=%d n=%d", k, n))
	}
	need := 0
	if k > 0 && n > 0 {
		if transB {
			if ldb < max(1, k) {
				panic(fmt.Sprintf("gemm: PackBF16 ldb=%d < k=%d", ldb, k))
			}
			need = (n-1)*ldb + k
		} else {
			if ldb < max(1, n) {
				panic(fmt.Sprintf("gemm: PackBF16 ldb=%d < n=%d", ldb, n))
			}
			need = (k-1)*ldb + n
		}
	}
	if len(b) < need {
		panic(fmt.Sprintf("gemm: PackBF16 len(b)=%d < %d", len(b), need))
	}
	pb := newPackedBF16(k, n)
	np := pb.panels()
	parallel.For(np, 0, func(lo, hi int) {
		var row [PanelWidth]float32
		var rb [PanelWidth]uint16
		for q := lo; q < hi; q++ {
			j0 := q * PanelWidth
			w := min(PanelWidth, n-j0)
			dst := pb.panel(q)
			for p := 0; p < k; p++ {
				clear(row[w:])
				if transB {
					for j := 0; j < w; j++ {
						row[j] = b[(j0+j)*ldb+p]
					}
				} else {
					copy(row[:w], b[p*ldb+j0:p*ldb+j0+w])
				}
				BF16FromFloat32(rb[:], row[:])
				d := dst[p*PanelWidth : (p+1)*PanelWidth]
				for r := 0; r < 16; r++ {
					d[2*r], d[2*r+1] = rb[r], rb[16+r]
				}
			}
		}
	})
	return pb
}

// newPackedBF16 allocates a zeroed K×N packed matrix.
func newPackedBF16(k, n int) *PackedBF16 {
	np := (n + PanelWidth - 1) / PanelWidth
	size := np * k * PanelWidth
	raw := make([]uint16, size+32)
	off := 0
	if size > 0 {
		off = int(uintptr(unsafe.Pointer(&raw[0]))&63) / 2
		if off != 0 {
			off = 32 - off
		}
	}
	return &PackedBF16{k: k, n: n, data: raw[off : off+size]}
}

func (pb *PackedBF16) panels() int { return (pb.n + PanelWidth - 1) / PanelWidth }

func (pb *PackedBF16) panel(q int) []uint16 {
	s := pb.k * PanelWidth
	return pb.data[q*s : (q+1)*s]
}

// At returns element (p, j) of op(B), widened to float32.
func (pb *PackedBF16) At(p, j int) float32 {
	if p < 0 || p >= pb.k || j < 0 || j >= pb.n {
		panic(fmt.Sprintf("gemm: PackedBF16.At(%d, %d) outside %d×%d", p, j, pb.k, pb.n))
	}
	r := j % PanelWidth
	return bf16ToF32(pb.data[(j/PanelWidth)*pb.k*PanelWidth+p*PanelWidth+2*(r%16)+r/16])
}

// Bytes is the memory the packed data takes.
func (pb *PackedBF16) Bytes() int { return 2 * len(pb.data) }

// panelRowsGo is the plain Go panel kernel (the reference of the assembly ones):
// out[32*i+j] = Σ_{p<k} a[i*lda+p] * float32(panel[p][j]) for i < rows, j < 32.
func panelRowsGo(rows, k int, a []float32, lda int, panel []uint16, out []float32) {
	for i := 0; i < rows; i++ {
		var acc [PanelWidth]float32
		ar := a[i*lda : i*lda+k]
		for p, av := range ar {
			s := panel[p*PanelWidth : (p+1)*PanelWidth]
			for r := 0; r < 16; r++ {
				acc[r] += av * bf16ToF32(s[2*r])
				acc[16+r] += av * bf16ToF32(s[2*r+1])
			}
		}
		copy(out[PanelWidth*i:], acc[:])
	}
}

// panelRowBlock is the most rows of A that SgemmPackedBF16 runs through all the panels at
// once: every panel of B is read from memory once per block of rows (once in all for
// decoding) and reused from cache by each group of up to 8 rows; the block of A (at most
// 64×K floats) stays in the L2 cache while the panels stream past.
const panelRowBlock = 64

// SgemmPackedBF16 computes C = alpha*A*op(B) + beta*C with A row-major m×K (lda ≥ K), op(B)
// packed (K×N) and C row-major m×N (ldc ≥ N); products are accumulated in float32. C is not
// read when beta is zero. The panels of B are split between the threads (Threads()); each
// panel is read from memory once per block of 64 rows of A.
func SgemmPackedBF16(m int, alpha float32, a []float32, lda int, pb *PackedBF16, beta float32, c []float32, ldc int) {
	n, k := pb.n, pb.k
	checkArgs(false, false, m, n, k, len(a), lda, len(pb.data), n, len(c), ldc)
	if done(m, n, k, alpha, &beta, c, ldc) {
		return
	}
	asm := panelAsm(impl.Load())
	workers := 1
	if m*n*k >= 2*gemvParallel {
		workers = Threads()
	}
	np := pb.panels()
	for r0 := 0; r0 < m; r0 += panelRowBlock {
		r1 := min(m, r0+panelRowBlock)
		parallel.For(np, workers, func(lo, hi int) {
			var out [8 * PanelWidth]float32
			for q := lo; q < hi; q++ {
				panel := pb.panel(q)
				j0 := q * PanelWidth
				w := min(PanelWidth, n-j0)
				for i0 := r0; i0 < r1; i0 += 8 {
					rows := min(8, r1-i0)
					if asm != nil {
						asm[rows](k, &a[i0*lda], lda, &panel[0], &out[0])
					} else {
						panelRowsGo(rows, k, a[i0*lda:], lda, panel, out[:])
					}
					for i := 0; i < rows; i++ {
						cr := c[(i0+i)*ldc+j0 : (i0+i)*ldc+j0+w]
						o := out[PanelWidth*i : PanelWidth*i+w]
						if beta == 0 {
							for j, v := range o {
								cr[j] = alpha * v
							}
						} else {
							for j, v := range o {
								cr[j] = alpha*v + beta*cr[j]
							}
						}
					}
				}
			}
		})
	}
}

// done finishes the products that need no multiplication: nothing when C is empty, C = beta*C
// when k or alpha is zero (reporting true for both); otherwise it turns a beta of -0 into
// +0 (the kernels test the bits of beta) and reports false.
func done(m, n, k int, alpha float32, beta *float32, c []float32, ldc int) bool {
	if m == 0 || n == 0 {
		return true
	}
	if *beta == 0 {
		*beta = 0
	}
	if k == 0 || alpha == 0 {
		scaleC(m, n, *beta, c, ldc)
		return true
	}
	return false
}
