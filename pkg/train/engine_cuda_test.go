//go:build cuda

package train

// GPU checks of the CUDA engine (go test -tags cuda -run CUDA ./pkg/train on a machine with a
// GPU, or a test binary built with go test -c -tags cuda ./pkg/train run there): training
// steps on the GPU follow the CPU engine's, and checkpoints move between the two. Where the
// GPU cannot be opened they skip, unless CPO_GPU_REQUIRED is set (then they fail); on a
// machine without any CUDA device a -tags cuda binary does not start at all (gorgonia.org/cu's
// init exits with NoDevice).

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/cpo-toolchain/cpo/pkg/checkpoint"
	"github.com/cpo-toolchain/cpo/pkg/cuda"
	"github.com/cpo-toolchain/cpo/pkg/model"
)

// gpuCfg is a GPT-2 whose head size (64) the attention kernels are checked at in pkg/cuda.
var gpuCfg = model.Config{Arch: model.ArchGPT2, VocabSize: 97, MaxSeqLen: 96, NLayer: 2, NHead: 2, NKVHead: 2, DModel: 128,
	DFF: 512, NormEps: 1e-5, TieEmbeddings: true, BOS: 0, EOS: 1}

func gpuModel(t *testing.T) *model.Model {
	t.Helper()
	m, err := model.New(gpuCfg)
	if err != nil {
		t.Fatal(err)
	}
	m.InitGPT2Style(11)
	return m
}

// needGPU skips the test when no GPU can be opened.
func needGPU(t *testing.T) {
	t.Helper()
	e, err := NewCUDAEngine(gpuModel(t), cuda.Options{Inference: true})
	if err != nil {
		if os.Getenv("CPO_GPU_REQUIRED") != "" {
			t.Fatal(err)
		}
		t.Skipf("no GPU: %v", err)
	}
	e.Close()
}

func newOn(t *testing.T, cfg Config, dev DeviceConfig, items []*Item) *Trainer {
	t.Helper()
	m := gpuModel(t)
	fp, err := checkpoint.Fingerprint(m)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Device = dev
	tr, err := New(cfg, m, fp, items)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

func relDiff(a, b []float32) float64 {
	var num, den float64
	for i := range a {
		d := float64(a[i]) - float64(b[i])
		num += d * d
		den += float64(b[i]) * float64(b[i])
	}
	return math.Sqrt(num / den)
}

// Steps on the GPU (reference on the fly, clipping, accumulation) give the CPU engine's losses,
// gradient norms and weights: relative differences below 1e-3 in fp32 and 3e-2 in bf16.
func TestCUDAEngineFollowsCPU(t *testing.T) {
	needGPU(t)
	items := madeUpItems(16, 4, 3)
	cfg := Config{Objective: Objective{Name: MLECPO, Beta: 2, Alpha: 1}, Batch: 6, MicroBatch: 4, Steps: 4, LR: 1e-3,
		WeightDecay: 0.05, Clip: 1, Seed: 2}
	cpu := newOn(t, cfg, DeviceConfig{}, items)
	var want []StepResult
	for cpu.Step() < cfg.Steps {
		r, err := cpu.TrainStep(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, r)
	}
	for _, tc := range []struct {
		prec cuda.Precision
		tol  float64
	}{{cuda.Float32, 1e-3}, {cuda.BF16, 3e-2}} {
		gpu := newOn(t, cfg, DeviceConfig{Name: DeviceCUDA, Precision: tc.prec}, items)
		if gpu.Opt != nil || gpu.RefEngine == nil {
			t.Fatalf("%s: engines %s, ref %v", tc.prec, gpu.Engine.Device(), gpu.RefEngine)
		}
		for _, w := range want {
			r, err := gpu.TrainStep(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			dl := math.Abs(r.Loss-w.Loss) / math.Abs(w.Loss)
			dn := math.Abs(r.GradNorm-w.GradNorm) / w.GradNorm
			t.Logf("%s step %d: loss %.6f (cpu %.6f), |g| %.5f (cpu %.5f)", tc.prec, r.Step, r.Loss, w.Loss, r.GradNorm, w.GradNorm)
			if !(dl < tc.tol) || !(dn < 10*tc.tol) || r.Tokens != w.Tokens || r.RefTokens != w.RefTokens {
				t.Errorf("%s step %d: loss %v vs cpu %v, norm %v vs %v", tc.prec, r.Step, r.Loss, w.Loss, r.GradNorm, w.GradNorm)
			}
		}
		if err := gpu.Engine.Sync(); err != nil {
			t.Fatal(err)
		}
		if d := relDiff(gpu.Policy.ParamArena(), cpu.Policy.ParamArena()); !(d < tc.tol) {
			t.Errorf("%s: weights differ from the CPU's by %.3g", tc.prec, d)
		}
		if gpu.Engine.Steps() != int64(cfg.Steps) {
			t.Errorf("%s: %d optimizer steps", tc.prec, gpu.Engine.Steps())
		}
	}
}

// A GPU checkpoint resumes on the CPU and on the GPU, and a CPU checkpoint on the GPU; each
// continuation stays within fp32 tolerance of the uninterrupted CPU run.
func TestCUDACheckpoints(t *testing.T) {
	needGPU(t)
	const N = 3
	items := madeUpItems(16, 3, 4)
	cfg := Config{Objective: Objective{Name: CPO, Beta: 2}, Batch: 4, Steps: 2 * N, LR: 1e-3, WeightDecay: 0.05, Clip: 1, Seed: 3}
	full := newOn(t, cfg, DeviceConfig{}, items)
	for full.Step() < 2*N {
		if _, err := full.TrainStep(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	gpu := DeviceConfig{Name: DeviceCUDA, Precision: cuda.Float32}
	for _, tc := range []struct {
		name          string
		first, second DeviceConfig
	}{{"gpu to cpu", gpu, DeviceConfig{}}, {"gpu to gpu", gpu, gpu}, {"cpu to gpu", DeviceConfig{}, gpu}} {
		cfg.Out = filepath.Join(t.TempDir(), "model")
		first := newOn(t, cfg, tc.first, items)
		for first.Step() < N {
			if _, err := first.TrainStep(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		ck, err := first.SaveCheckpoint()
		if err != nil {
			t.Fatal(err)
		}
		saved, err := checkpoint.Load(ck)
		if err != nil {
			t.Fatal(err)
		}
		if d := relDiff(saved.ParamArena(), gpuModel(t).ParamArena()); !(d > 0) {
			t.Fatalf("%s: the checkpoint holds the starting weights (no Sync?)", tc.name)
		}
		second := newOn(t, cfg, tc.second, items)
		if _, err := second.Resume(ck); err != nil {
			t.Fatal(err)
		}
		if second.Engine.Steps() != N {
			t.Fatalf("%s: optimizer resumed at step %d", tc.name, second.Engine.Steps())
		}
		for second.Step() < 2*N {
			if _, err := second.TrainStep(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		if err := second.Engine.Sync(); err != nil {
			t.Fatal(err)
		}
		if d := relDiff(second.Policy.ParamArena(), full.Policy.ParamArena()); !(d < 1e-3) {
			t.Errorf("%s: weights differ from the uninterrupted CPU run by %.3g", tc.name, d)
		}
	}
}
