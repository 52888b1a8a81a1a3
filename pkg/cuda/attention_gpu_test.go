//go:build cuda

package cuda

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
	"unsafe"

	"github.com/cpo-toolchain/cpo/pkg/model"
	"gorgonia.org/cu"
)

// naiveAttention is the float64 reference of kernels/attention.cu: att (N, NH*hd), lse
// (N, NH) and, given datt, dqkv (N, QKV) of causal attention within each sequence.
func naiveAttention(qkv, datt []float32, starts []int, NH, NKV, hd int) (att, lse, dqkv []float64) {
	N := starts[len(starts)-1]
	ld, od := (NH+2*NKV)*hd, NH*hd
	att, lse, dqkv = make([]float64, N*od), make([]float64, N*NH), make([]float64, N*ld)
	scale := 1 / math.Sqrt(float64(hd))
	at := func(t, col, d int) float64 { return float64(qkv[t*ld+col*hd+d]) }
	for s := 0; s+1 < len(starts); s++ {
		s0, T := starts[s], starts[s+1]-starts[s]
		for h := 0; h < NH; h++ {
			kv := h / (NH / NKV)
			P := make([][]float64, T)
			for i := 0; i < T; i++ {
				P[i] = make([]float64, i+1)
				mx := math.Inf(-1)
				for j := 0; j <= i; j++ {
					var dot float64
					for d := 0; d < hd; d++ {
						dot += at(s0+i, h, d) * at(s0+j, NH+kv, d)
					}
					P[i][j] = dot * scale
					mx = math.Max(mx, P[i][j])
				}
				var sum float64
				for j := range P[i] {
					P[i][j] = math.Exp(P[i][j] - mx)
					sum += P[i][j]
				}
				lse[(s0+i)*NH+h] = mx + math.Log(sum)
				for j := range P[i] {
					P[i][j] /= sum
					for d := 0; d < hd; d++ {
						att[(s0+i)*od+h*hd+d] += P[i][j] * at(s0+j, NH+NKV+kv, d)
					}
				}
			}
			for i := 0; i < T; i++ {
				var D float64
				for d := 0; d < hd; d++ {
					D += float64(datt[(s0+i)*od+h*hd+d]) * att[(s0+i)*od+h*hd+d]
				}
				for j := 0; j <= i; j++ {
					var dp float64
					for d := 0; d < hd; d++ {
						dp += float64(datt[(s0+i)*od+h*hd+d]) * at(s0+j, NH+NKV+kv, d)
					}
					ds := P[i][j] * (dp - D) * scale
					for d := 0; d < hd; d++ {
						dqkv[(s0+i)*ld+h*hd+d] += ds * at(s0+j, NH+kv, d)
						dqkv[(s0+j)*ld+(NH+kv)*hd+d] += ds * at(s0+i, h, d)
						dqkv[(s0+j)*ld+(NH+NKV+kv)*hd+d] += P[i][j] * float64(datt[(s0+i)*od+h*hd+d])
					}
				}
			}
		}
	}
	return att, lse, dqkv
}

func rel64(got []float32, want []float64) float64 {
	var num, den float64
	for i := range want {
		d := float64(got[i]) - want[i]
		num += d * d
		den += want[i] * want[i]
	}
	return math.Sqrt(num / math.Max(den, 1e-300))
}

