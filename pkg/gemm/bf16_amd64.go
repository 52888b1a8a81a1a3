//go:build amd64 && !purego

package gemm

// Assembly kernels with B in bfloat16 (kernel_amd64.s, AVX-512BW); see genBF16 in ./_generate.

//go:noescape
func saxpyBF16x4(n16 int, a *float32, b0, b1, b2, b3 *uint16, out *float32)

//go:noescape
func saxpyBF16x1(n16 int, a *float32, b0 *uint16, out *float32)

//go:noescape
func sdot4BF16(k16 int, a *float32, b *uint16, ldb int, out *float32)

//go:noescape
func saxpyBF16r4(n16 int, a0, a1, a2, a3 *float32, b *uint16, ldb int, o0, o1, o2, o3 *float32)

//go:noescape
func saxpyBF16r1(n16 int, a0, a1, a2, a3 *float32, b *uint16, ldb int, o0, o1, o2, o3 *float32)

//go:noescape
func sdot4x4BF16(k16 int, a0, a1, a2, a3 *float32, b0, b1, b2, b3 *uint16, out *float32)

// bf16RowsAVX512 computes c[i*ldc+j] = alpha*Σ_p a[i*lda+p]*op(B)[p][j] + beta*c[i*ldc+j] for
// i < m ≤ maxFewNT and j0 ≤ j < j1, with B in bfloat16, reading B once without packing (the
// bfloat16 counterpart of gemvAVX512 and fewRowsAVX512). beta is +0 when zero.
func bf16RowsAVX512(transB bool, m, j0, j1, k int, alpha float32, a []float32, lda int, b []uint16, ldb int, beta float32, c []float32, ldc int) {
	put := func(i, j int, s float32) {
		x := i*ldc + j
		if beta == 0 {
			c[x] = alpha * s
		} else {
			c[x] = alpha*s + beta*c[x]
		}
	}
	row := func(i int) []float32 { return a[i*lda : i*lda+k] }
	if !transB {
		// One row of A streams whole rows of B (as gemvAVX512 does); more rows take column
		// blocks so that their accumulators stay in L1.
		block := fewNNBlock
		if m == 1 {
			block = j1 - j0
		}
		bf := getBuffer(4 * block)
		defer putBuffer(bf)
		for jb := j0; jb < j1; jb += block {
			w := min(block, j1-jb)
			w16 := w / 16
			acc := bf.f[:4*w]
			for i0 := 0; i0 < m; i0 += 4 {
				na := min(4, m-i0)
				clear(acc)
				var ar [4][]float32
				for i := range ar {
					ar[i] = row(i0 + min(i, na-1)) // repeats land in unused acc rows
				}
				if w16 > 0 && na == 1 {
					p := 0
					for ; p+4 <= k; p += 4 {
						saxpyBF16x4(w16, &ar[0][p], &b[p*ldb+jb], &b[(p+1)*ldb+jb], &b[(p+2)*ldb+jb], &b[(p+3)*ldb+jb], &acc[0])
					}
					for ; p < k; p++ {
						saxpyBF16x1(w16, &ar[0][p], &b[p*ldb+jb], &acc[0])
					}
				} else if w16 > 0 {
					o0, o1, o2, o3 := &acc[0], &acc[w], &acc[2*w], &acc[3*w]
					p := 0
					for ; p+4 <= k; p += 4 {
						saxpyBF16r4(w16, &ar[0][p], &ar[1][p], &ar[2][p], &ar[3][p], &b[p*ldb+jb], ldb, o0, o1, o2, o3)
					}
					for ; p < k; p++ {
						saxpyBF16r1(w16, &ar[0][p], &ar[1][p], &ar[2][p], &ar[3][p], &b[p*ldb+jb], ldb, o0, o1, o2, o3)
					}
				}
				for i := 0; i < na; i++ {
					for jj := w16 * 16; jj < w; jj++ {
						var s float32
						for p, av := range ar[i] {
							s += av * bf16ToF32(b[p*ldb+jb+jj])
						}
						acc[i*w+jj] = s
					}
					for jj, s := range acc[i*w : i*w+w] {
						put(i0+i, jb+jj, s)
					}
				}
			}
		}
		return
	}
	k16 := k / 16
	var out [16]float32
	for j := j0; j < j1; j += 4 {
		nb := min(4, j1-j)
		var br [4][]uint16
		for r := range br {
			jr := j + min(r, nb-1)
			br[r] = b[jr*ldb : jr*ldb+k]
		}
		for i0 := 0; i0 < m; i0 += 4 {
			na := min(4, m-i0)
			var ar [4][]float32
			for i := range ar {
				ar[i] = row(i0 + min(i, na-1))
			}
			if na == 1 && nb == 4 {
				sdot4BF16(k16, &ar[0][0], &br[0][0], ldb, &out[0]) // out[r]
			} else {
				sdot4x4BF16(k16, &ar[0][0], &ar[1][0], &ar[2][0], &ar[3][0], &br[0][0], &br[1][0], &br[2][0], &br[3][0], &out[0])
			}
			for i := 0; i < na; i++ {
				for r := 0; r < nb; r++ {
					s := out[4*i+r]
					for p := 16 * k16; p < k; p++ {
						s += ar[i][p] * bf16ToF32(br[r][p])
					}
					put(i0+i, j+r, s)
				}
			}
		}
	}
}
