package tokenizer

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const gpt2Dir = "../../testdata/tokenizer/gpt2"

// gunzipTo decompresses src into dir/name and returns the path.
func gunzipTo(t testing.TB, src, dir, name string) string {
	t.Helper()
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, name)
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, zr); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return dst
}

// gpt2Files unpacks the committed GPT-2 vocabulary into a temporary directory.
func gpt2Files(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	gunzipTo(t, filepath.Join(gpt2Dir, "encoder.json.gz"), dir, "encoder.json")
	gunzipTo(t, filepath.Join(gpt2Dir, "vocab.bpe.gz"), dir, "vocab.bpe")
	return dir
}

func loadGPT2(t testing.TB) *Tokenizer {
	t.Helper()
	tok, err := Load(gpt2Files(t))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

type gpt2Golden struct {
	Text     string  `json:"text"`
	HF       []int32 `json:"hf"`
	Ordinary []int32 `json:"ordinary"`
}

func readGoldens[T any](t testing.TB, path string) []T {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var out []T
	sc := bufio.NewScanner(zr)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var g T
		if err := json.Unmarshal(sc.Bytes(), &g); err != nil {
			t.Fatalf("%s line %d: %v", path, len(out)+1, err)
		}
		out = append(out, g)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestGPT2Goldens checks id-for-id equality with Hugging Face tokenizers (Encode) and
// with tiktoken's r50k_base (EncodeOrdinary) on the committed corpus.
func TestGPT2Goldens(t *testing.T) {
	tok := loadGPT2(t)
	goldens := readGoldens[gpt2Golden](t, filepath.Join(gpt2Dir, "goldens.jsonl.gz"))
	if len(goldens) < 100 {
		t.Fatalf("only %d goldens", len(goldens))
	}
	bad := 0
	for k, g := range goldens {
		got := tok.Encode(g.Text)
		if !slices.Equal(got, g.HF) {
			bad++
			if bad <= 5 {
				t.Errorf("doc %d %q:\n got %v\nwant %v (Hugging Face)", k, trunc(g.Text), head(got), head(g.HF))
			}
		}
		dec, err := tok.Decode(got)
		if err != nil || dec != g.Text {
			t.Errorf("doc %d: decode(encode(x)) != x: %q", k, trunc(dec))
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d documents differ from Hugging Face", bad, len(goldens))
	}
}

func trunc(s string) string {
	if len(s) > 120 {
		return s[:120] + "..."
	}
	return s
}

func head(ids []int32) []int32 {
	if len(ids) > 40 {
		return ids[:40]
	}
	return ids
}

// TestGPT2OrdinaryGoldens checks EncodeOrdinary against js-tiktoken's r50k_base. The two
// differ only through JavaScript's \s, which counts U+FEFF as white space and U+0085 (NEL)
// not; we follow the Unicode White_Space property as Hugging Face (Oniguruma) and OpenAI's
// Python implementation do, so documents with those characters are only counted.
func TestGPT2OrdinaryGoldens(t *testing.T) {
	tok := loadGPT2(t)
	goldens := readGoldens[gpt2Golden](t, filepath.Join(gpt2Dir, "goldens.jsonl.gz"))
	jsWS, checked := 0, 0
	for k, g := range goldens {
		if strings.ContainsAny(g.Text, "\u0085\ufeff") {
			jsWS++
			continue
		}
		checked++
		if got := tok.EncodeOrdinary(g.Text); !slices.Equal(got, g.Ordinary) {
			t.Errorf("doc %d %q:\n got %v\nwant %v (tiktoken)", k, trunc(g.Text), head(got), head(g.Ordinary))
		}
	}
	if checked < 100 {
		t.Fatalf("only %d documents checked", checked)
	}
	t.Logf("%d documents equal to tiktoken; %d with U+0085/U+FEFF skipped", checked, jsWS)
}

// TestGPT2PrefixSpaceGoldens checks the ByteLevel add_prefix_space option against Hugging
// Face on the first 150 documents (literal "<|endoftext|>" included: each segment between
// added tokens gets its own space).
func TestGPT2PrefixSpaceGoldens(t *testing.T) {
	tok := loadGPT2(t)
	var b bytes.Buffer
	if err := tok.SaveHF(&b); err != nil {
		t.Fatal(err)
	}
	js := strings.Replace(b.String(), `"pre_tokenizer":{"type":"ByteLevel","add_prefix_space":false`, `"pre_tokenizer":{"type":"ByteLevel","add_prefix_space":true`, 1)
	pre, err := ParseHFJSON([]byte(js), "prefix-space tokenizer.json")
	if err != nil {
		t.Fatal(err)
	}
	if pre.Fingerprint() == tok.Fingerprint() {
		t.Fatal("add_prefix_space does not change the fingerprint")
	}
	goldens := readGoldens[gpt2Golden](t, filepath.Join(gpt2Dir, "goldens.jsonl.gz"))
	f, err := os.Open(filepath.Join(gpt2Dir, "prefix_space_goldens.json.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var want [][]int32
	if err := json.NewDecoder(zr).Decode(&want); err != nil {
		t.Fatal(err)
	}
	if len(want) != 150 {
		t.Fatalf("%d prefix-space goldens", len(want))
	}
	for k, w := range want {
		if got := pre.Encode(goldens[k].Text); !slices.Equal(got, w) {
			t.Errorf("doc %d %q:\n got %v\nwant %v (Hugging Face, add_prefix_space)", k, trunc(goldens[k].Text), head(got), head(w))
		}
	}
}