// attnRun runs the attention kernels of the trainer on qkv and datt (float32 storage).
// With blas, the cuBLAS path of attn_blas.go runs instead of the flash kernels.
func attnRun(t *testing.T, tr *trainer, qkv, datt []float32, starts []int, NH, NKV, hd int, blas bool) (att, lse, dqkv []float32) {
	d := tr.d
	N := starts[len(starts)-1]
	ld, od := (NH+2*NKV)*hd, NH*hd
	g := attnGroups(starts, attnRows)
	up := func(x []float32) cu.DevicePtr {
		p := d.alloc(int64(len(x)) * 4)
		d.upload(p, unsafe.Pointer(&x[0]), int64(len(x))*4)
		return p
	}
	pq, pdatt := up(qkv), up(datt)
	pg := d.alloc(int64(len(g)) * 4)
	d.upload(pg, unsafe.Pointer(&g[0]), int64(len(g))*4)
	patt, plse, pD, pd := d.alloc(int64(N*od)*4), d.alloc(int64(N*NH)*4), d.alloc(int64(N*NH)*4), d.alloc(int64(N*ld)*4)
	if blas {
		a := actsOf[cu.DevicePtr]{qkv: pq, att: patt, lse: plse}
		tr.starts, tr.datt, tr.dqkv, tr.D = starts, pdatt, pd, pD
		tr.attnForwardBlas(&a)
		d.launch("attn_bwd_dot_f32", [3]int{(N*NH*32 + 255) / 256, 1, 1}, [3]int{256, 1, 1}, 0, pD, pdatt, patt, int32(N), int32(NH), int32(hd))
		tr.attnBackwardBlas(&a)
		tr.datt, tr.dqkv, tr.D = 0, 0, 0
	} else {
		d.launch("attn_fwd_f32", [3]int{len(g) / 3, NH, 1}, [3]int{32 * attnRows, 1, 1}, tr.attnSmem(false), patt, plse, pq, pg, int32(NH), int32(NKV), int32(hd))
		d.launch("attn_bwd_dot_f32", [3]int{(N*NH*32 + 255) / 256, 1, 1}, [3]int{256, 1, 1}, 0, pD, pdatt, patt, int32(N), int32(NH), int32(hd))
		d.launch("attn_bwd_dq_f32", [3]int{len(g) / 3, NH, 1}, [3]int{32 * attnRows, 1, 1}, tr.attnSmem(true), pd, pdatt, pq, plse, pD, pg, int32(NH), int32(NKV), int32(hd))
		d.launch("attn_bwd_dkdv_f32", [3]int{len(g) / 3, NKV, 1}, [3]int{32 * attnRows, 1, 1}, tr.attnSmem(true), pd, pdatt, pq, plse, pD, pg, int32(NH), int32(NKV), int32(hd))
	}
	att, lse, dqkv = make([]float32, N*od), make([]float32, N*NH), make([]float32, N*ld)
	d.download(unsafe.Pointer(&att[0]), patt, int64(len(att))*4)
	d.download(unsafe.Pointer(&lse[0]), plse, int64(len(lse))*4)
	d.download(unsafe.Pointer(&dqkv[0]), pd, int64(len(dqkv))*4)
	for _, p := range []cu.DevicePtr{pq, pdatt, pg, patt, plse, pD, pd} {
		d.free(p)
	}
	if err := d.err(); err != nil {
		t.Fatal(err)
	}
	return att, lse, dqkv
}

// TestAttentionKernels checks the flash-style kernels against a float64 reference on
// sequences that span several tiles, a single token, GQA and head sizes 16 to 128.
func TestAttentionKernels(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	for _, sh := range [][3]int{{2, 2, 64}, {4, 2, 48}, {4, 1, 16}, {2, 2, 128}} {
		NH, NKV, hd := sh[0], sh[1], sh[2]
		cfg := model.Config{Arch: model.ArchLlama, VocabSize: 8, MaxSeqLen: 128, NLayer: 1, NHead: NH, NKVHead: NKV,
			DModel: NH * hd, DFF: 8, NormEps: 1e-6, RopeTheta: 10000, BOS: -1, EOS: -1}
		m, err := model.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		tri, err := New(m, Options{Precision: Float32})
		if err != nil {
			t.Fatal(err)
		}
		tr := tri.(*trainer)
		starts := []int{0, 37, 38, 128, 140}
		N := starts[len(starts)-1]
		qkv, datt := make([]float32, N*(NH+2*NKV)*hd), make([]float32, N*NH*hd)
		for i := range qkv {
			qkv[i] = float32(rng.NormFloat64())
		}
		for i := range datt {
			datt[i] = float32(rng.NormFloat64())
		}
		wa, wl, wd := naiveAttention(qkv, datt, starts, NH, NKV, hd)
		for _, blas := range []bool{false, true} {
			if blas && !tr.d.batched {
				t.Log("no cuBLAS with batched products: the cuBLAS attention path is not checked")
				continue
			}
			tr.d.bind()
			att, lse, dqkv := attnRun(t, tr, qkv, datt, starts, NH, NKV, hd, blas)
			tr.d.unbind()
			ea, el, ed := rel64(att, wa), rel64(lse, wl), rel64(dqkv, wd)
			t.Logf("NH %d NKV %d hd %d cublas=%v: att %.1e lse %.1e dqkv %.1e", NH, NKV, hd, blas, ea, el, ed)
			if ea > 1e-5 || el > 1e-5 || ed > 1e-5 {
				t.Errorf("NH %d NKV %d hd %d cublas=%v: relative errors att %.1e lse %.1e dqkv %.1e", NH, NKV, hd, blas, ea, el, ed)
			}
		}
		tri.Close()
	}
}

