package prep

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/cpo-toolchain/cpo/pkg/shard"
	"github.com/cpo-toolchain/cpo/pkg/tokenizer"
)

// Overflow policies for examples longer than the limits.
const (
	Truncate = "truncate" // prompts keep their last tokens, responses their first
	Drop     = "drop"     // the example is left out
)

// Options say how records become examples.
type Options struct {
	Tokenizer *tokenizer.Tokenizer
	Source    string // the source column, and the prefix of generated ids
	Text      bool   // records are text documents to split at PrefixFrac
	// PrefixFrac is the fraction of a document's tokens that form the prompt (the paper's
	// Wikipedia task: 0.15); the prefix has at least one token and leaves at least one.
	PrefixFrac float64
	// MaxPromptTokens and MaxResponseTokens limit the lengths, counting BOS and EOS
	// (0: no limit); Overflow says what happens beyond them.
	MaxPromptTokens, MaxResponseTokens int
	Overflow                           string
	// TestFrac of the records, chosen by a permutation seeded with Seed, get split "test",
	// the rest "train": round(TestFrac*N) test rows (the paper: 7,506 of 15,011 at 0.5).
	TestFrac float64
	Seed     int64
	BOS      bool // prepend the tokenizer's BOS to prompts
	EOS      bool // append the tokenizer's EOS to responses
	// Ordinary treats special-token text in the data (such as "<|endoftext|>") as ordinary
	// text; by default it becomes the special id, as in Hugging Face tokenizers.
	Ordinary bool
	Workers  int // 0: all cores
}

// Report counts what Build did.
type Report struct {
	Records           int // records given
	Written           int // examples returned
	Train, Test       int
	PromptTruncated   int
	ResponseTruncated int
	Dropped           map[string]int // by reason: "prompt too long", "response too long", "document too short", "duplicate id"
	PromptTokens      int64
	ResponseTokens    int64
}

// String is the one-line summary cpo-tokenize prints.
func (r Report) String() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%d records, %d examples (%d train, %d test), %d prompt tokens, %d response tokens",
		r.Records, r.Written, r.Train, r.Test, r.PromptTokens, r.ResponseTokens)
	if r.PromptTruncated+r.ResponseTruncated > 0 {
		fmt.Fprintf(&sb, "; truncated: %d prompts, %d responses", r.PromptTruncated, r.ResponseTruncated)
	}
	sb.WriteString(countsString("dropped", r.Dropped))
	return sb.String()
}

func countsString(what string, m map[string]int) string {
	if len(m) == 0 {
		return ""
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d %s", m[k], k)
	}
	return "; " + what + ": " + strings.Join(parts, ", ")
}

// SkippedString formats the counts of rows skipped while reading.
func SkippedString(m map[string]int) string { return countsString("skipped", m) }

// TestSet returns which of n records are test records: round(frac*n) of them, chosen by a
// permutation seeded with seed.
func TestSet(n int, frac float64, seed int64) []bool {
	test := make([]bool, n)
	k := int(math.Floor(frac*float64(n) + 0.5))
	k = max(0, min(n, k))
	perm := rand.New(rand.NewPCG(uint64(seed), 0x6370_6f2d_7370_6c74)).Perm(n)
	for _, i := range perm[:k] {
		test[i] = true
	}
	return test
}

// result is the outcome of one record.
type result struct {
	ex        shard.Example
	dropped   string
	truncP    bool
	truncR    bool
	badDetail string
}

// Build tokenizes records into examples, in record order, using o.Workers goroutines.
// A record that cannot be used (a text document under two tokens, an id already used) is an
// error naming its file and line, unless skipBad, which drops and counts it.
func Build(recs []Record, o Options, skipBad bool) ([]shard.Example, Report, error) {
	b, err := NewBuilder(o, skipBad, len(recs))
	if err != nil {
		return nil, Report{}, err
	}
	out, err := b.Add(recs)
	return out, b.Report(), err
}

