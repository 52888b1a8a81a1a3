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
