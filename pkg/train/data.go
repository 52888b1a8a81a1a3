package train

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/cpo-toolchain/cpo/pkg/shard"
)

// Objectives of the trainer (--objective).
const (
	MLE     = "mle"      // next-token loss on the response given the prompt (or on whole documents)
	CPO     = "cpo"      // eq. 7: -log softmax of the ground truth's reward among K candidates
	CPORank = "cpo-rank" // eq. 8: Plackett-Luce likelihood of the row's ranking
	DPO     = "dpo"      // eq. 5: pairwise, K = 2 (candidate 0 chosen, candidate 1 rejected)
	MLECPO  = "mle+cpo"  // mle on the ground truths + alpha * cpo
)

// Objectives lists the objectives.
var Objectives = []string{MLE, CPO, CPORank, DPO, MLECPO}

// Item is one training example: a prompt and its candidate continuations, candidate 0 the
// ground truth. An example shard row gives one candidate (its response).
type Item struct {
	ID      string
	Where   string    // "file row N", for messages
	Prompt  []int32   // may be empty (a document)
	Conts   [][]int32 // K continuations, Conts[0] the ground truth
	Kinds   []string  // K kinds (gt, bn, mn, tn, an)
	Ranking []int32   // best to worst, or nil
	// RefLogp are the precomputed log pi_ref(y_j|x) of the candidates under the model named by
	// RefModel; nil when not precomputed (every candidate has one, or the item has none).
	RefLogp  []float64
	RefModel string
	// Tokenizer is the fingerprint of the tokenizer the row was made with.
	Tokenizer string
}

// K is the number of candidates.
func (it *Item) K() int { return len(it.Conts) }

// LoadItems reads example or candidates shards (args, or stdin when args is empty or "-") into
// items, in order. The schema is detected from the first shard.
func LoadItems(args []string, stdin io.Reader) ([]*Item, string, error) {
	args, cleanup, err := shard.SpoolStdin(args, stdin)
	if err != nil {
		return nil, "", err
	}
	defer cleanup()
	schema, err := shard.DetectSchema(args)
	if err != nil {
		return nil, "", err
	}
	var items []*Item
	switch schema {
	case "example":
		r, err := shard.NewReader[shard.Example](args, nil)
		if err != nil {
			return nil, "", err
		}
		defer r.Close()
		for {
			e, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, "", err
			}
			f, row := r.Pos()
			items = append(items, &Item{ID: e.ID, Where: fmt.Sprintf("%s row %d", f, row), Prompt: e.PromptIDs,
				Conts: [][]int32{e.ResponseIDs}, Kinds: []string{shard.KindGT}, Tokenizer: e.Tokenizer})
		}
	case "candidates":
		r, err := shard.NewReader[shard.Candidates](args, nil)
		if err != nil {
			return nil, "", err
		}
		defer r.Close()
		for {
			c, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, "", err
			}
			f, row := r.Pos()
			it, err := itemOf(&c)
			if err != nil {
				return nil, "", fmt.Errorf("%s row %d: %w", f, row, err)
			}
			it.Where = fmt.Sprintf("%s row %d", f, row)
			items = append(items, it)
		}
	default:
		return nil, "", fmt.Errorf("cpo-train reads example or candidates shards, not %q", schema)
	}
	if len(items) == 0 {
		return nil, "", errors.New("no rows in the input")
	}
	return items, schema, nil
}

// itemOf converts a candidates row.
func itemOf(c *shard.Candidates) (*Item, error) {
	it := &Item{ID: c.ID, Prompt: c.PromptIDs, RefModel: c.RefModel, Tokenizer: c.Tokenizer}
	if len(c.Ranking) > 0 {
		it.Ranking = c.Ranking
	}
	nref := 0
	for _, cd := range c.Candidates {
		it.Conts = append(it.Conts, cd.IDs)
		it.Kinds = append(it.Kinds, cd.Kind)
		if cd.RefLogp != nil {
			nref++
		}
	}
	if nref > 0 {
		if nref != len(c.Candidates) {
			return nil, fmt.Errorf("row %q: %d of %d candidates have ref_logp; all or none must", c.ID, nref, len(c.Candidates))
		}
		if c.RefModel == "" {
			return nil, fmt.Errorf("row %q: ref_logp without a ref_model fingerprint", c.ID)
		}
		for _, cd := range c.Candidates {
			it.RefLogp = append(it.RefLogp, *cd.RefLogp)
		}
	}
	return it, nil
}

// CheckTokenizer reports the first item made with a tokenizer other than the one of
// fingerprint fp (the model's): its token ids would be read with the wrong vocabulary, which
// checkVocab cannot see when the ids happen to lie in range.
func CheckTokenizer(items []*Item, fp string) error {
	for _, it := range items {
		if it.Tokenizer != fp {
			return fmt.Errorf("%s: row %q was tokenized with tokenizer %.12s…, but the model's tokenizer is %.12s…: re-tokenize the data with the model's tokenizer (or --skip-tokenizer-check)",
				it.Where, it.ID, it.Tokenizer, fp)
		}
	}
	return nil
}

