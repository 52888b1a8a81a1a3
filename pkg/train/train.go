// Package train is the trainer of the CPO tool chain: MLE, CPO (eq. 7 of the paper), ranked CPO
// (eq. 8), DPO (eq. 5) and mle + alpha*cpo over example or candidates shards, with AdamW,
// schedules, gradient accumulation, seeded shuffling, atomic resumable checkpoints and
// TRL-named metrics.
//
// Every objective follows one pattern (Stepper.Accumulate): the candidates of a micro-batch of
// examples are packed into one batch of sequences prompt+continuation; the policy's Forward
// gives per-position log-probabilities; summing them over each continuation gives the sequence
// log-probabilities s_j; the objective (pkg/loss) is a function of s and of the reference
// model's s_ref; its gradient g_j = dL/ds_j is spread over the positions of candidate j as
// dlogp, and Backward(dlogp) accumulates the parameter gradients. MLE is the same with
// dlogp = -1/count on the trained positions.
//
// The reference model pi_ref is the frozen starting checkpoint. Its log-probabilities are
// computed on the fly with a second copy of the model (no gradient), unless every candidate of
// the data carries a precomputed ref_logp (PrecomputeRef, `cpo-train precompute-ref`) whose
// ref_model fingerprint is the starting model's: then the reference pass is skipped.
//
// A run is a sequence of optimizer steps. Step i takes the next Batch examples of the current
// epoch's permutation (seeded by Seed and the epoch number; a smaller last batch ends each
// epoch), runs them in micro-batches of MicroBatch examples, clips the gradient by global norm,
// and takes an AdamW step with the schedule's learning rate. Because the order and every
// computation are deterministic, a run resumed from a checkpoint continues bit-identically.
//
// The passes and the optimizer run on an Engine chosen by Config.Device: the CPU (the host
// model itself, model.Forward/Backward and optim.AdamW) or, in a binary built with the cuda
// tag, a GPU (pkg/cuda's Trainer, which keeps its own copy of the weights and moments and hands
// them back before every checkpoint). Checkpoints are the same files on both, so a run can
// resume on the other device (bit-identically only on the CPU: the GPU's sums are ordered
// differently and it uses atomic adds).
package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"time"

	"github.com/cpo-toolchain/cpo/pkg/loss"
	"github.com/cpo-toolchain/cpo/pkg/model"
	"github.com/cpo-toolchain/cpo/pkg/optim"
)

// Config is a training run.
type Config struct {
	Objective Objective

	Batch      int // examples per optimizer step (the paper: 64)
	MicroBatch int // examples per forward/backward pass (gradient accumulation); 0: Batch
	Steps      int // optimizer steps; 0: Epochs decides
	Epochs     int // passes over the data when Steps is 0 (default 1)

	LR          float64 // peak learning rate (the paper: 1e-5)
	WeightDecay float64 // AdamW decoupled weight decay on Param.Decay tensors (the paper: 0.05)
	Beta1       float64 // AdamW beta1 (0: 0.9)
	Beta2       float64 // AdamW beta2 (0: 0.999)
	Eps         float64 // AdamW eps (0: 1e-8)
	Schedule    string  // constant, linear or cosine (empty: constant)
	Warmup      int     // warm-up steps
	MinLRRatio  float64 // floor of linear/cosine decay, as a fraction of LR
	Clip        float64 // max global gradient norm; 0 disables clipping
	Seed        uint64  // shuffling seed

	// Out is the directory of the final model (a Hugging Face checkpoint, with trainer_state.json).
	// CheckpointDir holds checkpoint-<step>/ directories (default Out + "-checkpoints").
	Out           string
	CheckpointDir string
	SaveEvery     int // steps between checkpoints (0: only at the end and on interruption)
	Keep          int // checkpoints kept (0: all)
	// TokenizerFiles are copied into every checkpoint and the final model.
	TokenizerFiles []string

	SkipNonfinite bool      // skip a step whose loss or gradient is NaN/Inf instead of stopping
	Metrics       io.Writer // JSON lines, one per step (nil: none)
	Log           io.Writer // progress lines (nil: none)
	LogEvery      int       // steps between progress lines (0: 10)
	LogInterval   time.Duration
	// StartName names the starting model in trainer_state.json (a path or preset).
	StartName string
	// Device is where the policy and the reference run (zero: the CPU).
	Device DeviceConfig
}

