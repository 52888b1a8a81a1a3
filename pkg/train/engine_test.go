package train

import (
	"bytes"
	"context"
	"io"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cpo-toolchain/cpo/pkg/cuda"
	"github.com/cpo-toolchain/cpo/pkg/loss"
	"github.com/cpo-toolchain/cpo/pkg/model"
	"github.com/cpo-toolchain/cpo/pkg/optim"
)

// The Trainer on the CPU engine computes exactly what the direct code path does:
// Stepper.Accumulate on the host models, optim.ClipGradNorm and optim.AdamW.Step, bit for bit,
// with the reference computed on the fly, clipping active and gradient accumulation.
func TestCPUEngineIsTheDirectPath(t *testing.T) {
	items := madeUpItems(12, 3, 21)
	for _, obj := range []string{CPO, MLE} {
		cfg := Config{Objective: Objective{Name: obj, Beta: 2}, Batch: 5, MicroBatch: 2, Steps: 4, LR: 3e-3,
			WeightDecay: 0.05, Clip: 0.3, Seed: 4}
		tr := newTrainer(t, cfg, tinyModel(t, 8), items)
		if _, ok := tr.Engine.(*CPUEngine); !ok || tr.Engine.Device() != DeviceCPU {
			t.Fatalf("default engine %T %q", tr.Engine, tr.Engine.Device())
		}
		if (obj == CPO) != (tr.RefEngine != nil) {
			t.Fatalf("%s: reference engine %v", obj, tr.RefEngine)
		}

		pol := tinyModel(t, 8)
		var ref *model.Model
		if obj == CPO {
			ref = cloneModel(pol)
		}
		st := NewStepper(pol, ref, cfg.Objective)
		opt := optim.NewAdamW(pol.Params(), 0.9, 0.999, 1e-8, cfg.WeightDecay)
		perm := epochPerm(cfg.Seed, 0, len(items))
		pos, epoch := 0, 0
		for step := 0; step < cfg.Steps; step++ {
			r, err := tr.TrainStep(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if pos >= len(items) {
				epoch, pos = epoch+1, 0
				perm = epochPerm(cfg.Seed, epoch, len(items))
			}
			var batch []*Item
			for _, i := range perm[pos:min(pos+cfg.Batch, len(items))] {
				batch = append(batch, items[i])
			}
			pos += len(batch)
			pol.ZeroGrad()
			norm := float64(st.MLETokens(batch))
			var L float64
			for lo := 0; lo < len(batch); lo += cfg.MicroBatch {
				mb, err := st.Accumulate(batch[lo:min(lo+cfg.MicroBatch, len(batch))], len(batch), norm)
				if err != nil {
					t.Fatal(err)
				}
				L += mb.Loss
			}
			g := optim.ClipGradNorm(pol.Params(), cfg.Clip)
			opt.Step(cfg.LR)
			if r.Loss != L || r.GradNorm != g || !loss.Finite(g) {
				t.Fatalf("%s step %d: engine loss %v norm %v, direct %v %v", obj, step+1, r.Loss, r.GradNorm, L, g)
			}
			if step == 0 && !(g > cfg.Clip) {
				t.Fatalf("%s: norm %v does not exercise clipping at %v", obj, g, cfg.Clip)
			}
		}
		a, b := tr.Policy.ParamArena(), pol.ParamArena()
		for i := range a {
			if a[i] != b[i] {
				t.Fatalf("%s: weights differ at %d: %v vs %v", obj, i, a[i], b[i])
			}
		}
		if tr.Engine.Steps() != opt.Steps() || tr.Opt.Steps() != opt.Steps() {
			t.Fatalf("%s: steps %d, direct %d", obj, tr.Engine.Steps(), opt.Steps())
		}
		if err := tr.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// mirrorEngine stands in for a device that holds its own copy of the weights and optimizer
// (as a GPU does): a CPU engine on a private clone of the host model. Without Sync the host
// model keeps its old weights; without Upload the device keeps its own.
type mirrorEngine struct {
	host *model.Model
	*CPUEngine
	synced, uploaded int
}

func newMirror(host *model.Model, h Hyper, inference bool) *mirrorEngine {
	return &mirrorEngine{host: host, CPUEngine: NewCPUEngine(cloneModel(host), model.NewWorkspace(), h, inference)}
}

func (e *mirrorEngine) Sync() error {
	e.synced++
	copy(e.host.ParamArena(), e.M.ParamArena())
	return nil
}

func (e *mirrorEngine) Upload() error {
	e.uploaded++
	copy(e.M.ParamArena(), e.host.ParamArena())
	return nil
}

// SaveOptimizer and LoadOptimizer go through the moments, as the CUDA engine does.
func (e *mirrorEngine) SaveOptimizer(w io.Writer) error {
	var buf bytes.Buffer
	if err := e.Opt.Save(&buf); err != nil {
		return err
	}
	step, m, v, err := readAdamState(&buf, e.M.NumParams())
	if err != nil {
		return err
	}
	return writeAdamState(w, step, m, v)
}

func (e *mirrorEngine) Device() string { return "mirror" }

// onMirror moves a new trainer's passes onto mirror engines.
func onMirror(tr *Trainer) *mirrorEngine {
	c := tr.Cfg
	h := Hyper{Beta1: c.Beta1, Beta2: c.Beta2, Eps: c.Eps, WeightDecay: c.WeightDecay}
	pol := newMirror(tr.Policy, h, false)
	tr.Engine, tr.Opt = pol, nil
	if tr.Ref != nil {
		tr.RefEngine = newMirror(tr.Ref, h, true)
	}
	tr.Stepper = NewStepperOn(tr.Policy, tr.Ref, tr.Engine, tr.RefEngine, c.Objective)
	tr.Cfg.Device = DeviceConfig{Name: "mirror"}
	return pol
}

// A run on a device with its own weights (the mirror engine) checkpoints the device's weights
// (Sync) and optimizer; the checkpoint resumes on the CPU, and a CPU checkpoint resumes on the
// device (Upload), both continuing bit-identically the uninterrupted CPU run.
func TestCheckpointAcrossEngines(t *testing.T) {
	const N = 3
	items := madeUpItems(20, 3, 6)
	cfg := Config{Objective: Objective{Name: CPO, Beta: 2}, Batch: 4, MicroBatch: 3, Steps: 2 * N, LR: 2e-3,
		WeightDecay: 0.05, Clip: 0.5, Seed: 5}
	full := newTrainer(t, cfg, tinyModel(t, 2), items)
	for full.Step() < 2*N {
		if _, err := full.TrainStep(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name           string
		first, second  bool // on the mirror
		wantDevice     string
		wantUploaded   int
		wantSyncedSave int
	}{
		{"device to cpu", true, false, "mirror", 0, 1},
		{"cpu to device", false, true, "", 1, 0},
	} {
		cfg.Out = filepath.Join(t.TempDir(), "model")
		first := newTrainer(t, cfg, tinyModel(t, 2), items)
		var m1 *mirrorEngine
		if tc.first {
			m1 = onMirror(first)
		}
		for first.Step() < N {
			if _, err := first.TrainStep(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		ck, err := first.SaveCheckpoint()
		if err != nil {
			t.Fatal(err)
		}
		if m1 != nil && m1.synced != tc.wantSyncedSave {
			t.Fatalf("%s: Sync called %d times for one checkpoint", tc.name, m1.synced)
		}
		st, err := ReadState(ck)
		if err != nil {
			t.Fatal(err)
		}
		if st.Device != tc.wantDevice {
			t.Errorf("%s: state device %q, want %q", tc.name, st.Device, tc.wantDevice)
		}
		second := newTrainer(t, cfg, tinyModel(t, 2), items)
		var m2 *mirrorEngine
		if tc.second {
			m2 = onMirror(second)
		}
		if _, err := second.Resume(ck); err != nil {
			t.Fatal(err)
		}
		if m2 != nil && (m2.uploaded != tc.wantUploaded || m2.Steps() != N) {
			t.Fatalf("%s: Upload called %d times, optimizer at step %d", tc.name, m2.uploaded, m2.Steps())
		}
		for second.Step() < 2*N {
			if _, err := second.TrainStep(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		if err := second.Engine.Sync(); err != nil {
			t.Fatal(err)
		}
		a, b := full.Policy.ParamArena(), second.Policy.ParamArena()
		for i := range a {
			if a[i] != b[i] {
				t.Fatalf("%s: weights differ at %d after resume", tc.name, i)
			}
		}
	}
}

// optimizer.bin written from moments (writeAdamState, the CUDA engine's path) is byte for byte
// what optim.AdamW.Save writes, and each reads the other's.
func TestAdamStateFormat(t *testing.T) {
	m := tinyModel(t, 1)
	opt := optim.NewAdamW(m.Params(), 0.9, 0.999, 1e-8, 0.1)
	for i := range 3 {
		for j, g := range m.GradArena() {
			_ = g
			m.GradArena()[j] = float32((j*7+i)%13) - 6
		}
		opt.Step(1e-3)
	}
	var saved bytes.Buffer
	if err := opt.Save(&saved); err != nil {
		t.Fatal(err)
	}
	step, mm, vv, err := readAdamState(bytes.NewReader(saved.Bytes()), m.NumParams())
	if err != nil {
		t.Fatal(err)
	}
	if step != 3 || len(mm) != m.NumParams() || len(vv) != m.NumParams() {
		t.Fatalf("read step %d, %d and %d moments", step, len(mm), len(vv))
	}
	nonzero := 0
	for i := range mm {
		if mm[i] != 0 && vv[i] > 0 {
			nonzero++
		}
	}
	if nonzero == 0 {
		t.Fatal("moments all zero")
	}
	var written bytes.Buffer
	if err := writeAdamState(&written, step, mm, vv); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(written.Bytes(), saved.Bytes()) {
		t.Fatal("writeAdamState differs from optim.AdamW.Save")
	}
	back := optim.NewAdamW(m.Params(), 0.9, 0.999, 1e-8, 0.1)
	if err := back.Load(bytes.NewReader(written.Bytes())); err != nil || back.Steps() != 3 {
		t.Fatalf("optim.AdamW.Load of writeAdamState: %v (step %d)", err, back.Steps())
	}
	// Refusals: another model size, trailing bytes, another file.
	if _, _, _, err := readAdamState(bytes.NewReader(saved.Bytes()), m.NumParams()-1); err == nil || !strings.Contains(err.Error(), "parameters") {
		t.Errorf("wrong size: %v", err)
	}
	if _, _, _, err := readAdamState(bytes.NewReader(append(saved.Bytes(), 0)), m.NumParams()); err == nil || !strings.Contains(err.Error(), "trailing") {
		t.Errorf("trailing byte: %v", err)
	}
	if _, _, _, err := readAdamState(strings.NewReader("{}"), m.NumParams()); err == nil || !strings.Contains(err.Error(), "not a CPO AdamW") {
		t.Errorf("other file: %v", err)
	}
	if _, _, _, err := readAdamState(bytes.NewReader(saved.Bytes()[:saved.Len()-2]), m.NumParams()); err == nil {
		t.Error("truncated state read")
	}
}

// A forward-only CPU engine (the reference) refuses the optimizer's calls.
func TestForwardOnlyEngine(t *testing.T) {
	e := NewCPUEngine(tinyModel(t, 1), model.NewWorkspace(), Hyper{}, true)
	if _, err := e.Step(1e-3, 1); err == nil {
		t.Error("Step on a forward-only engine")
	}
	if err := e.SaveOptimizer(io.Discard); err == nil {
		t.Error("SaveOptimizer on a forward-only engine")
	}
	logp, err := e.Forward(model.Pack([][]int32{{0, 3, 4, 1}}))
	if err != nil || len(logp) != 4 || logp[0] >= 0 || logp[3] != 0 {
		t.Errorf("Forward: %v %v", logp, err)
	}
}

// An unknown device or precision is refused before anything is built.
func TestDeviceCheck(t *testing.T) {
	for _, d := range []DeviceConfig{{Name: "tpu"}, {Name: DeviceCUDA, Precision: "fp8"}, {Name: DeviceCUDA, GPU: -1}, {Precision: "fp8"}} {
		if err := d.Check(); err == nil {
			t.Errorf("%+v accepted", d)
		}
	}
	for _, d := range []DeviceConfig{{}, {Name: DeviceCPU}, {Precision: cuda.BF16}, {Name: DeviceCPU, Precision: cuda.Float32}} {
		if err := d.Check(); err != nil {
			t.Errorf("%+v: %v", d, err)
		}
	}
	cfg := Config{Objective: Objective{Name: MLE}, Batch: 2, Device: DeviceConfig{Name: "tpu"}}
	if _, err := New(cfg, tinyModel(t, 1), "fp", madeUpItems(4, 1, 1)); err == nil || !strings.Contains(err.Error(), "tpu") {
		t.Errorf("New on an unknown device: %v", err)
	}
}

// Precision bf16 on the CPU puts the policy and the reference in mixed precision (the same
// arithmetic, so CPO's log-ratios start at exactly zero and the first loss is ln K), is
// recorded as the device of the run, and trains; fp32 leaves them float32.
func TestCPUMixedPrecision(t *testing.T) {
	const K = 3
	items := madeUpItems(12, K, 5)
	cfg := Config{Objective: Objective{Name: CPO, Beta: 2}, Batch: 6, MicroBatch: 3, Steps: 6, LR: 3e-3, Seed: 2,
		Device: DeviceConfig{Precision: cuda.BF16}}
	tr := newTrainer(t, cfg, tinyModel(t, 3), items)
	if !tr.Policy.MixedBF16() || !tr.Ref.MixedBF16() {
		t.Fatalf("mixed precision: policy %v, reference %v", tr.Policy.MixedBF16(), tr.Ref.MixedBF16())
	}
	if d := tr.DeviceName(); !strings.HasPrefix(d, "cpu (bf16 products") {
		t.Errorf("DeviceName %q", d)
	}
	var losses []float64
	for i := 0; i < cfg.Steps; i++ {
		r, err := tr.TrainStep(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		losses = append(losses, r.Loss)
	}
	if d := losses[0] - math.Log(K); math.Abs(d) > 1e-6 {
		t.Errorf("first CPO loss %v, want ln %d = %v: policy and reference disagree", losses[0], K, math.Log(K))
	}
	if !(losses[len(losses)-1] < losses[0]) {
		t.Errorf("loss did not fall in mixed precision: %v", losses)
	}
	cfg.Device.Precision = cuda.Float32
	tr = newTrainer(t, cfg, tinyModel(t, 3), items)
	if tr.Policy.MixedBF16() || tr.DeviceName() != "" {
		t.Errorf("fp32: mixed %v, DeviceName %q", tr.Policy.MixedBF16(), tr.DeviceName())
	}
}

// BenchConfig.MLEPrompt puts every position of the benchmark's sequences under the loss (as
// nanoGPT's step, which scripts/bench/train_torch.py times); without it only the second half.
func TestBenchLossTokens(t *testing.T) {
	for _, all := range []bool{false, true} {
		bc := BenchConfig{Objective: MLE, Batch: 3, SeqLen: 10, Steps: 1, MLEPrompt: all}
		tr, err := benchTrainer(tinyModel(t, 1), bc)
		if err != nil {
			t.Fatal(err)
		}
		want := 3 * (10 - 10/2) // continuation tokens
		if all {
			want = 3 * (10 - 1) // every position with a next token
		}
		if got := tr.Stepper.MLETokens(tr.Items); got != want {
			t.Errorf("MLEPrompt %v: %d positions under the loss, want %d", all, got, want)
		}
		tr.Close()
	}
}
