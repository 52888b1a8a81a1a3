package model

import (
	"math"
	"runtime"

	"github.com/cpo-toolchain/cpo/pkg/parallel"
	"github.com/cpo-toolchain/cpo/pkg/simd"
)

// This file holds the position-wise layers, each a xxxForward / xxxBackward pair.
// Backward functions ADD into parameter gradients; whether they add into or overwrite the
// input gradient is stated per function.

// parallelFor splits [0, n) into contiguous chunks of at least grain items and runs fn on
// them with at most GOMAXPROCS goroutines. fn must only write outputs owned by its range,
// so the result does not depend on the split. The chunks (about four per goroutine) are
// handed out dynamically: a goroutine that starts late, or a core slowed by another
// process, takes fewer of them instead of holding the others at the end.
func parallelFor(n, grain int, fn func(lo, hi int)) {
	if n <= 0 {
		return
	}
	g := max(grain, 1)
	w := min(runtime.GOMAXPROCS(0), (n+g-1)/g)
	if w <= 1 {
		fn(0, n)
		return
	}
	chunk := max(g, (n+4*w-1)/(4*w))
	parallel.Tasks((n+chunk-1)/chunk, w, func(_, c int) {
		fn(c*chunk, min(n, (c+1)*chunk))
	})
}

// parallelTasks runs fn(worker, task) for task in [0, n) on at most workers goroutines,
// handing tasks out dynamically; worker < workers indexes per-worker scratch. Tasks must
// write disjoint outputs.
func parallelTasks(n, workers int, fn func(worker, task int)) {
	parallel.Tasks(n, max(workers, 1), fn)
}

// grainRows is the number of rows of width c worth one goroutine.
func grainRows(c int) int { return max(1, 32768/max(c, 1)) }

// colSums adds to dst[j] (j < C) the sum over rows t < N of f(t, j), rows in increasing
// order for every column, split over blocks of columns: deterministic for any worker count.
func colSums(dst []float32, N, C int, f func(t, jlo, jhi int, acc []float32)) {
	const block = 64
	nb := (C + block - 1) / block
	// A block of a few dozen rows is worth a goroutine; N=1024 rows of C=256 use two.
	parallelFor(nb, max(1, 2048/max(N, 1)), func(lo, hi int) {
		acc := make([]float32, block)
		for b := lo; b < hi; b++ {
			jlo, jhi := b*block, min(C, (b+1)*block)
			a := acc[:jhi-jlo]
			clear(a)
			for t := 0; t < N; t++ {
				f(t, jlo, jhi, a)
			}
			simd.Add(dst[jlo:jhi], a)
		}
	})
}

// encoderForward: out (N, C) = wte[tokens[t]] + wpe[pos[t]] (wpe nil for Llama).
// tokens, pos (N); wte (V, C); wpe (MaxSeqLen, C).
func encoderForward(out []float32, tokens, pos []int32, wte, wpe []float32, C int) {
	parallelFor(len(tokens), grainRows(C), func(lo, hi int) {
		for t := lo; t < hi; t++ {
			o := out[t*C : (t+1)*C]
			copy(o, wte[int(tokens[t])*C:])
			if wpe != nil {
				simd.Add(o, wpe[int(pos[t])*C:int(pos[t]+1)*C])
			}
		}
	})
}

// encoderBackward adds dout (N, C) into dwte (V, C) rows tokens[t] and dwpe (MaxSeqLen, C)
// rows pos[t] (dwpe nil for Llama), rows in increasing t for every column.
func encoderBackward(dwte, dwpe []float32, dout []float32, tokens, pos []int32, C int) {
	const block = 64
	nb := (C + block - 1) / block
	parallelFor(nb, 1, func(lo, hi int) {
		for b := lo; b < hi; b++ {
			jlo, jhi := b*block, min(C, (b+1)*block)
			for t := range tokens {
				d := dout[t*C+jlo : t*C+jhi]
				simd.Add(dwte[int(tokens[t])*C+jlo:int(tokens[t])*C+jhi], d)
				if dwpe != nil {
					simd.Add(dwpe[int(pos[t])*C+jlo:int(pos[t])*C+jhi], d)
				}
			}
		}
	})
}

