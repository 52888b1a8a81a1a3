//go:build cuda

package cuda

import (
	"math"

	"gorgonia.org/cu"
)

// The cuBLAS attention path (Options.Attention = AttnCUBLAS): for every sequence, the
// scores of a batch of heads are materialised as S (nb, T, T) float32 by one strided
// batched product, the softmax kernels of attention.cu turn them into P, and a second
// product gives the output; the backward pass recomputes S and P from the saved lse.
// With grouped-query attention the batches are the query heads of one kv head (the kv
// matrix shared, stride 0); otherwise all heads at once.

// attnBatches returns the head batches: (first query head, count, kv head of the first,
// kv stride between batch members in heads).
func (tr *trainer) attnBatches() [][4]int {
	NH, NKV := tr.cfg.NHead, tr.cfg.NKVHead
	if NH == NKV {
		return [][4]int{{0, NH, 0, 1}}
	}
	G := NH / NKV
	var out [][4]int
	for g := 0; g < NKV; g++ {
		out = append(out, [4]int{g * G, G, g, 0})
	}
	return out
}

// ensureAttnScratch grows the (nb, T, T) scratch matrices for sequences of T tokens: S
// and P always, dP and dS once a backward pass has needed them.
func (tr *trainer) ensureAttnScratch(T int, bwd bool) {
	nb := tr.cfg.NHead
	if tr.cfg.NKVHead != tr.cfg.NHead {
		nb = tr.cfg.NHead / tr.cfg.NKVHead
	}
	tr.aDPwanted = tr.aDPwanted || bwd
	if need := int64(nb) * int64(T) * int64(T); need > tr.attnCap {
		tr.freeAttnScratch()
		tr.attnCap = need
		tr.aS, tr.aP = tr.d.alloc(need*4), tr.d.alloc(need*tr.t.size())
	}
	if tr.aDPwanted && tr.aDP == 0 {
		tr.aDP, tr.aDS = tr.d.alloc(tr.attnCap*4), tr.d.alloc(tr.attnCap*tr.t.size())
	}
}

func (tr *trainer) freeAttnScratch() {
	for _, p := range []cu.DevicePtr{tr.aS, tr.aP, tr.aDP, tr.aDS} {
		tr.d.free(p)
	}
	tr.aS, tr.aP, tr.aDP, tr.aDS, tr.attnCap = 0, 0, 0, 0, 0
}

// attnForwardBlas fills a.att and a.lse from a.qkv.
func (tr *trainer) attnForwardBlas(a *actsOf[cu.DevicePtr]) {
	d, c := tr.d, tr.cfg
	NH, NKV, hd := c.NHead, c.NKVHead, c.HeadDim()
	ld, od := (NH+2*NKV)*hd, NH*hd
	ts := tr.t.size()
	T := tr.t
	scale := float32(1 / math.Sqrt(float64(hd)))
	at := func(p cu.DevicePtr, elems int) cu.DevicePtr { return p + cu.DevicePtr(int64(elems)*ts) }
	for s := 0; s+1 < len(tr.starts); s++ {
		s0, Tn := tr.starts[s], tr.starts[s+1]-tr.starts[s]
		if Tn == 0 {
			continue
		}
		tr.ensureAttnScratch(Tn, false)
		TT := int64(Tn) * int64(Tn)
		for _, bt := range tr.attnBatches() {
			h0, nb, kv, kvs := bt[0], bt[1], bt[2], bt[3]
			q := at(a.qkv, s0*ld+h0*hd)
			k := at(a.qkv, s0*ld+(NH+kv)*hd)
			v := at(a.qkv, s0*ld+(NH+NKV+kv)*hd)
			d.gemmBatched(false, true, Tn, Tn, hd, scale, q, ld, int64(hd), k, ld, int64(kvs*hd), 0, tr.aS, Tn, TT, nb, T, f32)
			d.launch(tr.kernel("attn_softmax_fwd"), [3]int{Tn, nb, 1}, [3]int{256, 1, 1}, 0, tr.aP, a.lse, tr.aS, int32(Tn), int32(s0), int32(h0), int32(NH))
			o := at(a.att, s0*od+h0*hd)
			d.gemmBatched(false, false, Tn, hd, Tn, 1, tr.aP, Tn, TT, v, ld, int64(kvs*hd), 0, o, od, int64(hd), nb, T, T)
		}
	}
}

