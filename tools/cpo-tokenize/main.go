// Command cpo-tokenize turns text into token ids with the models' own tokenizers (GPT-2
// byte-level BPE, Llama/OpenLlama SentencePiece BPE) and writes example shards.
//
//	cpo-tokenize encode --tokenizer DIR --format dolly --out data/dolly databricks-dolly-15k.jsonl
//	cpo-tokenize encode --tokenizer DIR --out data/dolly hf://datasets/databricks/databricks-dolly-15k/databricks-dolly-15k.jsonl
//	cpo-tokenize encode --tokenizer DIR --format text --prefix-frac 0.15 --out data/wiki wiki.txt
//	cpo-tokenize ids --tokenizer DIR < lines.txt        # one line of ids per input line
//	cpo-tokenize decode --tokenizer DIR < ids.txt       # ids back to text
//	cpo-tokenize decode --tokenizer DIR --shards data/dolly
//	cpo-tokenize train --vocab-size 8000 --out tok/ corpus.txt
//	cpo-tokenize info --tokenizer DIR
//	cpo-tokenize convert --tokenizer gpt2/ --out ckpt/tokenizer.json
//
// --tokenizer takes a directory holding tokenizer.json, or encoder.json + vocab.bpe, or
// tokenizer.model, or the file itself. encode's inputs may be hub URIs,
// hf://datasets/ORG/NAME[@REV]/PATH, fetched into the Hugging Face cache (see pkg/hub). All
// logic lives in pkg/tokenizer and pkg/tokenizer/prep.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/cpo-toolchain/cpo/pkg/cliutil"
	"github.com/cpo-toolchain/cpo/pkg/hub"
	"github.com/cpo-toolchain/cpo/pkg/shard"
	"github.com/cpo-toolchain/cpo/pkg/tokenizer"
	"github.com/cpo-toolchain/cpo/pkg/tokenizer/prep"
)

var tokenizerFlag = &cli.StringFlag{Name: "tokenizer", Aliases: []string{"t"}, Required: true,
	Usage: "directory with tokenizer.json, or encoder.json + vocab.bpe, or tokenizer.model; or the file itself"}

var specialFlag = &cli.StringFlag{Name: "special-in-text", Value: "special",
	Usage: "what literal special-token text in the data (e.g. <|endoftext|>) becomes: special (its id, as Hugging Face does) or text (ordinary tokens)"}

func main() { cliutil.Run(newApp()) }

func newApp() *cli.App {
	app := cliutil.NewApp("cpo-tokenize", "tokenize data sets into example shards with GPT-2 or Llama tokenizers",
		"Ids match the models' own tokenizers (Hugging Face tokenizers, tiktoken, SentencePiece) id for id.")
	app.Commands = []*cli.Command{encodeCmd(), idsCmd(), decodeCmd(), trainCmd(), infoCmd(), convertCmd()}
	return app
}

func loadTokenizer(c *cli.Context) (*tokenizer.Tokenizer, error) {
	return tokenizer.Load(c.String("tokenizer"))
}

func ordinary(c *cli.Context) (bool, error) {
	switch c.String("special-in-text") {
	case "special":
		return false, nil
	case "text":
		return true, nil
	}
	return false, cliutil.Usagef("--special-in-text %q: want special or text", c.String("special-in-text"))
}

