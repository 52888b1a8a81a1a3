// Command cpo-score turns judgments (and generations, for the likelihood metrics) into the
// paper's numbers: win rates with bootstrap intervals, paired differences against a baseline,
// reverse-KL (eq. 9) and NLL (eq. 10) under a scoring model, as score shards, Markdown and CSV
// tables and a PNG figure.
package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/cpo-toolchain/cpo/pkg/checkpoint"
	"github.com/cpo-toolchain/cpo/pkg/cliutil"
	"github.com/cpo-toolchain/cpo/pkg/hub"
	"github.com/cpo-toolchain/cpo/pkg/judge"
	"github.com/cpo-toolchain/cpo/pkg/metrics"
	"github.com/cpo-toolchain/cpo/pkg/shard"
)

func main() { cliutil.Run(newApp()) }

func newApp() *cli.App {
	app := cliutil.NewApp("cpo-score", "win rates, paired differences, reverse-KL and NLL, as tables and figures",
		`Reads judgment shards (files, directories, globs; stdin when no argument is given and
--generations is not) and, with --generations and --scorer-model, generation shards.

Per model and decoding configuration:
  win_rate      mean over valid judgments of win = 1, tie = 1/2, loss = 0 (a tie means the
                judge's two orders disagreed: no preference, half a win); invalid judgments
                (a verdict missing or unparsed) are left out and counted in invalid_rate
  tie_rate      ties / valid judgments;  invalid_rate  invalid / all judgments
  win_rate_diff with --baseline NAME: model minus baseline, paired over the (prompt, sample)
                items both judged validly, with a paired bootstrap interval
  reverse_kl    eq. (9): 1/|X| sum_x sum_{y in Y_x} Q(y|x) (log Q(y|x) - log P(y|x)), Q from
                the generations' logp column, P the --scorer-model, Y_x the distinct
                continuations generated for prompt x; natural logs (nats)
  nll           eq. (10): 1/|X| sum_x sum_{y in Y_x} -log P(y|x) / |y|, |y| in scored tokens
Each with a 95% percentile-bootstrap interval (--bootstrap resamples, seeded by --seed; prompts
are resampled for eq. 9 and 10).

Outputs: score shards to --out, or to stdout when it is not a terminal; the Markdown table to
stdout when the shards go to --out or stdout is a terminal, else to stderr; --markdown, --csv
and --plot write files. Tables have one row per (metric, decoding) and one column per model
(--table-columns model) or, for WISE-FT weight-space ensembles, models grouped by base name and
sorted by alpha (--table-columns alpha) with an alpha line under the header, or, as the paper's
Table 3, one column per decoding configuration and a row per (metric, model) (--table-columns
decoding). The alpha naming
convention: a model whose name (last path element of model_name) is "<base>-a<alpha>", e.g.
"mixnr-a0.3" or "wise-a0", has that alpha; other models show "-".`)
	app.ArgsUsage = "[JUDGMENTS ...]"
	app.Flags = append(cliutil.OutputFlags(),
		&cli.StringFlag{Name: "baseline", Usage: "model to compare every other model with (label, model_name, or a fingerprint prefix of 8+ characters), e.g. mle; its column comes first"},
		&cli.IntFlag{Name: "bootstrap", Value: 10000, Usage: "bootstrap resamples for the 95% intervals (0: no intervals)"},
		&cli.Uint64Flag{Name: "seed", Value: 1, Usage: "random seed of the bootstrap"},
		&cli.StringSliceFlag{Name: "generations", Usage: "generation shards for reverse_kl and nll (needs --scorer-model)"},
		&cli.BoolFlag{Name: "exact-match", Usage: "also score the fraction of --generations identical to their reference (white space trimmed): for data with one right answer"},
		&cli.StringFlag{Name: "scorer-model", Usage: "the larger model P for reverse_kl and nll: checkpoint directory, or hub id found in the Hugging Face cache or downloaded"},
		&cli.IntFlag{Name: "batch-tokens", Value: 2048, Usage: "scorer: packed tokens per forward pass"},
		&cli.StringFlag{Name: "table-columns", Value: "model", Usage: "table columns: model (one per model), alpha (grouped by base name, sorted by alpha) or decoding (one per decoding configuration, a row per model, as the paper's Table 3)"},
		&cli.StringFlag{Name: "markdown", Usage: "also write the Markdown table to this file"},
		&cli.StringFlag{Name: "csv", Usage: "write the table as CSV to this file"},
		&cli.StringFlag{Name: "plot", Usage: "write a PNG figure (like the paper's Figure 1) of --plot-metric to this file"},
		&cli.StringFlag{Name: "plot-metric", Usage: "metric(s) of the figure, comma-separated, one panel each: win_rate, win_rate_diff, tie_rate, invalid_rate, reverse_kl, nll (default: reverse_kl,nll as the paper's Figure 1 when --generations are scored, else win_rate)"},
		&cli.StringFlag{Name: "title", Usage: "title of the figure (default: the metric)"},
		&cli.IntFlag{Name: "digits", Value: 3, Usage: "decimals in the Markdown table"},
		&cli.BoolFlag{Name: "no-ci", Usage: "leave the intervals out of the Markdown table"},
		cliutil.QuietFlag,
	)
	app.Action = run
	return app
}