// attnBackwardBlas writes tr.dqkv from tr.datt, a.qkv, a.lse and tr.D (attn_bwd_dot).
func (tr *trainer) attnBackwardBlas(a *actsOf[cu.DevicePtr]) {
	d, c := tr.d, tr.cfg
	NH, NKV, hd := c.NHead, c.NKVHead, c.HeadDim()
	ld, od := (NH+2*NKV)*hd, NH*hd
	ts := tr.t.size()
	T := tr.t
	scale := float32(1 / math.Sqrt(float64(hd)))
	at := func(p cu.DevicePtr, elems int) cu.DevicePtr { return p + cu.DevicePtr(int64(elems)*ts) }
	for s := 0; s+1 < len(tr.starts); s++ {
		s0, Tn := tr.starts[s], tr.starts[s+1]-tr.starts[s]
		if Tn == 0 {
			continue
		}
		tr.ensureAttnScratch(Tn, true)
		TT := int64(Tn) * int64(Tn)
		for _, bt := range tr.attnBatches() {
			h0, nb, kv, kvs := bt[0], bt[1], bt[2], bt[3]
			q := at(a.qkv, s0*ld+h0*hd)
			k := at(a.qkv, s0*ld+(NH+kv)*hd)
			v := at(a.qkv, s0*ld+(NH+NKV+kv)*hd)
			do := at(tr.datt, s0*od+h0*hd)
			dq := at(tr.dqkv, s0*ld+h0*hd)
			dk := at(tr.dqkv, s0*ld+(NH+kv)*hd)
			dv := at(tr.dqkv, s0*ld+(NH+NKV+kv)*hd)
			d.gemmBatched(false, true, Tn, Tn, hd, scale, q, ld, int64(hd), k, ld, int64(kvs*hd), 0, tr.aS, Tn, TT, nb, T, f32)
			d.launch(tr.kernel("attn_probs"), [3]int{Tn, nb, 1}, [3]int{256, 1, 1}, 0, tr.aP, tr.aS, a.lse, int32(Tn), int32(s0), int32(h0), int32(NH))
			d.gemmBatched(false, true, Tn, Tn, hd, 1, do, od, int64(hd), v, ld, int64(kvs*hd), 0, tr.aDP, Tn, TT, nb, T, f32)
			d.launch(tr.kernel("attn_dsoft"), [3]int{Tn, nb, 1}, [3]int{256, 1, 1}, 0, tr.aDS, tr.aP, tr.aDP, tr.D, int32(Tn), int32(s0), int32(h0), int32(NH))
			// dq_h = scale dS_h·k (every head its own), dk = scale sum_h dS_h^T·q_h,
			// dv = sum_h P_h^T·datt_h (summed over the group's heads one by one).
			d.gemmBatched(false, false, Tn, hd, Tn, scale, tr.aDS, Tn, TT, k, ld, int64(kvs*hd), 0, dq, ld, int64(hd), nb, T, T)
			if kvs != 0 { // one query head per kv head: batched
				d.gemmBatched(true, false, Tn, hd, Tn, scale, tr.aDS, Tn, TT, q, ld, int64(hd), 0, dk, ld, int64(hd), nb, T, T)
				d.gemmBatched(true, false, Tn, hd, Tn, 1, tr.aP, Tn, TT, do, od, int64(hd), 0, dv, ld, int64(hd), nb, T, T)
				continue
			}
			for b := 0; b < nb; b++ {
				var beta float32
				if b > 0 {
					beta = 1
				}
				d.gemmBatched(true, false, Tn, hd, Tn, scale, tr.aDS+cu.DevicePtr(int64(b)*TT*ts), Tn, TT, at(q, b*hd), ld, 0, beta, dk, ld, 0, 1, T, T)
				d.gemmBatched(true, false, Tn, hd, Tn, 1, tr.aP+cu.DevicePtr(int64(b)*TT*ts), Tn, TT, at(do, b*hd), od, 0, beta, dv, ld, 0, 1, T, T)
			}
		}
	}
}