func encodeCmd() *cli.Command {
	flags := []cli.Flag{
		tokenizerFlag,
		&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Value: prep.FormatDolly, Usage: "input format: dolly (JSONL: instruction, context, response, category), jsonl, parquet, or text"},
		&cli.StringFlag{Name: "template", Usage: "prompt template file (Go text/template over the row's fields, e.g. {{.instruction}}); default for dolly: the Dolly training prompt (see cpo-tokenize encode --help)"},
		&cli.StringFlag{Name: "prompt-field", Value: "prompt", Usage: "jsonl/parquet: field holding the prompt (when no --template)"},
		&cli.StringFlag{Name: "response-field", Value: "response", Usage: "jsonl/parquet: field holding the response"},
		&cli.StringFlag{Name: "id-field", Usage: "field holding a unique id (default: <source>-<row index>)"},
		&cli.StringFlag{Name: "doc-per", Value: "line", Usage: "text: one document per line, or per file"},
		&cli.Float64Flag{Name: "prefix-frac", Value: 0.15, Usage: "text: fraction of a document's tokens that form the prompt (the paper's Wikipedia task: 0.15)"},
		&cli.IntFlag{Name: "max-prompt-tokens", Usage: "limit on prompt length in tokens, BOS included (0: none)"},
		&cli.IntFlag{Name: "max-response-tokens", Usage: "limit on response length in tokens, EOS included (0: none)"},
		&cli.StringFlag{Name: "overflow", Value: prep.Truncate, Usage: "over a limit: truncate (prompt keeps its end, response its start, without EOS) or drop"},
		&cli.Float64Flag{Name: "test-frac", Value: 0.5, Usage: "fraction of rows in the test split (the paper's Dolly split: 0.5, 7,506 test of 15,011)"},
		&cli.Int64Flag{Name: "seed", Value: 1, Usage: "seed of the train/test split"},
		&cli.StringFlag{Name: "bos", Value: "auto", Usage: "prepend BOS to prompts: auto (SentencePiece/Llama yes, GPT-2 no), yes, no"},
		&cli.BoolFlag{Name: "eos", Value: true, Usage: "append EOS to responses"},
		specialFlag,
		&cli.StringFlag{Name: "source", Usage: "source column and id prefix (default: the format for dolly, else the first input's base name)"},
		&cli.BoolFlag{Name: "skip-bad", Usage: "skip bad rows (invalid UTF-8, missing or non-string field, empty response, too short) and count them, instead of stopping"},
		&cli.IntFlag{Name: "workers", Aliases: []string{"j"}, Usage: "tokenizing goroutines (0: all cores)"},
		cliutil.QuietFlag,
	}
	return &cli.Command{
		Name:      "encode",
		Usage:     "tokenize Dolly JSONL, generic JSONL/Parquet or text into example shards",
		ArgsUsage: "[INPUT...] (files, or hub files hf://datasets/ORG/NAME[@REV]/PATH fetched into the Hugging Face cache; default: standard input)",
		Description: "The default Dolly prompt template is:\n\n" + prep.DefaultDollyTemplate +
			"\nand the response follows it directly. Rows are split train/test by a permutation seeded with --seed. " +
			"The inputs are read twice (counting the rows, then tokenizing 4,096 at a time), so memory stays small " +
			"whatever their size; standard input is kept in a temporary file ($TMPDIR) meanwhile.",
		Flags:  append(flags, cliutil.OutputFlags()...),
		Action: encode,
	}
}