func run(c *cli.Context) error {
	mode := c.String("table-columns")
	if mode != "model" && mode != "alpha" && mode != "decoding" {
		return cliutil.Usagef("--table-columns %q: want model, alpha or decoding", mode)
	}
	gens := c.StringSlice("generations")
	exact := c.Bool("exact-match")
	if c.String("scorer-model") != "" && len(gens) == 0 {
		return cliutil.Usagef("--scorer-model scores generations: give --generations too")
	}
	if len(gens) > 0 && c.String("scorer-model") == "" && !exact {
		return cliutil.Usagef("--generations are scored with --scorer-model (reverse_kl, nll) and/or --exact-match")
	}
	if exact && len(gens) == 0 {
		return cliutil.Usagef("--exact-match needs --generations")
	}
	if err := cliutil.CheckOutput(c.String("out"), append(c.Args().Slice(), gens...)); err != nil {
		return err
	}
	B, seed := c.Int("bootstrap"), c.Uint64("seed")
	var wr []metrics.WinRate
	var diffs []metrics.Diff
	if c.NArg() > 0 || len(gens) == 0 {
		if c.NArg() == 0 && cliutil.IsTerminal(os.Stdin) {
			return cliutil.Usagef("give judgment shards as arguments or on stdin (or --generations with --scorer-model)")
		}
		js, err := readJudgments(c.Args().Slice())
		if err != nil {
			return err
		}
		if wr, err = metrics.WinRates(js, B, seed); err != nil {
			return err
		}
		if b := c.String("baseline"); b != "" {
			if diffs, err = metrics.PairedDiffs(js, b, B, seed); err != nil {
				return err
			}
		}
	} else if c.String("baseline") != "" {
		return cliutil.Usagef("--baseline compares win rates: give judgment shards too")
	}
	var lk []metrics.LikelihoodResult
	var scorerFP string
	if len(gens) > 0 && c.String("scorer-model") != "" {
		var err error
		if lk, scorerFP, err = likelihood(c, gens, B, seed); err != nil {
			return err
		}
	}
	scores := metrics.ScoreRows(wr, diffs, lk, scorerFP)
	if exact {
		items, err := judge.ReadItems(gens, nil)
		if err != nil {
			return err
		}
		rows := make([]shard.Generation, len(items))
		for i, it := range items {
			rows[i] = it.Gen
		}
		scores = append(scores, metrics.ExactRows(metrics.ExactMatch(rows, B, seed))...)
	}
	if b := c.String("baseline"); b != "" {
		// The baseline is the first column, as MLE is in the paper's tables.
		sort.SliceStable(scores, func(i, j int) bool {
			return metrics.MatchModel(b, scores[i].ModelName, scores[i].Model) && !metrics.MatchModel(b, scores[j].ModelName, scores[j].Model)
		})
	}
	table, err := metrics.BuildTable(scores, mode)
	if err != nil {
		return err
	}
	// Every output is made in memory first, so that one failing (a figure of a metric that was
	// not computed) leaves no file of a failed run behind; files are then replaced atomically.
	var md bytes.Buffer
	if err := table.Markdown(&md, c.Int("digits"), !c.Bool("no-ci")); err != nil {
		return err
	}
	type file struct {
		path string
		data []byte
	}
	var files []file
	if p := c.String("markdown"); p != "" {
		files = append(files, file{p, md.Bytes()})
	}
	if p := c.String("csv"); p != "" {
		var b bytes.Buffer
		if err := table.CSV(&b); err != nil {
			return err
		}
		files = append(files, file{p, b.Bytes()})
	}
	if p := c.String("plot"); p != "" {
		var plotted []string
		for _, m := range strings.Split(c.String("plot-metric"), ",") {
			if m = strings.TrimSpace(m); m != "" {
				plotted = append(plotted, m)
			}
		}
		if len(plotted) == 0 {
			// The paper's Figure 1 when the likelihood metrics were computed, else win rates.
			plotted = []string{metrics.MetricWinRate}
			if len(lk) > 0 {
				plotted = []string{metrics.MetricReverseKL, metrics.MetricNLL}
			}
		}
		title := c.String("title")
		if title == "" && len(plotted) == 1 {
			title = plotted[0]
		}
		png, err := table.PlotMetrics(plotted, title)
		if err != nil {
			return err
		}
		files = append(files, file{p, png})
	}
	shardsToStdout := c.String("out") == "" && !cliutil.IsTerminal(os.Stdout)
	if c.String("out") != "" || shardsToStdout {
		w, err := shard.NewWriter[shard.Score](c.String("out"), os.Stdout, cliutil.ShardOptions(c))
		if err != nil {
			return err
		}
		if err := w.Write(scores...); err != nil {
			w.Abort()
			return err
		}
		if err := w.Close(); err != nil {
			return err
		}
	}
	for _, f := range files {
		if err := cliutil.WriteFileAtomic(f.path, f.data); err != nil {
			return err
		}
	}
	var human io.Writer = c.App.Writer
	if shardsToStdout {
		human = c.App.ErrWriter
	}
	if !c.Bool("quiet") || !shardsToStdout {
		if _, err := human.Write(md.Bytes()); err != nil {
			return err
		}
	}
	return nil
}

