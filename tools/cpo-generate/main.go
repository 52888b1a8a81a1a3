// Command cpo-generate continues the prompts of example shards with a model and writes
// generation shards: greedy decoding, sampling (temperature, top-k, top-p) or beam search,
// with a KV cache and prompts of different lengths batched without padding.
// `cpo-generate bench` times greedy decoding.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"

	"github.com/urfave/cli/v2"

	"github.com/cpo-toolchain/cpo/pkg/checkpoint"
	"github.com/cpo-toolchain/cpo/pkg/cliutil"
	"github.com/cpo-toolchain/cpo/pkg/gemm"
	"github.com/cpo-toolchain/cpo/pkg/generate"
	"github.com/cpo-toolchain/cpo/pkg/hub"
	"github.com/cpo-toolchain/cpo/pkg/model"
	"github.com/cpo-toolchain/cpo/pkg/shard"
	"github.com/cpo-toolchain/cpo/pkg/tokenizer"
)

func main() { cliutil.Run(newApp()) }

func newApp() *cli.App {
	app := cliutil.NewApp("cpo-generate", "generate continuations of prompts with a model (greedy, sampling, beam search)",
		`Reads example shards (files, directories, globs, or stdin) and writes one generation row per
prompt and sample (see docs/shards.md, schema "generation"): the prompt ids the model saw, the
reference (the example's response), the generated ids (ending with EOS when finish = "eos"),
their text decoded with the model's tokenizer, logp = log Q(y|x) (the sum over the generated ids
of log-softmax at temperature 1, whatever the decoding), the model fingerprint and name, the
decoding label (greedy, top-k50-p0.7, beam4, ...) and its canonical JSON, and the seed.

Strategies: greedy; sample (temperature, then top-k, then top-p, as Hugging Face's warpers; the
paper uses --top-k 50 with --top-p 1 and 0.7); beam (Hugging Face's beam search with
early_stopping=False; a finished hypothesis scores log Q(y|x) / len(y)^length_penalty, len
counting the generated tokens with EOS). Every sequence draws from its own random stream,
seeded from --seed, the row id and the sample index, so its draws do not depend on --batch or
--workers (only a choice between two tokens tied to float32 rounding can, since the matrix
kernels may round differently for other batch sizes). Generation stops at the tokenizer's EOS
or after --max-new-tokens; ids the tokenizer cannot decode (a padded model vocabulary) are
never generated.

The prompts must have been tokenized with the model's tokenizer (the shard's tokenizer
fingerprint is checked). A prompt longer than the context minus --max-new-tokens is cut from
the left, keeping a leading BOS, or refused (--prompt-too-long). Rows come out in input order;
progress on stderr.

Example (the paper's evaluation set):
  cpo-generate --model ckpt/cpo --strategy sample --top-k 50 --top-p 0.7 --limit 1000 \
      --out gen/cpo-k50-p0.7.parquet data/dolly-test.parquet`)
	app.ArgsUsage = "[FILE|DIR|GLOB ...]"
	app.Flags = append([]cli.Flag{
		&cli.StringFlag{Name: "model", Aliases: []string{"m"}, Usage: "checkpoint directory, or hub id found in the Hugging Face cache or downloaded (required)"},
		&cli.StringFlag{Name: "model-name", Usage: "label stored in model_name (default: the --model argument)"},
		&cli.StringFlag{Name: "strategy", Value: "greedy", Usage: "greedy, sample or beam"},
		&cli.Float64Flag{Name: "temperature", Value: 1, Usage: "sample: logits are divided by this (> 0)"},
		&cli.IntFlag{Name: "top-k", Value: 50, Usage: "sample: keep the k most likely tokens (0: all)"},
		&cli.Float64Flag{Name: "top-p", Value: 1, Usage: "sample: keep the smallest most-likely set of mass >= p, in (0, 1] (1: all)"},
		&cli.IntFlag{Name: "beams", Value: 4, Usage: "beam: beam width (>= 1)"},
		&cli.Float64Flag{Name: "length-penalty", Value: 1, Usage: "beam: hypotheses score log Q(y|x) / len(y)^length-penalty"},
		&cli.IntFlag{Name: "max-new-tokens", Value: 256, Usage: "most tokens generated per sequence (EOS included)"},
		&cli.IntFlag{Name: "num-samples", Value: 1, Usage: "generations per prompt (sample strategy only), numbered by the sample column"},
		&cli.Int64Flag{Name: "seed", Value: 1, Usage: "global random seed (each sequence uses a seed derived from it, the row id and the sample index)"},
		&cli.IntFlag{Name: "batch", Value: 16, Usage: "sequences decoded at once (beam: prompts at once, each with --beams cache slots); the KV cache takes 2*layers*slots*(longest prompt + max-new-tokens)*kv_width*4 bytes"},
		&cli.IntFlag{Name: "limit", Usage: "generate for the first N prompts only (0: all; the paper uses 1000)"},
		&cli.StringFlag{Name: "prompt-too-long", Value: "error", Usage: "what to do with a prompt that leaves no room for --max-new-tokens in the context: error or truncate-left"},
		&cli.IntFlag{Name: "workers", Usage: "CPU threads (default: all cores)"},
		&cli.BoolFlag{Name: "bf16", Usage: "decode with bfloat16 copies of the weight matrices (half the memory traffic per token; float32 accumulation; recorded in decoding_config)"},
		cliutil.QuietFlag,
	}, cliutil.OutputFlags()...)
	app.Action = run
	app.Commands = []*cli.Command{{
		Name:      "bench",
		Usage:     "print ms/token and tokens/s of greedy decoding at batch 1 and 16",
		ArgsUsage: " ",
		Description: `Times greedy decoding (KV cache, EOS disabled) of random prompts on --model: a checkpoint
directory or hub id, or a built-in random model (tiny, llama-tiny, gpt2-small: the 124M GPT-2
architecture with random weights). For each batch size it prints the prefill time, the mean time
of one incremental step and per generated token (step time / batch), the decode tokens/s (new tokens of all sequences per second, prefill
excluded), and the overall tokens/s. Compare with scripts/bench/generate_torch.py.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "model", Aliases: []string{"m"}, Value: "gpt2-small", Usage: "checkpoint directory, hub id, or built-in random model: tiny, llama-tiny, gpt2-small"},
			&cli.IntSliceFlag{Name: "batch", Value: cli.NewIntSlice(1, 16), Usage: "batch sizes"},
			&cli.IntFlag{Name: "prompt-len", Value: 64, Usage: "prompt tokens"},
			&cli.IntFlag{Name: "new-tokens", Value: 64, Usage: "generated tokens per sequence"},
			&cli.IntFlag{Name: "workers", Usage: "CPU threads (default: all cores)"},
			&cli.BoolFlag{Name: "bf16", Usage: "decode with bfloat16 copies of the weight matrices (half the memory traffic per token; float32 accumulation; recorded in decoding_config)"},
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object per batch size"},
		},
		Action: benchCmd,
	}}
	return app
}

func setWorkers(c *cli.Context) error {
	if w := c.Int("workers"); w < 0 {
		return cliutil.Usagef("--workers %d must be >= 0", w)
	} else if w > 0 {
		runtime.GOMAXPROCS(w)
		gemm.SetThreads(w)
	}
	return nil
}

func run(c *cli.Context) error {
	if err := setWorkers(c); err != nil {
		return err
	}
	if c.String("model") == "" {
		return cliutil.Usagef("no model: give --model DIR|ID")
	}
	var truncate bool
	switch c.String("prompt-too-long") {
	case "error":
	case "truncate-left":
		truncate = true
	default:
		return cliutil.Usagef("--prompt-too-long %q: want error or truncate-left", c.String("prompt-too-long"))
	}
	if c.Int("batch") < 1 {
		return cliutil.Usagef("--batch %d must be >= 1", c.Int("batch"))
	}
	if err := cliutil.CheckOutput(c.String("out"), c.Args().Slice()); err != nil {
		return err
	}
	if c.Int("limit") < 0 {
		return cliutil.Usagef("--limit %d must be >= 0", c.Int("limit"))
	}
	cfg := generate.Config{
		Strategy: c.String("strategy"), Temperature: c.Float64("temperature"), TopK: c.Int("top-k"), TopP: c.Float64("top-p"),
		Beams: c.Int("beams"), LengthPenalty: c.Float64("length-penalty"), MaxNewTokens: c.Int("max-new-tokens"),
		Seed: c.Int64("seed"),
	}
	if err := cfg.Validate(); err != nil {
		return cliutil.Usagef("%v", err)
	}
	// SIGINT or SIGTERM stops generation between steps; the output's temporary file is removed.
	ctx, cancel := cliutil.SignalContext()
	defer cancel()
	stop := context.AfterFunc(c.Context, cancel)
	defer stop()
	dir, err := hub.Resolve(ctx, c.String("model"))
	if err != nil {
		return err
	}
	tok, err := tokenizer.Load(dir)
	if err != nil {
		return fmt.Errorf("the model's tokenizer: %w", err)
	}
	m, err := checkpoint.Load(dir)
	if err != nil {
		return err
	}
	if c.Bool("bf16") {
		m.SetBF16Inference(true)
		cfg.BF16Weights = true
	}
	cfg.EOS = tok.EOS()
	if cfg.EOS < 0 {
		cfg.EOS = int32(m.Config.EOS)
	}
	fp, err := checkpoint.Fingerprint(m)
	if err != nil {
		return err
	}
	name := c.String("model-name")
	if name == "" {
		name = c.String("model")
	}
	// Prompts are read first (they are small); --limit stops reading early.
	r, err := shard.NewReader[shard.Example](c.Args().Slice(), os.Stdin)
	if err != nil {
		return err
	}
	defer r.Close()
	var prompts []generate.Prompt
	for c.Int("limit") == 0 || len(prompts) < c.Int("limit") {
		e, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		file, row := r.Pos()
		prompts = append(prompts, generate.Prompt{Example: e, Pos: fmt.Sprintf("%s row %d", file, row)})
	}

	prog := cliutil.NewProgress(c, "cpo-generate", "sequences", int64(len(prompts)*c.Int("num-samples")))
	ntok := int64(0)
	rows, err := generate.NewRows(m, cfg, generate.RowOptions{
		Batch: c.Int("batch"), NumSamples: c.Int("num-samples"), TruncateLeft: truncate,
		ModelFingerprint: fp, ModelName: name, Tokenizer: tok,
		Progress: func(tokens int) { ntok += int64(tokens); prog.Add(1) },
	})
	if err != nil {
		return cliutil.Usagef("%v", err)
	}

	w, err := shard.NewWriter[shard.Generation](c.String("out"), os.Stdout, cliutil.ShardOptions(c))
	if err != nil {
		return err
	}
	err = rows.Run(ctx, prompts, func(g *shard.Generation) error { return w.Write(*g) })
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
	prog.Done()
	if !c.Bool("quiet") {
		fmt.Fprintf(c.App.ErrWriter, "cpo-generate: %d prompts, %d sequences, %d new tokens, decoding %s\n",
			len(prompts), len(prompts)*c.Int("num-samples"), ntok, cfg.Label())
	}
	return nil
}

func benchCmd(c *cli.Context) error {
	if err := setWorkers(c); err != nil {
		return err
	}
	arg := c.String("model")
	var m *model.Model
	if pc, err := checkpoint.Preset(arg); err == nil {
		if m, err = checkpoint.NewRandom(pc, 1); err != nil {
			return err
		}
	} else {
		if m, _, err = checkpoint.Resolve(c.Context, arg); err != nil {
			return err
		}
	}
	if c.Bool("bf16") {
		m.SetBF16Inference(true)
		arg += "(bf16)"
	}
	P, N := c.Int("prompt-len"), c.Int("new-tokens")
	if P < 1 || N < 2 || P+N > m.Config.MaxSeqLen {
		return cliutil.Usagef("need --prompt-len >= 1, --new-tokens >= 2 and their sum <= the context %d", m.Config.MaxSeqLen)
	}
	for _, b := range c.IntSlice("batch") {
		if b < 1 {
			return cliutil.Usagef("--batch %d must be >= 1", b)
		}
		res, err := generate.Bench(m, b, P, N, 1)
		if err != nil {
			return err
		}
		if c.Bool("json") {
			fmt.Printf(`{"impl":"go","model":%q,"batch":%d,"prompt_len":%d,"new_tokens":%d,"threads":%d,"prefill_ms":%.2f,"decode_ms_per_step":%.3f,"decode_ms_per_token":%.3f,"decode_tokens_per_s":%.2f,"tokens_per_s":%.2f}`+"\n",
				arg, b, P, N, gemm.Threads(), float64(res.Prefill.Microseconds())/1000, res.DecodeMsPerStep(), res.DecodeMsPerToken(), res.DecodeTokensPerSec(), res.TokensPerSec())
			continue
		}
		fmt.Printf("go     %-12s batch %3d  prompt %4d  new %4d  threads %2d  prefill %9.2f ms  decode %8.3f ms/step %7.3f ms/token  %8.2f tok/s decode  %8.2f tok/s overall\n",
			arg, b, P, N, gemm.Threads(), float64(res.Prefill.Microseconds())/1000, res.DecodeMsPerStep(), res.DecodeMsPerToken(), res.DecodeTokensPerSec(), res.TokensPerSec())
	}
	return nil
}
