package gemm

import (
	"os"
	"strconv"
)

// Tuning hook for benchmarks: CPO_GEMM_TUNE=kc,mc,nc overrides the blocking of every kernel.
func init() {
	s := os.Getenv("CPO_GEMM_TUNE")
	if s == "" {
		return
	}
	var v [3]int
	for i, f := range splitComma(s) {
		v[i], _ = strconv.Atoi(f)
	}
	for _, k := range kernels {
		k.kc, k.mc, k.nc = v[0], v[1], v[2]
	}
}

func splitComma(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return out
}
