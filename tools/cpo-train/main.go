// Command cpo-train trains a model with MLE, CPO (eq. 7 of the paper), ranked CPO (eq. 8),
// DPO (eq. 5) or mle + alpha*cpo on example or candidates shards; `precompute-ref` stores the
// reference model's log-probabilities in candidates shards; `bench` times training steps.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/cpo-toolchain/cpo/pkg/checkpoint"
	"github.com/cpo-toolchain/cpo/pkg/cliutil"
	"github.com/cpo-toolchain/cpo/pkg/cuda"
	"github.com/cpo-toolchain/cpo/pkg/optim"
	"github.com/cpo-toolchain/cpo/pkg/shard"
	"github.com/cpo-toolchain/cpo/pkg/tokenizer"
	"github.com/cpo-toolchain/cpo/pkg/train"
)

func main() { cliutil.Run(newApp()) }

var modelFlag = &cli.StringFlag{Name: "model", Aliases: []string{"m"}, Usage: "starting model and reference: a checkpoint directory, a Hugging Face hub id, or a preset for random init (" + strings.Join(checkpoint.PresetNames(), ", ") + ")"}
var initSeedFlag = &cli.Uint64Flag{Name: "init-seed", Value: 1, Usage: "seed of the random initialisation when --model is a preset"}

// deviceFlags choose where the models run (train.DeviceConfig); precision is --precision's
// default.
func deviceFlags(precision cuda.Precision, note string) []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "device", Value: train.DeviceCPU, Usage: "where the models run: " + strings.Join(train.Devices, " or ") + " (cuda needs a binary built with -tags cuda: make cuda)"},
		&cli.StringFlag{Name: "precision", Value: string(precision), Usage: "--device cuda: storage of activations and of the weight copy the matrix products read, " + string(cuda.BF16) + " or " + string(cuda.Float32) + note +
			"; --device cpu: " + string(cuda.BF16) + " rounds the inputs of the dense layers' matrix products to bfloat16 and sums in float32 (mixed precision: the products run twice as fast on CPUs with AVX512_BF16, a step 1.2-1.6x), " + string(cuda.Float32) + " (the cpu's default, whatever the default shown here) keeps them float32"},
		&cli.IntFlag{Name: "gpu", Usage: "--device cuda: the GPU's ordinal"},
	}
}

// deviceOf returns the device of the flags, or a usage error for an unknown device or
// precision and for --device cuda in a binary built without the cuda tag (cuda.ErrNotBuilt's
// message), before anything is loaded.
func deviceOf(c *cli.Context) (train.DeviceConfig, error) {
	d := train.DeviceConfig{Name: c.String("device"), Precision: cuda.Precision(c.String("precision")), GPU: c.Int("gpu")}
	if d.Name == train.DeviceCPU && !c.IsSet("precision") {
		d.Precision = cuda.Float32 // the flag's default is the GPU's
	}
	switch {
	case d.Name == train.DeviceCPU && c.IsSet("gpu"):
		return d, cliutil.Usagef("--gpu applies to --device cuda only")
	case d.Precision != cuda.BF16 && d.Precision != cuda.Float32:
		return d, cliutil.Usagef("--precision %q: want %s or %s", d.Precision, cuda.BF16, cuda.Float32)
	case d.GPU < 0:
		return d, cliutil.Usagef("--gpu %d: must not be negative", d.GPU)
	}
	if err := d.Check(); err != nil {
		return d, cliutil.Usagef("--device %s: %v", d.Name, err)
	}
	return d, nil
}

