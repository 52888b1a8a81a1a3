// Command cpo-shard inspects and reshapes the Parquet shards that the cpo-* tools pass to each
// other: schema, count, head, cat, split, sample, to-jsonl, from-jsonl and stats.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/cpo-toolchain/cpo/pkg/cliutil"
	"github.com/cpo-toolchain/cpo/pkg/shard"
)

func main() {
	app := cliutil.NewApp("cpo-shard", "inspect, merge, split and convert cpo shards",
		`Every cpo tool reads and writes Parquet shards (zstd) of one of the schemas in docs/shards.md.
Inputs are files, directories (their *.parquet files) or glob patterns; with none, one Parquet
file is read from standard input (spooled to a temporary file, since the footer is at the end).
Shard outputs go to --out (a .parquet file, or a directory of parts) or to standard output.
Text outputs are readable on a terminal and JSON when piped.`)
	in := "[FILE|DIR|GLOB ...]"
	app.Commands = []*cli.Command{
		{Name: "schema", Usage: "print the schema of a shard, or of --name, with each column's type and meaning", ArgsUsage: in,
			Flags:  []cli.Flag{&cli.StringFlag{Name: "name", Usage: "schema name (example, candidates, generation, judgment, score) instead of reading a shard"}},
			Action: schemaCmd},
		{Name: "count", Usage: "print the number of rows", ArgsUsage: in, Action: countCmd},
		{Name: "head", Usage: "print the first rows as JSON (one per line when piped)", ArgsUsage: in,
			Flags:  []cli.Flag{&cli.Int64Flag{Name: "n", Aliases: []string{"lines"}, Value: 5, Usage: "number of rows"}},
			Action: headCmd},
		{Name: "cat", Usage: "merge shards into one output", ArgsUsage: in, Flags: cliutil.OutputFlags(), Action: catCmd},
		{Name: "split", Usage: "split into N shards (--n) or shards of R rows (--rows) in --out DIR", ArgsUsage: in,
			Flags: append(cliutil.OutputFlags(),
				&cli.IntFlag{Name: "n", Usage: "number of shards"},
				&cli.Int64Flag{Name: "rows", Usage: "rows per shard"}),
			Action: splitCmd},
		{Name: "sample", Usage: "a seeded uniform sample of rows, in input order", ArgsUsage: in,
			Flags: append(cliutil.OutputFlags(),
				&cli.IntFlag{Name: "n", Required: true, Usage: "number of rows to keep"},
				&cli.Int64Flag{Name: "seed", Value: 1, Usage: "random seed"}),
			Action: sampleCmd},
		{Name: "filter", Usage: "keep the rows whose string column equals a value: --where split=test", ArgsUsage: in,
			Flags: append(cliutil.OutputFlags(),
				&cli.StringFlag{Name: "where", Required: true, Usage: "COLUMN=VALUE, e.g. split=train or source=dolly (string columns)"}),
			Action: filterCmd},
		{Name: "to-jsonl", Usage: "write every row as one JSON line", ArgsUsage: in, Action: toJSONLCmd},
		{Name: "from-jsonl", Usage: "make a shard from JSON lines (stdin or one file) of --schema", ArgsUsage: "[FILE.jsonl]",
			Flags: append(cliutil.OutputFlags(),
				&cli.StringFlag{Name: "schema", Required: true, Usage: "schema of the rows: example, candidates, generation, judgment or score"}),
			Action: fromJSONLCmd},
		{Name: "stats", Usage: "rows, tokens and a histogram of tokens per row", ArgsUsage: in, Action: statsCmd},
	}
	cliutil.Run(app)
}

// input spools stdin if needed and returns the args, the schema's operations and a cleanup.
func input(c *cli.Context) ([]string, shard.Ops, func(), error) {
	if err := cliutil.CheckOutput(c.String("out"), c.Args().Slice()); err != nil {
		return nil, nil, func() {}, err
	}
	args, cleanup, err := shard.SpoolStdin(c.Args().Slice(), os.Stdin)
	if err != nil {
		return nil, nil, cleanup, err
	}
	name, err := shard.DetectSchema(args)
	if err != nil {
		cleanup()
		return nil, nil, func() {}, err
	}
	ops, err := shard.OpsFor(name)
	return args, ops, cleanup, err
}

func schemaCmd(c *cli.Context) error {
	name := c.String("name")
	if name == "" {
		args, ops, cleanup, err := input(c)
		defer cleanup()
		if err != nil {
			return err
		}
		_ = args
		name = ops.Info().Name
	}
	cols, err := shard.Columns(name)
	if err != nil {
		return cliutil.Usagef("%v", err)
	}
	info, _ := shard.LookupInfo(name)
	if !cliutil.IsTerminal(os.Stdout) {
		return json.NewEncoder(os.Stdout).Encode(map[string]any{"schema": name, "version": info.Version, "columns": cols})
	}
	fmt.Printf("schema %s, version %d\n", name, info.Version)
	tw := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
	for _, col := range cols {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", col.Name, col.Type, col.Doc)
	}
	return tw.Flush()
}

