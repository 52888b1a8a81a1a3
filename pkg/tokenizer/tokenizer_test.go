package tokenizer

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// words splits text with the scanner and returns the pre-tokens.
func words(s string) []string {
	b := []byte(s)
	var out []string
	prev := 0
	for _, e := range splitGPT2(b, nil) {
		out = append(out, s[prev:e])
		prev = e
	}
	return out
}

func TestGPT2PreTokenizer(t *testing.T) {
	cases := []struct {
		in   string
		want []string
	}{
		{"Hello world", []string{"Hello", " world"}},
		{"a  b", []string{"a", " ", " b"}},
		{"a   \n\n  b", []string{"a", "   \n\n ", " b"}},
		{"end   ", []string{"end", "   "}},
		{"IT'S it's", []string{"IT", "'", "S", " it", "'s"}},
		{"we're they'LL I'd", []string{"we", "'re", " they", "'", "LL", " I", "'d"}},
		{" 's", []string{" '", "s"}},
		{"x\u00a0y", []string{"x", "\u00a0", "y"}},                 // NBSP is \s
		{"x\u00a0\u00a0y", []string{"x", "\u00a0", "\u00a0", "y"}}, // " ?" is U+0020 only
		{"123abc", []string{"123", "abc"}},
		{" 42 ½", []string{" 42", " ½"}},
		{"e\u0301t\u00e9", []string{"e", "\u0301", "t\u00e9"}}, // combining mark is "other"
		{"\t\tx", []string{"\t", "\t", "x"}},
		{"a\r\nb", []string{"a", "\r", "\n", "b"}},
		{"a\r\n", []string{"a", "\r\n"}},
		{"?!.. ,", []string{"?!..", " ,"}},
		{"\xff\xfe ab", []string{"\xff\xfe", " ab"}},
		{"", nil},
	}
	for _, c := range cases {
		if got := words(c.in); !slices.Equal(got, c.want) {
			t.Errorf("%q: got %q, want %q", c.in, got, c.want)
		}
	}
}

// TestMergeHeapMatchesScan checks the heap merge of long words against the plain scan on
// every pre-token of the corpus and on long repetitive words.
func TestMergeHeapMatchesScan(t *testing.T) {
	tok := loadGPT2(t)
	st := &encState{}
	inputs := []string{strings.Repeat("a", 300), strings.Repeat("ab", 200), strings.Repeat(" ", 500), strings.Repeat("=-", 100), "0123456789abcdefghijklmnopqrstuvwxyz"}
	goldens := readGoldens[gpt2Golden](t, filepath.Join(gpt2Dir, "goldens.jsonl.gz"))
	for _, g := range goldens[:200] {
		inputs = append(inputs, words(g.Text)...)
		inputs = append(inputs, g.Text[:min(len(g.Text), 300)])
	}
	for _, in := range inputs {
		syms := make([]int32, len(in))
		for k := 0; k < len(in); k++ {
			syms[k] = tok.byteID[in[k]]
		}
		a := slices.Clone(tok.mergeWordHeap(st, slices.Clone(syms)))
		b := slices.Clone(mergeScanOnly(tok, st, slices.Clone(syms)))
		if !slices.Equal(a, b) {
			t.Fatalf("%q: heap %v scan %v", in, a, b)
		}
	}
}

// mergeScanOnly is mergeWord without the switch to the heap.
func mergeScanOnly(tok *Tokenizer, st *encState, syms []int32) []int32 {
	for {
		best, bk := noRank, -1
		for k := 0; k+1 < len(syms); k++ {
			if r := tok.pairRank(syms[k], syms[k+1]); r < best {
				best, bk = r, k
			}
		}
		if bk < 0 {
			return syms
		}
		syms[bk] = tok.pairs[pairKey(syms[bk], syms[bk+1])].id
		syms = append(syms[:bk+1], syms[bk+2:]...)
	}
}