func encode(c *cli.Context) error {
	tok, err := loadTokenizer(c)
	if err != nil {
		return err
	}
	ord, err := ordinary(c)
	if err != nil {
		return err
	}
	format := c.String("format")
	ro := prep.ReadOptions{Format: format, PromptField: c.String("prompt-field"), ResponseField: c.String("response-field"),
		IDField: c.String("id-field"), SkipBad: c.Bool("skip-bad")}
	switch c.String("doc-per") {
	case "line":
		ro.DocPerLine = true
	case "file":
	default:
		return cliutil.Usagef("--doc-per %q: want line or file", c.String("doc-per"))
	}
	if p := c.String("template"); p != "" {
		text, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if ro.Template, err = prep.ParseTemplate(p, string(text)); err != nil {
			return err
		}
	}
	if _, err := prep.NewReader(ro); err != nil {
		return cliutil.UsageError{Err: err}
	}
	inputs := c.Args().Slice()
	if err := flagsFirst(inputs); err != nil {
		return err
	}
	if err := cliutil.CheckOutput(c.String("out"), inputs); err != nil {
		return err
	}
	// SIGINT or SIGTERM stops the run; a partly written output is removed.
	ctx, cancel := cliutil.SignalContext()
	defer cancel()
	stop := context.AfterFunc(c.Context, cancel)
	defer stop()
	if len(inputs) == 0 {
		inputs = []string{"-"}
	}
	// The inputs are read twice, so that memory stays bounded by a chunk of records: once to
	// count the records (the test split is drawn over all of them), once to tokenize and
	// write them. Standard input and any input that is not a regular file (a named pipe,
	// <(zcat ...)) is first copied to a temporary file; standard input is read once.
	type input struct{ name, path, display string } // path: what to open; display: for errors
	var ins []input
	stdinSeen := false
	for _, in := range inputs {
		local, err := hub.ResolveFile(c.Context, in) // hf:// URIs to files in the hub cache
		if err != nil {
			return err
		}
		it := input{name: local, path: local, display: local}
		switch {
		case local == "-":
			if stdinSeen {
				continue // standard input was read already
			}
			stdinSeen = true
			if format == prep.FormatParquet {
				return errors.New("parquet input must be a file, not standard input")
			}
			it.display = "<stdin>"
			if it.path, err = spoolStdin(c.App.Reader); err != nil {
				return err
			}
			defer os.Remove(it.path)
		default:
			if st, err := os.Stat(local); err == nil && !st.Mode().IsRegular() && !st.IsDir() {
				f, err := os.Open(local)
				if err != nil {
					return err
				}
				it.path, err = spoolStdin(f)
				f.Close()
				if err != nil {
					return fmt.Errorf("%s: %w", local, err)
				}
				defer os.Remove(it.path)
			}
		}
		ins = append(ins, it)
	}
	readAll := func(r *prep.Reader) error {
		for _, it := range ins {
			if it.path == it.name || format == prep.FormatParquet {
				if err := r.ReadFile(it.path, nil); err != nil {
					return err
				}
			} else {
				f, err := os.Open(it.path)
				if err != nil {
					return err
				}
				err = r.ReadStream(it.display, f)
				f.Close()
				if err != nil {
					return err
				}
			}
			if err := ctx.Err(); err != nil {
				return cliutil.ErrInterrupted
			}
		}
		return nil
	}
	counter, _ := prep.NewReader(ro)
	records := 0
	counter.Emit = func(prep.Record) error { records++; return nil }
	if err := readAll(counter); err != nil {
		return hintSkipBad(err)
	}
	source := c.String("source")
	if source == "" {
		source = format
		if format != prep.FormatDolly && inputs[0] != "-" {
			source = strings.TrimSuffix(filepath.Base(inputs[0]), filepath.Ext(inputs[0]))
		}
	}
	o := prep.Options{Tokenizer: tok, Source: source, Text: format == prep.FormatText, PrefixFrac: c.Float64("prefix-frac"),
		MaxPromptTokens: c.Int("max-prompt-tokens"), MaxResponseTokens: c.Int("max-response-tokens"),
		Overflow: c.String("overflow"), TestFrac: c.Float64("test-frac"), Seed: c.Int64("seed"),
		EOS: c.Bool("eos"), Ordinary: ord, Workers: c.Int("workers")}
	switch c.String("bos") {
	case "auto":
		o.BOS = tok.Kind() == tokenizer.SentencePiece && tok.BOS() >= 0
	case "yes":
		o.BOS = true
	case "no":
	default:
		return cliutil.Usagef("--bos %q: want auto, yes or no", c.String("bos"))
	}
	b, err := prep.NewBuilder(o, c.Bool("skip-bad"), records)
	if err != nil {
		return err
	}
	opts := cliutil.ShardOptions(c)
	opts.Metadata = map[string]string{"cpo.tokenizer": tok.Fingerprint()}
	w, err := shard.NewWriter[shard.Example](c.String("out"), c.App.Writer, opts)
	if err != nil {
		return err
	}
	const chunk = 4096 // records tokenized and written at a time
	batch := make([]prep.Record, 0, chunk)
	flush := func() error {
		exs, err := b.Add(batch)
		batch = batch[:0]
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return cliutil.ErrInterrupted
		}
		return w.Write(exs...)
	}
	r, _ := prep.NewReader(ro)
	r.Emit = func(rec prep.Record) error {
		if b.Report().Records+len(batch) == records {
			return fmt.Errorf("the inputs changed while they were read: more than the %d records of the first reading", records)
		}
		batch = append(batch, rec)
		if len(batch) == chunk {
			return flush()
		}
		return nil
	}
	err = readAll(r)
	if err == nil {
		err = flush()
	}
	if err == nil && b.Report().Records != records {
		err = fmt.Errorf("the inputs changed while they were read: %d records, %d in the first reading", b.Report().Records, records)
	}
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		w.Abort()
		if ctx.Err() != nil {
			return cliutil.ErrInterrupted
		}
		return hintSkipBad(err)
	}
	if err := w.Close(); err != nil {
		return err
	}
	rep := b.Report()
	if !c.Bool("quiet") {
		fmt.Fprintf(os.Stderr, "cpo-tokenize: %s%s; tokenizer %s %s\n", rep, prep.SkippedString(r.Skipped), tok.Kind(), tok.Fingerprint()[:16])
	}
	return nil
}

// flagsFirst rejects a flag among the inputs: flags must come before them.
func flagsFirst(args []string) error {
	for _, a := range args {
		if len(a) > 1 && a[0] == '-' {
			return cliutil.Usagef("%q after an input: put flags before the inputs", a)
		}
	}
	return nil
}

// hintSkipBad adds the way around a bad row to its error.
func hintSkipBad(err error) error {
	var bad *prep.BadRecordError
	if errors.As(err, &bad) {
		return fmt.Errorf("%w (--skip-bad skips and counts such rows)", err)
	}
	return err
}