// CheckItems reports, before any training, the first item that the objective cannot use: a
// missing ground truth, fewer than 2 candidates for a contrastive objective, K other than 2 for
// dpo, a missing ranking for cpo-rank, an empty continuation.
func CheckItems(items []*Item, objective string) error {
	for _, it := range items {
		if err := checkItem(it, objective); err != nil {
			return fmt.Errorf("%s: %w", it.Where, err)
		}
	}
	return nil
}

func checkItem(it *Item, objective string) error {
	if it.K() == 0 || it.Kinds[0] != shard.KindGT {
		return fmt.Errorf("row %q has no ground truth (candidate 0 must be of kind gt)", it.ID)
	}
	if len(it.Conts[0]) == 0 && len(it.Prompt) == 0 {
		return fmt.Errorf("row %q: empty prompt and empty ground truth", it.ID)
	}
	for j, c := range it.Conts {
		if len(c) == 0 && objective != MLE {
			return fmt.Errorf("row %q: candidate %d (%s) is empty", it.ID, j, it.Kinds[j])
		}
	}
	switch objective {
	case MLE:
	case CPO, MLECPO:
		if it.K() < 2 {
			return fmt.Errorf("row %q has %d candidate(s); %s needs the ground truth and at least one negative (candidates shards from cpo-negatives)", it.ID, it.K(), objective)
		}
	case DPO:
		if it.K() != 2 {
			return fmt.Errorf("row %q has %d candidates; dpo is pairwise and needs exactly 2 (use --objective cpo for K negatives: it equals dpo at K=2)", it.ID, it.K())
		}
	case CPORank:
		if it.K() < 2 {
			return fmt.Errorf("row %q has %d candidate(s); cpo-rank needs at least 2", it.ID, it.K())
		}
		if len(it.Ranking) == 0 {
			return fmt.Errorf("row %q has no ranking; cpo-rank needs the ranking column (run cpo-embed first)", it.ID)
		}
		if len(it.Ranking) != it.K() {
			return fmt.Errorf("row %q: ranking has %d entries for %d candidates", it.ID, len(it.Ranking), it.K())
		}
		seen := make([]bool, it.K())
		for _, j := range it.Ranking {
			if j < 0 || int(j) >= it.K() || seen[j] {
				return fmt.Errorf("row %q: ranking %v is not a permutation of 0..%d", it.ID, it.Ranking, it.K()-1)
			}
			seen[j] = true
		}
	default:
		return fmt.Errorf("unknown objective %q (want one of %v)", objective, Objectives)
	}
	return nil
}

// DataFingerprint identifies the training data and its order: the hex SHA-256 over every item's
// id, prompt and candidates. A resumed run refuses other data.
func DataFingerprint(items []*Item) string {
	h := sha256.New()
	var b [4]byte
	put := func(ids []int32) {
		binary.LittleEndian.PutUint32(b[:], uint32(len(ids)))
		h.Write(b[:])
		for _, x := range ids {
			binary.LittleEndian.PutUint32(b[:], uint32(x))
			h.Write(b[:])
		}
	}
	for _, it := range items {
		h.Write([]byte(it.ID))
		h.Write([]byte{0})
		put(it.Prompt)
		for _, c := range it.Conts {
			put(c)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Seq is one packed sequence of a candidate: Tokens = prompt + continuation after truncation,
// and the continuation's tokens are Tokens[Start:], so their log-probabilities are the model's
// logp at positions Start-1 .. len(Tokens)-2 of the sequence.
type Seq struct {
	Tokens []int32
	Start  int
}

// BuildSeq joins a prompt and a continuation into one sequence of at most maxLen tokens.
// An empty prompt becomes [bos] when bos >= 0 (so the first token is predicted), else the
// continuation's first token serves as the prompt. A continuation longer than maxLen-1 is cut
// at its end; then the prompt keeps its last tokens. truncated reports any cut.
func BuildSeq(prompt, cont []int32, bos, maxLen int) (s Seq, truncated bool) {
	if len(prompt) == 0 {
		if bos >= 0 {
			prompt = []int32{int32(bos)}
		} else if len(cont) > 0 {
			prompt, cont = cont[:1], cont[1:]
		}
	}
	if len(cont) > maxLen-1 {
		cont = cont[:maxLen-1]
		truncated = true
	}
	if len(prompt)+len(cont) > maxLen {
		prompt = prompt[len(prompt)-(maxLen-len(cont)):]
		truncated = true
	}
	toks := make([]int32, 0, len(prompt)+len(cont))
	toks = append(append(toks, prompt...), cont...)
	return Seq{Tokens: toks, Start: len(prompt)}, truncated
}
