//go:build !amd64 || purego

package gemm

// asmKernels returns no kernels: this build has no assembly.
func asmKernels() []*kernel { return nil }

func pairsRow(n16 int, src, dst *float32) { panic("gemm: no assembly in this build") }

func pairsInterleave(n16 int, r0, r1, dst *float32, idx *uint16) {
	panic("gemm: no assembly in this build")
}
