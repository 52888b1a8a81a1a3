//go:build !amd64 || purego

package gemm

type panelKernel func(k int, a *float32, lda int, b *uint16, out *float32)

// panelAsm: this build has no assembly panel kernels.
func panelAsm(*kernel) *[9]panelKernel { return nil }
