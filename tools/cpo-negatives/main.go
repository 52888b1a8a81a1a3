// Command cpo-negatives reads example shards and writes candidates shards: each row's ground
// truth followed by synthetic negatives of the kinds and counts of --mix (see pkg/negatives).
package main

import (
	"fmt"
	"math"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/cpo-toolchain/cpo/pkg/checkpoint"
	"github.com/cpo-toolchain/cpo/pkg/cliutil"
	"github.com/cpo-toolchain/cpo/pkg/hub"
	"github.com/cpo-toolchain/cpo/pkg/negatives"
	"github.com/cpo-toolchain/cpo/pkg/shard"
	"github.com/cpo-toolchain/cpo/pkg/tokenizer"
)

func main() { cliutil.Run(newApp()) }

func newApp() *cli.App {
	app := cliutil.NewApp("cpo-negatives", "add synthetic negatives (batch, meanfield, truncation, autoregressive) to example shards",
		`Reads example shards (files, directories, globs; stdin when none) and writes candidates
shards: candidate 0 is the ground truth (kind gt), then the negatives of --mix in the order bn,
mn, tn, an. K = 1 + the mix's total; a negative identical to the ground truth is redrawn up to
--max-redraws times and then dropped, so K can be smaller (counted in the final report on
stderr; --strict-k drops such rows instead; with --quiet the report appears only when something was
dropped or skipped).

  bn  batch negatives: responses of other rows within --bn-window rows of the row (never the
      row itself, never an identical or empty response). Memory: the window's rows.
  mn  meanfield negatives: --mn-percent of the response positions (a trailing EOS excluded)
      each resampled from the model given the prompt and the ground-truth prefix, at
      --mn-temperature. One forward pass per row, rows packed into --batch-tokens batches.
  tn  truncation negatives: the response cut at a random position, plus EOS.
  an  autoregressive negatives: top-k (--an-top-k, default 50) samples from the model with the
      KV cache, up to --an-max-new tokens, --an-batch sequences at a time per worker
      (continuous batching; each worker holds its own cache of at most --an-cache-mib MiB).

mn and an need --model; its tokenizer (tokenizer.json or tokenizer.model in the checkpoint, or
--tokenizer) must have the fingerprint recorded in every row. Each row's seed (recorded in its
seed column) derives from --seed and the row's position, so the output depends only on the
input and the flags, never on --workers.`)
	app.ArgsUsage = "[FILE|DIR|GLOB ...]"
	app.Flags = append(cliutil.OutputFlags(),
		&cli.StringFlag{Name: "mix", Value: "bn=3,mn=5,tn=3", Usage: "negatives per row by kind, e.g. bn=3,mn=5,tn=3 (the paper's MixN, also 'mixn') or an=11; kinds bn, mn, tn, an"},
		&cli.StringFlag{Name: "model", Aliases: []string{"m"}, Usage: "reference model for mn and an: checkpoint directory or hub id (org/name[@revision]) in the Hugging Face cache"},
		&cli.StringFlag{Name: "tokenizer", Usage: "tokenizer (file or directory) whose fingerprint the rows must carry and whose EOS ends tn; default: the model's"},
		&cli.IntFlag{Name: "eos", Value: -1, DefaultText: "the tokenizer's, else the model config's eos_token_id", Usage: "EOS id for tn and mn"},
		&cli.BoolFlag{Name: "skip-tokenizer-check", Usage: "do not compare the rows' tokenizer fingerprint with the model's tokenizer (for checkpoints shipped without one)"},
		&cli.Int64Flag{Name: "seed", Value: 1, Usage: "run seed; row i's seed is derived from it and i"},
		&cli.IntFlag{Name: "bn-window", Value: negatives.DefaultWindow, Usage: "W: batch negatives of row i come from rows i-W/2..i+W/2 (at least 2)"},
		&cli.Float64Flag{Name: "mn-percent", Value: 100 * negatives.DefaultMNFraction, Usage: "c: percent of the eligible response positions a meanfield negative resamples, in (0, 100] (at least one position)"},
		&cli.Float64Flag{Name: "mn-temperature", Value: negatives.DefaultMNTemperature, Usage: "temperature of the meanfield sampling distribution (> 0)"},
		&cli.IntFlag{Name: "an-top-k", Value: negatives.DefaultANTopK, Usage: "k of the autoregressive top-k sampling, in [1, V]"},
		&cli.Float64Flag{Name: "an-temperature", Value: negatives.DefaultANTemperature, Usage: "temperature of the autoregressive sampling (> 0)"},
		&cli.IntFlag{Name: "an-max-new", Value: negatives.DefaultANMaxNew, Usage: "most tokens of an autoregressive negative (EOS included)"},
		&cli.IntFlag{Name: "an-batch", Value: negatives.DefaultANBatch, Usage: "autoregressive sequences decoded at once per worker (continuous batching)"},
		&cli.IntFlag{Name: "an-cache-mib", Value: negatives.DefaultANCacheMiB, Usage: "most MiB of KV cache per worker; --an-batch is lowered to fit"},
		&cli.IntFlag{Name: "max-redraws", Value: negatives.DefaultMaxRedraws, Usage: "redraws of a negative identical to the ground truth before it is dropped"},
		&cli.BoolFlag{Name: "strict-k", Usage: "drop rows with fewer than K candidates instead of writing them"},
		&cli.IntFlag{Name: "workers", DefaultText: "all cores", Usage: "batches processed at once"},
		&cli.IntFlag{Name: "batch-tokens", Value: negatives.DefaultBatchTokens, Usage: "packed tokens per meanfield forward pass (memory: up to tokens × V × 4 bytes of logits per worker)"},
		&cli.IntFlag{Name: "group-rows", Value: negatives.DefaultGroupRows, Usage: "rows read, processed in parallel and written at a time"},
		cliutil.QuietFlag,
	)
	app.Action = action
	return app
}