// Trainer holds a run: the policy, the reference, the optimizer and the position in the data.
type Trainer struct {
	Cfg    Config
	Policy *model.Model
	Ref    *model.Model // nil when the reference log-probs are precomputed
	RefFP  string       // fingerprint of the starting model (the reference)
	Items  []*Item
	DataFP string
	// Engine runs the policy's passes and optimizer; RefEngine the reference's forward passes
	// (nil when Ref is). Close frees them.
	Engine    Engine
	RefEngine Engine
	// Opt is the CPU engine's optimizer (nil on another device).
	Opt     *optim.AdamW
	Sched   optim.Schedule
	Stepper *Stepper

	step  int // optimizer steps done
	epoch int // current epoch
	pos   int // examples of the current epoch consumed
	perm  []int
	total int // total steps of the run
}

// State is trainer_state.json: what a checkpoint needs beside the weights to resume.
type State struct {
	Version     int       `json:"version"`
	Step        int       `json:"step"`
	Epoch       int       `json:"epoch"`
	Position    int       `json:"position"` // examples of Epoch already consumed
	TotalSteps  int       `json:"total_steps"`
	Seed        uint64    `json:"seed"`
	Objective   string    `json:"objective"`
	Beta        float64   `json:"beta"`
	Alpha       float64   `json:"alpha"`
	MLEPrompt   bool      `json:"mle_prompt"`
	Batch       int       `json:"batch"`
	LR          float64   `json:"lr"`
	WeightDecay float64   `json:"weight_decay"`
	Schedule    string    `json:"schedule"`
	Warmup      int       `json:"warmup"`
	MinLRRatio  float64   `json:"min_lr_ratio"`
	MicroBatch  int       `json:"micro_batch"`
	Clip        float64   `json:"clip"`
	AdamBeta1   float64   `json:"adam_beta1"`
	AdamBeta2   float64   `json:"adam_beta2"`
	AdamEps     float64   `json:"adam_eps"`
	Data        string    `json:"data_fingerprint"`
	Rows        int       `json:"rows"`
	RefModel    string    `json:"ref_model"`
	Start       string    `json:"start_model"`
	Time        time.Time `json:"time"`
	// Device is the engine that trained up to this step when not the CPU (informational: the
	// optimizer state has one format, and a run may resume on another device).
	Device string `json:"device,omitempty"`
}

// StateFileName and OptimizerFileName are the trainer's files inside a checkpoint directory.
const (
	StateFileName     = "trainer_state.json"
	OptimizerFileName = "optimizer.bin"
)

// CloneModel returns a copy of m with its own parameters (and zero gradients).
func CloneModel(m *model.Model) *model.Model {
	c, err := model.New(m.Config)
	if err != nil {
		panic(err) // m's config was valid
	}
	copy(c.ParamArena(), m.ParamArena())
	return c
}

