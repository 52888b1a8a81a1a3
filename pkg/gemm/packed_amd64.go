//go:build amd64 && !purego

package gemm

// Panel kernels of SgemmPackedBF16 (kernel_amd64.s, AVX-512F; see genPackedBF16 in
// ./_generate): out[32*i+j] = Σ_{p<k} a[i*lda+p] * float32(b[p][j]) for i < R, j < 32.

//go:noescape
func bf16PanelR1(k int, a *float32, lda int, b *uint16, out *float32)

//go:noescape
func bf16PanelR2(k int, a *float32, lda int, b *uint16, out *float32)

//go:noescape
func bf16PanelR3(k int, a *float32, lda int, b *uint16, out *float32)

//go:noescape
func bf16PanelR4(k int, a *float32, lda int, b *uint16, out *float32)

//go:noescape
func bf16PanelR5(k int, a *float32, lda int, b *uint16, out *float32)

//go:noescape
func bf16PanelR6(k int, a *float32, lda int, b *uint16, out *float32)

//go:noescape
func bf16PanelR7(k int, a *float32, lda int, b *uint16, out *float32)

//go:noescape
func bf16PanelR8(k int, a *float32, lda int, b *uint16, out *float32)

type panelKernel func(k int, a *float32, lda int, b *uint16, out *float32)

var panelKernels = [9]panelKernel{nil, bf16PanelR1, bf16PanelR2, bf16PanelR3, bf16PanelR4,
	bf16PanelR5, bf16PanelR6, bf16PanelR7, bf16PanelR8}

// panelAsm returns the assembly panel kernels (indexed by rows) when the selected
// implementation is the AVX-512 one, else nil (the plain Go kernel runs).
func panelAsm(kern *kernel) *[9]panelKernel {
	if kern.bf16Rows == nil { // set only for the AVX-512(BW) kernel
		return nil
	}
	return &panelKernels
}
