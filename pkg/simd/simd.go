// Package simd holds the vectorised element-wise and row kernels of the model's
// memory-bound passes: e^x over rows (log-softmax over the vocabulary, attention softmax),
// GELU and SwiGLU with their derivatives, a row maximum, element-wise Add and the row
// kernels of layernorm/rmsnorm (norm.go).
//
// Every kernel has a plain Go reference (the *Ref functions; e^x by math.Exp in float64)
// that is also the fallback on CPUs without AVX-512 and under CPO_NOASM=1 (read at
// start-up) or SetAsm(false); the tests run each assembly kernel against its reference
// on every tail length. The AVX-512 versions compute e^x as Cephes' expf does (range
// reduction by ln 2 in two parts, e^r = 1 + r + r^2*P5(r)) with VSCALEFPS for the 2^n:
// within 2 ULP (1 measured) of the correctly rounded float32 result over the whole
// range (0 below -103.97, subnormals rounded once, +Inf above 88.72, NaN stays NaN).
// Kernels are element-wise or reduce one row in a fixed lane order, so results never
// depend on how callers split work between goroutines.
package simd

import (
	"math"
	"os"
)

// useAsm selects the assembly kernels; see SetAsm.
var useAsm = hasAsm && os.Getenv("CPO_NOASM") != "1"

// SetAsm turns the assembly kernels on or off (they stay off where the CPU lacks
// AVX-512F) and reports whether they are now in use.
func SetAsm(on bool) bool {
	useAsm = on && hasAsm
	return useAsm
}

// Asm reports whether the assembly kernels are in use.
func Asm() bool { return useAsm }

// Max returns the largest element of x (n), -Inf for an empty x.
func Max(x []float32) float32 {
	if useAsm && len(x) >= 16 {
		return maxAsm(x)
	}
	return MaxRef(x)
}

// MaxRef is the plain Go Max.
func MaxRef(x []float32) float32 {
	m := float32(math.Inf(-1))
	for _, v := range x {
		m = max(m, v)
	}
	return m
}

// ExpShift writes dst[i] = alpha * e^(src[i]-shift) for i < len(src); dst (at least
// len(src)) may be src itself.
func ExpShift(dst, src []float32, shift, alpha float32) {
	dst = dst[:len(src)]
	if useAsm {
		expShiftAsm(dst, src, shift, alpha, nil)
		return
	}
	ExpShiftRef(dst, src, shift, alpha)
}

// ExpShiftRef is the plain Go ExpShift.
func ExpShiftRef(dst, src []float32, shift, alpha float32) {
	dst = dst[:len(src)]
	for i, v := range src {
		dst[i] = alpha * Expf(v-shift)
	}
}

// ExpShiftSum writes dst[i] = e^(src[i]-shift) (dst nil: nothing is stored; otherwise at
// least len(src) long, possibly src itself) and returns the sum of these values,
// accumulated in float64.
func ExpShiftSum(dst, src []float32, shift float32) float64 {
	if dst != nil {
		dst = dst[:len(src)]
	}
	if useAsm {
		var acc [16]float64
		expShiftAsm(dst, src, shift, 1, &acc)
		var s float64
		for _, v := range acc {
			s += v
		}
		return s
	}
	return ExpShiftSumRef(dst, src, shift)
}

// ExpShiftSumRef is the plain Go ExpShiftSum (sums in index order).
func ExpShiftSumRef(dst, src []float32, shift float32) float64 {
	var s float64
	for i, v := range src {
		e := Expf(v - shift)
		if dst != nil {
			dst[i] = e
		}
		s += float64(e)
	}
	return s
}

// Expf is e^x for a float32 x, correctly rounded from float64 (the scalar reference).
func Expf(x float32) float32 { return float32(math.Exp(float64(x))) }

// GELU constants: gelu(x) = 0.5*x*(1 + tanh(k*(x + 0.044715*x^3))), k = sqrt(2/pi), the
// tanh approximation ("gelu_new"). With 1+tanh(u) = 2*sigmoid(2u) this is
// x*sigmoid(2k*(x + 0.044715*x^3)), which needs one exp and no cancellation.
const (
	geluK = 0.7978845608028654 // sqrt(2/pi)
	geluA = 0.044715
)

