package model

import (
	"math"
	"runtime"

	"github.com/cpo-toolchain/cpo/pkg/gemm"
	"github.com/cpo-toolchain/cpo/pkg/simd"
)

// Causal self-attention over a packed batch. qkv (N, QKV) holds in every row the query
// heads, then the key heads, then the value heads: QKV = (NH + 2*NKV)*hd, which for
// GPT-2 is exactly the [q | k | v] split of c_attn's output. Query head h reads key/value
// head h/(NH/NKV) (grouped-query attention; NKV = NH is plain multi-head attention).
// Attention is computed per (sequence, head) with a T×T scratch per worker, so memory
// never grows with the square of the whole batch; the forward pass keeps only the
// log-sum-exp of every softmax row, and the backward pass recomputes the probabilities.

// sgemm1 is gemm.Sgemm on the calling goroutine only: the products inside the
// attention loops, which are already spread over the cores.
func sgemm1(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	gemm.SgemmStrided(transA, transB, m, n, k, alpha, a, lda, 0, b, ldb, 0, beta, c, ldc, 0, 1)
}

// attnShape describes the head layout shared by the attention functions.
type attnShape struct {
	NH, NKV, hd int
}

func (a attnShape) qkvDim() int      { return (a.NH + 2*a.NKV) * a.hd }
func (a attnShape) outDim() int      { return a.NH * a.hd }
func (a attnShape) kvHead(h int) int { return h / (a.NH / a.NKV) }

// scratchFor returns per-worker buffers of at least n floats each, growing *buf.
func scratchFor(buf *[][]float32, workers, n int) [][]float32 {
	for len(*buf) < workers {
		*buf = append(*buf, nil)
	}
	for w := 0; w < workers; w++ {
		if cap((*buf)[w]) < n {
			(*buf)[w] = make([]float32, n)
		}
		(*buf)[w] = (*buf)[w][:n]
	}
	return *buf
}

// softmaxCausalRows turns row t (t < nq) of s (nq, ls), whose first off+t+1 entries are
// visible, into probabilities, zeroes the masked rest, and returns each row's
// log-sum-exp via setLSE(t, lse).
func softmaxCausalRows(s []float32, nq, nk, ls, off int, setLSE func(t int, lse float32)) {
	for t := 0; t < nq; t++ {
		row := s[t*ls : t*ls+nk]
		vis := row[:off+t+1]
		mx := simd.Max(vis)
		sum := simd.ExpShiftSum(vis, vis, mx)
		inv := float32(1 / sum)
		for j := range vis {
			vis[j] *= inv
		}
		clear(row[off+t+1:])
		if setLSE != nil {
			setLSE(t, float32(float64(mx)+math.Log(sum)))
		}
	}
}

// attnRowBlock is the number of query rows handled together: a block of rows [r0, r1)
// only needs keys [0, r1), so causal attention skips the masked upper triangle block by
// block (about half the work for long sequences) and the score scratch is
// attnRowBlock×T instead of T×T. A variable so that tests can use a block size that does
// not divide their sequence lengths.
var attnRowBlock = 64

// attnProbBudget is the most floats per layer (N·NH·maxT) of attention probabilities that
// a training forward pass keeps for the backward pass (16 MB; the tiny model's 8×128
// tokens need 2 MB); beyond it the backward pass recomputes them from the saved
// log-sum-exp. A variable so that tests can take either path.
var attnProbBudget = 1 << 22

// attentionForward: att (N, NH*hd) = softmax(q·k^T/sqrt(hd), causal within each
// sequence)·v, from qkv (N, QKV); lse (N, NH) receives each softmax row's log-sum-exp.
// starts (nseq+1) delimit the sequences; scratch is per-worker storage (grown here).
// probs, if not nil, is (N, NH, maxT) with maxT the longest sequence and receives the
// probabilities: row t (packed position) of head h at probs[(t*NH+h)*maxT:], one entry
// per key of t's sequence, zero past t.
func attentionForward(att, lse, probs, qkv []float32, starts []int, a attnShape, scratch *[][]float32) {
	nseq := len(starts) - 1
	maxT := 0
	for i := 0; i < nseq; i++ {
		maxT = max(maxT, starts[i+1]-starts[i])
	}
	ld, od := a.qkvDim(), a.outDim()
	scale := float32(1 / math.Sqrt(float64(a.hd)))
	workers := runtime.GOMAXPROCS(0)
	RB := max(attnRowBlock, 1)
	sc := scratchFor(scratch, workers, min(maxT, RB)*maxT)
	parallelTasks(nseq*a.NH, workers, func(w, task int) {
		i, h := task/a.NH, task%a.NH
		s0, T := starts[i], starts[i+1]-starts[i]
		if T == 0 {
			return // an empty sequence: nothing to attend, and no rows to slice
		}
		kv := a.kvHead(h)
		k := qkv[s0*ld+(a.NH+kv)*a.hd:]
		v := qkv[s0*ld+(a.NH+a.NKV+kv)*a.hd:]
		for r0 := 0; r0 < T; r0 += RB {
			// Rows [r0, r1) against keys [0, r1): s (nq, r1).
			r1 := min(T, r0+RB)
			nq := r1 - r0
			s, ls := sc[w][:nq*r1], r1 // scores, then probabilities, (nq, r1), row stride ls
			if probs != nil {
				s, ls = probs[((s0+r0)*a.NH+h)*maxT:], a.NH*maxT
			}
			sgemm1(false, true, nq, r1, a.hd, scale, qkv[(s0+r0)*ld+h*a.hd:], ld, k, ld, 0, s, ls)
			softmaxCausalRows(s, nq, r1, ls, r0, func(t int, l float32) { lse[(s0+r0+t)*a.NH+h] = l })
			sgemm1(false, false, nq, a.hd, r1, 1, s, ls, v, ld, 0, att[(s0+r0)*od+h*a.hd:], od)
		}
	})
}