// Builder is Build a chunk of records at a time, for inputs larger than memory: the records
// are numbered across chunks (ids <source>-<index>, the test split of TestSet over all n
// records, duplicate ids across chunks), so that the examples equal Build's on all records.
type Builder struct {
	o       Options
	skipBad bool
	n       int    // records in all
	next    int    // index of the next record
	test    []bool // the test split of the n records
	fp      string
	seen    map[string]bool
	rep     Report
}

// NewBuilder checks o and prepares to build examples from n records in all.
func NewBuilder(o Options, skipBad bool, n int) (*Builder, error) {
	tok := o.Tokenizer
	if o.Overflow == "" {
		o.Overflow = Truncate
	}
	if o.Overflow != Truncate && o.Overflow != Drop {
		return nil, fmt.Errorf("overflow policy %q: want truncate or drop", o.Overflow)
	}
	if o.Text && (o.PrefixFrac <= 0 || o.PrefixFrac >= 1) {
		return nil, fmt.Errorf("prefix fraction %g: want 0 < f < 1", o.PrefixFrac)
	}
	if o.TestFrac < 0 || o.TestFrac > 1 {
		return nil, fmt.Errorf("test fraction %g: want 0 <= f <= 1", o.TestFrac)
	}
	if o.BOS && tok.BOS() < 0 {
		return nil, fmt.Errorf("the tokenizer has no BOS token")
	}
	if o.EOS && tok.EOS() < 0 {
		return nil, fmt.Errorf("the tokenizer has no EOS token")
	}
	if o.Workers <= 0 {
		o.Workers = runtime.NumCPU()
	}
	return &Builder{o: o, skipBad: skipBad, n: n, test: TestSet(n, o.TestFrac, o.Seed), fp: tok.Fingerprint(),
		seen: map[string]bool{}, rep: Report{Dropped: map[string]int{}}}, nil
}

// Report counts what the builder did so far.
func (b *Builder) Report() Report { return b.rep }

// Add tokenizes the next records (in order, o.Workers goroutines) and returns their
// examples. More records than NewBuilder was told of is an error.
func (b *Builder) Add(recs []Record) ([]shard.Example, error) {
	if b.next+len(recs) > b.n {
		return nil, fmt.Errorf("prep: %d records added to a builder of %d", b.next+len(recs), b.n)
	}
	base := b.next
	b.next += len(recs)
	o := &b.o
	results := make([]result, len(recs))
	workers := o.Workers
	var wg sync.WaitGroup
	chunk := max(1, min(256, len(recs)/(4*workers)+1))
	next := make(chan int, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			enc := o.Tokenizer.NewEncoder()
			for start := range next {
				for i := start; i < min(start+chunk, len(recs)); i++ {
					results[i] = o.one(enc, &recs[i], base+i, b.test[base+i], b.fp)
				}
			}
		}()
	}
	for start := 0; start < len(recs); start += chunk {
		next <- start
	}
	close(next)
	wg.Wait()

	rep := &b.rep
	rep.Records += len(recs)
	out := make([]shard.Example, 0, len(recs))
	for i := range results {
		r := &results[i]
		if r.dropped == "" && r.badDetail == "" {
			// Generations, judgments and scores are joined by id: ids must be unique.
			if b.seen[r.ex.ID] {
				r.dropped, r.badDetail = "duplicate id", fmt.Sprintf("duplicate id %q", r.ex.ID)
			}
			b.seen[r.ex.ID] = true
		}
		if r.badDetail != "" {
			if !b.skipBad {
				return nil, &BadRecordError{File: recs[i].File, Line: recs[i].Line, Reason: r.dropped, Detail: r.badDetail}
			}
		}
		if r.dropped != "" {
			rep.Dropped[r.dropped]++
			continue
		}
		if r.truncP {
			rep.PromptTruncated++
		}
		if r.truncR {
			rep.ResponseTruncated++
		}
		if r.ex.Split == "test" {
			rep.Test++
		} else {
			rep.Train++
		}
		rep.PromptTokens += int64(len(r.ex.PromptIDs))
		rep.ResponseTokens += int64(len(r.ex.ResponseIDs))
		out = append(out, r.ex)
	}
	rep.Written += len(out)
	return out, nil
}

