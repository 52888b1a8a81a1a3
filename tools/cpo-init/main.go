// Command cpo-init writes a randomly initialised model (GPT-2 style initialisation) as a
// Hugging Face checkpoint directory, for from-scratch training and for tests.
package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/cpo-toolchain/cpo/pkg/checkpoint"
	"github.com/cpo-toolchain/cpo/pkg/cliutil"
	"github.com/cpo-toolchain/cpo/pkg/safetensors"
)

func main() { cliutil.Run(newApp()) }

func newApp() *cli.App {
	app := cliutil.NewApp("cpo-init", "write a randomly initialised GPT-2 or Llama checkpoint",
		`Starts from --preset (tiny: GPT-2, 4 layers, 4 heads, width 256, vocab 8192, context 128;
llama-tiny: the same as Llama with 2 kv heads; gpt2-small: the 124M GPT-2), or from the tiny
preset of --arch, and applies the size flags given. Weights are N(0, 0.02), residual output
projections N(0, 0.02/sqrt(2L)), norms 1, biases 0, from --seed. The output directory holds
config.json, model.safetensors and, with --tokenizer, the tokenizer files; it appears atomically
and replaces an older checkpoint of the same name.`)
	app.Flags = []cli.Flag{
		&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Required: true, Usage: "checkpoint directory to write"},
		&cli.StringFlag{Name: "preset", Usage: "base architecture: " + strings.Join(checkpoint.PresetNames(), ", ") + " (default tiny, or llama-tiny with --arch llama)"},
		&cli.StringFlag{Name: "arch", Usage: "gpt2 or llama"},
		&cli.IntFlag{Name: "vocab", Usage: "vocabulary size V"},
		&cli.IntFlag{Name: "context", Usage: "maximum sequence length"},
		&cli.IntFlag{Name: "layers", Usage: "number of layers L"},
		&cli.IntFlag{Name: "heads", Usage: "attention heads NH"},
		&cli.IntFlag{Name: "kv-heads", Usage: "llama: key/value heads (grouped-query attention); default = heads"},
		&cli.IntFlag{Name: "width", Usage: "model width C"},
		&cli.IntFlag{Name: "ffn", Usage: "feed-forward width (default 4C for gpt2, 8C/3 rounded up to 32 for llama)"},
		&cli.Float64Flag{Name: "rope-theta", Usage: "llama: RoPE base"},
		&cli.Float64Flag{Name: "norm-eps", Usage: "LayerNorm / RMSNorm epsilon"},
		&cli.BoolFlag{Name: "tie", Usage: "llama: tie the lm head to the token embedding (gpt2 always ties)"},
		&cli.IntFlag{Name: "bos", Usage: "bos_token_id (-1: none)"},
		&cli.IntFlag{Name: "eos", Usage: "eos_token_id (-1: none)"},
		&cli.Uint64Flag{Name: "seed", Value: 1, Usage: "random seed"},
		&cli.StringFlag{Name: "dtype", Value: "f32", Usage: "stored dtype: f32 or bf16"},
		&cli.StringFlag{Name: "max-shard-size", Value: "0", Usage: "split the weights into shards of at most this size plus model.safetensors.index.json (e.g. 2GB, 500MiB; 0: one file)"},
		&cli.StringSliceFlag{Name: "tokenizer", Usage: "tokenizer file(s) to copy beside the weights (tokenizer.json, tokenizer.model, ...)"},
		cliutil.QuietFlag,
	}
	app.Action = run
	return app
}

func run(c *cli.Context) error {
	if c.NArg() > 0 {
		return cliutil.Usagef("unexpected argument %q", c.Args().First())
	}
	preset := c.String("preset")
	if preset == "" {
		preset = "tiny"
		if c.String("arch") == "llama" {
			preset = "llama-tiny"
		}
	}
	base, err := checkpoint.Preset(preset)
	if err != nil {
		return cliutil.UsageError{Err: err}
	}
	s := checkpoint.Sizes{
		Arch: c.String("arch"), VocabSize: c.Int("vocab"), MaxSeqLen: c.Int("context"),
		NLayer: c.Int("layers"), NHead: c.Int("heads"), NKVHead: c.Int("kv-heads"), DModel: c.Int("width"),
		DFF: c.Int("ffn"), RopeTheta: c.Float64("rope-theta"), NormEps: c.Float64("norm-eps"),
	}
	if c.IsSet("tie") {
		v := c.Bool("tie")
		s.Tie = &v
	}
	if c.IsSet("bos") {
		v := c.Int("bos")
		s.BOS = &v
	}
	if c.IsSet("eos") {
		v := c.Int("eos")
		s.EOS = &v
	}
	cfg, err := s.Apply(base)
	if err != nil {
		return cliutil.UsageError{Err: err}
	}
	var dt safetensors.DType
	switch strings.ToLower(c.String("dtype")) {
	case "f32", "float32":
		dt = safetensors.F32
	case "bf16", "bfloat16":
		dt = safetensors.BF16
	default:
		return cliutil.Usagef("--dtype %q: want f32 or bf16", c.String("dtype"))
	}
	shard, err := checkpoint.ParseSize(c.String("max-shard-size"))
	if err != nil {
		return cliutil.Usagef("--max-shard-size: %v", err)
	}
	m, err := checkpoint.NewRandom(cfg, c.Uint64("seed"))
	if err != nil {
		return err
	}
	out := c.String("out")
	opt := checkpoint.Options{DType: dt, MaxShardBytes: shard, TokenizerFiles: c.StringSlice("tokenizer")}
	if err := checkpoint.SaveWith(m, out, opt); err != nil {
		return err
	}
	if !c.Bool("quiet") {
		fp, _ := checkpoint.Fingerprint(m)
		fmt.Fprintf(os.Stderr, "cpo-init: wrote %s: %s, %d layers, %d heads, width %d, vocab %d, %d parameters, %s, fingerprint %s\n",
			out, cfg.Arch, cfg.NLayer, cfg.NHead, cfg.DModel, cfg.VocabSize, m.NumParams(), dt, fp)
	}
	return nil
}
