// Command cpo-judge judges generations against their ground truth, in both presentation
// orders, with an OpenAI-compatible chat endpoint or an offline likelihood judge, and writes
// judgment shards.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/cpo-toolchain/cpo/pkg/checkpoint"
	"github.com/cpo-toolchain/cpo/pkg/cliutil"
	"github.com/cpo-toolchain/cpo/pkg/hub"
	"github.com/cpo-toolchain/cpo/pkg/judge"
	"github.com/cpo-toolchain/cpo/pkg/metrics"
	"github.com/cpo-toolchain/cpo/pkg/shard"
	"github.com/cpo-toolchain/cpo/pkg/tokenizer/prep"
)

func defaultCache() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "cpo-judge-cache.jsonl"
	}
	return filepath.Join(dir, "cpo", "judge-cache.jsonl")
}

func main() { cliutil.Run(newApp()) }

func newApp() *cli.App {
	app := cliutil.NewApp("cpo-judge", "judge generations against the ground truth, in both orders",
		`Reads generation shards (files, directories, globs, or stdin) and writes one judgment per
generation. Each generation is judged twice: shown as response A with the ground truth as B, then
the other way round. It wins if preferred in both orders, loses if in neither, ties if the orders
disagree (the judge's position bias cancels out), and is invalid if a verdict is missing.

Judges:
  --judge likelihood --judge-model DIR   offline (the default): prefers the response with the
        higher mean per-token log-probability given the prompt under a local model.
  --judge remote --base-url URL --model NAME   any OpenAI-compatible chat-completions endpoint
        (OpenAI, vLLM, llama.cpp server, Ollama); temperature 0. The API key is read from the
        environment variable named by --api-key-env (never logged); --api-key-env '' sends none.

Templates (remote): --template dolly or wiki (the paper's, section 5 and appendix A.2), or a
file whose text has the placeholders {query}, {response_a} and {response_b} ({{ and }} for
literal braces). {query} is the instruction (and its context) for prompts in cpo-tokenize's
Dolly training format, and the prompt itself otherwise (a Wikipedia prefix); --query prompt
always shows the prompt as the model saw it. Answers are parsed strictly: after trimming white space, punctuation and quotes
the answer must be exactly A or B, else the verdict is "unparsed" and the raw text is kept.

Remote answers go to an append-only, fsynced cache (--cache), so an interrupted run resumes
where it stopped and a rerun makes no calls. Retries: 408, 429, 5xx, timeouts and connection
failures, with exponential backoff and jitter, honouring Retry-After; 401/403/404 stop the run;
--max-conn-failures consecutive connection failures stop it too. A report (calls made, cached,
retried, failed) goes to stderr. A verdict that still fails is recorded as "error" and the
command exits 1 after writing the output (rerun to retry only those).`)
	app.ArgsUsage = "[GENERATIONS ...]"
	app.Flags = append(cliutil.OutputFlags(),
		&cli.StringFlag{Name: "judge", Value: "likelihood", Usage: "likelihood (offline, local model) or remote (OpenAI-compatible endpoint)"},
		&cli.StringFlag{Name: "judge-model", Usage: "likelihood judge: the local model: checkpoint directory, or hub id found in the Hugging Face cache or downloaded"},
		&cli.IntFlag{Name: "batch-tokens", Value: 2048, Usage: "likelihood judge: packed tokens per forward pass"},
		&cli.StringFlag{Name: "base-url", Value: "https://api.openai.com/v1", Usage: "remote judge: base URL; requests go to BASE/chat/completions (a URL already ending in /chat/completions is used as it is)"},
		&cli.StringFlag{Name: "model", Usage: "remote judge: model name sent to the endpoint (e.g. gpt-3.5-turbo)"},
		&cli.StringFlag{Name: "api-key-env", Value: "OPENAI_API_KEY", Usage: "remote judge: environment variable holding the API key; empty: send no key"},
		&cli.StringFlag{Name: "template", Value: "dolly", Usage: "remote judge: dolly, wiki, or a template file with {query} {response_a} {response_b}"},
		&cli.StringFlag{Name: "query", Value: "auto", Usage: "remote judge: what {query} shows: auto (a prompt in cpo-tokenize's Dolly training format as its instruction, plus its context; any other prompt as it is) or prompt (the prompt as the model saw it)"},
		&cli.IntFlag{Name: "max-tokens", Value: 8, Usage: "remote judge: max_tokens of each answer"},
		&cli.IntFlag{Name: "concurrency", Value: 4, Usage: "remote judge: requests in flight at once"},
		&cli.DurationFlag{Name: "timeout", Value: 60 * time.Second, Usage: "remote judge: time limit of one request"},
		&cli.IntFlag{Name: "retries", Value: 5, Usage: "remote judge: retries of one request after the first attempt"},
		&cli.DurationFlag{Name: "backoff", Value: time.Second, Usage: "remote judge: first retry delay, doubled each retry (with jitter), at most --max-backoff"},
		&cli.DurationFlag{Name: "max-backoff", Value: 60 * time.Second, Usage: "remote judge: longest retry delay (a server's Retry-After is honoured up to 2 minutes)"},
		&cli.IntFlag{Name: "max-conn-failures", Value: 8, Usage: "remote judge: consecutive connection failures or timeouts that stop the run"},
		&cli.StringFlag{Name: "cache", Usage: "remote judge: answer cache file (JSON lines); default $XDG_CACHE_HOME/cpo/judge-cache.jsonl (~/.cache/...)"},
		&cli.BoolFlag{Name: "no-cache", Usage: "remote judge: neither read nor write the cache"},
		&cli.StringSliceFlag{Name: "references", Usage: "example shards to take the ground truth from, by id (default: the generations' own reference column)"},
		cliutil.QuietFlag,
	)
	app.Action = run
	return app
}

