//go:build !amd64 || purego

package simd

// hasAsm is false: this build has no assembly; the *Asm functions are never called.
const hasAsm = false

func maxAsm(x []float32) float32                                             { return MaxRef(x) }
func expShiftAsm(dst, src []float32, shift, alpha float32, acc *[16]float64) { panic("simd: no asm") }
func geluAsm(dst, src []float32)                                             { GELURef(dst, src) }
func geluBackwardAsm(dinp, inp, dout []float32)                              { GELUBackwardRef(dinp, inp, dout) }
func swigluAsm(out, gate, up []float32)                                      { SwiGLURef(out, gate, up) }
func swigluBackwardAsm(dgate, dup, gate, up, dout []float32) {
	SwiGLUBackwardRef(dgate, dup, gate, up, dout)
}

func addAsm(dst, src []float32)                         { AddRef(dst, src) }
func sumDevAsm(x []float32, m float64, sq bool) float64 { return sumDevRef(x, m, sq) }
func normRowAsm(o, x, w, b []float32, m, r float32)     { NormRowRef(o, x, w, b, m, r) }
func normBackwardSumsAsm(x, w, d []float32, m, r float32) (float64, float64) {
	return NormBackwardSumsRef(x, w, d, m, r)
}
func normBackwardApplyAsm(di, x, w, d []float32, m, r, a, bb float32) {
	NormBackwardApplyRef(di, x, w, d, m, r, a, bb)
}
func normWeightGradAsm(acc, d, x []float32, m, r float32) { NormWeightGradRef(acc, d, x, m, r) }

func softmaxBackwardAsm(p, dp []float32) { SoftmaxBackwardRef(p, dp) }

func adamwAsm(w, g, m, v []float32, p *AdamWParams) { AdamWRef(w, g, m, v, p) }
