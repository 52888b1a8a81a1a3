// Command cpo-demodata writes the demo's built-in default data: Dolly-format instruction data
// with known right answers (train.jsonl, test.jsonl) and a text corpus about the same made-up
// world (corpus.txt, one paragraph per line). Deterministic for a given --seed.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/cpo-toolchain/cpo/pkg/cliutil"
	"github.com/cpo-toolchain/cpo/pkg/demodata"
)

func main() {
	app := cliutil.NewApp("cpo-demodata", "write the demo's built-in data set (Dolly-format JSONL and a text corpus)",
		"Rows have a known right answer (arithmetic, comparison, spelling, counting, sorting, facts about a\n"+
			"made-up world, reading a passage), so the demo can tell whether a model got better.")
	app.Flags = []cli.Flag{
		&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Required: true, Usage: "output directory (train.jsonl, test.jsonl, corpus.txt)"},
		&cli.IntFlag{Name: "train", Value: 2000, Usage: "number of training rows"},
		&cli.IntFlag{Name: "test", Value: 200, Usage: "number of test rows"},
		&cli.IntFlag{Name: "paragraphs", Value: 2000, Usage: "number of corpus paragraphs"},
		&cli.Int64Flag{Name: "seed", Value: 1, Usage: "random seed"},
	}
	app.Action = func(c *cli.Context) error {
		out := c.String("out")
		if err := os.MkdirAll(out, 0o755); err != nil {
			return err
		}
		rows := demodata.Generate(c.Int64("seed"), c.Int("train")+c.Int("test"))
		if err := writeJSONL(filepath.Join(out, "train.jsonl"), rows[:c.Int("train")]); err != nil {
			return err
		}
		if err := writeJSONL(filepath.Join(out, "test.jsonl"), rows[c.Int("train"):]); err != nil {
			return err
		}
		corpus := demodata.Corpus(c.Int64("seed")+1, c.Int("paragraphs"))
		return writeAtomic(filepath.Join(out, "corpus.txt"), func(w *bufio.Writer) error {
			_, err := w.WriteString(strings.Join(corpus, "\n") + "\n")
			return err
		})
	}
	cliutil.Run(app)
}

func writeJSONL(path string, rows []demodata.Row) error {
	return writeAtomic(path, func(w *bufio.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		for _, r := range rows {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	})
}

// writeAtomic writes path through a temporary file renamed into place when complete.
func writeAtomic(path string, fill func(*bufio.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	w := bufio.NewWriter(f)
	if err := fill(w); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o644); err != nil { // CreateTemp makes it 0600
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
