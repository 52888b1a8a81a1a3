package metrics

import (
	"fmt"
	"math"
	"path/filepath"

	"github.com/cpo-toolchain/cpo/pkg/checkpoint"
	"github.com/cpo-toolchain/cpo/pkg/model"
	"github.com/cpo-toolchain/cpo/pkg/tokenizer"
)

// Scorer computes log P(y|x), the summed natural-log probability of a response y given a prompt
// x, under a model, over packed batches of prompt+response sequences. It runs the
// inference-only forward (model.Logits, one block's activations alive at a time) and takes
// the log-softmax of each response position itself, so a large model fits in memory; the
// result equals the sum of model.Forward's logp over the response positions (tested).
// A Scorer is not safe for concurrent use.
type Scorer struct {
	Model *model.Model
	// BatchTokens caps the packed tokens N of one forward (default 2048); a longer single
	// sequence runs alone.
	BatchTokens int
	ws          *model.Workspace
}

// NewScorer returns a Scorer for m.
func NewScorer(m *model.Model) *Scorer {
	return &Scorer{Model: m, BatchTokens: 2048, ws: model.NewWorkspace()}
}

// SeqLogp is one scored response: Sum = log P(y|x) (natural log) and Tokens = |y|, the number
// of response tokens scored.
type SeqLogp struct {
	Sum    float64
	Tokens int
}

// Mean returns Sum/Tokens, the length-normalised log-probability (NaN for an empty response).
func (s SeqLogp) Mean() float64 {
	if s.Tokens == 0 {
		return math.NaN()
	}
	return s.Sum / float64(s.Tokens)
}

// PairError is an error of one prompt/response pair of Score, by its index.
type PairError struct {
	Index int
	Err   error
}

func (e *PairError) Error() string { return fmt.Sprintf("pair %d: %v", e.Index, e.Err) }
func (e *PairError) Unwrap() error { return e.Err }

// Score returns log P(responses[i] | prompts[i]) for every i. A prompt must have at least one
// token (the first response token needs a context): an empty prompt is given the model's BOS
// when it has one, and is an error otherwise. An error names the index i of the offending pair
// (a sequence longer than the model's context, a token outside its vocabulary) in a
// *PairError.
func (s *Scorer) Score(prompts, responses [][]int32) ([]SeqLogp, error) {
	if len(prompts) != len(responses) {
		return nil, fmt.Errorf("metrics: %d prompts for %d responses", len(prompts), len(responses))
	}
	if s.ws == nil {
		s.ws = model.NewWorkspace()
	}
	budget := s.BatchTokens
	if budget <= 0 {
		budget = 2048
	}
	cfg := s.Model.Config
	out := make([]SeqLogp, len(prompts))
	seqs := make([][]int32, len(prompts))
	plen := make([]int, len(prompts))
	for i := range prompts {
		p := prompts[i]
		if len(p) == 0 {
			if cfg.BOS < 0 {
				return nil, &PairError{i, fmt.Errorf("empty prompt and the model has no BOS token to start from")}
			}
			p = []int32{int32(cfg.BOS)}
		}
		seq := make([]int32, 0, len(p)+len(responses[i]))
		seq = append(append(seq, p...), responses[i]...)
		if len(seq) > cfg.MaxSeqLen {
			return nil, &PairError{i, fmt.Errorf("prompt+response is %d tokens, more than the model's context of %d", len(seq), cfg.MaxSeqLen)}
		}
		for t, tok := range seq {
			if tok < 0 || int(tok) >= cfg.VocabSize {
				return nil, &PairError{i, fmt.Errorf("token %d at position %d is outside the model's vocabulary [0, %d)", tok, t, cfg.VocabSize)}
			}
		}
		seqs[i], plen[i] = seq, len(p)
	}
	for lo := 0; lo < len(seqs); {
		hi, n := lo, 0
		for hi < len(seqs) && (hi == lo || n+len(seqs[hi]) <= budget) {
			n += len(seqs[hi])
			hi++
		}
		b := model.Pack(seqs[lo:hi])
		logits := s.Model.Logits(s.ws, b) // (N, V)
		V := cfg.VocabSize
		for k := lo; k < hi; k++ {
			start := b.Starts[k-lo]
			P, T := plen[k], len(seqs[k])
			var sum float64
			// Response token j sits at position P+j and is predicted from position P+j-1.
			for t := P - 1; t < T-1; t++ {
				row := logits[(start+t)*V : (start+t+1)*V]
				sum += LogSoftmaxAt(row, int(seqs[k][t+1]))
			}
			out[k] = SeqLogp{Sum: sum, Tokens: T - P}
		}
		lo = hi
	}
	return out, nil
}

// LogSoftmaxAt returns log softmax(row)[i] in float64: row[i] - log Σ exp(row).
func LogSoftmaxAt(row []float32, i int) float64 {
	mx := math.Inf(-1)
	for _, v := range row {
		mx = math.Max(mx, float64(v))
	}
	var z float64
	for _, v := range row {
		z += math.Exp(float64(v) - mx)
	}
	return float64(row[i]) - mx - math.Log(z)
}

// Texts turns a row's prompt and response into the token ids a model scores. Tok is the
// model's tokenizer (nil when its directory has none) and FP its fingerprint.
type Texts struct {
	Tok *tokenizer.Tokenizer
	FP  string
}

// LoadTexts loads the tokenizer shipped in a checkpoint directory (tokenizer.json, or the
// other files checkpoint.TokenizerFilesIn lists); a directory without one gives a Texts that
// always uses the rows' own ids.
func LoadTexts(dir string) (*Texts, error) {
	for _, f := range checkpoint.TokenizerFilesIn(dir) {
		switch filepath.Base(f) {
		case "tokenizer.json", "tokenizer.model":
			tok, err := tokenizer.Load(f)
			if err != nil {
				return nil, err
			}
			return &Texts{Tok: tok, FP: tok.Fingerprint()}, nil
		}
	}
	return &Texts{}, nil
}

// Tokens chooses the token ids for a prompt and a response. When there is no tokenizer, or it
// has the row's tokenizer fingerprint (rowTok), the row's own ids are used as they are (EOS
// included when the row has it); a response with text but no ids (a reference joined from
// examples of another tokenizer) is then encoded from its text when there is a tokenizer, and
// left empty when there is none (the caller reports it). Otherwise the texts are encoded
// again (EncodeOrdinary, so text can never inject control tokens): the prompt gets the
// tokenizer's BOS in front when it has one, and the response its EOS at the end when withEOS
// is true and it has one.
func (x *Texts) Tokens(rowTok string, promptIDs, responseIDs []int32, prompt, response string, withEOS bool) (p, r []int32) {
	if x == nil || x.Tok == nil || x.FP == rowTok {
		if len(responseIDs) == 0 && response != "" && x != nil && x.Tok != nil {
			return promptIDs, x.encodeResponse(response, withEOS)
		}
		return promptIDs, responseIDs
	}
	if bos := x.Tok.BOS(); bos >= 0 {
		p = append(p, bos)
	}
	p = append(p, x.Tok.EncodeOrdinary(prompt)...)
	return p, x.encodeResponse(response, withEOS)
}

func (x *Texts) encodeResponse(response string, withEOS bool) []int32 {
	r := x.Tok.EncodeOrdinary(response)
	if eos := x.Tok.EOS(); withEOS && eos >= 0 {
		r = append(r, eos)
	}
	return r
}
