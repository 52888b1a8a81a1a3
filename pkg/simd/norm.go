package simd

// Row kernels of layernorm and rmsnorm (rmsnorm is layernorm with mean 0 and no bias):
// for a row x (C) with mean m and inverse deviation r, the normalised value is
// nn = (x-m)*r and the output nn*w + b. Sums are accumulated in float64.

// Add adds src into dst element-wise: dst[i] += src[i] for i < len(src).
func Add(dst, src []float32) {
	dst = dst[:len(src)]
	if useAsm {
		addAsm(dst, src)
		return
	}
	AddRef(dst, src)
}

// AddRef is the plain Go Add.
func AddRef(dst, src []float32) {
	dst = dst[:len(src)]
	for i, v := range src {
		dst[i] += v
	}
}

// Sum64 returns Σ x[i] in float64.
func Sum64(x []float32) float64 {
	if useAsm {
		return sumDevAsm(x, 0, false)
	}
	return sumDevRef(x, 0, false)
}

// SumSqDev64 returns Σ (x[i]-m)^2 with x[i] widened to float64 before subtracting m.
func SumSqDev64(x []float32, m float64) float64 {
	if useAsm {
		return sumDevAsm(x, m, true)
	}
	return sumDevRef(x, m, true)
}

func sumDevRef(x []float32, m float64, sq bool) float64 {
	var s float64
	for _, v := range x {
		d := float64(v) - m
		if sq {
			d *= d
		}
		s += d
	}
	return s
}

// NormRow writes o[j] = (x[j]-m)*r*w[j] + b[j] for j < len(x); b nil means no bias.
func NormRow(o, x, w, b []float32, m, r float32) {
	n := len(x)
	o, w = o[:n], w[:n]
	if b != nil {
		b = b[:n]
	}
	if useAsm {
		normRowAsm(o, x, w, b, m, r)
		return
	}
	NormRowRef(o, x, w, b, m, r)
}

// NormRowRef is the plain Go NormRow.
func NormRowRef(o, x, w, b []float32, m, r float32) {
	for j, v := range x {
		y := (v - m) * r * w[j]
		if b != nil {
			y += b[j]
		}
		o[j] = y
	}
}

// NormBackwardSums returns, with dn = d*w and nn = (x-m)*r over j < len(x), sd = Σ dn and
// sdn = Σ dn*nn (float32 products, float64 sums): the two row reductions of the norm's
// input gradient.
func NormBackwardSums(x, w, d []float32, m, r float32) (sd, sdn float64) {
	n := len(x)
	w, d = w[:n], d[:n]
	if useAsm {
		return normBackwardSumsAsm(x, w, d, m, r)
	}
	return NormBackwardSumsRef(x, w, d, m, r)
}

// NormBackwardSumsRef is the plain Go NormBackwardSums.
func NormBackwardSumsRef(x, w, d []float32, m, r float32) (sd, sdn float64) {
	for j, v := range x {
		dn := d[j] * w[j]
		sd += float64(dn)
		sdn += float64(dn * ((v - m) * r))
	}
	return sd, sdn
}

// NormBackwardApply adds the norm's input gradient: di[j] += r*(d[j]*w[j] - a -
// (x[j]-m)*r*bb) for j < len(x), where a = mean(dn) and bb = mean(dn*nn) (zero a for
// rmsnorm).
func NormBackwardApply(di, x, w, d []float32, m, r, a, bb float32) {
	n := len(x)
	di, w, d = di[:n], w[:n], d[:n]
	if useAsm {
		normBackwardApplyAsm(di, x, w, d, m, r, a, bb)
		return
	}
	NormBackwardApplyRef(di, x, w, d, m, r, a, bb)
}

// NormBackwardApplyRef is the plain Go NormBackwardApply.
func NormBackwardApplyRef(di, x, w, d []float32, m, r, a, bb float32) {
	for j, v := range x {
		di[j] += r * (d[j]*w[j] - a - (v-m)*r*bb)
	}
}

// NormWeightGrad adds one row's contribution to the norm weight's gradient:
// acc[j] += d[j]*(x[j]-m)*r for j < len(acc).
func NormWeightGrad(acc, d, x []float32, m, r float32) {
	n := len(acc)
	d, x = d[:n], x[:n]
	if useAsm {
		normWeightGradAsm(acc, d, x, m, r)
		return
	}
	NormWeightGradRef(acc, d, x, m, r)
}

// NormWeightGradRef is the plain Go NormWeightGrad.
func NormWeightGradRef(acc, d, x []float32, m, r float32) {
	for j := range acc {
		acc[j] += d[j] * (x[j] - m) * r
	}
}