func (o *Options) encode(enc *tokenizer.Encoder, dst []int32, s string) []int32 {
	if o.Ordinary {
		return enc.EncodeOrdinary(dst, []byte(s))
	}
	return enc.Encode(dst, []byte(s))
}

// one turns record i into an example.
func (o *Options) one(enc *tokenizer.Encoder, rec *Record, i int, test bool, fp string) result {
	tok := o.Tokenizer
	ex := shard.Example{ID: rec.ID, Source: o.Source, Split: "train", Tokenizer: fp}
	if ex.ID == "" {
		ex.ID = fmt.Sprintf("%s-%06d", o.Source, i)
	}
	if test {
		ex.Split = "test"
	}
	var prompt []int32
	if o.BOS {
		prompt = append(prompt, tok.BOS())
	}
	nb := len(prompt)
	var resp []int32
	if o.Text {
		ids := o.encode(enc, nil, rec.Prompt)
		if len(ids) < 2 {
			return result{dropped: "document too short", badDetail: fmt.Sprintf("document has %d tokens, needs 2 to split", len(ids))}
		}
		k := max(1, min(len(ids)-1, int(o.PrefixFrac*float64(len(ids)))))
		prompt = append(prompt, ids[:k]...)
		resp = append(resp, ids[k:]...)
		ex.Prompt, ex.Response = splitText(tok, rec.Prompt, ids[:k], ids[k:])
	} else {
		prompt = o.encode(enc, prompt, rec.Prompt)
		resp = o.encode(enc, nil, rec.Response)
		ex.Prompt, ex.Response = rec.Prompt, rec.Response
	}
	if o.EOS {
		resp = append(resp, tok.EOS())
	}
	var r result
	if m := o.MaxPromptTokens; m > 0 && len(prompt) > m {
		if o.Overflow == Drop {
			return result{dropped: "prompt too long"}
		}
		// Keep BOS and the last tokens, nearest the response.
		keep := max(0, m-nb)
		cut := append(prompt[:nb:nb], prompt[len(prompt)-keep:]...)
		prompt = cut[:min(len(cut), m)]
		ex.Prompt = decodeText(tok, prompt[nb:])
		r.truncP = true
	}
	if m := o.MaxResponseTokens; m > 0 && len(resp) > m {
		if o.Overflow == Drop {
			return result{dropped: "response too long"}
		}
		// Keep the first tokens; the cut response has no EOS, as it did not end there.
		resp = resp[:m]
		ex.Response = decodeText(tok, resp)
		r.truncR = true
	}
	ex.PromptIDs, ex.ResponseIDs = prompt, resp
	r.ex = ex
	return r
}

// decodeText is the text of ids without special tokens, made valid UTF-8 (a cut may split
// a character).
func decodeText(tok *tokenizer.Tokenizer, ids []int32) string {
	s, err := tok.DecodeSkipSpecial(ids)
	if err != nil {
		return ""
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// splitText returns the texts of a document's prefix and continuation: the document cut
// where the prefix's decoded text ends (moved forward to a character boundary), or the
// decoded texts when normalization changed the text.
func splitText(tok *tokenizer.Tokenizer, doc string, pre, rest []int32) (string, string) {
	p, err := tok.DecodeSkipSpecial(pre)
	if err == nil && strings.HasPrefix(doc, p) {
		cut := len(p)
		for cut < len(doc) && !utf8.RuneStart(doc[cut]) {
			cut++
		}
		return doc[:cut], doc[cut:]
	}
	if err == nil {
		// SentencePiece dropped the dummy prefix's space, or a normalizer changed the text.
		if q := strings.TrimPrefix(p, " "); strings.HasPrefix(doc, q) {
			cut := len(q)
			return doc[:cut], doc[cut:]
		}
	}
	return decodeText(tok, pre), decodeText(tok, rest)
}