// TestAttentionTiming records the time of the attention kernels at GPT-2 small's shape
// (8 sequences of 1024 tokens, 12 heads of 64) per layer, forward and backward, with
// $CPO_GPU_BENCH set: the figure to beat with a tensor-core attention.
func TestAttentionTiming(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	cfg := model.Config{Arch: model.ArchGPT2, VocabSize: 8, MaxSeqLen: 1024, NLayer: 1, NHead: 12, NKVHead: 12,
		DModel: 768, DFF: 8, NormEps: 1e-5, TieEmbeddings: true, BOS: -1, EOS: -1}
	m, err := model.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tri, err := New(m, Options{Precision: BF16})
	if err != nil {
		t.Fatal(err)
	}
	defer tri.Close()
	tr := tri.(*trainer)
	d := tr.d
	d.bind()
	defer d.unbind()
	starts := []int{0}
	for i := 0; i < 8; i++ {
		starts = append(starts, starts[i]+1024)
	}
	N, NH, hd := starts[8], 12, 64
	g := attnGroups(starts, attnRows)
	pg := d.alloc(int64(len(g)) * 4)
	d.upload(pg, unsafe.Pointer(&g[0]), int64(len(g))*4)
	pq, pdatt := d.alloc(int64(N*3*NH*hd)*2), d.alloc(int64(N*NH*hd)*2)
	d.zero(pq, int64(N*3*NH*hd)*2)
	d.zero(pdatt, int64(N*NH*hd)*2)
	patt, plse, pD, pd := d.alloc(int64(N*NH*hd)*2), d.alloc(int64(N*NH)*4), d.alloc(int64(N*NH)*4), d.alloc(int64(N*3*NH*hd)*2)
	fwd := func() {
		d.launch("attn_fwd_bf16", [3]int{len(g) / 3, NH, 1}, [3]int{32 * attnRows, 1, 1}, tr.attnSmem(false), patt, plse, pq, pg, int32(NH), int32(NH), int32(hd))
	}
	bwd := func() {
		d.launch("attn_bwd_dot_bf16", [3]int{(N*NH*32 + 255) / 256, 1, 1}, [3]int{256, 1, 1}, 0, pD, pdatt, patt, int32(N), int32(NH), int32(hd))
		d.launch("attn_bwd_dq_bf16", [3]int{len(g) / 3, NH, 1}, [3]int{32 * attnRows, 1, 1}, tr.attnSmem(true), pd, pdatt, pq, plse, pD, pg, int32(NH), int32(NH), int32(hd))
		d.launch("attn_bwd_dkdv_bf16", [3]int{len(g) / 3, NH, 1}, [3]int{32 * attnRows, 1, 1}, tr.attnSmem(true), pd, pdatt, pq, plse, pD, pg, int32(NH), int32(NH), int32(hd))
	}
	timeIt := func(f func()) float64 {
		f()
		d.sync()
		start := time.Now()
		for i := 0; i < 5; i++ {
			f()
		}
		d.sync()
		return time.Since(start).Seconds() / 5 * 1000
	}
	f, b := timeIt(fwd), timeIt(bwd)
	var fb, bb float64
	if d.batched {
		a := actsOf[cu.DevicePtr]{qkv: pq, att: patt, lse: plse}
		tr.starts, tr.datt, tr.dqkv, tr.D = starts, pdatt, pd, pD
		fb = timeIt(func() { tr.attnForwardBlas(&a) })
		bb = timeIt(func() {
			d.launch("attn_bwd_dot_bf16", [3]int{(N*NH*32 + 255) / 256, 1, 1}, [3]int{256, 1, 1}, 0, pD, pdatt, patt, int32(N), int32(NH), int32(hd))
			tr.attnBackwardBlas(&a)
		})
		tr.datt, tr.dqkv, tr.D = 0, 0, 0
	}
	for _, p := range []cu.DevicePtr{pg, pq, pdatt, patt, plse, pD, pd} {
		d.free(p)
	}
	if err := d.err(); err != nil {
		t.Fatal(err)
	}
	flopsF := 4.0 * 8 * 1024 * 1024 / 2 * 64 * 12 // causal QK^T and PV
	t.Logf("attention, GPT-2 small layer, B=8 T=1024: flash forward %.2f ms (%.1f TFLOP/s), backward %.2f ms; cuBLAS path forward %.2f ms, backward %.2f ms", f, flopsF/f/1e9, b, fb, bb)
	record(t, map[string]any{"check": "attention-timing", "device": d.describe(), "flash_fwd_ms": f, "flash_bwd_ms": b,
		"flash_fwd_tflops": flopsF / f / 1e9, "cublas_fwd_ms": fb, "cublas_bwd_ms": bb})
}