func run(c *cli.Context) error {
	kind := c.String("judge")
	if kind != "likelihood" && kind != "remote" {
		return cliutil.Usagef("--judge %q: want likelihood or remote", kind)
	}
	// Check everything that can be checked before reading the input.
	for _, f := range []struct {
		name string
		min  int
	}{{"concurrency", 1}, {"retries", 0}, {"max-tokens", 1}, {"max-conn-failures", 1}, {"batch-tokens", 1}} {
		if v := c.Int(f.name); v < f.min {
			return cliutil.Usagef("--%s %d must be >= %d", f.name, v, f.min)
		}
	}
	for _, name := range []string{"timeout", "backoff", "max-backoff"} {
		if d := c.Duration(name); d <= 0 {
			return cliutil.Usagef("--%s %v must be positive", name, d)
		}
	}
	var tpl judge.Template
	var apiKey string
	if q := c.String("query"); q != "auto" && q != "prompt" {
		return cliutil.Usagef("--query %q: want auto or prompt", q)
	}
	if kind == "remote" {
		if c.String("model") == "" {
			return cliutil.Usagef("--judge remote needs --model (the endpoint's model name)")
		}
		var err error
		if tpl, err = judge.LoadTemplate(c.String("template")); err != nil {
			return cliutil.Usagef("%v", err)
		}
		if env := c.String("api-key-env"); env != "" {
			if apiKey = os.Getenv(env); apiKey == "" {
				return cliutil.Usagef("--judge remote: the API key variable %s is empty or unset (export it, or pass --api-key-env '' for a server without keys)", env)
			}
		}
	} else if c.String("judge-model") == "" {
		return cliutil.Usagef("--judge likelihood needs --judge-model DIR (a local checkpoint), or use --judge remote")
	}
	if c.NArg() == 0 && cliutil.IsTerminal(os.Stdin) {
		return cliutil.Usagef("give generation shards as arguments or on stdin")
	}
	if err := cliutil.CheckOutput(c.String("out"), append(c.Args().Slice(), c.StringSlice("references")...)); err != nil {
		return err
	}
	ctx, cancel := cliutil.SignalContext()
	defer cancel()

	items, err := judge.ReadItems(c.Args().Slice(), os.Stdin)
	if err != nil {
		return err
	}
	if refs := c.StringSlice("references"); len(refs) > 0 {
		if err := judge.JoinReferences(items, refs); err != nil {
			return err
		}
	}
	if err := judge.CheckItems(items); err != nil {
		return err
	}
	prog := cliutil.NewProgress(c, "cpo-judge", "verdicts", int64(2*len(items)))
	var js []shard.Judgment
	var st judge.Stats
	if kind == "remote" {
		js, st, err = runRemote(ctx, c, items, tpl, apiKey, prog)
	} else {
		js, st, err = runLikelihood(ctx, c, items, prog)
	}
	prog.Done()
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return cliutil.ErrInterrupted
		}
		return err
	}
	w, err := shard.NewWriter[shard.Judgment](c.String("out"), os.Stdout, cliutil.ShardOptions(c))
	if err != nil {
		return err
	}
	if err := w.Write(js...); err != nil {
		w.Abort()
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	if st.Failed > 0 {
		return fmt.Errorf("%d verdicts failed (recorded as \"error\", outcome invalid); rerun the same command to ask only those again", st.Failed)
	}
	return nil
}

