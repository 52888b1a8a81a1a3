//go:build !amd64 || purego

package gemm

// asmKernels returns no kernels: this build has no assembly.
func asmKernels() []*kernel { return nil }