// New prepares a run that starts from the model start, whose fingerprint is startFP (the
// reference model's identity). start becomes the policy and is trained in place. It checks the
// data against the objective and the precomputed reference log-probs against startFP before
// anything runs; when the data carries no reference log-probs a frozen copy of start is made.
func New(cfg Config, start *model.Model, startFP string, items []*Item) (*Trainer, error) {
	if cfg.Batch <= 0 {
		return nil, fmt.Errorf("batch must be positive, not %d", cfg.Batch)
	}
	if cfg.MicroBatch <= 0 || cfg.MicroBatch > cfg.Batch {
		cfg.MicroBatch = cfg.Batch
	}
	if cfg.Beta1 == 0 {
		cfg.Beta1 = 0.9
	}
	if cfg.Beta2 == 0 {
		cfg.Beta2 = 0.999
	}
	if cfg.Eps == 0 {
		cfg.Eps = 1e-8
	}
	if cfg.Schedule == "" {
		cfg.Schedule = optim.Constant
	}
	if cfg.LogEvery <= 0 {
		cfg.LogEvery = 10
	}
	if cfg.Steps < 0 || cfg.Epochs < 0 {
		return nil, errors.New("steps and epochs must not be negative")
	}
	if cfg.Steps == 0 && cfg.Epochs == 0 {
		cfg.Epochs = 1
	}
	obj := cfg.Objective
	if obj.Name != MLE && !(obj.Beta > 0) {
		return nil, fmt.Errorf("beta must be positive, not %v", obj.Beta)
	}
	if err := CheckItems(items, obj.Name); err != nil {
		return nil, err
	}
	if err := checkVocab(items, start.Config.VocabSize); err != nil {
		return nil, err
	}
	t := &Trainer{Cfg: cfg, Policy: start, RefFP: startFP, Items: items, DataFP: DataFingerprint(items)}
	if obj.contrastive() {
		pre, err := precomputed(items, startFP)
		if err != nil {
			return nil, err
		}
		if !pre {
			t.Ref = CloneModel(start)
		}
	}
	perEpoch := (len(items) + cfg.Batch - 1) / cfg.Batch
	t.total = cfg.Steps
	if t.total == 0 {
		t.total = cfg.Epochs * perEpoch
	}
	t.Sched = optim.Schedule{Kind: cfg.Schedule, Peak: cfg.LR, Warmup: cfg.Warmup, Total: t.total, MinRatio: cfg.MinLRRatio}
	if err := t.Sched.Validate(); err != nil {
		return nil, err
	}
	t.perm = epochPerm(cfg.Seed, 0, len(items))
	if err := t.newEngines(); err != nil {
		return nil, err
	}
	return t, nil
}

// newEngines makes the policy's and the reference's engines on Cfg.Device and the Stepper.
func (t *Trainer) newEngines() error {
	cfg := t.Cfg
	var ws *model.Workspace
	if cfg.Device.cpu() {
		ws = model.NewWorkspace() // the policy's and the reference's passes share it
	}
	h := Hyper{Beta1: cfg.Beta1, Beta2: cfg.Beta2, Eps: cfg.Eps, WeightDecay: cfg.WeightDecay}
	pol, err := NewEngine(cfg.Device, t.Policy, ws, h, false)
	if err != nil {
		return err
	}
	var ref Engine
	if t.Ref != nil {
		if ref, err = NewEngine(cfg.Device, t.Ref, ws, h, true); err != nil {
			pol.Close()
			return fmt.Errorf("reference model: %w", err)
		}
	}
	t.Engine, t.RefEngine = pol, ref
	if c, ok := pol.(*CPUEngine); ok {
		t.Opt = c.Opt
	}
	t.Stepper = NewStepperOn(t.Policy, t.Ref, pol, ref, cfg.Objective)
	return nil
}

// Close frees the engines' device memory (nothing on the CPU). The trainer is unusable after.
func (t *Trainer) Close() error {
	var err error
	for _, e := range []Engine{t.RefEngine, t.Engine} {
		if e != nil {
			err = errors.Join(err, e.Close())
		}
	}
	t.Engine, t.RefEngine = nil, nil
	return err
}

// precomputed reports whether every item carries reference log-probs of the model startFP; a
// row with log-probs of another model is an error, and so is a mix of rows with and without.
func precomputed(items []*Item, startFP string) (bool, error) {
	with := 0
	for _, it := range items {
		if it.RefLogp == nil {
			continue
		}
		with++
		if it.RefModel != startFP {
			return false, fmt.Errorf("%s: row %q has ref_logp of model %s, but the reference (starting) model is %s; run cpo-train precompute-ref with this model, or train from the model that produced them", it.Where, it.ID, short(it.RefModel), short(startFP))
		}
	}
	if with > 0 && with < len(items) {
		for _, it := range items {
			if it.RefLogp == nil {
				return false, fmt.Errorf("%s: row %q has no ref_logp while %d other rows have them; precompute all rows or none", it.Where, it.ID, with)
			}
		}
	}
	return with > 0, nil
}