// eachLine calls fn with every line (without its "\n") of the inputs, or of stdin.
func eachLine(stdin io.Reader, args []string, fn func(name string, line int, s string) error) error {
	if err := flagsFirst(args); err != nil {
		return err
	}
	if len(args) == 0 {
		args = []string{"-"}
	}
	for _, name := range args {
		in := stdin
		if name != "-" {
			f, err := os.Open(name)
			if err != nil {
				return err
			}
			defer f.Close()
			in = f
		} else {
			name = "<stdin>"
		}
		br := bufio.NewReaderSize(in, 1<<20)
		for line := 1; ; line++ {
			s, err := br.ReadString('\n')
			if len(s) > 0 || err == nil {
				if e := fn(name, line, strings.TrimSuffix(s, "\n")); e != nil {
					return e
				}
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				return fmt.Errorf("%s:%d: %w", name, line, err)
			}
		}
	}
	return nil
}

func idsCmd() *cli.Command {
	return &cli.Command{
		Name:      "ids",
		Usage:     "print the ids of each input line as space-separated integers, one output line per input line (no BOS/EOS added)",
		ArgsUsage: "[FILE...] (default: standard input)",
		Flags:     []cli.Flag{tokenizerFlag, specialFlag},
		Action: func(c *cli.Context) error {
			tok, err := loadTokenizer(c)
			if err != nil {
				return err
			}
			ord, err := ordinary(c)
			if err != nil {
				return err
			}
			enc := tok.NewEncoder()
			out := bufio.NewWriterSize(c.App.Writer, 1<<20)
			var ids []int32
			var buf []byte
			err = eachLine(c.App.Reader, c.Args().Slice(), func(_ string, _ int, s string) error {
				if ord {
					ids = enc.EncodeOrdinary(ids[:0], []byte(s))
				} else {
					ids = enc.Encode(ids[:0], []byte(s))
				}
				buf = buf[:0]
				for k, id := range ids {
					if k > 0 {
						buf = append(buf, ' ')
					}
					buf = strconv.AppendInt(buf, int64(id), 10)
				}
				buf = append(buf, '\n')
				_, err := out.Write(buf)
				return err
			})
			if err != nil {
				return err
			}
			return out.Flush()
		},
	}
}

func decodeCmd() *cli.Command {
	return &cli.Command{
		Name:      "decode",
		Usage:     "turn lines of space-separated ids back into text (or, with --shards, example shards into JSONL)",
		ArgsUsage: "[FILE...] (default: standard input)",
		Flags: []cli.Flag{tokenizerFlag,
			&cli.BoolFlag{Name: "skip-special", Usage: "leave out special tokens (BOS, EOS, pad)"},
			&cli.BoolFlag{Name: "shards", Usage: "inputs are example shards: print {id, split, prompt, response} decoded from their ids as JSONL"},
		},
		Action: func(c *cli.Context) error {
			tok, err := loadTokenizer(c)
			if err != nil {
				return err
			}
			dec := tok.Decode
			if c.Bool("skip-special") {
				dec = tok.DecodeSkipSpecial
			}
			out := bufio.NewWriterSize(c.App.Writer, 1<<20)
			if c.Bool("shards") {
				enc := json.NewEncoder(out)
				enc.SetEscapeHTML(false)
				err = shard.Each[shard.Example](c.Args().Slice(), c.App.Reader, func(ex shard.Example) error {
					p, err := dec(ex.PromptIDs)
					if err != nil {
						return fmt.Errorf("example %q prompt: %w", ex.ID, err)
					}
					r, err := dec(ex.ResponseIDs)
					if err != nil {
						return fmt.Errorf("example %q response: %w", ex.ID, err)
					}
					return enc.Encode(map[string]string{"id": ex.ID, "split": ex.Split, "prompt": p, "response": r})
				})
			} else {
				var ids []int32
				err = eachLine(c.App.Reader, c.Args().Slice(), func(name string, line int, s string) error {
					ids = ids[:0]
					if line == 1 && strings.HasPrefix(s, "PAR1") {
						return cliutil.Usagef("%s is a Parquet file: use --shards to decode example shards", name)
					}
					for _, f := range strings.Fields(s) {
						v, err := strconv.ParseInt(f, 10, 32)
						if err != nil {
							return fmt.Errorf("%s:%d: %q is not a token id", name, line, f)
						}
						ids = append(ids, int32(v))
					}
					text, err := dec(ids)
					if err != nil {
						return fmt.Errorf("%s:%d: %w", name, line, err)
					}
					_, err = fmt.Fprintln(out, text)
					return err
				})
			}
			if err != nil {
				return err
			}
			return out.Flush()
		},
	}
}

