// Command cpo-embed ranks the candidates of candidates shards: by the cosine similarity of each
// candidate's embedding to the ground truth's (the paper's section 4.3), or by scores the user
// brings. It fills each candidate's score and the row's ranking and rank_by (see pkg/embed).
package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/cpo-toolchain/cpo/pkg/checkpoint"
	"github.com/cpo-toolchain/cpo/pkg/cliutil"
	"github.com/cpo-toolchain/cpo/pkg/embed"
	"github.com/cpo-toolchain/cpo/pkg/shard"
	"github.com/cpo-toolchain/cpo/pkg/tokenizer"
)

func main() { cliutil.Run(newApp()) }

func newApp() *cli.App {
	app := cliutil.NewApp("cpo-embed", "rank candidates by embedding similarity to the ground truth, or by scores you bring",
		`Reads candidates shards (files, directories, globs; stdin when none) and writes them back with
each candidate's score and each row's ranking filled in.

With --model: a candidate's embedding is the mean (--pooling mean) or last-token (--pooling last)
final hidden state of a causal LM over the candidate's tokens, computed with the prompt before
them (--no-prompt: without); its score is the cosine similarity to the ground truth's embedding
(the ground truth's is 1). The ranking is the ground truth, then the negatives from the most to
the least similar (ties: lower index first); rank_by is cosine:<model fingerprint>:<pooling>:last.

With --rank-by-score FILE: scores come from FILE, JSON lines {"id": ..., "candidate": j, "score":
s} or a Parquet file with columns id, candidate, score; higher is better; every negative needs
one. rank_by is score:<--score-name>.

--write-embeddings E.npy also writes the embeddings: a NumPy float32 array of shape (M, C), one
row per candidate of every row in input order, and E.index.jsonl naming each one ({"row",
"id", "candidate", "kind"}).`)
	app.ArgsUsage = "[FILE|DIR|GLOB ...]"
	app.Flags = append(cliutil.OutputFlags(),
		&cli.StringFlag{Name: "model", Aliases: []string{"m"}, Usage: "embedding model: checkpoint directory or hub id (org/name[@revision]) in the Hugging Face cache"},
		&cli.StringFlag{Name: "pooling", Value: embed.Mean, Usage: "how a candidate's final hidden states become one vector: mean or last"},
		&cli.BoolFlag{Name: "no-prompt", Usage: "embed each candidate without its prompt before it"},
		&cli.StringFlag{Name: "tokenizer", Usage: "tokenizer (file or directory) whose fingerprint the rows must carry; default: the model's"},
		&cli.BoolFlag{Name: "skip-tokenizer-check", Usage: "do not compare the rows' tokenizer fingerprint with the model's tokenizer"},
		&cli.StringFlag{Name: "write-embeddings", Usage: "also write the embeddings to this .npy file (and its .index.jsonl beside it)"},
		&cli.StringFlag{Name: "rank-by-score", Usage: "rank by the scores of this file (JSON lines or .parquet of id, candidate, score) instead of a model"},
		&cli.StringFlag{Name: "score-name", Usage: "name recorded in rank_by as score:<name> (default: the score file's base name)"},
		&cli.IntFlag{Name: "workers", DefaultText: "all cores", Usage: "batches embedded at once"},
		&cli.IntFlag{Name: "batch-tokens", Value: embed.DefaultBatchTokens, Usage: "packed tokens per forward pass"},
		&cli.IntFlag{Name: "group-rows", Value: embed.DefaultGroupRows, Usage: "rows read, embedded in parallel and written at a time"},
		cliutil.QuietFlag,
	)
	app.Action = action
	return app
}

