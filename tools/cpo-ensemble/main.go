// Command cpo-ensemble interpolates two checkpoints of one architecture,
// theta = a*theta_MLE + (1-a)*theta_CPO, writing one Hugging Face checkpoint per value of a.
package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/cpo-toolchain/cpo/pkg/cliutil"
	"github.com/cpo-toolchain/cpo/pkg/ensemble"
	"github.com/cpo-toolchain/cpo/pkg/hub"
	"github.com/cpo-toolchain/cpo/pkg/safetensors"
)

func main() { cliutil.Run(newApp()) }

func newApp() *cli.App {
	app := cliutil.NewApp("cpo-ensemble", "interpolate an MLE and a CPO checkpoint: a*theta_MLE + (1-a)*theta_CPO",
		`Weight-space ensembling (WiSE-FT) as in the paper, which sweeps a over 0, 0.1, 0.3, 0.5, 0.7
and 0.9. Both checkpoints must have the same config.json (up to torch_dtype), the same tensors
and shapes, and identical tokenizer files where both have them. Tensors are streamed one at a
time and mixed into every output at once, so memory stays near the size of the largest tensor.
Each element is a*x + (1-a)*y in float64 rounded once to float32; a=1 and a=0 copy the inputs
bit for bit. Every output is a Hugging Face checkpoint directory (config.json and tokenizer
files copied from --mle, model.safetensors) that appears atomically.

Example:
  cpo-ensemble --mle ckpt/mle --cpo ckpt/cpo --alpha 0,0.1,0.3,0.5,0.7,0.9 --out 'ckpt/ens-a{alpha}'`)
	app.Flags = []cli.Flag{
		&cli.StringFlag{Name: "mle", Required: true, Usage: "the MLE checkpoint (weight a): directory or hub id"},
		&cli.StringFlag{Name: "cpo", Required: true, Usage: "the CPO checkpoint (weight 1-a): directory or hub id"},
		&cli.StringFlag{Name: "alpha", Aliases: []string{"a"}, Required: true, Usage: "weight a of the MLE checkpoint: one value or a comma-separated list (e.g. 0,0.1,0.3,0.5,0.7,0.9)"},
		&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Required: true, Usage: "output directory; with several values it must contain {alpha}, replaced by each value (e.g. 'ens-a{alpha}' gives ens-a0.3)"},
		&cli.StringFlag{Name: "dtype", Value: "auto", Usage: "stored type of the outputs: auto (the inputs' type when both are F32 or both BF16, else F32), f32 or bf16"},
		cliutil.QuietFlag,
	}
	app.Action = run
	return app
}

func run(c *cli.Context) error {
	if c.NArg() > 0 {
		return cliutil.Usagef("unexpected argument %q (all inputs are flags)", c.Args().First())
	}
	var alphas []float64
	for _, f := range strings.Split(c.String("alpha"), ",") {
		a, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil {
			return cliutil.Usagef("--alpha: %q is not a number", f)
		}
		alphas = append(alphas, a)
	}
	pattern := c.String("out")
	if len(alphas) > 1 && !strings.Contains(pattern, "{alpha}") {
		return cliutil.Usagef("--out %q: with %d values of --alpha the pattern must contain {alpha}", pattern, len(alphas))
	}
	var opt ensemble.Options
	switch strings.ToLower(c.String("dtype")) {
	case "auto":
	case "f32", "float32":
		opt.DType = safetensors.F32
	case "bf16", "bfloat16":
		opt.DType = safetensors.BF16
	default:
		return cliutil.Usagef("--dtype %q: want auto, f32 or bf16", c.String("dtype"))
	}
	// SIGINT or SIGTERM stops between tensors; the temporary output directories are removed.
	ctx, cancel := cliutil.SignalContext()
	defer cancel()
	stop := context.AfterFunc(c.Context, cancel)
	defer stop()
	opt.Context = ctx
	mle, err := hub.Resolve(ctx, c.String("mle"))
	if err != nil {
		return err
	}
	cpo, err := hub.Resolve(ctx, c.String("cpo"))
	if err != nil {
		return err
	}
	var outs []ensemble.Output
	for _, a := range alphas {
		outs = append(outs, ensemble.Output{Alpha: a, Dir: ensemble.OutputDir(pattern, a)})
	}
	prog := cliutil.NewProgress(c, "cpo-ensemble", "params", 0)
	var last int64
	opt.Progress = func(done, total int64) {
		prog.Total = total
		prog.Add(done - last)
		last = done
	}
	if err := ensemble.Interpolate(mle, cpo, outs, opt); err != nil {
		if errors.Is(err, context.Canceled) {
			return cliutil.ErrInterrupted
		}
		return err
	}
	prog.Done()
	if !c.Bool("quiet") {
		for _, o := range outs {
			fmt.Fprintf(c.App.ErrWriter, "cpo-ensemble: a=%g -> %s\n", o.Alpha, o.Dir)
		}
	}
	return nil
}