func trainCmd() *cli.Command {
	return &cli.Command{
		Name:      "train",
		Usage:     "learn a byte-level BPE vocabulary (GPT-2 style) from text and write tokenizer.json",
		ArgsUsage: "TEXT_FILE... (default: standard input)",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "vocab-size", Aliases: []string{"v"}, Value: 8192, Usage: "ids in all: 256 bytes + merges + <|endoftext|>"},
			&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Required: true, Usage: "output directory (tokenizer.json) or a .json file"},
			&cli.StringFlag{Name: "doc-per", Value: "line", Usage: "one document per line, or per file"},
		},
		Action: func(c *cli.Context) error {
			var texts []string
			switch c.String("doc-per") {
			case "line":
				err := eachLine(c.App.Reader, c.Args().Slice(), func(_ string, _ int, s string) error {
					texts = append(texts, s+"\n")
					return nil
				})
				if err != nil {
					return err
				}
			case "file":
				args := c.Args().Slice()
				if len(args) == 0 {
					args = []string{"-"}
				}
				for _, a := range args {
					var b []byte
					var err error
					if a == "-" {
						b, err = io.ReadAll(c.App.Reader)
					} else {
						b, err = os.ReadFile(a)
					}
					if err != nil {
						return err
					}
					texts = append(texts, string(b))
				}
			default:
				return cliutil.Usagef("--doc-per %q: want line or file", c.String("doc-per"))
			}
			tok, err := tokenizer.Train(texts, c.Int("vocab-size"))
			if err != nil {
				return err
			}
			out := c.String("out")
			if !strings.HasSuffix(out, ".json") {
				if err := os.MkdirAll(out, 0o755); err != nil {
					return err
				}
				out = filepath.Join(out, "tokenizer.json")
			}
			var buf bytes.Buffer
			if err := tok.SaveHF(&buf); err != nil {
				return err
			}
			if err := cliutil.WriteFileAtomic(out, buf.Bytes()); err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "cpo-tokenize: wrote %s: %d ids (%d merges)\n", out, tok.VocabSize(), len(tok.Merges()))
			fmt.Fprintln(c.App.Writer, tok.Fingerprint())
			return nil
		},
	}
}

func infoCmd() *cli.Command {
	return &cli.Command{
		Name:  "info",
		Usage: "print a tokenizer's kind, vocabulary size, special ids and fingerprint",
		Flags: []cli.Flag{tokenizerFlag},
		Action: func(c *cli.Context) error {
			tok, err := loadTokenizer(c)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "kind\t%s\nvocab\t%d\nmerges\t%d\nbos\t%d\neos\t%d\npad\t%d\nfingerprint\t%s\n",
				tok.Kind(), tok.VocabSize(), len(tok.Merges()), tok.BOS(), tok.EOS(), tok.PAD(), tok.Fingerprint())
			for _, a := range tok.AddedTokens() {
				fmt.Fprintf(c.App.Writer, "added\t%d\t%q\tspecial=%v\n", a.ID, a.Content, a.Special)
			}
			return nil
		},
	}
}

func convertCmd() *cli.Command {
	return &cli.Command{
		Name:  "convert",
		Usage: "write a tokenizer as a Hugging Face tokenizer.json (to ship it with a checkpoint)",
		Flags: []cli.Flag{tokenizerFlag,
			&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Required: true, Usage: "output directory (tokenizer.json) or a .json file"},
		},
		Action: func(c *cli.Context) error {
			tok, err := loadTokenizer(c)
			if err != nil {
				return err
			}
			out := c.String("out")
			if !strings.HasSuffix(out, ".json") {
				if err := os.MkdirAll(out, 0o755); err != nil {
					return err
				}
				out = filepath.Join(out, "tokenizer.json")
			}
			var buf bytes.Buffer
			if err := tok.SaveHF(&buf); err != nil {
				return err
			}
			if err := cliutil.WriteFileAtomic(out, buf.Bytes()); err != nil {
				return err
			}
			fmt.Fprintln(c.App.Writer, tok.Fingerprint())
			return nil
		},
	}
}

// spoolStdin copies standard input to a temporary file and returns its path.
func spoolStdin(stdin io.Reader) (string, error) {
	if stdin == nil {
		stdin = os.Stdin
	}
	f, err := os.CreateTemp("", "cpo-tokenize-stdin-*")
	if err != nil {
		return "", fmt.Errorf("standard input: %w", err)
	}
	if _, err := io.Copy(f, stdin); err != nil {
		f.Close()
		os.Remove(f.Name())
		return "", fmt.Errorf("standard input: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("standard input: %w", err)
	}
	return f.Name(), nil
}