func TestSpecialTokens(t *testing.T) {
	tok := loadGPT2(t)
	if tok.BOS() != 50256 || tok.EOS() != 50256 || tok.PAD() != -1 || tok.VocabSize() != 50257 {
		t.Fatalf("bos %d eos %d pad %d V %d", tok.BOS(), tok.EOS(), tok.PAD(), tok.VocabSize())
	}
	s := "a<|endoftext|>b"
	if got := tok.Encode(s); !slices.Equal(got, []int32{64, 50256, 65}) {
		t.Errorf("Encode %q = %v", s, got)
	}
	ord := tok.EncodeOrdinary(s)
	if slices.Contains(ord, 50256) || len(ord) < 5 {
		t.Errorf("EncodeOrdinary %q = %v", s, ord)
	}
	for _, ids := range [][]int32{tok.Encode(s), ord} {
		if d, err := tok.Decode(ids); err != nil || d != s {
			t.Errorf("Decode(%v) = %q, %v", ids, d, err)
		}
	}
	if d, _ := tok.DecodeSkipSpecial(tok.Encode(s)); d != "ab" {
		t.Errorf("DecodeSkipSpecial = %q", d)
	}
	if _, err := tok.Decode([]int32{50257}); err == nil {
		t.Error("Decode of id 50257 did not fail")
	}
	e := tok.NewEncoder()
	if got := e.Encode(nil, []byte(s)); !slices.Equal(got, tok.Encode(s)) {
		t.Errorf("Encoder.Encode = %v", got)
	}
	if got := e.EncodeOrdinary(nil, []byte(s)); !slices.Equal(got, ord) {
		t.Errorf("Encoder.EncodeOrdinary = %v", got)
	}
}

// TestSaveHFRoundTrip: encoder.json + vocab.bpe and the tokenizer.json SaveHF writes are
// the same tokenizer (same fingerprint, same ids).
func TestSaveHFRoundTrip(t *testing.T) {
	dir := gpt2Files(t)
	tok, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "tokenizer.json")
	if err := tok.SaveHFFile(out); err != nil {
		t.Fatal(err)
	}
	back, err := Load(filepath.Dir(out))
	if err != nil {
		t.Fatal(err)
	}
	if back.Fingerprint() != tok.Fingerprint() {
		t.Fatalf("fingerprints differ: %s vs %s", back.Fingerprint(), tok.Fingerprint())
	}
	text := "Saved and loaded <|endoftext|> IT'S the same.\r\n  \u00a0漢字"
	if !slices.Equal(back.Encode(text), tok.Encode(text)) {
		t.Fatal("ids differ after SaveHF/Load")
	}
	if len(tok.Fingerprint()) != 64 {
		t.Fatalf("fingerprint %q", tok.Fingerprint())
	}

	sp, err := Load(filepath.Join(spDir, "llama.model"))
	if err != nil {
		t.Fatal(err)
	}
	spOut := filepath.Join(t.TempDir(), "tokenizer.json")
	if err := sp.SaveHFFile(spOut); err != nil {
		t.Fatal(err)
	}
	spBack, err := Load(spOut)
	if err != nil {
		t.Fatal(err)
	}
	if spBack.Fingerprint() != sp.Fingerprint() {
		t.Errorf("SentencePiece fingerprint changed by SaveHF/Load")
	}
	goldens := readGoldens[spGolden](t, filepath.Join(spDir, "llama.goldens.jsonl.gz"))
	for k, g := range goldens {
		if got := spBack.EncodeOrdinary(g.Text); !slices.Equal(got, g.IDs) {
			t.Fatalf("tokenizer.json from llama.model, line %d %q: got %v want %v", k+1, trunc(g.Text), head(got), head(g.IDs))
		}
	}
	nfkc, err := Load(filepath.Join(spDir, "nfkc.model"))
	if err != nil {
		t.Fatal(err)
	}
	if err := nfkc.SaveHF(&bytes.Buffer{}); err == nil {
		t.Error("SaveHF of a model with a precompiled normalizer did not fail")
	}
	nobyte, err := Load(filepath.Join(spDir, "nobyte.model"))
	if err != nil {
		t.Fatal(err)
	}
	if err := nobyte.SaveHF(&bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "user-defined") {
		t.Errorf("SaveHF of a model with user-defined pieces: %v", err)
	}
	if nfkc.Fingerprint() == sp.Fingerprint() {
		t.Error("different models share a fingerprint")
	}
}