func action(c *cli.Context) error {
	byScore := c.String("rank-by-score")
	if (byScore == "") == (c.String("model") == "") {
		return cliutil.Usagef("give exactly one of --model and --rank-by-score")
	}
	if byScore != "" && (c.String("write-embeddings") != "" || c.IsSet("pooling") || c.Bool("no-prompt")) {
		return cliutil.Usagef("--write-embeddings, --pooling and --no-prompt need --model, not --rank-by-score")
	}
	if p := c.String("pooling"); p != embed.Mean && p != embed.Last {
		return cliutil.Usagef("--pooling %q: want %s or %s", p, embed.Mean, embed.Last)
	}
	if c.String("write-embeddings") != "" && !strings.HasSuffix(c.String("write-embeddings"), ".npy") {
		return cliutil.Usagef("--write-embeddings %q: the name must end in .npy", c.String("write-embeddings"))
	}
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
	var sc embed.Scores
	var o embed.Options
	if byScore != "" {
		if sc, err = embed.LoadScores(byScore); err != nil {
			return err
		}
	} else {
		m, dir, err := checkpoint.Resolve(c.Context, c.String("model"))
		if err != nil {
			return err
		}
		fp, err := checkpoint.Fingerprint(m)
		if err != nil {
			return err
		}
		o = embed.Options{Model: m, Fingerprint: fp, Pooling: c.String("pooling"), NoPrompt: c.Bool("no-prompt"),
			Workers: c.Int("workers"), BatchTokens: c.Int("batch-tokens"), GroupRows: c.Int("group-rows")}
		if !c.Bool("skip-tokenizer-check") {
			src := dir
			if c.String("tokenizer") != "" {
				src = c.String("tokenizer")
			}
			tok, err := tokenizer.Load(src)
			if err != nil {
				return fmt.Errorf("no usable tokenizer to check the shards' tokenizer fingerprint against (%v); give --tokenizer or --skip-tokenizer-check", err)
			}
			if tok.VocabSize() > m.Config.VocabSize {
				return fmt.Errorf("model %s has %d token ids but the tokenizer has %d: they do not belong together", dir, m.Config.VocabSize, tok.VocabSize())
			}
			o.Tokenizer = tok.Fingerprint()
		}
	}
	r, err := shard.NewReader[shard.Candidates](args, os.Stdin)
	if err != nil {
		return err
	}
	defer r.Close()
	w, err := shard.NewWriter[shard.Candidates](c.String("out"), os.Stdout, cliutil.ShardOptions(c))
	if err != nil {
		return err
	}
	prog := cliutil.NewProgress(c, "cpo-embed", "rows", countRows(args))
	write := func(rows ...shard.Candidates) error { return w.Write(rows...) }
	var report func(io.Writer)
	if byScore != "" {
		name := c.String("score-name")
		if name == "" {
			name = strings.TrimSuffix(filepath.Base(byScore), filepath.Ext(byScore))
		}
		var st embed.ScoreStats
		st, err = embed.RunScores(ctx, r, func(rows ...shard.Candidates) error { prog.Add(int64(len(rows))); return write(rows...) }, sc, name)
		report = func(w io.Writer) {
			if !c.Bool("quiet") || st.Unused > 0 {
				st.Report(w)
			}
		}
	} else {
		var ew *embed.EmbeddingWriter
		if p := c.String("write-embeddings"); p != "" {
			if ew, err = embed.NewEmbeddingWriter(p, o.Model.Config.DModel); err != nil {
				w.Abort()
				return err
			}
			o.Embeddings = ew.Write
		}
		o.Progress = prog.Add
		var st embed.Stats
		st, err = embed.Run(ctx, r, write, o)
		if ew != nil {
			if err == nil {
				err = ew.Close()
			} else {
				ew.Abort()
			}
		}
		report = func(w io.Writer) {
			if !c.Bool("quiet") || st.Notable() {
				st.Report(w)
			}
		}
	}
	if err == nil {
		err = w.Close()
	} else {
		w.Abort()
		if ctx.Err() != nil {
			err = cliutil.ErrInterrupted
		}
	}
	prog.Done()
	errw := c.App.ErrWriter
	if errw == nil {
		errw = os.Stderr
	}
	report(errw)
	return err
}

// countRows is the number of rows of the input files, for the progress report (0 if unknown).
func countRows(args []string) int64 {
	n, _ := shard.CountRows(args)
	return n
}