func newApp() *cli.App {
	app := cliutil.NewApp("cpo-train", "train with MLE, CPO, ranked CPO, DPO or mle+cpo on shards",
		`cpo-train [flags] [SHARDS...] reads example shards (mle) or candidates shards (every objective;
mle then trains on the ground truths) from the arguments or stdin, and trains --model:

  mle       next-token loss on the response given the prompt (--mle-prompt: on whole sequences)
  cpo       eq. 7: -log softmax over the K candidates of beta*(log pi(y_j|x) - log pi_ref(y_j|x)),
            the ground truth being candidate 0
  cpo-rank  eq. 8: the Plackett-Luce likelihood of the row's ranking (from cpo-embed)
  dpo       eq. 5: pairwise (K = 2); equals cpo at K = 2
  mle+cpo   mle on the ground truths + alpha * cpo

Sequence log-probabilities are sums over the continuation's tokens. The reference pi_ref is the
starting model, frozen; its log-probabilities are computed on the fly with a second copy unless
every candidate carries a ref_logp from 'cpo-train precompute-ref' with the same model
fingerprint (a mismatch is an error). Each step takes --batch examples in micro-batches of
--micro-batch (gradient accumulation), shuffled per epoch from --seed, clips the gradient norm
and takes an AdamW step. Checkpoints (Hugging Face format plus trainer_state.json and
optimizer.bin) go to --checkpoint-dir every --save-every steps and on SIGINT/SIGTERM; --resume
continues bit-identically. The final model is written to --out.

--device cuda runs the policy and the reference on a GPU (--gpu) with --precision bf16 or fp32
activations, in a binary built with -tags cuda (make cuda); other binaries refuse it. Its
checkpoints are the same files, so a run may resume on the other device (not bit-identically:
the GPU's arithmetic differs from the CPU's). On the CPU, --precision bf16 trains in mixed
precision (bfloat16 inputs to the dense layers' products, float32 everywhere else); give
precompute-ref the same --precision as the training run.`)
	app.Flags = []cli.Flag{
		modelFlag, initSeedFlag,
		&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Usage: "directory of the final model (required); checkpoints go to --checkpoint-dir"},
		&cli.StringFlag{Name: "objective", Value: train.CPO, Usage: "training objective: " + strings.Join(train.Objectives, ", ")},
		&cli.Float64Flag{Name: "beta", Value: 5, Usage: "reward scale beta of cpo, cpo-rank and dpo (the paper: 5)"},
		&cli.Float64Flag{Name: "alpha", Value: 1, Usage: "weight of cpo in mle+cpo"},
		&cli.BoolFlag{Name: "mle-prompt", Usage: "mle also on the prompt tokens (whole-document pretraining)"},
		&cli.Float64Flag{Name: "lr", Value: 1e-5, Usage: "peak learning rate (the paper: 1e-5)"},
		&cli.Float64Flag{Name: "weight-decay", Value: 0.05, Usage: "AdamW weight decay, not applied to biases and norms (the paper: 0.05)"},
		&cli.Float64Flag{Name: "adam-beta1", Value: 0.9, Usage: "AdamW beta1"},
		&cli.Float64Flag{Name: "adam-beta2", Value: 0.999, Usage: "AdamW beta2"},
		&cli.Float64Flag{Name: "adam-eps", Value: 1e-8, Usage: "AdamW epsilon"},
		&cli.IntFlag{Name: "batch", Value: 64, Usage: "examples per optimizer step (the paper: 64)"},
		&cli.IntFlag{Name: "micro-batch", Value: 8, Usage: "examples per forward/backward pass (gradient accumulation; all their candidates run as one packed batch)"},
		&cli.IntFlag{Name: "steps", Usage: "optimizer steps (0: --epochs decides)"},
		&cli.IntFlag{Name: "epochs", Usage: "passes over the data when --steps is 0 (default 1)"},
		&cli.StringFlag{Name: "schedule", Value: optim.Constant, Usage: "learning-rate schedule after warm-up: " + strings.Join(optim.Schedules, ", ")},
		&cli.IntFlag{Name: "warmup", Usage: "linear warm-up steps"},
		&cli.Float64Flag{Name: "min-lr-ratio", Usage: "floor of the linear/cosine decay as a fraction of --lr"},
		&cli.Float64Flag{Name: "clip", Value: 1, Usage: "clip the gradient's global norm to this (0: no clipping)"},
		&cli.Uint64Flag{Name: "seed", Value: 1, Usage: "seed of the per-epoch shuffling"},
		&cli.StringFlag{Name: "checkpoint-dir", Usage: "directory of checkpoint-<step>/ (default: OUT-checkpoints)"},
		&cli.IntFlag{Name: "save-every", Usage: "write a checkpoint every N steps (0: only on interruption)"},
		&cli.IntFlag{Name: "keep", Value: 3, Usage: "checkpoints to keep (0: all)"},
		&cli.StringFlag{Name: "resume", Usage: "continue from a checkpoint directory, or the latest checkpoint in a --checkpoint-dir"},
		&cli.StringFlag{Name: "metrics", Usage: "write one JSON line per step to this file (loss, rewards/*, logps/*, grad_norm, lr, tokens/s); a fresh run replaces it, --resume keeps its lines up to the checkpoint and appends"},
		&cli.IntFlag{Name: "log-every", Value: 10, Usage: "steps between progress lines on stderr"},
		&cli.BoolFlag{Name: "skip-nonfinite", Usage: "skip a step whose loss or gradient is NaN/Inf instead of stopping"},
		&cli.BoolFlag{Name: "skip-tokenizer-check", Usage: "do not compare the rows' tokenizer fingerprint with that of the tokenizer in the --model directory"},
		cliutil.QuietFlag,
	}
	app.Flags = append(app.Flags, deviceFlags(cuda.BF16, " (master weights, gradients and AdamW moments are float32 either way)")...)
	app.Action = runTrain
	app.Commands = []*cli.Command{
		{
			Name:      "precompute-ref",
			Usage:     "store the reference model's log-probabilities (ref_logp, ref_model) in candidates shards",
			ArgsUsage: "[SHARDS...]",
			Description: `Reads candidates shards (arguments or stdin), computes log pi_ref(y|x) of every candidate with
--model exactly as training builds the sequences, and writes the rows with ref_logp and ref_model
(the model's fingerprint) to --out or stdout. Training from the same model then skips the
reference pass; training from another model refuses the shard.`,
			Flags: append([]cli.Flag{modelFlag, initSeedFlag,
				&cli.IntFlag{Name: "micro-batch", Value: 8, Usage: "rows per packed forward pass"},
				&cli.BoolFlag{Name: "skip-tokenizer-check", Usage: "do not compare the rows' tokenizer fingerprint with that of the tokenizer in the --model directory"},
				cliutil.QuietFlag}, append(deviceFlags(cuda.Float32, " (fp32 by default: the stored log-probabilities then match the CPU's to float32 rounding, while bf16 ones are off by its rounding, summed over the tokens)"), cliutil.OutputFlags()...)...),
			Action: runPrecompute,
		},
		{
			Name:      "plot",
			Usage:     "draw training curves from --metrics files to PNG",
			ArgsUsage: "METRICS.jsonl...",
			Description: `Draws one chart per metric (--keys; default loss, rewards/accuracies, rewards/margins,
rewards/chosen, rewards/rejected, grad_norm, lr) against the step, one line per metrics file,
into --out DIR as <metric>.png ('/' becomes '_').`,
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Usage: "directory of the PNG files (required)"},
				&cli.StringSliceFlag{Name: "keys", Usage: "metrics to draw (repeat or comma-separate)"},
				cliutil.QuietFlag,
			},
			Action: runPlot,
		},
		{
			Name:  "bench",
			Usage: "time forward+backward+AdamW steps on random tokens",
			Description: `Times full training steps (forward, objective, backward, clipping, AdamW) of --model (a
directory or a preset with random weights: tiny = GPT-2, 4 layers, 4 heads, width 256, vocab 8192,
context 128; gpt2-small = GPT-2 124M) on random tokens, after warm-up, and prints ms/step (median,
min, max), tokens/s and GFLOP/s (6 per parameter per token plus causal attention). mle runs
--batch sequences of --seq-len tokens, with the loss on every position (--loss-tokens all, as
nanoGPT, llm.c and scripts/bench/train_torch.py) or on the second half only (response: the lm
head's backward pass then skips the prompt rows); a contrastive objective runs --batch examples
of --k candidates of --seq-len tokens each, half prompt (reference log-probs precomputed unless
--ref-pass).`,
			Flags: append([]cli.Flag{
				&cli.StringFlag{Name: "model", Aliases: []string{"m"}, Value: "tiny", Usage: "checkpoint directory, hub id, or preset (" + strings.Join(checkpoint.PresetNames(), ", ") + ")"},
				&cli.StringFlag{Name: "objective", Value: train.MLE, Usage: "objective: " + strings.Join(train.Objectives, ", ")},
				&cli.IntFlag{Name: "batch", Value: 8, Usage: "sequences (mle) or examples (contrastive) per step"},
				&cli.IntFlag{Name: "seq-len", Value: 128, Usage: "tokens per sequence"},
				&cli.StringFlag{Name: "loss-tokens", Value: "all", Usage: "mle: the positions the loss covers, all or response (the second half of each sequence)"},
				&cli.IntFlag{Name: "k", Value: 12, Usage: "candidates per example for contrastive objectives"},
				&cli.IntFlag{Name: "micro-batch", Usage: "examples per forward/backward (0: the whole batch)"},
				&cli.IntFlag{Name: "steps", Value: 10, Usage: "timed steps"},
				&cli.IntFlag{Name: "warmup", Value: 2, Usage: "untimed warm-up steps"},
				&cli.BoolFlag{Name: "ref-pass", Usage: "also run the reference model (as when ref_logp is not precomputed)"},
				&cli.Uint64Flag{Name: "seed", Value: 1, Usage: "seed of the random weights and tokens"},
			}, deviceFlags(cuda.BF16, "")...),
			Action: runBench,
		},
	}
	return app
}