func short(fp string) string {
	if len(fp) > 12 {
		return fp[:12]
	}
	return fp
}

// checkVocab reports the first token id outside [0, V).
func checkVocab(items []*Item, V int) error {
	bad := func(ids []int32) int {
		for i, x := range ids {
			if x < 0 || int(x) >= V {
				return i
			}
		}
		return -1
	}
	for _, it := range items {
		if i := bad(it.Prompt); i >= 0 {
			return fmt.Errorf("%s: row %q: prompt token %d is id %d, outside the model's vocabulary of %d (another tokenizer?)", it.Where, it.ID, i, it.Prompt[i], V)
		}
		for j, c := range it.Conts {
			if i := bad(c); i >= 0 {
				return fmt.Errorf("%s: row %q: candidate %d token %d is id %d, outside the model's vocabulary of %d (another tokenizer?)", it.Where, it.ID, j, i, c[i], V)
			}
		}
	}
	return nil
}

// epochPerm is the order of the examples in epoch e: a permutation drawn from PCG(seed, e).
func epochPerm(seed uint64, epoch, n int) []int {
	return rand.New(rand.NewPCG(seed, uint64(epoch)+0x9e3779b97f4a7c15)).Perm(n)
}

// Step is the number of optimizer steps done; TotalSteps the run's length.
func (t *Trainer) Step() int       { return t.step }
func (t *Trainer) TotalSteps() int { return t.total }

// StepResult is what one optimizer step reports.
type StepResult struct {
	Step      int // 1-based number of the step just taken
	Epoch     float64
	Loss      float64
	GradNorm  float64
	LR        float64
	Tokens    int // policy tokens of the step
	RefTokens int // reference-model tokens of the step
	Seconds   float64
	Metrics   map[string]float64
	Skipped   bool // non-finite and skipped
	Truncated int
}

// nextBatch returns the examples of the next step and advances the data position.
func (t *Trainer) nextBatch() (items []*Item, first int) {
	if t.pos >= len(t.Items) {
		t.epoch++
		t.pos = 0
		t.perm = epochPerm(t.Cfg.Seed, t.epoch, len(t.Items))
	}
	first = t.pos
	end := min(t.pos+t.Cfg.Batch, len(t.Items))
	for _, i := range t.perm[t.pos:end] {
		items = append(items, t.Items[i])
	}
	t.pos = end
	return items, first
}

// ErrNonFinite is wrapped by the error of a step whose loss or gradient is NaN or infinite.
var ErrNonFinite = errors.New("non-finite loss")