// attentionBackward writes dqkv (N, QKV), overwriting it, from datt (N, NH*hd), the
// forward input qkv and the saved lse (N, NH), or, if not nil, the probabilities probs
// kept by attentionForward (then lse is not read). Work is split over (sequence, kv head),
// and the query heads of a group, then the row blocks of each head, are accumulated into
// dk/dv in order, so no two workers write the same dk/dv and the sums do not depend on
// the number of workers.
func attentionBackward(dqkv, datt, qkv, lse, probs []float32, starts []int, a attnShape, scratch *[][]float32) {
	nseq := len(starts) - 1
	maxT := 0
	for i := 0; i < nseq; i++ {
		maxT = max(maxT, starts[i+1]-starts[i])
	}
	ld, od := a.qkvDim(), a.outDim()
	scale := float32(1 / math.Sqrt(float64(a.hd)))
	G := a.NH / a.NKV
	workers := runtime.GOMAXPROCS(0)
	RB := max(attnRowBlock, 1)
	blk := min(maxT, RB) * maxT
	sc := scratchFor(scratch, workers, 2*blk)
	parallelTasks(nseq*a.NKV, workers, func(w, task int) {
		i, kv := task/a.NKV, task%a.NKV
		s0, T := starts[i], starts[i+1]-starts[i]
		if T == 0 {
			return // an empty sequence: nothing to attend, and no rows to slice
		}
		k := qkv[s0*ld+(a.NH+kv)*a.hd:]
		v := qkv[s0*ld+(a.NH+a.NKV+kv)*a.hd:]
		dk := dqkv[s0*ld+(a.NH+kv)*a.hd:]
		dv := dqkv[s0*ld+(a.NH+a.NKV+kv)*a.hd:]
		for t := 0; t < T; t++ {
			clear(dk[t*ld : t*ld+a.hd])
			clear(dv[t*ld : t*ld+a.hd])
		}
		for h := kv * G; h < (kv+1)*G; h++ {
			for r0 := 0; r0 < T; r0 += RB {
				// Rows [r0, r1) against keys [0, r1): p, dp (nq, r1).
				r1 := min(T, r0+RB)
				nq := r1 - r0
				p, lp, dp := sc[w][:nq*r1], r1, sc[w][blk:blk+nq*r1] // p (nq, r1) row stride lp
				q := qkv[(s0+r0)*ld+h*a.hd:]
				dq := dqkv[(s0+r0)*ld+h*a.hd:]
				do := datt[(s0+r0)*od+h*a.hd:]
				if probs != nil {
					p, lp = probs[((s0+r0)*a.NH+h)*maxT:], a.NH*maxT
				} else {
					// p = softmax(scale q·k^T) recomputed from the saved log-sum-exp.
					sgemm1(false, true, nq, r1, a.hd, scale, q, ld, k, ld, 0, p, r1)
					for t := 0; t < nq; t++ {
						l := lse[(s0+r0+t)*a.NH+h]
						row := p[t*r1 : (t+1)*r1]
						simd.ExpShift(row[:r0+t+1], row[:r0+t+1], l, 1)
						clear(row[r0+t+1:])
					}
				}
				// dp = do·v^T, then ds = p*(dp - sum_j p*dp) in place.
				sgemm1(false, true, nq, r1, a.hd, 1, do, od, v, ld, 0, dp, r1)
				for t := 0; t < nq; t++ {
					vis := r0 + t + 1
					dr := dp[t*r1 : (t+1)*r1]
					simd.SoftmaxBackward(p[t*lp:t*lp+vis], dr)
					clear(dr[vis:])
				}
				sgemm1(false, false, nq, a.hd, r1, scale, dp, r1, k, ld, 0, dq, ld)
				sgemm1(true, false, r1, a.hd, nq, scale, dp, r1, q, ld, 1, dk, ld)
				sgemm1(true, false, r1, a.hd, nq, 1, p, lp, do, od, 1, dv, ld)
			}
		}
	})
}

// cacheAttentionForward is attention for incremental decoding. For every listed slot i,
// the n[i] new query rows of qkv (M, QKV), packed from row r0[i], attend to the slot's
// cached keys and values kc, vc (slot's rows of (maxLen, NKV*hd), which already hold the
// new tokens) at positions < past[i] + j + 1 for new token j. att is (M, NH*hd).
func cacheAttentionForward(att, qkv []float32, kc, vc [][]float32, r0, n, past []int, a attnShape, scratch *[][]float32) {
	ld, od, kd := a.qkvDim(), a.outDim(), a.NKV*a.hd
	scale := float32(1 / math.Sqrt(float64(a.hd)))
	need := 0
	for i := range n {
		need = max(need, n[i]*(past[i]+n[i]))
	}
	workers := runtime.GOMAXPROCS(0)
	sc := scratchFor(scratch, workers, need)
	parallelTasks(len(n)*a.NH, workers, func(w, task int) {
		i, h := task/a.NH, task%a.NH
		nq, nk := n[i], past[i]+n[i]
		if nq == 0 {
			return
		}
		kv := a.kvHead(h)
		s := sc[w][:nq*nk]
		sgemm1(false, true, nq, nk, a.hd, scale, qkv[r0[i]*ld+h*a.hd:], ld, kc[i][kv*a.hd:], kd, 0, s, nk)
		softmaxCausalRows(s, nq, nk, nk, past[i], nil)
		sgemm1(false, false, nq, a.hd, nk, 1, s, nk, vc[i][kv*a.hd:], kd, 0, att[r0[i]*od+h*a.hd:], od)
	})
}
