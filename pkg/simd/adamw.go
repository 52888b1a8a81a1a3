package simd

import "math"

// AdamWParams are the per-step scalars of one AdamW update (see AdamW); all float32, so
// that the vector kernel and the reference round identically.
type AdamWParams struct {
	Decay    float32 // 1 - lr*weight_decay for a decayed tensor, exactly 1 otherwise
	B1, B2   float32 // beta1, beta2
	A1, A2   float32 // 1-beta1, 1-beta2
	Bc2Sqrt  float32 // sqrt(1 - beta2^t)
	Eps      float32
	StepSize float32 // lr / (1 - beta1^t)
	// GradScale multiplies each gradient before use (gradient clipping folded into the
	// update: the same float32 product as scaling g in place first); 0 means 1.
	GradScale float32
}

// AdamW applies one AdamW update to the n = len(w) elements of a tensor w with gradient g
// and moments m, v (each at least n long), in float32 in this order:
//
//	g = g*GradScale                   (g itself is not written)
//	x = w*Decay
//	m = m*B1 + A1*g
//	v = v*B2 + (A2*g)*g
//	w = x - StepSize*(m / (sqrt(v)/Bc2Sqrt + Eps))
//
// Every operation is one correctly rounded float32 operation (sqrt included), so the
// AVX-512 kernel and AdamWRef agree bit for bit.
func AdamW(w, g, m, v []float32, p *AdamWParams) {
	n := len(w)
	g, m, v = g[:n], m[:n], v[:n]
	if p.GradScale == 0 {
		q := *p
		q.GradScale = 1
		p = &q
	}
	if useAsm {
		adamwAsm(w, g, m, v, p)
		return
	}
	AdamWRef(w, g, m, v, p)
}

// AdamWRef is the plain Go AdamW.
func AdamWRef(w, g, m, v []float32, p *AdamWParams) {
	n := len(w)
	g, m, v = g[:n], m[:n], v[:n]
	decay, b1, b2, a1, a2, bc, eps, ss := p.Decay, p.B1, p.B2, p.A1, p.A2, p.Bc2Sqrt, p.Eps, p.StepSize
	gs := p.GradScale
	if gs == 0 {
		gs = 1
	}
	for j := range w {
		x := w[j] * decay
		gj := g[j] * gs
		// Explicit float32 conversions round each product, so that the compiler cannot fuse
		// them into FMAs (it does at GOAMD64=v3) and the result stays that of the assembly.
		mj := float32(m[j]*b1) + float32(a1*gj)
		vj := float32(v[j]*b2) + float32(float32(a2*gj)*gj)
		m[j], v[j] = mj, vj
		denom := float32(math.Sqrt(float64(vj)))/bc + eps
		w[j] = x - float32(ss*(mj/denom))
	}
}
