package train

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cpo-toolchain/cpo/pkg/checkpoint"
	"github.com/cpo-toolchain/cpo/pkg/cuda"
	"github.com/cpo-toolchain/cpo/pkg/loss"
	"github.com/cpo-toolchain/cpo/pkg/model"
	"github.com/cpo-toolchain/cpo/pkg/shard"
)

func newTrainer(t *testing.T, cfg Config, m *model.Model, items []*Item) *Trainer {
	t.Helper()
	fp, err := checkpoint.Fingerprint(m)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := New(cfg, m, fp, items)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// Training the tiny model on the made-up set with CPO lowers the loss from ln K and ranks the
// ground truth first far more often than chance (1/K).
func TestCPOLearns(t *testing.T) {
	const K = 4
	items := madeUpItems(96, K, 1)
	cfg := Config{Objective: Objective{Name: CPO, Beta: 1}, Batch: 16, MicroBatch: 8, Steps: 150, LR: 3e-3,
		WeightDecay: 0.05, Schedule: "cosine", Warmup: 10, Clip: 1, Seed: 3}
	var metrics bytes.Buffer
	cfg.Metrics = &metrics
	tr := newTrainer(t, cfg, tinyModel(t, 1), items)
	start := time.Now()
	if _, err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(metrics.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, m)
	}
	if len(lines) != 150 {
		t.Fatalf("%d metrics lines", len(lines))
	}
	first, last := lines[0], lines[len(lines)-1]
	if l0 := first["loss"].(float64); math.Abs(l0-math.Log(K)) > 1e-9 {
		t.Errorf("initial loss %v, want ln %d", l0, K)
	}
	var acc, lossEnd float64
	for _, l := range lines[len(lines)-10:] {
		acc += l[loss.MetricRewardsAccuracies].(float64) / 10
		lossEnd += l["loss"].(float64) / 10
	}
	t.Logf("loss %.4f -> %.4f, accuracy %.3f, margins %v, %v", first["loss"], lossEnd, acc, last[loss.MetricRewardsMargins], time.Since(start))
	if lossEnd > 0.5*math.Log(K) || acc < 0.8 {
		t.Errorf("did not learn: final loss %.4f (initial ln K = %.4f), accuracy %.3f", lossEnd, math.Log(K), acc)
	}
	for _, k := range []string{"grad_norm", "lr", "tokens/s", loss.MetricRewardsChosen, loss.MetricRewardsRejected,
		loss.MetricLogpsChosen, loss.MetricLogpsRejected, "rewards/margins/bn", "rewards/margins/tn", "rewards/margins/mn"} {
		if _, ok := last[k]; !ok {
			t.Errorf("metrics lack %q: %v", k, last)
		}
	}
}