func TestSentencePieceDecode(t *testing.T) {
	sp, err := Load(filepath.Join(spDir, "llama.model"))
	if err != nil {
		t.Fatal(err)
	}
	if sp.BOS() != 1 || sp.EOS() != 2 || sp.Piece(0) != "<unk>" {
		t.Fatalf("bos %d eos %d unk %q", sp.BOS(), sp.EOS(), sp.Piece(0))
	}
	for _, s := range []string{"Hello world", "  two leading", "trailing  ", "漢字 ☃ 🤖 \x00 \t\n", ""} {
		ids := sp.EncodeOrdinary(s)
		d, err := sp.Decode(ids)
		if err != nil || d != s {
			t.Errorf("%q -> %v -> %q (%v)", s, ids, d, err)
		}
	}
	ids := append([]int32{sp.BOS()}, sp.Encode("Hi </s> there")...)
	if !slices.Contains(ids, sp.EOS()) {
		t.Errorf("literal </s> not mapped to EOS: %v", ids)
	}
	// As in Hugging Face's legacy Llama tokenizer, the text on each side of an added token
	// gets its own dummy prefix: "▁Hi▁" </s> "▁▁there".
	if d, _ := sp.DecodeSkipSpecial(append(ids, sp.EOS())); d != "Hi   there" {
		t.Errorf("DecodeSkipSpecial = %q", d)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	check := func(path string, want ...string) {
		t.Helper()
		_, err := Load(path)
		if err == nil {
			t.Fatalf("Load(%s) did not fail", path)
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Load(%s): error %q lacks %q", path, err, w)
			}
		}
	}
	check(write("notes.txt", "just some text"), "unknown tokenizer file type", "notes.txt")
	check(dir, "holds no tokenizer.json")
	check(write("bad.json", `{"model":{"type":"Unigram"}}`), "Unigram", "bad.json")

	// A broken merges list: the second merge names a token not in the vocabulary.
	vocab := map[string]int{"ab": 256}
	for b := range 256 {
		vocab[bytesToPiece([]byte{byte(b)})] = b
	}
	vj, err := json.Marshal(vocab)
	if err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "gpt")
	os.Mkdir(sub, 0o755)
	os.WriteFile(filepath.Join(sub, "encoder.json"), vj, 0o644)
	os.WriteFile(filepath.Join(sub, "vocab.bpe"), []byte("#version: 0.2\na b\nc zz\n"), 0o644)
	check(sub, "vocab.bpe:3", `"zz" is not in the vocabulary`)
	os.WriteFile(filepath.Join(sub, "vocab.bpe"), []byte("#version: 0.2\na b\n"), 0o644)
	if _, err := Load(sub); err != nil {
		t.Fatalf("valid small vocabulary: %v", err)
	}
	// Truncated SentencePiece model.
	data, err := os.ReadFile(filepath.Join(spDir, "llama.model"))
	if err != nil {
		t.Fatal(err)
	}
	check(write("cut.model", string(data[:len(data)/2])), "cut.model", "not a SentencePiece model")
}

func TestTrain(t *testing.T) {
	tmp := t.TempDir()
	text, err := os.ReadFile(gunzipTo(t, filepath.Join(gpt2Dir, "bench_en.txt.gz"), tmp, "en.txt"))
	if err != nil {
		t.Fatal(err)
	}
	texts := strings.Split(string(text[:200000]), "\n\n")
	tok, err := Train(texts, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if tok.VocabSize() != 1000 || tok.EOS() != 999 || tok.Piece(999) != EndOfText {
		t.Fatalf("V %d eos %d", tok.VocabSize(), tok.EOS())
	}
	again, _ := Train(texts, 1000)
	if again.Fingerprint() != tok.Fingerprint() {
		t.Fatal("training is not deterministic")
	}
	sample := "The type of a constant expression is determined by its operands.\n"
	ids := tok.Encode(sample)
	if len(ids) >= len(sample)/2 {
		t.Errorf("trained tokenizer compresses poorly: %d ids for %d bytes", len(ids), len(sample))
	}
	for _, s := range []string{sample, "\xff\x00 unseen 漢字 <|endoftext|>"} {
		if d, err := tok.Decode(tok.Encode(s)); err != nil || d != s {
			t.Errorf("round trip %q -> %q", s, d)
		}
	}
	p := filepath.Join(tmp, "tokenizer.json")
	if err := tok.SaveHFFile(p); err != nil {
		t.Fatal(err)
	}
	back, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if back.Fingerprint() != tok.Fingerprint() || !slices.Equal(back.Encode(sample), ids) {
		t.Fatal("trained tokenizer changed through SaveHF/Load")
	}
	if _, err := Train(texts, 100); err == nil {
		t.Error("Train with 100 ids did not fail")
	}
}

// TestConcurrentEncode encodes from several goroutines (run with -race).
func TestConcurrentEncode(t *testing.T) {
	tok := loadGPT2(t)
	text := "Concurrent encoders share nothing but the tokenizer. IT'S fine."
	want := tok.Encode(text)
	done := make(chan []int32)
	for range 4 {
		go func() {
			var got []int32
			for range 50 {
				got = tok.Encode(text)
			}
			done <- got
		}()
	}
	for range 4 {
		if got := <-done; !slices.Equal(got, want) {
			t.Fatalf("got %v want %v", got, want)
		}
	}
}

// TestRandomRoundTrip: decode(encode(x)) == x for random bytes (byte-level) and random
// valid UTF-8 (SentencePiece).
func TestRandomRoundTrip(t *testing.T) {
	tok := loadGPT2(t)
	sp, err := Load(filepath.Join(spDir, "llama.model"))
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 300 {
		b := make([]byte, r.IntN(200))
		for k := range b {
			b[k] = byte(r.IntN(256))
		}
		checkRoundTrip(t, tok, sp, b)
	}
}

func checkRoundTrip(t *testing.T, tok, sp *Tokenizer, b []byte) {
	t.Helper()
	ids := tok.EncodeOrdinary(string(b))
	if d, err := tok.Decode(ids); err != nil || d != string(b) {
		t.Fatalf("byte-level: %q -> %v -> %q", b, ids, d)
	}
	if utf8.Valid(b) {
		ids := sp.EncodeOrdinary(string(b))
		if d, err := sp.Decode(ids); err != nil || d != string(b) {
			t.Fatalf("sentencepiece: %q -> %v -> %q", b, ids, d)
		}
	}
}

func FuzzRoundTrip(f *testing.F) {
	tok := loadGPT2(f)
	sp, err := Load(filepath.Join(spDir, "llama.model"))
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{"", " ", "Hello world", "IT'S  \r\n\u00a0x", "\xff\xfe\x00", "漢字🤖\u200d", "<|endoftext|>", "a   b\t\t\n", "e\u0301"} {
		f.Add([]byte(s))
	}
	st := &encState{}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkRoundTrip(t, tok, sp, b)
		// The heap merge of long words equals the plain scan.
		syms := make([]int32, len(b))
		for k := range b {
			syms[k] = tok.byteID[b[k]]
		}
		heap := slices.Clone(tok.mergeWordHeap(st, slices.Clone(syms)))
		if scan := mergeScanOnly(tok, st, syms); !slices.Equal(heap, scan) {
			t.Fatalf("%q: heap merge %v, scan %v", b, heap, scan)
		}
	})
}

