//go:build amd64 && !purego

package simd

import (
	"math"
	"unsafe"

	"golang.org/x/sys/cpu"
)

// hasAsm: the kernels in simd_amd64.s need AVX-512F (and the OS saving ZMM state, which
// cpu.X86.HasAVX512F already checks).
var hasAsm = cpu.X86.HasAVX512F

// Assembly kernels (simd_amd64.s); n elements, any n ≥ 0 (the tail is masked).

//go:noescape
func maxAVX512(n int, src *float32, out *[16]float32)

// expShiftAVX512: dst[i] = alpha*exp(src[i]-shift); dst nil stores nothing; acc non-nil
// receives the float64 lane sums (lanes 0-7 of the low and high halves).
//
//go:noescape
func expShiftAVX512(n int, src, dst *float32, shift, alpha float32, acc *[16]float64)

//go:noescape
func geluAVX512(n int, src, dst *float32)

//go:noescape
func geluBwdAVX512(n int, inp, dout, dinp *float32)

//go:noescape
func swigluAVX512(n int, gate, up, out *float32)

//go:noescape
func swigluBwdAVX512(n int, gate, up, dout, dgate, dup *float32)

func ptr(s []float32) *float32 {
	if len(s) == 0 {
		return nil
	}
	return &s[0]
}

func maxAsm(x []float32) float32 {
	var out [16]float32
	maxAVX512(len(x), ptr(x), &out)
	m := float32(math.Inf(-1))
	for _, v := range out {
		m = max(m, v)
	}
	return m
}

func expShiftAsm(dst, src []float32, shift, alpha float32, acc *[16]float64) {
	if len(src) == 0 {
		return
	}
	expShiftAVX512(len(src), &src[0], ptr(dst), shift, alpha, acc)
}

func geluAsm(dst, src []float32) {
	if len(src) > 0 {
		geluAVX512(len(src), &src[0], &dst[0])
	}
}

func geluBackwardAsm(dinp, inp, dout []float32) {
	if len(inp) > 0 {
		geluBwdAVX512(len(inp), &inp[0], &dout[0], &dinp[0])
	}
}

func swigluAsm(out, gate, up []float32) {
	if len(out) > 0 {
		swigluAVX512(len(out), &gate[0], &up[0], &out[0])
	}
}

func swigluBackwardAsm(dgate, dup, gate, up, dout []float32) {
	if len(dout) > 0 {
		swigluBwdAVX512(len(dout), &gate[0], &up[0], &dout[0], &dgate[0], &dup[0])
	}
}

//go:noescape
func addAVX512(n int, dst, src *float32)

//go:noescape
func sumDev64AVX512(n int, x *float32, m float64, sq int, out *[16]float64)

//go:noescape
func normRowAVX512(n int, x, w, b, o *float32, m, r float32)

//go:noescape
func normBwdSumsAVX512(n int, x, w, d *float32, m, r float32, out *[32]float64)

//go:noescape
func normBwdApplyAVX512(n int, x, w, d, di *float32, m, r, a, bb float32)

//go:noescape
func normWeightGradAVX512(n int, acc, d, x *float32, m, r float32)

func addAsm(dst, src []float32) {
	if len(src) > 0 {
		addAVX512(len(src), &dst[0], &src[0])
	}
}

func sumDevAsm(x []float32, m float64, sq bool) float64 {
	var out [16]float64
	s := 0
	if sq {
		s = 1
	}
	sumDev64AVX512(len(x), ptr(x), m, s, &out)
	var t float64
	for _, v := range out {
		t += v
	}
	return t
}

func normRowAsm(o, x, w, b []float32, m, r float32) {
	if len(x) > 0 {
		normRowAVX512(len(x), &x[0], &w[0], ptr(b), &o[0], m, r)
	}
}

func normBackwardSumsAsm(x, w, d []float32, m, r float32) (sd, sdn float64) {
	var out [32]float64
	normBwdSumsAVX512(len(x), ptr(x), ptr(w), ptr(d), m, r, &out)
	for i := 0; i < 16; i++ {
		sd += out[i]
		sdn += out[16+i]
	}
	return sd, sdn
}

func normBackwardApplyAsm(di, x, w, d []float32, m, r, a, bb float32) {
	if len(x) > 0 {
		normBwdApplyAVX512(len(x), &x[0], &w[0], &d[0], &di[0], m, r, a, bb)
	}
}

func normWeightGradAsm(acc, d, x []float32, m, r float32) {
	if len(acc) > 0 {
		normWeightGradAVX512(len(acc), &acc[0], &d[0], &x[0], m, r)
	}
}

//go:noescape
func dot64AVX512(n int, a, b *float32, out *[16]float64)

//go:noescape
func mulSubAVX512(n int, p, dp *float32, c float32)

func softmaxBackwardAsm(p, dp []float32) {
	if len(p) == 0 {
		return
	}
	var out [16]float64
	dot64AVX512(len(p), &p[0], &dp[0], &out)
	var d float64
	for _, v := range out {
		d += v
	}
	mulSubAVX512(len(p), &p[0], &dp[0], float32(d))
}

// adamwAVX512 is AdamW over n elements; p points at the nine float32 of an AdamWParams
// (GradScale at byte 32, checked below; already 1 when unset).
//
//go:noescape
func adamwAVX512(n int, w, grad, m, v *float32, p *AdamWParams)

func adamwAsm(w, g, m, v []float32, p *AdamWParams) {
	if len(w) > 0 {
		adamwAVX512(len(w), &w[0], &g[0], &m[0], &v[0], p)
	}
}

// The assembly reads AdamWParams.GradScale at byte offset 32: this fails to compile if the
// struct changes shape.
var _ = [1]struct{}{}[unsafe.Offsetof(AdamWParams{}.GradScale)-32]