// MLE on the same data lowers the next-token loss, and ranked CPO learns too.
func TestMLEAndRankLearn(t *testing.T) {
	items := madeUpItems(64, 3, 2)
	for _, obj := range []Objective{{Name: MLE}, {Name: CPORank, Beta: 1}, {Name: MLECPO, Beta: 1, Alpha: 0.5}} {
		cfg := Config{Objective: obj, Batch: 16, MicroBatch: 16, Steps: 60, LR: 3e-3, Seed: 4}
		tr := newTrainer(t, cfg, tinyModel(t, 2), items)
		r0, err := tr.TrainStep(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var r StepResult
		for tr.Step() < 60 {
			if r, err = tr.TrainStep(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		t.Logf("%s: loss %.4f -> %.4f", obj.Name, r0.Loss, r.Loss)
		if !(r.Loss < 0.7*r0.Loss) {
			t.Errorf("%s: loss %.4f -> %.4f", obj.Name, r0.Loss, r.Loss)
		}
	}
}

// Train 2N steps; separately train N, checkpoint, resume into a fresh trainer from the starting
// model and train N more: the losses and the final weights are identical bit for bit.
func TestResumeBitIdentical(t *testing.T) {
	const N = 7
	items := madeUpItems(40, 4, 5)
	dir := t.TempDir()
	cfg := Config{Objective: Objective{Name: CPO, Beta: 2}, Batch: 6, MicroBatch: 4, Steps: 2 * N, LR: 2e-3,
		WeightDecay: 0.05, Schedule: "linear", Warmup: 3, Clip: 0.5, Seed: 9}

	full := newTrainer(t, cfg, tinyModel(t, 3), items)
	var want []float64
	for full.Step() < 2*N {
		r, err := full.TrainStep(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, r.Loss)
	}

	cfg.Out = filepath.Join(dir, "model")
	first := newTrainer(t, cfg, tinyModel(t, 3), items)
	for first.Step() < N {
		if _, err := first.TrainStep(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	ck, err := first.SaveCheckpoint()
	if err != nil {
		t.Fatal(err)
	}
	second := newTrainer(t, cfg, tinyModel(t, 3), items)
	got, err := second.Resume(first.CheckpointDir())
	if err != nil {
		t.Fatal(err)
	}
	if got != ck || second.Step() != N {
		t.Fatalf("resumed %s at step %d, want %s at %d", got, second.Step(), ck, N)
	}
	for second.Step() < 2*N {
		r, err := second.TrainStep(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if r.Loss != want[r.Step-1] {
			t.Fatalf("step %d: resumed loss %v, uninterrupted %v", r.Step, r.Loss, want[r.Step-1])
		}
	}
	a, b := full.Policy.ParamArena(), second.Policy.ParamArena()
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("weights differ at %d after resume", i)
		}
	}
	// Resume refuses other data, another starting model and another architecture.
	if _, err := newTrainer(t, cfg, tinyModel(t, 3), items[:39]).Resume(ck); err == nil || !strings.Contains(err.Error(), "data differs") {
		t.Errorf("other data: %v", err)
	}
	if _, err := newTrainer(t, cfg, tinyModel(t, 4), items).Resume(ck); err == nil || !strings.Contains(err.Error(), "reference") {
		t.Errorf("other start: %v", err)
	}
	other := tinyCfg
	other.DModel, other.DFF = 16, 32
	om, _ := model.New(other)
	om.InitGPT2Style(1)
	if _, err := newTrainer(t, cfg, om, items).Resume(ck); err == nil || !strings.Contains(err.Error(), "resume needs") {
		t.Errorf("other architecture: %v", err)
	}
}

// Run with checkpoints, interrupted by a cancelled context: it saves and says so; the final
// model of a complete run loads as a Hugging Face checkpoint with trainer_state.json.
func TestRunCheckpointsAndInterrupt(t *testing.T) {
	items := madeUpItems(20, 3, 6)
	dir := t.TempDir()
	cfg := Config{Objective: Objective{Name: CPO, Beta: 5}, Batch: 4, Steps: 9, LR: 1e-3, Seed: 1,
		Out: filepath.Join(dir, "out"), SaveEvery: 2, Keep: 2}
	var log bytes.Buffer
	cfg.Log = &log
	tr := newTrainer(t, cfg, tinyModel(t, 1), items)
	if _, err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	steps, err := listCheckpoints(tr.CheckpointDir())
	if err != nil || len(steps) != 2 || steps[0] != 8 || steps[1] != 9 {
		t.Fatalf("checkpoints %v %v", steps, err)
	}
	m, err := checkpoint.Load(cfg.Out)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range m.ParamArena() {
		if v != tr.Policy.ParamArena()[i] {
			t.Fatal("final model differs from the trained one")
		}
	}
	st, err := ReadState(cfg.Out)
	if err != nil || st.Step != 9 || st.Objective != CPO {
		t.Fatalf("state %+v %v", st, err)
	}
	if !strings.Contains(log.String(), "step 9/9") || !strings.Contains(log.String(), "tok/s") {
		t.Errorf("progress:\n%s", log.String())
	}

	ctx, cancel := context.WithCancel(context.Background())
	cfg.Out = filepath.Join(dir, "out2")
	cfg.Steps = 1000
	tr2 := newTrainer(t, cfg, tinyModel(t, 1), items)
	for tr2.Step() < 3 {
		if _, err := tr2.TrainStep(ctx); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	sum, err := tr2.Run(ctx)
	if !errors.Is(err, context.Canceled) || !sum.Interrupted || sum.Steps != 3 {
		t.Fatalf("interrupted run: %+v %v", sum, err)
	}
	if st, err := ReadState(sum.Checkpoint); err != nil || st.Step != 3 {
		t.Fatalf("checkpoint on interrupt: %+v %v", st, err)
	}
}

// A NaN weight stops the run naming the step and the batch, or is skipped by flag.
func TestNonFinite(t *testing.T) {
	items := madeUpItems(8, 2, 7)
	for _, skip := range []bool{false, true} {
		m := tinyModel(t, 1)
		cfg := Config{Objective: Objective{Name: DPO, Beta: 5}, Batch: 4, Steps: 2, LR: 1e-3, SkipNonfinite: skip}
		tr := newTrainer(t, cfg, m, items)
		for i := range m.Params()[0].Data {
			m.Params()[0].Data[i] = float32(math.NaN())
		}
		r, err := tr.TrainStep(context.Background())
		if !skip {
			if !errors.Is(err, ErrNonFinite) || !strings.Contains(err.Error(), "step 1") || !strings.Contains(err.Error(), "made-up row") {
				t.Fatalf("error %v", err)
			}
			continue
		}
		if err != nil || !r.Skipped || tr.Step() != 1 || tr.Opt.Steps() != 0 {
			t.Fatalf("skip: %+v %v", r, err)
		}
	}
}

// Bad input is refused before training, each with a clear message.
func TestBadInput(t *testing.T) {
	m := tinyModel(t, 1)
	fp, _ := checkpoint.Fingerprint(m)
	items := madeUpItems(4, 3, 8)
	noGT := []*Item{{ID: "x", Where: "f row 0", Prompt: []int32{2}, Conts: [][]int32{{3}, {4}}, Kinds: []string{"bn", "mn"}}}
	noRank := madeUpItems(4, 3, 8)
	noRank[2].Ranking = nil
	one := madeUpItems(4, 1, 8)
	for _, tc := range []struct {
		name  string
		obj   string
		items []*Item
		want  string
	}{
		{"no ground truth", CPO, noGT, "no ground truth"},
		{"dpo with K=3", DPO, items, "exactly 2"},
		{"no ranking", CPORank, noRank, "no ranking"},
		{"no negatives", CPO, one, "at least one negative"},
		{"unknown objective", "ppo", items, "unknown objective"},
		{"token outside the vocabulary", CPO, []*Item{{ID: "v", Where: "f row 3", Prompt: []int32{2, 99}, Conts: [][]int32{{3}, {4}}, Kinds: []string{"gt", "bn"}}}, "f row 3: row \"v\": prompt token 1 is id 99"},
	} {
		_, err := New(Config{Objective: Objective{Name: tc.obj, Beta: 5}, Batch: 2, LR: 1e-5}, m, fp, tc.items)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	// Precomputed reference log-probs of another model.
	pre := madeUpItems(4, 3, 8)
	for _, it := range pre {
		it.RefLogp, it.RefModel = make([]float64, 3), "0123456789abcdef"
	}
	if _, err := New(Config{Objective: Objective{Name: CPO, Beta: 5}, Batch: 2}, m, fp, pre); err == nil || !strings.Contains(err.Error(), "ref_logp of model 0123456789ab") {
		t.Errorf("fingerprint mismatch: %v", err)
	}
	pre[1].RefLogp, pre[0].RefModel, pre[2].RefModel, pre[3].RefModel = nil, fp, fp, fp
	if _, err := New(Config{Objective: Objective{Name: CPO, Beta: 5}, Batch: 2}, m, fp, pre); err == nil || !strings.Contains(err.Error(), "no ref_logp") {
		t.Errorf("mixed: %v", err)
	}
}

// Shards in, precompute-ref, shards out, training on the precomputed reference: the reference
// model is not even loaded and the initial loss is ln K (to float32 rounding of the packing).
func TestShardsAndPrecomputedRef(t *testing.T) {
	dir := t.TempDir()
	items := madeUpItems(12, 4, 9)
	in := filepath.Join(dir, "cands.parquet")
	writeCandidates(t, in, items)
	m := tinyModel(t, 1)
	fp, _ := checkpoint.Fingerprint(m)
	out := filepath.Join(dir, "ref.parquet")
	precomputeRefFile(t, DeviceConfig{}, m, fp, in, out)
	loaded, schema, err := LoadItems([]string{out}, nil)
	if err != nil || schema != "candidates" || len(loaded) != 12 {
		t.Fatalf("%d items %s %v", len(loaded), schema, err)
	}
	if loaded[3].RefLogp == nil || loaded[3].RefModel != fp || !strings.Contains(loaded[3].Where, "row 3") {
		t.Fatalf("item %+v", loaded[3])
	}
	tr, err := New(Config{Objective: Objective{Name: CPO, Beta: 5}, Batch: 12, MicroBatch: 3, Steps: 1}, m, fp, loaded)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Ref != nil {
		t.Fatal("reference model loaded although log-probs are precomputed")
	}
	r, err := tr.TrainStep(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(r.Loss-math.Log(4)) > 1e-4 || r.RefTokens != 0 {
		t.Fatalf("initial loss with precomputed reference %v (want ln 4), ref tokens %d", r.Loss, r.RefTokens)
	}
	// Example shards train mle.
	ex := filepath.Join(dir, "ex.parquet")
	we, _ := shard.NewWriter[shard.Example](ex, nil, shard.Options{})
	for _, it := range items {
		we.Write(shard.Example{ID: it.ID, PromptIDs: it.Prompt, ResponseIDs: it.Conts[0], Tokenizer: "t"})
	}
	if err := we.Close(); err != nil {
		t.Fatal(err)
	}
	exs, schema, err := LoadItems([]string{ex}, nil)
	if err != nil || schema != "example" || exs[0].K() != 1 {
		t.Fatalf("examples: %v %v", schema, err)
	}
	if _, err := New(Config{Objective: Objective{Name: CPO, Beta: 5}, Batch: 2}, m, fp, exs); err == nil {
		t.Fatal("cpo accepted example shards")
	}
	os.Remove(ex)
}

func TestBuildSeq(t *testing.T) {
	s, tr := BuildSeq([]int32{5, 6, 7}, []int32{8, 9}, 0, 4)
	if !tr || len(s.Tokens) != 4 || s.Tokens[0] != 6 || s.Start != 2 {
		t.Fatalf("%+v %v", s, tr)
	}
	s, tr = BuildSeq(nil, []int32{8, 9}, 0, 10)
	if tr || s.Start != 1 || s.Tokens[0] != 0 {
		t.Fatalf("bos: %+v", s)
	}
	s, _ = BuildSeq(nil, []int32{8, 9, 10}, -1, 10)
	if s.Start != 1 || s.Tokens[0] != 8 {
		t.Fatalf("no bos: %+v", s)
	}
	s, tr = BuildSeq([]int32{1}, []int32{2, 3, 4, 5, 6}, 0, 4)
	if !tr || s.Start != 1 || len(s.Tokens) != 4 {
		t.Fatalf("long continuation: %+v", s)
	}
}

func TestPlotMetrics(t *testing.T) {
	dir := t.TempDir()
	var buf bytes.Buffer
	cfg := Config{Objective: Objective{Name: CPO, Beta: 1}, Batch: 4, Steps: 5, LR: 1e-3, Metrics: &buf}
	tr := newTrainer(t, cfg, tinyModel(t, 1), madeUpItems(8, 3, 1))
	if _, err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	mf := filepath.Join(dir, "run.jsonl")
	os.WriteFile(mf, buf.Bytes(), 0o644)
	files, err := PlotMetrics([]string{mf}, nil, filepath.Join(dir, "png"))
	if err != nil || len(files) != len(DefaultPlotKeys) {
		t.Fatalf("%v %v", files, err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil || !bytes.HasPrefix(b, []byte("\x89PNG")) {
			t.Fatalf("%s: not a PNG (%v)", f, err)
		}
	}
	if _, err := PlotMetrics([]string{mf}, []string{"nope"}, dir); err == nil {
		t.Fatal("plotted a missing key")
	}
}

// Rows with different numbers of candidates train together: each example's loss is over its
// own K (the initial loss is the mean of ln K_i).
func TestVaryingK(t *testing.T) {
	items := append(madeUpItems(3, 4, 1), madeUpItems(3, 2, 2)...)
	for i, it := range items {
		it.ID = fmt.Sprint("row", i)
	}
	tr := newTrainer(t, Config{Objective: Objective{Name: CPO, Beta: 5}, Batch: 6, MicroBatch: 4, Steps: 1}, tinyModel(t, 1), items)
	r, err := tr.TrainStep(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := (math.Log(4) + math.Log(2)) / 2; math.Abs(r.Loss-want) > 1e-12 {
		t.Fatalf("initial loss %v, want %v", r.Loss, want)
	}
}

// The trainer is architecture-agnostic: a Llama (RoPE, RMSNorm, SwiGLU, grouped-query
// attention, untied head) starts at ln K and learns the made-up task too.
func TestLlama(t *testing.T) {
	cfg := model.Config{Arch: model.ArchLlama, VocabSize: 24, MaxSeqLen: 24, NLayer: 2, NHead: 4, NKVHead: 2,
		DModel: 32, DFF: 64, NormEps: 1e-6, RopeTheta: 10000, BOS: 0, EOS: 1}
	m, err := model.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m.InitGPT2Style(3)
	tr := newTrainer(t, Config{Objective: Objective{Name: CPO, Beta: 1}, Batch: 16, MicroBatch: 8, Steps: 40, LR: 3e-3, Seed: 2},
		m, madeUpItems(48, 3, 3))
	r0, err := tr.TrainStep(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(r0.Loss-math.Log(3)) > 1e-12 {
		t.Fatalf("initial loss %v, want ln 3", r0.Loss)
	}
	var r StepResult
	for tr.Step() < 40 {
		if r, err = tr.TrainStep(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if r.Loss > 0.5*r0.Loss {
		t.Errorf("llama: loss %v -> %v", r0.Loss, r.Loss)
	}
}

// A run interrupted mid-way (SIGINT cancels the context) saves a checkpoint; resuming from it
// gives the losses of the uninterrupted run.
func TestInterruptThenResume(t *testing.T) {
	items := madeUpItems(30, 3, 4)
	cfg := Config{Objective: Objective{Name: MLECPO, Beta: 2, Alpha: 0.5}, Batch: 7, MicroBatch: 3, Steps: 10, LR: 2e-3, Seed: 5, Clip: 1}
	var full bytes.Buffer
	cfg.Metrics = &full
	if _, err := newTrainer(t, cfg, tinyModel(t, 1), items).Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	cfg.Out = filepath.Join(t.TempDir(), "out")
	var part bytes.Buffer
	cfg.Metrics = &part
	ctx, cancel := context.WithCancel(context.Background())
	tr := newTrainer(t, cfg, tinyModel(t, 1), items)
	for tr.Step() < 4 {
		if _, err := tr.TrainStep(ctx); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	sum, err := tr.Run(ctx)
	if !sum.Interrupted || err == nil {
		t.Fatalf("not interrupted: %+v %v", sum, err)
	}
	tr2 := newTrainer(t, cfg, tinyModel(t, 1), items)
	if _, err := tr2.Resume(sum.Checkpoint); err != nil {
		t.Fatal(err)
	}
	if _, err := tr2.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	losses := func(b *bytes.Buffer) map[float64]float64 {
		out := map[float64]float64{}
		for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n") {
			var m map[string]any
			json.Unmarshal([]byte(l), &m)
			out[m["step"].(float64)] = m["loss"].(float64)
		}
		return out
	}
	want, got := losses(&full), losses(&part)
	if len(got) != 6 {
		t.Fatalf("resumed run logged %d steps, want 6 (5..10)", len(got))
	}
	for s, l := range got {
		if want[s] != l {
			t.Errorf("step %v: resumed loss %v, uninterrupted %v", s, l, want[s])
		}
	}
}

// Reference log-probabilities precomputed in mixed precision, then CPO trained in mixed
// precision: the policy and the stored reference agree, so the first loss is ln K (to the
// rounding of a different packing), as in float32.
func TestPrecomputedRefMixedPrecision(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "cands.parquet")
	writeCandidates(t, in, madeUpItems(12, 4, 9))
	m := tinyModel(t, 1)
	fp, _ := checkpoint.Fingerprint(m)
	bf16 := DeviceConfig{Precision: cuda.BF16}
	loaded := precomputeRefFile(t, bf16, m, fp, in, filepath.Join(dir, "ref.parquet"))
	// The same rows precomputed in float32 differ: the mode reached the reference pass.
	loaded32 := precomputeRefFile(t, DeviceConfig{}, tinyModel(t, 1), fp, in, filepath.Join(dir, "ref32.parquet"))
	if loaded32[0].RefLogp[0] == loaded[0].RefLogp[0] {
		t.Errorf("reference log-prob %v equal in float32 and mixed precision", loaded[0].RefLogp[0])
	}
	tr, err := New(Config{Objective: Objective{Name: CPO, Beta: 5}, Batch: 12, MicroBatch: 3, Steps: 1, Device: bf16}, m, fp, loaded)
	if err != nil {
		t.Fatal(err)
	}
	r, err := tr.TrainStep(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(r.Loss-math.Log(4)) > 1e-4 {
		t.Fatalf("initial loss %v with a mixed-precision reference and policy, want ln 4", r.Loss)
	}
}

// writeCandidates writes items as a candidates shard at path.
func writeCandidates(t *testing.T, path string, items []*Item) {
	t.Helper()
	w, err := shard.NewWriter[shard.Candidates](path, nil, shard.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(candidatesRows(items)...); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// precomputeRefFile precomputes reference log-probs (micro-batches of 5) from the candidates
// shard in to the shard out on dev (the zero device through PrecomputeRef, the CPU entry
// point) and returns out's rows.
func precomputeRefFile(t *testing.T, dev DeviceConfig, m *model.Model, fp, in, out string) []*Item {
	t.Helper()
	w, err := shard.NewWriter[shard.Candidates](out, nil, shard.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if dev == (DeviceConfig{}) {
		err = PrecomputeRef(context.Background(), m, fp, "", []string{in}, nil, w, 5, nil)
	} else {
		err = PrecomputeRefOn(context.Background(), dev, m, fp, "", []string{in}, nil, w, 5, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	items, _, err := LoadItems([]string{out}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return items
}