// layernormForward: out (N, C) = (inp - mean) * rstd * w + b per row; mean, rstd (N) are
// kept for the backward pass. Statistics are accumulated in float64.
func layernormForward(out, mean, rstd, inp, w, b []float32, N, C int, eps float64) {
	parallelFor(N, grainRows(C), func(lo, hi int) {
		for t := lo; t < hi; t++ {
			x := inp[t*C : (t+1)*C]
			m := simd.Sum64(x) / float64(C)
			r := 1 / math.Sqrt(simd.SumSqDev64(x, m)/float64(C)+eps)
			mf, rf := float32(m), float32(r)
			simd.NormRow(out[t*C:(t+1)*C], x, w, b, mf, rf)
			mean[t], rstd[t] = mf, rf
		}
	})
}

// layernormBackward ADDS into dinp (N, C), dw and db (C), given dout (N, C), the input
// inp (N, C) and the saved mean, rstd (N).
func layernormBackward(dinp, dw, db, dout, inp, w, mean, rstd []float32, N, C int) {
	parallelFor(N, grainRows(C), func(lo, hi int) {
		for t := lo; t < hi; t++ {
			x, d, di := inp[t*C:(t+1)*C], dout[t*C:(t+1)*C], dinp[t*C:(t+1)*C]
			m, r := mean[t], rstd[t]
			sd, sdn := simd.NormBackwardSums(x, w, d, m, r) // sums of dnorm and dnorm*norm
			simd.NormBackwardApply(di, x, w, d, m, r, float32(sd/float64(C)), float32(sdn/float64(C)))
		}
	})
	colSums(dw, N, C, func(t, jlo, jhi int, acc []float32) {
		simd.NormWeightGrad(acc, dout[t*C+jlo:t*C+jhi], inp[t*C+jlo:t*C+jhi], mean[t], rstd[t])
	})
	colSums(db, N, C, func(t, jlo, jhi int, acc []float32) {
		simd.Add(acc, dout[t*C+jlo:t*C+jhi])
	})
}

// rmsnormForward: out (N, C) = inp * rstd * w per row, rstd = 1/sqrt(mean(inp^2)+eps)
// (N) kept for the backward pass.
func rmsnormForward(out, rstd, inp, w []float32, N, C int, eps float64) {
	parallelFor(N, grainRows(C), func(lo, hi int) {
		for t := lo; t < hi; t++ {
			x := inp[t*C : (t+1)*C]
			r := float32(1 / math.Sqrt(simd.SumSqDev64(x, 0)/float64(C)+eps))
			simd.NormRow(out[t*C:(t+1)*C], x, w, nil, 0, r)
			rstd[t] = r
		}
	})
}

// rmsnormBackward ADDS into dinp (N, C) and dw (C), given dout (N, C), inp (N, C) and the
// saved rstd (N). With n = x*r: dx = r*(dn - n*mean(dn*n)), dn = dout*w.
func rmsnormBackward(dinp, dw, dout, inp, w, rstd []float32, N, C int) {
	parallelFor(N, grainRows(C), func(lo, hi int) {
		for t := lo; t < hi; t++ {
			x, d, di := inp[t*C:(t+1)*C], dout[t*C:(t+1)*C], dinp[t*C:(t+1)*C]
			r := rstd[t]
			_, sdn := simd.NormBackwardSums(x, w, d, 0, r)
			simd.NormBackwardApply(di, x, w, d, 0, r, 0, float32(sdn/float64(C)))
		}
	})
	colSums(dw, N, C, func(t, jlo, jhi int, acc []float32) {
		simd.NormWeightGrad(acc, dout[t*C+jlo:t*C+jhi], inp[t*C+jlo:t*C+jhi], 0, rstd[t])
	})
}

// sgemmFunc is gemm.Sgemm's signature: the product a model's dense layers use
// (gemm.Sgemm, or gemm.SgemmMixedBF16 after SetMixedBF16).
type sgemmFunc = func(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)

