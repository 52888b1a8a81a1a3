//go:build !linux

package gemm

// threadCPU is not measured on this system (see cputime_linux_test.go).
func threadCPU() float64 { return 0 }