// TrainStep takes one optimizer step. ctx is checked between micro-batches: when it is done the
// step is abandoned (gradients discarded, data position restored) and ctx.Err() returned.
func (t *Trainer) TrainStep(ctx context.Context) (StepResult, error) {
	start := time.Now()
	saveEpoch, savePos, savePerm := t.epoch, t.pos, t.perm
	items, first := t.nextBatch()
	res := StepResult{Step: t.step + 1, LR: t.Sched.LR(t.step)}
	if err := t.Engine.ZeroGrad(); err != nil {
		return res, err
	}
	norm := float64(t.Stepper.MLETokens(items))
	var stats loss.Stats
	for lo := 0; lo < len(items); lo += t.Cfg.MicroBatch {
		if err := ctx.Err(); err != nil {
			t.epoch, t.pos, t.perm = saveEpoch, savePos, savePerm
			return res, err
		}
		mb, err := t.Stepper.Accumulate(items[lo:min(lo+t.Cfg.MicroBatch, len(items))], len(items), norm)
		if err != nil {
			return res, err
		}
		res.Loss += mb.Loss
		res.Tokens += mb.Tokens
		res.RefTokens += mb.RefRuns
		res.Truncated += mb.Truncated
		stats.Merge(&mb.Stats)
		if !loss.Finite(mb.Loss) {
			break
		}
	}
	res.GradNorm = math.NaN()
	if loss.Finite(res.Loss) {
		// Clipping and AdamW; an engine takes no step on a non-finite norm.
		norm, err := t.Engine.Step(res.LR, t.Cfg.Clip)
		if err != nil {
			return res, fmt.Errorf("step %d: %w", res.Step, err)
		}
		res.GradNorm = norm
	}
	res.Epoch = float64(t.epoch) + float64(t.pos)/float64(len(t.Items))
	res.Metrics = stats.Map()
	if !loss.Finite(res.Loss) || !loss.Finite(res.GradNorm) {
		what := fmt.Sprintf("step %d (epoch %d, examples %d-%d of the epoch's order; first row %q at %s): loss %v, grad norm %v",
			res.Step, t.epoch, first, first+len(items)-1, items[0].ID, items[0].Where, res.Loss, res.GradNorm)
		if !t.Cfg.SkipNonfinite {
			return res, fmt.Errorf("%w at %s", ErrNonFinite, what)
		}
		if t.Cfg.Log != nil {
			fmt.Fprintf(t.Cfg.Log, "skipping non-finite %s\n", what)
		}
		res.Skipped = true
		if err := t.Engine.ZeroGrad(); err != nil {
			return res, err
		}
	}
	t.step++
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

// metricsLine is one JSON line of the metrics file.
func metricsLine(r StepResult, tokPerSec float64, elapsed float64) ([]byte, error) {
	m := map[string]any{"step": r.Step, "epoch": r.Epoch, "loss": jsonFloat(r.Loss), "grad_norm": jsonFloat(r.GradNorm),
		"lr": r.LR, "tokens": r.Tokens, "tokens/s": tokPerSec, "time": elapsed}
	for k, v := range r.Metrics {
		m[k] = jsonFloat(v)
	}
	if r.Skipped {
		m["skipped"] = true
	}
	if r.Truncated > 0 {
		m["truncated"] = r.Truncated
	}
	return json.Marshal(m)
}

// jsonFloat keeps NaN and Inf representable in JSON (as strings).
func jsonFloat(x float64) any {
	if loss.Finite(x) {
		return x
	}
	return fmt.Sprint(x)
}

// Summary is what Run reports at the end.
type Summary struct {
	Steps       int
	Final       StepResult
	Checkpoint  string // the last checkpoint written
	Interrupted bool
	// Truncated counts the sequences (candidates with their prompts, over all steps) that were
	// cut to the model's context, so their log-probabilities miss tokens.
	Truncated int
}

// Run trains until the run's last step, writing checkpoints every SaveEvery steps, the final
// model to Out, metrics and progress. On cancellation of ctx (SIGINT/SIGTERM) it saves a
// checkpoint at the last completed step and returns ctx's error.
//
// Before the first step it checks that Out and the checkpoint directory can be written
// (CheckOutputs), so that a run does not train for days and then fail to save.
func (t *Trainer) Run(ctx context.Context) (Summary, error) {
	var sum Summary
	if err := t.CheckOutputs(); err != nil {
		return sum, err
	}
	began := time.Now()
	var tokens int
	var avgStep float64
	lastLog := time.Now()
	for t.step < t.total {
		r, err := t.TrainStep(ctx)
		if err != nil {
			if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
				sum.Interrupted = true
				if t.Cfg.Out != "" && t.step > 0 {
					dir, serr := t.SaveCheckpoint()
					if serr != nil {
						return sum, fmt.Errorf("interrupted, and saving failed: %w", serr)
					}
					sum.Checkpoint = dir
					if t.Cfg.Log != nil {
						fmt.Fprintf(t.Cfg.Log, "interrupted at step %d; saved %s (resume with --resume %s)\n", t.step, dir, dir)
					}
				}
				sum.Steps = t.step
				return sum, err
			}
			return sum, err
		}
		sum.Final = r
		tokens += r.Tokens
		if r.Truncated > 0 && sum.Truncated == 0 && t.Cfg.Log != nil {
			fmt.Fprintf(t.Cfg.Log, "warning: step %d cut %d sequences to the model's context of %d tokens (the prompt loses its start, a continuation its end); the metrics file counts them per step\n",
				r.Step, r.Truncated, t.Policy.Config.MaxSeqLen)
		}
		sum.Truncated += r.Truncated
		if avgStep == 0 {
			avgStep = r.Seconds
		} else {
			avgStep = 0.9*avgStep + 0.1*r.Seconds
		}
		tps := float64(r.Tokens) / max(r.Seconds, 1e-9)
		if t.Cfg.Metrics != nil {
			line, err := metricsLine(r, tps, time.Since(began).Seconds())
			if err != nil {
				return sum, err
			}
			if _, err := t.Cfg.Metrics.Write(append(line, '\n')); err != nil {
				return sum, fmt.Errorf("metrics: %w", err)
			}
		}
		if t.Cfg.Log != nil && (r.Step%t.Cfg.LogEvery == 0 || r.Step == t.total || r.Step == 1 ||
			(t.Cfg.LogInterval > 0 && time.Since(lastLog) >= t.Cfg.LogInterval)) {
			lastLog = time.Now()
			eta := time.Duration(avgStep * float64(t.total-t.step) * float64(time.Second)).Round(time.Second)
			line := fmt.Sprintf("step %d/%d epoch %.2f loss %.4f", r.Step, t.total, r.Epoch, r.Loss)
			if a, ok := r.Metrics[loss.MetricRewardsAccuracies]; ok {
				line += fmt.Sprintf(" acc %.3f margin %.3f", a, r.Metrics[loss.MetricRewardsMargins])
			}
			line += fmt.Sprintf(" lr %.3g |g| %.3g %.0f tok/s ETA %s", r.LR, r.GradNorm,
				float64(tokens)/time.Since(began).Seconds(), eta)
			fmt.Fprintln(t.Cfg.Log, line)
		}
		if t.Cfg.Out != "" && t.Cfg.SaveEvery > 0 && t.step%t.Cfg.SaveEvery == 0 && t.step < t.total {
			dir, err := t.SaveCheckpoint()
			if err != nil {
				return sum, err
			}
			sum.Checkpoint = dir
		}
	}
	sum.Steps = t.step
	if t.Cfg.Out != "" && t.Cfg.SaveEvery > 0 {
		// A last checkpoint, with the optimizer state, so that the run can be extended.
		dir, err := t.SaveCheckpoint()
		if err != nil {
			return sum, err
		}
		sum.Checkpoint = dir
	}
	if t.Cfg.Out != "" {
		if err := t.SaveFinal(); err != nil {
			return sum, err
		}
	}
	return sum, nil
}

// state returns the trainer state at the current step.
func (t *Trainer) state() State {
	c := t.Cfg
	return State{Version: 1, Step: t.step, Epoch: t.epoch, Position: t.pos, TotalSteps: t.total, Seed: c.Seed,
		Objective: c.Objective.Name, Beta: c.Objective.Beta, Alpha: c.Objective.Alpha, MLEPrompt: c.Objective.MLEPrompt,
		Batch: c.Batch, LR: c.LR, WeightDecay: c.WeightDecay, Schedule: c.Schedule, Warmup: c.Warmup,
		MinLRRatio: c.MinLRRatio, MicroBatch: c.MicroBatch, Clip: c.Clip, AdamBeta1: c.Beta1, AdamBeta2: c.Beta2, AdamEps: c.Eps,
		Data: t.DataFP, Rows: len(t.Items), RefModel: t.RefFP, Start: c.StartName, Time: time.Now().UTC(),
		Device: t.DeviceName()}
}

// DeviceName is State.Device: empty on the CPU in float32, else the engine's Device.
func (t *Trainer) DeviceName() string {
	if t.Engine == nil || t.Cfg.Device.cpu() && t.Engine.Device() == DeviceCPU {
		return ""
	}
	return t.Engine.Device()
}