// GELU writes dst[i] = gelu(src[i]) for i < len(src) (tanh approximation); dst may be
// src.
func GELU(dst, src []float32) {
	dst = dst[:len(src)]
	if useAsm {
		geluAsm(dst, src)
		return
	}
	GELURef(dst, src)
}

// GELURef is the plain Go GELU.
func GELURef(dst, src []float32) {
	dst = dst[:len(src)]
	for i, v := range src {
		x := float64(v)
		dst[i] = float32(x / (1 + math.Exp(-2*geluK*(x+geluA*x*x*x))))
	}
}

// GELUBackward writes dinp[i] = gelu'(inp[i]) * dout[i] for i < len(inp); dinp may be
// dout.
func GELUBackward(dinp, inp, dout []float32) {
	dinp, dout = dinp[:len(inp)], dout[:len(inp)]
	if useAsm {
		geluBackwardAsm(dinp, inp, dout)
		return
	}
	GELUBackwardRef(dinp, inp, dout)
}

// GELUBackwardRef is the plain Go GELUBackward. With s = sigmoid(2u), u = k*(x+a*x^3):
// gelu'(x) = s + 2*x*s*(1-s)*k*(1+3a*x^2).
func GELUBackwardRef(dinp, inp, dout []float32) {
	dinp, dout = dinp[:len(inp)], dout[:len(inp)]
	for i, v := range inp {
		x := float64(v)
		s := 1 / (1 + math.Exp(-2*geluK*(x+geluA*x*x*x)))
		g := s + 2*x*s*(1-s)*geluK*(1+3*geluA*x*x)
		dinp[i] = float32(g) * dout[i]
	}
}

// SwiGLU writes out[i] = silu(gate[i]) * up[i], silu(x) = x*sigmoid(x), for
// i < len(out); gate and up are at least len(out) long.
func SwiGLU(out, gate, up []float32) {
	gate, up = gate[:len(out)], up[:len(out)]
	if useAsm {
		swigluAsm(out, gate, up)
		return
	}
	SwiGLURef(out, gate, up)
}

// SwiGLURef is the plain Go SwiGLU.
func SwiGLURef(out, gate, up []float32) {
	gate, up = gate[:len(out)], up[:len(out)]
	for i, g := range gate {
		x := float64(g)
		out[i] = float32(x/(1+math.Exp(-x))) * up[i]
	}
}

// SwiGLUBackward writes, for i < len(dout), dgate[i] = dout*up*s*(1 + g*(1-s)) and
// dup[i] = g*s*dout, where g = gate[i], s = sigmoid(g): the gradients of SwiGLU.
func SwiGLUBackward(dgate, dup, gate, up, dout []float32) {
	n := len(dout)
	dgate, dup, gate, up = dgate[:n], dup[:n], gate[:n], up[:n]
	if useAsm {
		swigluBackwardAsm(dgate, dup, gate, up, dout)
		return
	}
	SwiGLUBackwardRef(dgate, dup, gate, up, dout)
}

// SwiGLUBackwardRef is the plain Go SwiGLUBackward.
func SwiGLUBackwardRef(dgate, dup, gate, up, dout []float32) {
	n := len(dout)
	dgate, dup, gate, up = dgate[:n], dup[:n], gate[:n], up[:n]
	for i, d := range dout {
		x := float64(gate[i])
		s := 1 / (1 + math.Exp(-x))
		dup[i] = float32(x*s) * d
		dgate[i] = float32(s*(1+x*(1-s))) * d * up[i]
	}
}

// SoftmaxBackward turns dp, the gradient with respect to the probabilities p of one
// softmax row, into the gradient with respect to its inputs, in place:
// dp[j] = p[j]*(dp[j] - Σ_i p[i]*dp[i]) for j < len(p) (the sum in float64).
func SoftmaxBackward(p, dp []float32) {
	dp = dp[:len(p)]
	if useAsm {
		softmaxBackwardAsm(p, dp)
		return
	}
	SoftmaxBackwardRef(p, dp)
}

// SoftmaxBackwardRef is the plain Go SoftmaxBackward.
func SoftmaxBackwardRef(p, dp []float32) {
	dp = dp[:len(p)]
	var d float64
	for j, pv := range p {
		d += float64(pv * dp[j])
	}
	df := float32(d)
	for j, pv := range p {
		dp[j] = pv * (dp[j] - df)
	}
}