// TestTrainMatchesNaive compares Train's incremental pair counts with a trainer that
// recounts every pair at every step.
func TestTrainMatchesNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	alphabet := []string{"a", "b", "ab", "ba", "aa", " ", "  ", "x", "\n", "é", "'s", "1", "22"}
	var texts []string
	for range 40 {
		var sb strings.Builder
		for range 60 {
			sb.WriteString(alphabet[r.IntN(len(alphabet))])
		}
		texts = append(texts, sb.String())
	}
	tok, err := Train(texts, 400)
	if err != nil {
		t.Fatal(err)
	}
	// Naive trainer.
	counts := map[string]int{}
	for _, text := range texts {
		for _, w := range words(text) {
			counts[w]++
		}
	}
	type word struct {
		syms  []int32
		count int
	}
	var ws []word
	for w, c := range counts {
		s := make([]int32, len(w))
		for k := range len(w) {
			s[k] = int32(w[k])
		}
		ws = append(ws, word{s, c})
	}
	var merges []Merge
	next := int32(256)
	for int(next) < 399 {
		pc := map[uint64]int{}
		for _, w := range ws {
			for k := 0; k+1 < len(w.syms); k++ {
				pc[pairKey(w.syms[k], w.syms[k+1])] += w.count
			}
		}
		best, bc := uint64(0), 0
		for k, c := range pc {
			if c > bc || (c == bc && k < best) {
				best, bc = k, c
			}
		}
		if bc < 2 {
			break
		}
		l, rr := int32(best>>32), int32(uint32(best))
		merges = append(merges, Merge{Left: l, Right: rr, Result: next, Rank: int32(len(merges))})
		for i := range ws {
			out := ws[i].syms[:0]
			s := ws[i].syms
			for k := 0; k < len(s); k++ {
				if k+1 < len(s) && s[k] == l && s[k+1] == rr {
					out = append(out, next)
					k++
				} else {
					out = append(out, s[k])
				}
			}
			ws[i].syms = out
		}
		next++
	}
	got := tok.Merges()
	if len(merges) < 50 {
		t.Fatalf("only %d merges learned", len(merges))
	}
	if len(got) != len(merges) {
		t.Fatalf("%d merges, naive %d", len(got), len(merges))
	}
	for k := range merges {
		if got[k] != merges[k] {
			t.Fatalf("merge %d: %+v, naive %+v", k, got[k], merges[k])
		}
	}
}