func countCmd(c *cli.Context) error {
	args, cleanup, err := shard.SpoolStdin(c.Args().Slice(), os.Stdin)
	defer cleanup()
	if err != nil {
		return err
	}
	n, err := shard.CountRows(args)
	if err != nil {
		return err
	}
	_, err = fmt.Println(n)
	return err
}

func headCmd(c *cli.Context) error {
	args, ops, cleanup, err := input(c)
	defer cleanup()
	if err != nil {
		return err
	}
	return ops.ToJSONL(args, nil, os.Stdout, c.Int64("n"), cliutil.IsTerminal(os.Stdout))
}

func toJSONLCmd(c *cli.Context) error {
	args, ops, cleanup, err := input(c)
	defer cleanup()
	if err != nil {
		return err
	}
	return ops.ToJSONL(args, nil, os.Stdout, -1, false)
}

func catCmd(c *cli.Context) error {
	args, ops, cleanup, err := input(c)
	defer cleanup()
	if err != nil {
		return err
	}
	_, err = ops.Copy(args, nil, c.String("out"), os.Stdout, cliutil.ShardOptions(c), nil)
	return err
}

func splitCmd(c *cli.Context) error {
	out := c.String("out")
	if out == "" || strings.HasSuffix(out, ".parquet") {
		return cliutil.Usagef("split needs --out DIR")
	}
	if (c.Int("n") > 0) == (c.Int64("rows") > 0) {
		return cliutil.Usagef("give exactly one of --n and --rows, positive")
	}
	args, ops, cleanup, err := input(c)
	defer cleanup()
	if err != nil {
		return err
	}
	o := cliutil.ShardOptions(c)
	if c.Int64("rows") > 0 {
		o.ShardRows = c.Int64("rows")
		_, err = ops.Copy(args, nil, out, nil, o, nil)
		return err
	}
	return ops.Split(args, nil, out, o, c.Int("n"))
}

func sampleCmd(c *cli.Context) error {
	if c.Int("n") < 0 {
		return cliutil.Usagef("--n must be ≥ 0")
	}
	args, ops, cleanup, err := input(c)
	defer cleanup()
	if err != nil {
		return err
	}
	_, err = ops.Sample(args, nil, c.String("out"), os.Stdout, cliutil.ShardOptions(c), c.Int("n"), c.Int64("seed"))
	return err
}

func fromJSONLCmd(c *cli.Context) error {
	ops, err := shard.OpsFor(c.String("schema"))
	if err != nil {
		return cliutil.Usagef("%v", err)
	}
	var r io.Reader = os.Stdin
	name := "stdin"
	if c.NArg() > 1 {
		return cliutil.Usagef("from-jsonl takes at most one file")
	}
	if err := cliutil.CheckOutput(c.String("out"), c.Args().Slice()); err != nil {
		return err
	}
	if c.NArg() == 1 && c.Args().First() != "-" {
		f, err := os.Open(c.Args().First())
		if err != nil {
			return err
		}
		defer f.Close()
		r, name = f, c.Args().First()
	}
	_, err = ops.FromJSONL(r, name, c.String("out"), os.Stdout, cliutil.ShardOptions(c))
	return err
}

func statsCmd(c *cli.Context) error {
	args, ops, cleanup, err := input(c)
	defer cleanup()
	if err != nil {
		return err
	}
	st, err := ops.Stats(args, nil)
	if err != nil {
		return err
	}
	if !cliutil.IsTerminal(os.Stdout) {
		return json.NewEncoder(os.Stdout).Encode(st)
	}
	fmt.Printf("schema %s: %d rows, %d tokens (%d prompt, %d continuation), tokens per row %d..%d",
		st.Schema, st.Rows, st.Tokens, st.PromptTokens, st.ResponseTokens, st.MinLen, st.MaxLen)
	if st.Rows > 0 {
		fmt.Printf(", mean %.1f", float64(st.Tokens)/float64(st.Rows))
	}
	fmt.Println()
	var peak int64
	for _, h := range st.Hist {
		peak = max(peak, h)
	}
	for i, h := range st.Hist {
		if h == 0 {
			continue
		}
		bar := strings.Repeat("#", int(40*h/max(peak, 1)))
		fmt.Printf("  [%7d, %7d)  %8d  %s\n", st.Edges[i], st.Edges[i+1], h, bar)
	}
	return nil
}

func filterCmd(c *cli.Context) error {
	col, val, ok := strings.Cut(c.String("where"), "=")
	if !ok || col == "" {
		return cliutil.Usagef("--where wants COLUMN=VALUE, got %q", c.String("where"))
	}
	args, ops, cleanup, err := input(c)
	defer cleanup()
	if err != nil {
		return err
	}
	_, err = ops.Filter(args, nil, c.String("out"), os.Stdout, cliutil.ShardOptions(c), col, val)
	return err
}
