package generate

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
)

// Decoding strategies.
const (
	Greedy = "greedy" // the argmax token at every step
	Sample = "sample" // a draw from the tempered, top-k and top-p truncated distribution
	Beam   = "beam"   // beam search as Hugging Face's (num_beams, length_penalty, early_stopping=False)
)

// Config is a decoding configuration. Only the fields of the chosen strategy matter; the
// others are ignored (and left out of Label and JSON).
type Config struct {
	Strategy string // Greedy, Sample or Beam
	// Sampling: see SampleParams.
	Temperature float64
	TopK        int
	TopP        float64
	// Beam search: the beam width (>= 1) and the length penalty lp. A finished hypothesis y
	// scores log Q(y|x) / |y|^lp, where |y| counts the generated tokens including the final
	// EOS (Hugging Face's sum_logprobs / generated_len ** length_penalty). lp > 0 favours
	// longer outputs, lp < 0 shorter ones, lp = 0 ranks by the plain sum.
	Beams         int
	LengthPenalty float64
	// MaxNewTokens bounds the generated tokens of a sequence (EOS included).
	MaxNewTokens int
	// EOS ends a sequence when generated (it is kept as the last id); -1: never stop early.
	EOS int32
	// Seed is the global seed; each sequence draws from NewRand(RowSeed(Seed, id, sample)).
	Seed int64
	// VocabLimit, when > 0, restricts the generated ids to [0, VocabLimit): for a model whose
	// embedding has more rows than its tokenizer has ids (padded vocabularies), ids without
	// text are never chosen. Log Q(y|x) is still computed over the model's whole vocabulary.
	VocabLimit int
	// BF16Weights records that the model ran with bfloat16 copies of its weight matrices
	// (model.SetBF16Inference): outputs can differ from float32 decoding in near-ties.
	BF16Weights bool
}

// Validate reports an unknown strategy, invalid sampling parameters, a beam width below 1,
// a non-finite length penalty, or MaxNewTokens < 1.
func (c Config) Validate() error {
	if c.VocabLimit < 0 {
		return fmt.Errorf("vocabulary limit %d must be >= 0", c.VocabLimit)
	}
	if c.MaxNewTokens < 1 {
		return fmt.Errorf("max new tokens %d must be >= 1", c.MaxNewTokens)
	}
	switch c.Strategy {
	case Greedy:
	case Sample:
		return c.SampleParams().Validate()
	case Beam:
		if c.Beams < 1 {
			return fmt.Errorf("beam width %d must be >= 1", c.Beams)
		}
		if math.IsNaN(c.LengthPenalty) || math.IsInf(c.LengthPenalty, 0) {
			return fmt.Errorf("length penalty %v must be finite", c.LengthPenalty)
		}
	default:
		return fmt.Errorf("unknown decoding strategy %q (want %s, %s or %s)", c.Strategy, Greedy, Sample, Beam)
	}
	return nil
}

// SampleParams returns the sampling part of c.
func (c Config) SampleParams() SampleParams {
	return SampleParams{Temperature: c.Temperature, TopK: c.TopK, TopP: c.TopP}
}

func g(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }

// Label is a short name of the configuration for tables and shard rows: "greedy";
// "top-k50-p0.7" (sampling with top-k, plus "-t0.8" when the temperature is not 1),
// "top-p0.9" (top-p only), "sample" (plain sampling); "beam4" (plus "-lp0.6" when the
// length penalty is not 1).
func (c Config) Label() string {
	switch c.Strategy {
	case Sample:
		var s string
		switch {
		case c.TopK > 0:
			s = fmt.Sprintf("top-k%d-p%s", c.TopK, g(c.TopP))
		case c.TopP < 1:
			s = "top-p" + g(c.TopP)
		default:
			s = "sample"
		}
		if c.Temperature != 1 {
			s += "-t" + g(c.Temperature)
		}
		return s
	case Beam:
		s := fmt.Sprintf("beam%d", c.Beams)
		if c.LengthPenalty != 1 {
			s += "-lp" + g(c.LengthPenalty)
		}
		return s
	default:
		return c.Strategy
	}
}

// JSON is the canonical JSON of the configuration: an object with keys in sorted order and
// only the fields of the strategy (and "vocab_limit" and "bf16_weights" when set):
//
//	{"eos":50256,"max_new_tokens":256,"seed":1,"strategy":"greedy"}
//	{"eos":..,"max_new_tokens":..,"seed":..,"strategy":"sample","temperature":1,"top_k":50,"top_p":0.7}
//	{"beams":4,"eos":..,"length_penalty":1,"max_new_tokens":..,"seed":..,"strategy":"beam"}
func (c Config) JSON() string {
	m := map[string]any{"strategy": c.Strategy, "max_new_tokens": c.MaxNewTokens, "eos": c.EOS, "seed": c.Seed}
	switch c.Strategy {
	case Sample:
		m["temperature"], m["top_k"], m["top_p"] = c.Temperature, c.TopK, c.TopP
	case Beam:
		m["beams"], m["length_penalty"] = c.Beams, c.LengthPenalty
	}
	if c.VocabLimit > 0 {
		m["vocab_limit"] = c.VocabLimit
	}
	if c.BF16Weights {
		m["bf16_weights"] = true
	}
	b, err := json.Marshal(m) // map keys are sorted
	if err != nil {
		panic(err)
	}
	return string(b)
}