func action(c *cli.Context) error {
	mix, err := negatives.ParseMix(c.String("mix"))
	if err != nil {
		return cliutil.Usagef("--mix: %v", err)
	}
	pct := c.Float64("mn-percent")
	if !(pct > 0 && pct <= 100) || math.IsNaN(pct) {
		return cliutil.Usagef("--mn-percent %g out of range: want 0 < c <= 100", pct)
	}
	o := negatives.Options{
		Mix: mix, Seed: c.Int64("seed"), Window: c.Int("bn-window"), MNFraction: pct / 100,
		MNTemperature: c.Float64("mn-temperature"), MaxRedraws: c.Int("max-redraws"), StrictK: c.Bool("strict-k"),
		EOS: -1, Workers: c.Int("workers"), BatchTokens: c.Int("batch-tokens"), GroupRows: c.Int("group-rows"),
		AN: negatives.ANOptions{TopK: c.Int("an-top-k"), Temperature: c.Float64("an-temperature"),
			MaxNewTokens: c.Int("an-max-new"), Batch: c.Int("an-batch"), CacheMiB: c.Int("an-cache-mib")},
	}
	if c.Int("bn-window") < 2 {
		return cliutil.Usagef("--bn-window %d: must be at least 2", c.Int("bn-window"))
	}
	if c.Int("max-redraws") < 0 {
		return cliutil.Usagef("--max-redraws must be >= 0")
	}
	if c.Int("max-redraws") == 0 {
		o.MaxRedraws = -1 // Options treats 0 as the default
	}
	if c.Float64("mn-temperature") <= 0 || c.Float64("an-temperature") <= 0 {
		return cliutil.Usagef("temperatures must be > 0")
	}
	if c.Int("an-top-k") < 1 {
		return cliutil.Usagef("--an-top-k %d out of range: want 1 <= k <= V", c.Int("an-top-k"))
	}
	if c.Int("an-max-new") < 1 {
		return cliutil.Usagef("--an-max-new must be >= 1")
	}

	var tok *tokenizer.Tokenizer
	if p := c.String("tokenizer"); p != "" {
		if tok, err = tokenizer.Load(p); err != nil {
			return err
		}
	}
	needModel := mix[negatives.MN] > 0 || mix[negatives.AN] > 0
	if needModel && c.String("model") == "" {
		return cliutil.Usagef("--mix %s has meanfield or autoregressive negatives: give --model", mix)
	}
	if c.String("model") != "" && needModel {
		m, dir, err := checkpoint.Resolve(c.Context, c.String("model"))
		if err != nil {
			return err
		}
		o.Model = m
		if mix[negatives.AN] > 0 && c.Int("an-top-k") > m.Config.VocabSize {
			return cliutil.Usagef("--an-top-k %d out of range: want 1 <= k <= V = %d (the model's vocabulary)", c.Int("an-top-k"), m.Config.VocabSize)
		}
		if tok == nil && !c.Bool("skip-tokenizer-check") {
			if tok, err = tokenizer.Load(dir); err != nil {
				return fmt.Errorf("model %s: no usable tokenizer to check the shards' tokenizer fingerprint against (%v); give --tokenizer or --skip-tokenizer-check", dir, err)
			}
		}
		if tok != nil && tok.VocabSize() > m.Config.VocabSize {
			return fmt.Errorf("model %s has %d token ids but its tokenizer has %d: they do not belong together", dir, m.Config.VocabSize, tok.VocabSize())
		}
	}
	if c.String("model") != "" && !needModel && tok == nil {
		// bn and tn need no weights, only the model's tokenizer (EOS and the fingerprint check).
		dir, err := hub.Resolve(c.Context, c.String("model"))
		if err != nil {
			return err
		}
		if tok, err = tokenizer.Load(dir); err != nil && c.Int("eos") < 0 {
			return fmt.Errorf("model %s: no usable tokenizer (%v); give --tokenizer or --eos", dir, err)
		}
	}
	if tok != nil && !c.Bool("skip-tokenizer-check") {
		o.Tokenizer = tok.Fingerprint()
	}
	switch {
	case c.Int("eos") >= 0:
		o.EOS = int32(c.Int("eos"))
	case tok != nil && tok.EOS() >= 0:
		o.EOS = tok.EOS()
	case o.Model != nil && o.Model.Config.EOS >= 0:
		o.EOS = int32(o.Model.Config.EOS)
	}
	if o.EOS < 0 && (mix[negatives.TN] > 0 || mix[negatives.MN] > 0) {
		return cliutil.Usagef("tn and mn need the EOS id: give --model, --tokenizer or --eos")
	}
	return run(c, o)
}

