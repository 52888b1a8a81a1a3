package generate

import (
	"context"
	"fmt"

	"github.com/cpo-toolchain/cpo/pkg/model"
	"github.com/cpo-toolchain/cpo/pkg/shard"
	"github.com/cpo-toolchain/cpo/pkg/tokenizer"
)

// Prompt is one example row to continue, with its position for error messages
// ("file.parquet row 12").
type Prompt struct {
	Example shard.Example
	Pos     string
}

// RowOptions control GenerateRows.
type RowOptions struct {
	Batch      int // sequences decoded at once (prompts at once for beam search)
	NumSamples int // generations per prompt (>1 only for sampling)
	// TruncateLeft keeps the last MaxPromptLen tokens of a prompt that does not fit the
	// context with MaxNewTokens (a leading BOS of the tokenizer's is kept, followed by the
	// last MaxPromptLen-1 tokens); false makes such a prompt an error.
	TruncateLeft bool
	// ModelFingerprint and ModelName are copied into every row.
	ModelFingerprint, ModelName string
	// Tokenizer is the model's tokenizer: prompts must have been tokenized with it (their
	// fingerprint must match) and generations are decoded with it.
	Tokenizer *tokenizer.Tokenizer
	// Chunk is the number of prompts generated between outputs (default 16*Batch).
	Chunk int
	// Progress, when not nil, is called as each sequence finishes with its generated tokens.
	Progress func(tokens int)
}

// Rows turns example rows into generation rows: NumSamples continuations of every prompt
// (sample index 0..NumSamples-1, each with the seed RowSeed(cfg.Seed, id, sample)), emitted
// in input order. A generation row holds the prompt ids the model actually saw (after any
// left truncation), the reference (the example's response), the ids generated (ending with
// EOS when Finish is "eos"), their text (decoded without a final EOS), log Q(y|x), the model
// fingerprint and name, and the decoding label and canonical JSON.
type Rows struct {
	gen *Generator
	opt RowOptions
	fp  string
}

// NewRows checks the options and prepares a generator for m.
func NewRows(m *model.Model, cfg Config, opt RowOptions) (*Rows, error) {
	if opt.Tokenizer == nil {
		return nil, fmt.Errorf("generate: no tokenizer")
	}
	if opt.NumSamples < 1 {
		return nil, fmt.Errorf("number of samples %d must be >= 1", opt.NumSamples)
	}
	if opt.NumSamples > 1 && cfg.Strategy != Sample {
		return nil, fmt.Errorf("%d samples per prompt with %s decoding would all be equal; use the sample strategy", opt.NumSamples, cfg.Strategy)
	}
	if v := opt.Tokenizer.VocabSize(); v > m.Config.VocabSize {
		return nil, fmt.Errorf("the tokenizer has %d tokens but the model only %d", v, m.Config.VocabSize)
	} else if v < m.Config.VocabSize {
		cfg.VocabLimit = v // never generate ids the tokenizer cannot decode
	}
	g, err := New(m, cfg, max(opt.Batch, 1))
	if err != nil {
		return nil, err
	}
	if opt.Chunk <= 0 {
		opt.Chunk = 16 * max(opt.Batch, 1)
	}
	return &Rows{gen: g, opt: opt, fp: opt.Tokenizer.Fingerprint()}, nil
}

// Run generates for every prompt and calls emit for each generation row, in input order.
func (r *Rows) Run(ctx context.Context, prompts []Prompt, emit func(*shard.Generation) error) error {
	for lo := 0; lo < len(prompts); lo += r.opt.Chunk {
		if err := r.chunk(ctx, prompts[lo:min(lo+r.opt.Chunk, len(prompts))], emit); err != nil {
			return err
		}
	}
	return nil
}

func (r *Rows) chunk(ctx context.Context, prompts []Prompt, emit func(*shard.Generation) error) error {
	cfg := r.gen.Config()
	maxP := r.gen.MaxPromptLen()
	var reqs []Request
	ids := make([][]int32, len(prompts))
	for i, p := range prompts {
		e := &p.Example
		if e.Tokenizer != r.fp {
			return fmt.Errorf("%s (id %q): the prompt was tokenized with tokenizer %s but the model's tokenizer is %s; re-tokenize with the model's tokenizer", p.Pos, e.ID, short(e.Tokenizer), short(r.fp))
		}
		pr := e.PromptIDs
		if len(pr) == 0 {
			return fmt.Errorf("%s (id %q): empty prompt_ids", p.Pos, e.ID)
		}
		if len(pr) > maxP {
			if !r.opt.TruncateLeft {
				return fmt.Errorf("%s (id %q): prompt of %d tokens + %d new tokens exceed the model's context of %d (use --prompt-too-long truncate-left or fewer --max-new-tokens)", p.Pos, e.ID, len(pr), cfg.MaxNewTokens, maxP+cfg.MaxNewTokens)
			}
			if bos := r.opt.Tokenizer.BOS(); bos >= 0 && pr[0] == bos && maxP > 1 {
				// Keep the BOS a Llama prompt starts with (as cpo-tokenize's truncation does).
				pr = append([]int32{bos}, pr[len(pr)-(maxP-1):]...)
			} else {
				pr = pr[len(pr)-maxP:]
			}
		}
		for j, t := range pr {
			if t < 0 || int(t) >= r.gen.m.Config.VocabSize {
				return fmt.Errorf("%s (id %q): prompt token %d = %d is outside the model's vocabulary of %d", p.Pos, e.ID, j, t, r.gen.m.Config.VocabSize)
			}
		}
		ids[i] = pr
		for s := 0; s < r.opt.NumSamples; s++ {
			reqs = append(reqs, Request{Prompt: pr, Seed: RowSeed(cfg.Seed, e.ID, s)})
		}
	}
	var done func(int, Result)
	if r.opt.Progress != nil {
		done = func(_ int, res Result) { r.opt.Progress(len(res.IDs)) }
	}
	res, err := r.gen.Generate(ctx, reqs, done)
	if err != nil {
		return err
	}
	label, js := cfg.Label(), cfg.JSON()
	for k, out := range res {
		i, s := k/r.opt.NumSamples, k%r.opt.NumSamples
		p := &prompts[i]
		e := &p.Example
		body := out.IDs
		if out.Finish == FinishEOS {
			body = body[:len(body)-1]
		}
		text, err := r.opt.Tokenizer.Decode(body)
		if err != nil {
			return fmt.Errorf("%s (id %q) sample %d: decoding the generation: %w", p.Pos, e.ID, s, err)
		}
		row := &shard.Generation{
			ID: e.ID, Source: e.Source, Split: e.Split, Prompt: e.Prompt, PromptIDs: ids[i],
			Reference: e.Response, ReferenceIDs: e.ResponseIDs, Tokenizer: e.Tokenizer,
			Model: r.opt.ModelFingerprint, ModelName: r.opt.ModelName,
			Decoding: label, DecodingConfig: js, Sample: int32(s),
			Text: text, IDs: out.IDs, Logp: out.Logp, Finish: out.Finish, Seed: reqs[k].Seed,
		}
		if err := emit(row); err != nil {
			return err
		}
	}
	return nil
}

func short(fp string) string {
	if len(fp) > 12 {
		return fp[:12]
	}
	if fp == "" {
		return `""`
	}
	return fp
}