// matmulForward: out (N, OC) = inp (N, IC) · W + bias, computed by sg, with W stored either as a
// Hugging Face Conv1D weight (IC, OC) (outIn false) or as a Linear weight (OC, IC)
// (outIn true). bias (OC) may be nil. With accumulate, the product is added to out
// (used to add a projection into the residual stream).
func matmulForward(sg sgemmFunc, out, inp, w, bias []float32, N, IC, OC int, outIn, accumulate bool) {
	if N == 0 {
		return
	}
	var beta float32
	if accumulate {
		beta = 1
	}
	if outIn {
		sg(false, true, N, OC, IC, 1, inp, IC, w, IC, beta, out, OC)
	} else {
		sg(false, false, N, OC, IC, 1, inp, IC, w, OC, beta, out, OC)
	}
	addBias(out, bias, N, OC)
}

// addBias adds bias (OC) to every row of out (N, OC); nil bias does nothing.
func addBias(out, bias []float32, N, OC int) {
	if bias != nil {
		parallelFor(N, grainRows(OC), func(lo, hi int) {
			for t := lo; t < hi; t++ {
				simd.Add(out[t*OC:(t+1)*OC], bias)
			}
		})
	}
}

// matmulBackward, for out = inp·W + bias as in matmulForward: ADDS inp^T·dout into dw
// (in W's layout) and the column sums of dout into dbias (nil to skip), and writes
// dinp (N, IC) = dout·W^T, overwriting it, or adding to it with accumulate.
// dinp nil skips the input gradient.
func matmulBackward(sg sgemmFunc, dinp, dw, dbias, dout, inp, w []float32, N, IC, OC int, outIn, accumulate bool) {
	if N == 0 {
		return
	}
	if dinp != nil {
		var beta float32
		if accumulate {
			beta = 1
		}
		if outIn {
			sg(false, false, N, IC, OC, 1, dout, OC, w, IC, beta, dinp, IC)
		} else {
			sg(false, true, N, IC, OC, 1, dout, OC, w, OC, beta, dinp, IC)
		}
	}
	if outIn {
		sg(true, false, OC, IC, N, 1, dout, OC, inp, IC, 1, dw, IC)
	} else {
		sg(true, false, IC, OC, N, 1, inp, IC, dout, OC, 1, dw, OC)
	}
	if dbias != nil {
		colSums(dbias, N, OC, func(t, jlo, jhi int, acc []float32) {
			simd.Add(acc, dout[t*OC+jlo:t*OC+jhi])
		})
	}
}

// biasGELUForward adds bias (F, nil for none) to every row of fc (N, F), which keeps the
// pre-activation for the backward pass, and writes out (N, F) = gelu(fc): addBias then
// GELU in one pass over the rows (the same operations, so the same results). GELU is the
// tanh approximation ("gelu_new" in transformers), see simd.GELU.
func biasGELUForward(out, fc, bias []float32, N, F int) {
	parallelFor(N, grainRows(F), func(lo, hi int) {
		for t := lo; t < hi; t++ {
			row := fc[t*F : (t+1)*F]
			if bias != nil {
				simd.Add(row, bias)
			}
			simd.GELU(out[t*F:(t+1)*F], row)
		}
	})
}

// geluBackward writes dinp (n) = gelu'(inp) * dout, overwriting it (dinp may alias dout).
func geluBackward(dinp, inp, dout []float32) {
	parallelFor(len(inp), 32768, func(lo, hi int) {
		simd.GELUBackward(dinp[lo:hi], inp[lo:hi], dout[lo:hi])
	})
}

// swigluForward: out (N, F) = silu(gate) * up, where each row of gu (N, 2F) is
// [gate (F) | up (F)] and silu(x) = x*sigmoid(x).
func swigluForward(out, gu []float32, N, F int) {
	parallelFor(N, grainRows(F), func(lo, hi int) {
		for t := lo; t < hi; t++ {
			simd.SwiGLU(out[t*F:(t+1)*F], gu[t*2*F:t*2*F+F], gu[t*2*F+F:(t+1)*2*F])
		}
	})
}