// signalGrace is how long after the first SIGINT/SIGTERM further signals are taken for the same
// interruption. `timeout -s INT` signals the command and then its whole process group, and a
// job scheduler may signal every process of a job: two signals a moment apart must not turn
// "save a checkpoint and stop" into "exit at once, losing the run since the last checkpoint".
const signalGrace = 3 * time.Second

// trainSignalContext returns a context cancelled by the first SIGINT or SIGTERM, which is
// announced on stderr; signals within grace of the first are ignored, and a later one exits
// at once (status 130) without saving.
func trainSignalContext(stderr io.Writer, grace time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		select {
		case <-ch:
		case <-ctx.Done():
			signal.Stop(ch)
			return
		}
		first := time.Now()
		fmt.Fprintf(stderr, "cpo-train: interrupted: finishing the current micro-batch and saving a checkpoint (signal again after %s to exit without saving)\n", grace)
		cancel()
		for range ch {
			if time.Since(first) >= grace {
				fmt.Fprintln(stderr, "cpo-train: second signal: exiting without saving")
				os.Exit(130)
			}
		}
	}()
	return ctx, cancel
}

func runTrain(c *cli.Context) error {
	errw := c.App.ErrWriter
	if errw == nil {
		errw = os.Stderr
	}
	ctx, cancel := trainSignalContext(errw, signalGrace)
	defer cancel()
	out := c.String("out")
	if out == "" {
		return cliutil.Usagef("--out is required (the directory of the final model)")
	}
	obj := c.String("objective")
	if err := checkObjective(obj); err != nil {
		return err
	}
	if err := checkTrainFlags(c); err != nil {
		return err
	}
	if c.IsSet("steps") && c.IsSet("epochs") {
		return cliutil.Usagef("--steps and --epochs exclude each other")
	}
	dev, err := deviceOf(c)
	if err != nil {
		return err
	}
	modelArg := c.String("model")
	var resumeDir string
	var resumed *train.State
	if r := c.String("resume"); r != "" {
		dir, err := train.FindCheckpoint(r)
		if err != nil {
			return err
		}
		resumeDir = dir
		st, err := train.ReadState(dir)
		if err != nil {
			return err
		}
		resumed = &st
		if modelArg == "" {
			modelArg = st.Start
		}
	}
	if modelArg == "" {
		return cliutil.Usagef("--model is required")
	}
	if sameDir(out, modelArg) {
		return cliutil.Usagef("--out %s is the starting model %s: the final model would overwrite it (the reference of this run); give another directory", out, modelArg)
	}
	logw := errw
	quiet := c.Bool("quiet")
	say := func(format string, a ...any) {
		if !quiet {
			fmt.Fprintf(logw, "cpo-train: "+format+"\n", a...)
		}
	}
	items, schema, err := train.LoadItems(c.Args().Slice(), os.Stdin)
	if err != nil {
		return err
	}
	start, dir, err := train.LoadStart(ctx, modelArg, c.Uint64("init-seed"))
	if err != nil {
		return err
	}
	fp, err := checkpoint.Fingerprint(start)
	if err != nil {
		return err
	}
	if dir != "" && !c.Bool("skip-tokenizer-check") && len(checkpoint.TokenizerFilesIn(dir)) > 0 {
		tok, err := tokenizer.Load(dir)
		if err != nil {
			return fmt.Errorf("model %s: its tokenizer, to check the shards' tokenizer fingerprint against: %w (or --skip-tokenizer-check)", dir, err)
		}
		if err := train.CheckTokenizer(items, tok.Fingerprint()); err != nil {
			return err
		}
	}
	cfg := train.Config{
		Objective:   train.Objective{Name: obj, Beta: c.Float64("beta"), Alpha: c.Float64("alpha"), MLEPrompt: c.Bool("mle-prompt")},
		Batch:       c.Int("batch"),
		MicroBatch:  c.Int("micro-batch"),
		Steps:       c.Int("steps"),
		Epochs:      c.Int("epochs"),
		LR:          c.Float64("lr"),
		WeightDecay: c.Float64("weight-decay"),
		Beta1:       c.Float64("adam-beta1"), Beta2: c.Float64("adam-beta2"), Eps: c.Float64("adam-eps"),
		Schedule: c.String("schedule"), Warmup: c.Int("warmup"), MinLRRatio: c.Float64("min-lr-ratio"),
		Clip: c.Float64("clip"), Seed: c.Uint64("seed"),
		Out: out, CheckpointDir: c.String("checkpoint-dir"), SaveEvery: c.Int("save-every"), Keep: c.Int("keep"),
		SkipNonfinite: c.Bool("skip-nonfinite"), LogEvery: c.Int("log-every"), LogInterval: 30 * time.Second,
		StartName: modelArg, Device: dev,
	}
	if resumed != nil {
		fromState(c, &cfg, resumed)
	}
	if dir != "" {
		cfg.TokenizerFiles = checkpoint.TokenizerFilesIn(dir)
	}
	if !quiet {
		cfg.Log = logw
	}
	tr, err := train.New(cfg, start, fp, items)
	if err != nil {
		return err
	}
	defer tr.Close()
	if resumeDir != "" {
		if _, err := tr.Resume(resumeDir); err != nil {
			return err
		}
		say("resumed from %s at step %d", resumeDir, tr.Step())
		if was, now := resumed.Device, tr.DeviceName(); was != now {
			if was == "" {
				was = train.DeviceCPU
			}
			if now == "" {
				now = train.DeviceCPU
			}
			say("note: the checkpoint was trained on %s and continues on %s: the same optimizer state, but the run is not bit-identical to an uninterrupted one", was, now)
		}
	}
	if p := c.String("metrics"); p != "" {
		// A fresh run starts the file anew (a rerun appended a second step 1..N to the first);
		// a resumed run keeps the lines up to its checkpoint and appends.
		flags := os.O_CREATE | os.O_WRONLY | os.O_TRUNC
		if resumeDir != "" {
			if err := train.TrimMetrics(p, tr.Step()); err != nil {
				return err
			}
			flags = os.O_CREATE | os.O_WRONLY | os.O_APPEND
		}
		f, err := os.OpenFile(p, flags, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		tr.Cfg.Metrics = f
	}
	obj = tr.Cfg.Objective.Name // a resumed run's, unless --objective was given
	ref := "computed on the fly by a frozen copy"
	if obj == train.MLE {
		ref = "not needed"
	} else if tr.Ref == nil {
		ref = "precomputed in the shards"
	}
	say("%s on %d %s rows, %s model (%d parameters, fingerprint %s), reference %s; %d steps of %d examples on %s",
		obj, len(items), schema, start.Config.Arch, start.NumParams(), fp[:12], ref, tr.TotalSteps(), cfg.Batch, tr.Engine.Device())
	sum, err := tr.Run(ctx)
	if err != nil {
		if sum.Interrupted {
			return cliutil.ErrInterrupted
		}
		return err
	}
	say("done: %d steps, final loss %.4f; model in %s", sum.Steps, sum.Final.Loss, out)
	if sum.Truncated > 0 {
		fmt.Fprintf(logw, "cpo-train: %d sequences were cut to the model's context of %d tokens\n", sum.Truncated, start.Config.MaxSeqLen)
	}
	return nil
}

func runPrecompute(c *cli.Context) error {
	ctx, cancel := cliutil.SignalContext()
	defer cancel()
	if c.String("model") == "" {
		return cliutil.Usagef("--model is required")
	}
	dev, err := deviceOf(c)
	if err != nil {
		return err
	}
	m, dir, err := train.LoadStart(ctx, c.String("model"), c.Uint64("init-seed"))
	if err != nil {
		return err
	}
	fp, err := checkpoint.Fingerprint(m)
	if err != nil {
		return err
	}
	tokFP := ""
	if dir != "" && !c.Bool("skip-tokenizer-check") && len(checkpoint.TokenizerFilesIn(dir)) > 0 {
		tok, err := tokenizer.Load(dir)
		if err != nil {
			return fmt.Errorf("model %s: its tokenizer, to check the shards' tokenizer fingerprint against: %w (or --skip-tokenizer-check)", dir, err)
		}
		tokFP = tok.Fingerprint()
	}
	if err := cliutil.CheckOutput(c.String("out"), c.Args().Slice()); err != nil {
		return err
	}
	w, err := shard.NewWriter[shard.Candidates](c.String("out"), os.Stdout, cliutil.ShardOptions(c))
	if err != nil {
		return err
	}
	p := cliutil.NewProgress(c, "cpo-train precompute-ref", "rows", 0)
	last := 0
	err = train.PrecomputeRefOn(ctx, dev, m, fp, tokFP, c.Args().Slice(), os.Stdin, w, c.Int("micro-batch"), func(n int) {
		p.Add(int64(n - last))
		last = n
	})
	if err != nil {
		w.Abort()
		if errors.Is(err, context.Canceled) {
			return cliutil.ErrInterrupted
		}
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	p.Done()
	return nil
}

// checkTrainFlags returns a usage error for a training flag out of its range, before any data
// or model is loaded (train.New would catch some of them only afterwards, as runtime errors, and
// a negative --weight-decay or --alpha would have trained).
func checkTrainFlags(c *cli.Context) error {
	for _, name := range []string{"batch"} {
		if c.Int(name) <= 0 {
			return cliutil.Usagef("--%s %d: must be positive", name, c.Int(name))
		}
	}
	for _, name := range []string{"micro-batch", "steps", "epochs", "warmup", "save-every", "keep", "log-every"} {
		if c.Int(name) < 0 {
			return cliutil.Usagef("--%s %d: must not be negative", name, c.Int(name))
		}
	}
	for _, name := range []string{"lr", "weight-decay", "clip", "alpha", "adam-eps"} {
		if v := c.Float64(name); !(v >= 0) || math.IsInf(v, 0) {
			return cliutil.Usagef("--%s %v: must be a finite number >= 0", name, v)
		}
	}
	if v := c.Float64("beta"); (c.IsSet("beta") || c.String("objective") != train.MLE) && (!(v > 0) || math.IsInf(v, 0)) {
		return cliutil.Usagef("--beta %v: must be a finite number > 0", v)
	}
	for _, name := range []string{"adam-beta1", "adam-beta2"} {
		if v := c.Float64(name); !(v >= 0 && v < 1) {
			return cliutil.Usagef("--%s %v: must be in [0, 1)", name, v)
		}
	}
	if v := c.Float64("min-lr-ratio"); !(v >= 0 && v <= 1) {
		return cliutil.Usagef("--min-lr-ratio %v: must be in [0, 1]", v)
	}
	if s := c.String("schedule"); !slices.Contains(optim.Schedules, s) {
		return cliutil.Usagef("--schedule %q: want one of %s", s, strings.Join(optim.Schedules, ", "))
	}
	return nil
}

// checkObjective returns a usage error for an --objective that is not one of train.Objectives.
func checkObjective(obj string) error {
	for _, o := range train.Objectives {
		if o == obj {
			return nil
		}
	}
	return cliutil.Usagef("--objective %q: want one of %s", obj, strings.Join(train.Objectives, ", "))
}

func runBench(c *cli.Context) error {
	if err := checkObjective(c.String("objective")); err != nil {
		return err
	}
	dev, err := deviceOf(c)
	if err != nil {
		return err
	}
	ctx, cancel := cliutil.SignalContext()
	defer cancel()
	m, _, err := train.LoadStart(ctx, c.String("model"), c.Uint64("seed"))
	if err != nil {
		return err
	}
	lt := c.String("loss-tokens")
	if lt != "all" && lt != "response" {
		return cliutil.Usagef("--loss-tokens %q: want all or response", lt)
	}
	bc := train.BenchConfig{Objective: c.String("objective"), Batch: c.Int("batch"), K: c.Int("k"), SeqLen: c.Int("seq-len"), MLEPrompt: lt == "all",
		MicroBatch: c.Int("micro-batch"), Steps: c.Int("steps"), Warmup: c.Int("warmup"), RefPass: c.Bool("ref-pass"), Seed: c.Uint64("seed"), Device: dev}
	r, err := train.Bench(ctx, m, bc)
	if err != nil {
		return err
	}
	name := fmt.Sprintf("%s %s batch %d seq-len %d", c.String("model"), bc.Objective, bc.Batch, bc.SeqLen)
	if bc.Objective != train.MLE {
		name += fmt.Sprintf(" K %d", bc.K)
	}
	r.Print(os.Stdout, name)
	return nil
}

// fromState takes the run's settings from the checkpoint being resumed wherever the flag was
// not given, so that `cpo-train --resume DIR SHARDS` continues the same run.
func fromState(c *cli.Context, cfg *train.Config, st *train.State) {
	set := func(flag string, apply func()) {
		if !c.IsSet(flag) {
			apply()
		}
	}
	set("objective", func() { cfg.Objective.Name = st.Objective })
	set("beta", func() { cfg.Objective.Beta = st.Beta })
	set("alpha", func() { cfg.Objective.Alpha = st.Alpha })
	set("mle-prompt", func() { cfg.Objective.MLEPrompt = st.MLEPrompt })
	set("batch", func() { cfg.Batch = st.Batch })
	set("micro-batch", func() { cfg.MicroBatch = st.MicroBatch })
	set("lr", func() { cfg.LR = st.LR })
	set("weight-decay", func() { cfg.WeightDecay = st.WeightDecay })
	set("schedule", func() { cfg.Schedule = st.Schedule })
	set("warmup", func() { cfg.Warmup = st.Warmup })
	set("min-lr-ratio", func() { cfg.MinLRRatio = st.MinLRRatio })
	set("clip", func() { cfg.Clip = st.Clip })
	set("adam-beta1", func() { cfg.Beta1 = st.AdamBeta1 })
	set("adam-beta2", func() { cfg.Beta2 = st.AdamBeta2 })
	set("adam-eps", func() { cfg.Eps = st.AdamEps })
	set("seed", func() { cfg.Seed = st.Seed })
	if !c.IsSet("steps") && !c.IsSet("epochs") {
		cfg.Steps, cfg.Epochs = st.TotalSteps, 0
	}
}

func runPlot(c *cli.Context) error {
	if c.String("out") == "" {
		return cliutil.Usagef("--out is required (the directory of the PNG files)")
	}
	if c.NArg() == 0 {
		return cliutil.Usagef("name one or more metrics files")
	}
	files, err := train.PlotMetrics(c.Args().Slice(), c.StringSlice("keys"), c.String("out"))
	if err != nil {
		return err
	}
	if !c.Bool("quiet") {
		fmt.Fprintf(os.Stderr, "cpo-train plot: wrote %s\n", strings.Join(files, ", "))
	}
	return nil
}

// sameDir reports whether a and b name one existing directory.
func sameDir(a, b string) bool {
	sa, err := os.Stat(a)
	if err != nil || !sa.IsDir() {
		return false
	}
	sb, err := os.Stat(b)
	return err == nil && os.SameFile(sa, sb)
}