func run(c *cli.Context, o negatives.Options) error {
	ctx, cancel := cliutil.SignalContext()
	defer cancel()
	if err := cliutil.CheckOutput(c.String("out"), c.Args().Slice()); err != nil {
		return err
	}
	args, cleanup, err := shard.SpoolStdin(c.Args().Slice(), os.Stdin)
	defer cleanup()
	if err != nil {
		return err
	}
	total := countRows(args)
	r, err := shard.NewReader[shard.Example](args, os.Stdin)
	if err != nil {
		return err
	}
	defer r.Close()
	opts := cliutil.ShardOptions(c)
	opts.Metadata = map[string]string{"cpo.negatives.mix": o.Mix.String(), "cpo.negatives.seed": fmt.Sprint(o.Seed)}
	w, err := shard.NewWriter[shard.Candidates](c.String("out"), os.Stdout, opts)
	if err != nil {
		return err
	}
	prog := cliutil.NewProgress(c, "cpo-negatives", "rows", total)
	o.Progress = prog.Add
	st, err := negatives.Run(ctx, r, func(rows ...shard.Candidates) error { return w.Write(rows...) }, o)
	if err == nil {
		err = w.Close()
	} else {
		w.Abort()
		if ctx.Err() != nil {
			err = cliutil.ErrInterrupted
		}
	}
	prog.Done()
	if !c.Bool("quiet") || st.Notable() {
		errw := c.App.ErrWriter
		if errw == nil {
			errw = os.Stderr
		}
		st.Report(errw)
	}
	return err
}

// countRows is the number of rows of the input files, for the progress report (0 if unknown).
func countRows(args []string) int64 {
	n, _ := shard.CountRows(args)
	return n
}