func readJudgments(args []string) ([]metrics.Judged, error) {
	r, err := shard.NewReader[shard.Judgment](args, os.Stdin)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var out []metrics.Judged
	for {
		j, err := r.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		file, row := r.Pos()
		out = append(out, metrics.Judged{Judgment: j, Where: fmt.Sprintf("%s row %d", file, row)})
	}
}

func likelihood(c *cli.Context, gens []string, B int, seed uint64) ([]metrics.LikelihoodResult, string, error) {
	items, err := judge.ReadItems(gens, nil)
	if err != nil {
		return nil, "", err
	}
	dir, err := hub.Resolve(c.Context, c.String("scorer-model"))
	if err != nil {
		return nil, "", err
	}
	m, err := checkpoint.Load(dir)
	if err != nil {
		return nil, "", err
	}
	fp, err := checkpoint.Fingerprint(m)
	if err != nil {
		return nil, "", err
	}
	texts, err := metrics.LoadTexts(dir)
	if err != nil {
		return nil, "", err
	}
	sc := metrics.NewScorer(m)
	sc.BatchTokens = c.Int("batch-tokens")
	prog := cliutil.NewProgress(c, "cpo-score", "generations", int64(len(items)))
	var scored []metrics.Scored
	const chunk = 64
	for lo := 0; lo < len(items); lo += chunk {
		hi := min(lo+chunk, len(items))
		var ps, ys [][]int32
		for _, it := range items[lo:hi] {
			g := it.Gen
			p, y := texts.Tokens(g.Tokenizer, g.PromptIDs, g.IDs, g.Prompt, g.Text, g.Finish == "eos")
			ps, ys = append(ps, p), append(ys, y)
		}
		lp, err := sc.Score(ps, ys)
		if err != nil {
			if pe, ok := err.(*metrics.PairError); ok {
				return nil, "", fmt.Errorf("%s: %w", items[lo+pe.Index].Where, pe.Err)
			}
			return nil, "", err
		}
		for k, it := range items[lo:hi] {
			g := it.Gen
			scored = append(scored, metrics.Scored{Group: metrics.Group{Model: g.Model, ModelName: g.ModelName, Decoding: g.Decoding},
				Prompt: g.ID, Y: idsKey(g.IDs), LogQ: g.Logp, LogP: lp[k].Sum, Tokens: lp[k].Tokens, Where: it.Where})
		}
		prog.Add(int64(hi - lo))
	}
	prog.Done()
	res, err := metrics.Likelihood(scored, B, seed)
	return res, fp, err
}

func idsKey(ids []int32) string {
	var b strings.Builder
	for _, id := range ids {
		fmt.Fprintf(&b, "%d,", id)
	}
	return b.String()
}