func runRemote(ctx context.Context, c *cli.Context, items []judge.Item, tpl judge.Template, key string, prog *cliutil.Progress) ([]shard.Judgment, judge.Stats, error) {
	var cache *judge.Cache
	if !c.Bool("no-cache") {
		var err error
		path := c.String("cache")
		if path == "" {
			path = defaultCache()
		}
		if cache, err = judge.OpenCache(path); err != nil {
			return nil, judge.Stats{}, err
		}
		defer cache.Close()
		if cache.Skipped > 0 && !c.Bool("quiet") {
			fmt.Fprintf(c.App.ErrWriter, "cpo-judge: cache %s: skipped %d unreadable line(s)\n", cache.Path, cache.Skipped)
		}
	}
	var query func(string) string
	if c.String("query") == "auto" {
		query = prep.DollyQuery
	}
	var mu sync.Mutex
	rr := &judge.RemoteRun{
		Judge: &judge.Remote{BaseURL: c.String("base-url"), Model: c.String("model"), APIKey: key,
			MaxTokens: c.Int("max-tokens"), Timeout: c.Duration("timeout"), Retries: c.Int("retries"),
			BaseDelay: c.Duration("backoff"), MaxDelay: c.Duration("max-backoff"), MaxConnFailures: c.Int("max-conn-failures")},
		Template: tpl, Cache: cache, Concurrency: c.Int("concurrency"),
		Query:    query,
		Progress: func() { mu.Lock(); prog.Add(1); mu.Unlock() },
	}
	js, st, err := rr.Run(ctx, items)
	if !c.Bool("quiet") || st.Failed > 0 || st.Unparsed > 0 {
		fmt.Fprintf(c.App.ErrWriter, "cpo-judge: %s\n", st)
	}
	return js, st, err
}

func runLikelihood(ctx context.Context, c *cli.Context, items []judge.Item, prog *cliutil.Progress) ([]shard.Judgment, judge.Stats, error) {
	dir, err := hub.Resolve(ctx, c.String("judge-model"))
	if err != nil {
		return nil, judge.Stats{}, err
	}
	m, err := checkpoint.Load(dir)
	if err != nil {
		return nil, judge.Stats{}, err
	}
	fp, err := checkpoint.Fingerprint(m)
	if err != nil {
		return nil, judge.Stats{}, err
	}
	texts, err := metrics.LoadTexts(dir)
	if err != nil {
		return nil, judge.Stats{}, err
	}
	sc := metrics.NewScorer(m)
	sc.BatchTokens = c.Int("batch-tokens")
	l := &judge.Likelihood{Scorer: sc, Texts: texts, Name: "likelihood:" + fp, Progress: func(n int) { prog.Add(int64(n)) }}
	js, st, err := l.Run(ctx, items)
	if err == nil && !c.Bool("quiet") {
		fmt.Fprintf(c.App.ErrWriter, "cpo-judge: %d generations judged by the likelihood of %s (%d verdicts, no calls)\n", len(js), dir, st.Asked)
	}
	return js, st, err
}