// swigluBackward writes dgu (N, 2F), rows [dgate | dup], overwriting it, from dout (N, F)
// and the saved gu (N, 2F).
func swigluBackward(dgu, gu, dout []float32, N, F int) {
	parallelFor(N, grainRows(F), func(lo, hi int) {
		for t := lo; t < hi; t++ {
			g, u, d := gu[t*2*F:t*2*F+F], gu[t*2*F+F:(t+1)*2*F], dout[t*F:(t+1)*F]
			simd.SwiGLUBackward(dgu[t*2*F:t*2*F+F], dgu[t*2*F+F:(t+1)*2*F], g, u, d)
		}
	})
}

// ropeForward rotates, in place, the first nheads heads (of size hd) of every row of
// x (N, ld) by the angles of pos[t], in the rotate-half convention of Hugging Face:
// for i < hd/2, (x_i, x_{i+hd/2}) -> (x_i*cos - x_{i+hd/2}*sin, x_{i+hd/2}*cos + x_i*sin).
// cos, sin are (MaxSeqLen, hd/2).
func ropeForward(x []float32, pos []int32, N, ld, nheads, hd int, cos, sin []float32) {
	ropeApply(x, pos, N, ld, nheads, hd, cos, sin, 1)
}

// ropeBackward rotates the gradient dx back (the inverse rotation), in place.
func ropeBackward(dx []float32, pos []int32, N, ld, nheads, hd int, cos, sin []float32) {
	ropeApply(dx, pos, N, ld, nheads, hd, cos, sin, -1)
}

func ropeApply(x []float32, pos []int32, N, ld, nheads, hd int, cos, sin []float32, sign float32) {
	h := hd / 2
	parallelFor(N, grainRows(nheads*hd), func(lo, hi int) {
		for t := lo; t < hi; t++ {
			c, s := cos[int(pos[t])*h:int(pos[t])*h+h], sin[int(pos[t])*h:int(pos[t])*h+h]
			for hh := 0; hh < nheads; hh++ {
				v := x[t*ld+hh*hd : t*ld+hh*hd+hd]
				for i := 0; i < h; i++ {
					a, b := v[i], v[i+h]
					si := sign * s[i]
					v[i] = a*c[i] - b*si
					v[i+h] = b*c[i] + a*si
				}
			}
		}
	})
}

// logprobForward, given logits (N, V), writes for every row t with target[t] >= 0:
// lse[t] = log sum_v exp(logits[t,v]) and logp[t] = logits[t,target[t]] - lse[t];
// rows with target[t] < 0 (sequence ends) get logp 0. Sums are in float64.
func logprobForward(logp, lse, logits []float32, target []int32, N, V int) {
	parallelFor(N, grainRows(V), func(lo, hi int) {
		for t := lo; t < hi; t++ {
			if target[t] < 0 {
				logp[t], lse[t] = 0, 0
				continue
			}
			row := logits[t*V : (t+1)*V]
			mx := simd.Max(row)
			l := float64(mx) + math.Log(simd.ExpShiftSum(nil, row, mx))
			lse[t] = float32(l)
			logp[t] = float32(float64(row[target[t]]) - l)
		}
	})
}

// logprobBackward overwrites logits (N, V) with dlogits = dlogp[t]*(onehot(target[t]) -
// softmax(logits[t])), using the saved lse (N). Rows with target < 0 or dlogp 0 become 0.
func logprobBackward(logits, lse, dlogp []float32, target []int32, N, V int) {
	parallelFor(N, grainRows(V), func(lo, hi int) {
		for t := lo; t < hi; t++ {
			row := logits[t*V : (t+1)*V]
			d := dlogp[t]
			if target[t] < 0 || d == 0 {
				clear(row)
				continue
			}
			simd.ExpShift(row, row, lse[t], -d)
			row[target[t]] += d
		}
	})
}
