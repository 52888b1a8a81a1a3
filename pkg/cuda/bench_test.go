//go:build cuda

package cuda

import (
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cpo-toolchain/cpo/pkg/model"
	"gorgonia.org/cu"
)

// benchConfigs are the throughput models: GPT-2 small (124M) and a Llama of about 0.75B
// parameters (OpenLlama's shape, fewer and narrower layers), with B sequences of T tokens.
var benchConfigs = []struct {
	name string
	cfg  model.Config
	B, T int
}{
	{"gpt2-small", model.Config{Arch: model.ArchGPT2, VocabSize: 50257, MaxSeqLen: 1024, NLayer: 12, NHead: 12, NKVHead: 12,
		DModel: 768, DFF: 3072, NormEps: 1e-5, TieEmbeddings: true, BOS: -1, EOS: -1}, 8, 1024},
	{"llama-0.75b", model.Config{Arch: model.ArchLlama, VocabSize: 32000, MaxSeqLen: 2048, NLayer: 12, NHead: 16, NKVHead: 16,
		DModel: 2048, DFF: 5504, NormEps: 1e-6, RopeTheta: 10000, BOS: -1, EOS: -1}, 4, 1024},
}

// fastInit fills m like InitGPT2Style in distribution scale (uniform with std 0.02, norm
// weights 1, biases 0), in parallel: the benchmark models are too large for a serial init.
func fastInit(m *model.Model) {
	var wg sync.WaitGroup
	for i, p := range m.Params() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			switch {
			case len(p.Shape) == 1 && (strings.Contains(p.Name, "ln_") || strings.Contains(p.Name, "norm")):
				for j := range p.Data {
					p.Data[j] = 1
				}
			case len(p.Shape) == 1:
				clear(p.Data)
			default:
				r := rand.New(rand.NewPCG(uint64(i), 1))
				for j := range p.Data {
					p.Data[j] = float32(r.Float64()*2-1) * 0.0346
				}
			}
		}()
	}
	wg.Wait()
}

// TestThroughput times MLE and CPO training steps (forward, backward, clipping, AdamW;
// CPO also runs the frozen reference model's forward) with $CPO_GPU_BENCH set, after two
// warm-up steps, and records tokens/s and the FLOPs per token for the MFU.
func TestThroughput(t *testing.T) {
	if os.Getenv("CPO_GPU_BENCH") == "" {
		t.Skip("CPO_GPU_BENCH not set")
	}
	steps := 5
	for _, bc := range benchConfigs {
		m, err := model.New(bc.cfg)
		if err != nil {
			t.Fatal(err)
		}
		fastInit(m)
		rng := rand.New(rand.NewPCG(1, 2))
		seqs := make([][]int32, bc.B)
		for i := range seqs {
			seqs[i] = make([]int32, bc.T)
			for j := range seqs[i] {
				seqs[i][j] = int32(rng.IntN(bc.cfg.VocabSize))
			}
		}
		b := model.Pack(seqs)
		N := len(b.Tokens)
		dlogp := make([]float32, N)
		for i := range dlogp {
			dlogp[i] = -1 / float32(N)
		}
		for _, run := range [][2]string{{"mle", AttnFlash}, {"cpo", AttnFlash}, {"mle", AttnCUBLAS}} {
			obj, attn := run[0], run[1]
			free0 := freeMem(t)
			tr, err := New(m, Options{Precision: BF16, WeightDecay: 0.05, Attention: attn})
			if err != nil {
				t.Fatal(err)
			}
			var ref Trainer
			if obj == "cpo" {
				if ref, err = New(m, Options{Precision: BF16, Inference: true, Attention: attn}); err != nil {
					t.Fatal(err)
				}
			}
			var total time.Duration
			for s := 0; s < 2+steps; s++ {
				start := time.Now()
				if ref != nil {
					if _, err := ref.Forward(b); err != nil {
						t.Fatal(err)
					}
				}
				if err := tr.ZeroGrad(); err != nil {
					t.Fatal(err)
				}
				if _, err := tr.Forward(b); err != nil {
					t.Fatal(err)
				}
				if err := tr.Backward(dlogp); err != nil {
					t.Fatal(err)
				}
				if _, err := tr.Step(1e-5, 1); err != nil {
					t.Fatal(err)
				}
				if s >= 2 {
					total += time.Since(start)
				}
			}
			stepS := total.Seconds() / float64(steps)
			used := free0 - freeMem(t)
			est := DeviceBytes(bc.cfg, int64(m.NumParams()), int64(N), Options{})
			if ref != nil {
				est += DeviceBytes(bc.cfg, int64(m.NumParams()), int64(N), Options{Inference: true})
			}
			// cuMemAlloc rounds to 2 MB pages and cuBLAS keeps a workspace: allow 1.5 GB
			// (the cuBLAS attention path's (NH, T, T) scratch is not in DeviceBytes).
			if attn == AttnFlash && (used < est || used > est+1500<<20) {
				t.Errorf("%s %s: %d MB of device memory in use, DeviceBytes estimates %d MB", bc.name, obj, used>>20, est>>20)
			}
			flops := flopsPerToken(bc.cfg, m.NumParams(), bc.T)
			if obj == "cpo" {
				flops += (2*float64(m.NumParams()) + 2*float64(bc.cfg.NLayer*bc.cfg.DModel*bc.T))
			}
			t.Logf("%s %s (%s): %.1f ms/step, %.0f tokens/s", bc.name, obj, tr.Device(), stepS*1000, float64(N)/stepS)
			impl := "go-cuda"
			if attn == AttnCUBLAS {
				impl = "go-cuda, cuBLAS attention"
			}
			record(t, map[string]any{"check": "throughput", "impl": impl, "model": bc.name, "objective": obj,
				"device": tr.Device(), "tokens": N, "B": bc.B, "T": bc.T, "step_ms": stepS * 1000,
				"tokens_per_s": float64(N) / stepS, "flops_per_token": flops, "params": m.NumParams(),
				"device_mb": used >> 20, "estimate_mb": est >> 20})
			tr.Close()
			if ref != nil {
				ref.Close()
			}
		}
		m = nil
		runtime.GC()
	}
}

// flopsPerToken is train.FLOPsPerToken (not imported: the trainer may come to import this
// package): 6 per parameter plus 6*L*C*T for causal attention, forward and backward.
func flopsPerToken(cfg model.Config, params, T int) float64 {
	return 6*float64(params) + 6*float64(cfg.NLayer)*float64(cfg.DModel)*float64(T)
}

// freeMem is the free device memory of GPU 0 (on its primary context, which the
// trainers share).
func freeMem(t *testing.T) int64 {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	dev, err := cu.GetDevice(0)
	if err != nil {
		t.Fatal(err)
	}
	ctx, err := dev.RetainPrimaryCtx()
	if err == nil {
		err = cu.SetCurrentContext(ctx)
	}
	if err != nil {
		t.Fatal(err)
	}
	free, _, err := cu.MemInfo()
	if err != nil {
		t.Fatal(err)
	}
	return free
}
