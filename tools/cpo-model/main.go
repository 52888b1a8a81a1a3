// Command cpo-model inspects a model: `info` prints its architecture, sizes, parameter count,
// stored dtype and fingerprint; `logprobs` prints per-token log-probabilities of token id lines.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/cpo-toolchain/cpo/pkg/checkpoint"
	"github.com/cpo-toolchain/cpo/pkg/cliutil"
	"github.com/cpo-toolchain/cpo/pkg/hub"
)

func main() { cliutil.Run(newApp()) }

const modelUsage = "checkpoint directory, or hub id (org/name[@revision]) found in the Hugging Face cache or downloaded (HF_ENDPOINT, HF_TOKEN, HF_HOME, HF_HUB_OFFLINE)"

func newApp() *cli.App {
	app := cliutil.NewApp("cpo-model", "inspect a GPT-2 or Llama checkpoint and score token sequences",
		`A model is a Hugging Face checkpoint directory (config.json and safetensors weights) or a
hub id such as gpt2 or openlm-research/open_llama_3b@main, looked up in the Hugging Face cache
($HF_HUB_CACHE, $HF_HOME/hub or ~/.cache/huggingface/hub) and downloaded there when missing.`)
	modelFlag := &cli.StringFlag{Name: "model", Aliases: []string{"m"}, Usage: modelUsage}
	app.Commands = []*cli.Command{
		{
			Name: "info", Usage: "print architecture, sizes, parameter count, dtype and fingerprint", ArgsUsage: "[MODEL]",
			Description: `The fingerprint is the SHA-256 of the architecture and every parameter value (see
checkpoint.Fingerprint): equal fingerprints mean the same function, whatever the storage dtype label.`,
			Flags:  []cli.Flag{modelFlag, &cli.BoolFlag{Name: "json", Usage: "print one JSON object"}},
			Action: infoCmd,
		},
		{
			Name: "path", Usage: "print the local checkpoint directory of a model, or the local path of a hub file, downloading it into the hub cache if needed", ArgsUsage: "[MODEL | hf://datasets/ORG/NAME[@REV]/PATH | hf://ORG/NAME[@REV]/PATH]",
			Description: `Given a hub file URI (one file of a dataset or model repository), prints the path of that
file in the Hugging Face cache, e.g. cpo-model path hf://datasets/databricks/databricks-dolly-15k/databricks-dolly-15k.jsonl`,
			Flags:  []cli.Flag{modelFlag},
			Action: pathCmd,
		},
		{
			Name:  "logprobs",
			Usage: "read lines of space-separated token ids on stdin; print per line a JSON array of log p(token_t | tokens before t)",
			Description: `For a line of n token ids the answer is n-1 natural-log probabilities, of the 2nd to the
last token each given those before it ([] for lines of 0 or 1 tokens). Lines are packed into
batches without padding; the answers come in input order.`,
			Flags: []cli.Flag{modelFlag,
				&cli.IntFlag{Name: "batch-tokens", Value: 2048, Usage: "tokens packed into one forward pass"}},
			Action: logprobsCmd,
		},
	}
	return app
}

func modelArg(c *cli.Context) (string, error) {
	m := c.String("model")
	if m == "" && c.NArg() == 1 {
		m = c.Args().First()
	} else if c.NArg() > 0 {
		return "", cliutil.Usagef("unexpected argument %q", c.Args().First())
	}
	if m == "" {
		return "", cliutil.Usagef("no model: give --model DIR|ID")
	}
	return m, nil
}

func infoCmd(c *cli.Context) error {
	arg, err := modelArg(c)
	if err != nil {
		return err
	}
	dir, err := hub.Resolve(c.Context, arg)
	if err != nil {
		return err
	}
	s, err := checkpoint.Summarize(dir)
	if err != nil {
		return err
	}
	if c.Bool("json") {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(s)
	}
	return s.WriteText(os.Stdout)
}

func pathCmd(c *cli.Context) error {
	arg, err := modelArg(c)
	if err != nil {
		return err
	}
	if hub.IsURI(arg) {
		p, err := hub.ResolveFile(c.Context, arg)
		if err != nil {
			return err
		}
		_, err = fmt.Println(p)
		return err
	}
	dir, err := hub.Resolve(c.Context, arg)
	if err != nil {
		return err
	}
	if err := hub.Complete(dir); err != nil {
		return err
	}
	_, err = fmt.Println(dir)
	return err
}

func logprobsCmd(c *cli.Context) error {
	arg, err := modelArg(c)
	if err != nil {
		return err
	}
	m, _, err := checkpoint.Resolve(c.Context, arg)
	if err != nil {
		return err
	}
	return checkpoint.WriteLogprobs(m, bufio.NewReaderSize(os.Stdin, 1<<16), os.Stdout,
		checkpoint.LogprobOptions{BatchTokens: c.Int("batch-tokens")})
}
