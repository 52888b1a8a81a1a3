package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/cpo-toolchain/cpo/pkg/cliutil"
	"github.com/cpo-toolchain/cpo/pkg/hub"
	"github.com/cpo-toolchain/cpo/pkg/hub/hubtest"
	"github.com/cpo-toolchain/cpo/pkg/shard"
	"github.com/cpo-toolchain/cpo/pkg/tokenizer"
	"github.com/cpo-toolchain/cpo/pkg/tokenizer/prep"
)

// gpt2Dir unpacks the committed GPT-2 vocabulary.
func gpt2Dir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"encoder.json", "vocab.bpe"} {
		f, err := os.Open(filepath.Join("../../testdata/tokenizer/gpt2", name+".gz"))
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(zr)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, name), b, 0o644)
	}
	return dir
}

func run(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	app := newApp()
	var out bytes.Buffer
	app.Reader, app.Writer, app.ErrWriter = strings.NewReader(stdin), &out, io.Discard
	err := app.Run(append([]string{"cpo-tokenize"}, args...))
	return out.String(), err
}

// TestEndToEnd: Dolly JSONL to shards and back, text documents, ids and decode.
func TestEndToEnd(t *testing.T) {
	tokDir := gpt2Dir(t)
	dir := t.TempDir()
	var rows strings.Builder
	for i := range 11 {
		rows.WriteString(`{"instruction":"Say hello number ` + strings.Repeat("x", i) + `.","context":"","response":"Hello!","category":"open_qa"}` + "\n")
	}
	in := filepath.Join(dir, "dolly.jsonl")
	os.WriteFile(in, []byte(rows.String()), 0o644)
	out := filepath.Join(dir, "ex.parquet")
	if _, err := run(t, "", "encode", "-q", "-t", tokDir, "--out", out, in); err != nil {
		t.Fatal(err)
	}
	exs, err := shard.ReadAll[shard.Example]([]string{out}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := tokenizer.Load(tokDir)
	test := 0
	for _, ex := range exs {
		if ex.Split == "test" {
			test++
		}
		if ex.ResponseIDs[len(ex.ResponseIDs)-1] != tok.EOS() || ex.Tokenizer != tok.Fingerprint() || ex.PromptIDs[0] == tok.BOS() {
			t.Fatalf("example %+v", ex)
		}
	}
	if len(exs) != 11 || test != 6 {
		t.Fatalf("%d examples, %d test", len(exs), test)
	}
	dec, err := run(t, "", "decode", "-t", tokDir, "--skip-special", "--shards", out)
	if err != nil || !strings.Contains(dec, `"response":"Hello!"`) || strings.Count(dec, "\n") != 11 {
		t.Fatalf("decode --shards: %v\n%s", err, dec)
	}

	// A bad row names file and line; --skip-bad counts it.
	os.WriteFile(in, []byte(rows.String()+`{"instruction":"x"}`+"\n"), 0o644)
	if _, err := run(t, "", "encode", "-q", "-t", tokDir, "--out", out, in); err == nil || !strings.Contains(err.Error(), "dolly.jsonl:12:") {
		t.Fatalf("bad row: %v", err)
	}
	if _, err := run(t, "", "encode", "-q", "--skip-bad", "-t", tokDir, "--out", out, in); err != nil {
		t.Fatal(err)
	}

	// ids: one line per input line, no special tokens added; decode inverts it.
	ids, err := run(t, "Hello world\n\nIT'S\n", "ids", "-t", tokDir)
	if err != nil || ids != "15496 995\n\n2043 6 50\n" {
		t.Fatalf("ids: %v %q", err, ids)
	}
	text, err := run(t, ids, "decode", "-t", tokDir)
	if err != nil || text != "Hello world\n\nIT'S\n" {
		t.Fatalf("decode: %v %q", err, text)
	}

	// Train, then encode text documents with the trained tokenizer.
	corpus := filepath.Join(dir, "corpus.txt")
	os.WriteFile(corpus, []byte(strings.Repeat("the quick brown fox jumps over the lazy dog\n", 40)), 0o644)
	trained := filepath.Join(dir, "trained")
	if _, err := run(t, "", "train", "--vocab-size", "300", "--out", trained, corpus); err != nil {
		t.Fatal(err)
	}
	textOut := filepath.Join(dir, "wiki.parquet")
	if _, err := run(t, "", "encode", "-q", "-t", trained, "--format", "text", "--test-frac", "0", "--out", textOut, corpus); err != nil {
		t.Fatal(err)
	}
	exs, err = shard.ReadAll[shard.Example]([]string{textOut}, nil)
	if err != nil || len(exs) != 40 || exs[0].Prompt+exs[0].Response != "the quick brown fox jumps over the lazy dog" || exs[0].Split != "train" {
		t.Fatalf("%v %d %+v", err, len(exs), exs[0])
	}
	if _, err := run(t, "", "encode", "-t", trained, corpus, "--out", textOut); err == nil {
		t.Fatal("a flag after the inputs was accepted")
	}
}

// TestEncodeStreamsInChunks: an input of more records than one chunk (4,096), from a file
// and from standard input, gives exactly the examples prep.Build makes from all records at
// once (ids, test split over all records, tokens), and a duplicate id in a later chunk is
// still found.
func TestEncodeStreamsInChunks(t *testing.T) {
	tokDir := gpt2Dir(t)
	dir := t.TempDir()
	var rows strings.Builder
	for i := range 9000 {
		fmt.Fprintf(&rows, `{"q":"question %d about %s","a":"answer %d"}`+"\n", i, strings.Repeat("y", i%13), i%97)
	}
	in := filepath.Join(dir, "qa.jsonl")
	os.WriteFile(in, []byte(rows.String()), 0o644)
	tok, err := tokenizer.Load(tokDir)
	if err != nil {
		t.Fatal(err)
	}
	r, err := prep.NewReader(prep.ReadOptions{Format: prep.FormatJSONL, PromptField: "q", ResponseField: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.ReadFile(in, nil); err != nil {
		t.Fatal(err)
	}
	want, _, err := prep.Build(r.Records, prep.Options{Tokenizer: tok, Source: "qa", EOS: true, TestFrac: 0.3, Seed: 5}, false)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"encode", "-q", "-t", tokDir, "--format", "jsonl", "--prompt-field", "q", "--response-field", "a",
		"--source", "qa", "--test-frac", "0.3", "--seed", "5"}
	for _, viaStdin := range []bool{false, true} {
		out := filepath.Join(dir, fmt.Sprint("ex-", viaStdin, ".parquet"))
		a := append(append([]string(nil), args...), "--out", out)
		stdin := ""
		if viaStdin {
			stdin = rows.String()
			a = append(a, "-")
		} else {
			a = append(a, in)
		}
		if _, err := run(t, stdin, a...); err != nil {
			t.Fatal(err)
		}
		got, err := shard.ReadAll[shard.Example]([]string{out}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("stdin %v: %d examples, want %d", viaStdin, len(got), len(want))
		}
		for i := range got {
			if !reflect.DeepEqual(got[i], want[i]) {
				t.Fatalf("stdin %v: example %d\n got %+v\nwant %+v", viaStdin, i, got[i], want[i])
			}
		}
	}
	// An id repeated 5,000 rows later (another chunk) is an error naming the line.
	var dup strings.Builder
	for i := range 5000 {
		fmt.Fprintf(&dup, `{"id":"r%d","q":"q","a":"a"}`+"\n", i)
	}
	dup.WriteString(`{"id":"r3","q":"q","a":"a"}` + "\n")
	os.WriteFile(in, []byte(dup.String()), 0o644)
	_, err = run(t, "", "encode", "-q", "-t", tokDir, "--format", "jsonl", "--prompt-field", "q", "--response-field", "a",
		"--id-field", "id", "--out", filepath.Join(dir, "dup.parquet"), in)
	if err == nil || !strings.Contains(err.Error(), "qa.jsonl:5001:") || !strings.Contains(err.Error(), "duplicate id") {
		t.Fatalf("duplicate id across chunks: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "dup.parquet")); err == nil {
		t.Error("a failed run left its output")
	}
}

// TestEncodeHubURI: an hf://datasets/... input is fetched from a (fake) hub into the cache
// and encodes exactly as the same file given locally; offline, the cached copy is used.
func TestEncodeHubURI(t *testing.T) {
	tokDir := gpt2Dir(t)
	dir := t.TempDir()
	var rows strings.Builder
	for i := range 9 {
		rows.WriteString(`{"instruction":"Count to ` + strings.Repeat("1", i+1) + `.","context":"","response":"Done.","category":"open_qa"}` + "\n")
	}
	local := filepath.Join(dir, "databricks-dolly-15k.jsonl")
	os.WriteFile(local, []byte(rows.String()), 0o644)
	h := hubtest.New(t)
	h.AddDataset("databricks/databricks-dolly-15k", false, map[string][]byte{"databricks-dolly-15k.jsonl": []byte(rows.String())})
	h.Use(t, filepath.Join(dir, "hub"))

	encode := func(in string) []shard.Example {
		t.Helper()
		out := filepath.Join(dir, "ex.parquet")
		if _, err := run(t, "", "encode", "-q", "-t", tokDir, "--out", out, in); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		exs, err := shard.ReadAll[shard.Example]([]string{out}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return exs
	}
	const uri = "hf://datasets/databricks/databricks-dolly-15k/databricks-dolly-15k.jsonl"
	want := encode(local)
	if got := encode(uri); len(got) != 9 || !reflect.DeepEqual(got, want) {
		t.Fatalf("hub input encodes differently:\n%+v\n%+v", got, want)
	}
	t.Setenv(hub.EnvOffline, "1")
	n := len(h.Requests())
	if got := encode(uri); !reflect.DeepEqual(got, want) || len(h.Requests()) != n {
		t.Fatalf("offline: %d requests", len(h.Requests())-n)
	}
	if _, err := run(t, "", "encode", "-q", "-t", tokDir, "--out", filepath.Join(dir, "x.parquet"), "hf://datasets/databricks/databricks-dolly-15k/missing.jsonl"); err == nil ||
		!strings.Contains(err.Error(), "datasets/databricks/databricks-dolly-15k@main file missing.jsonl") {
		t.Fatalf("missing hub file: %v", err)
	}
}

// encode refuses an --out that is one of its inputs: the shard would replace the data.
func TestEncodeOutputIsInput(t *testing.T) {
	tokDir := gpt2Dir(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "data.jsonl")
	os.WriteFile(in, []byte(`{"instruction":"a","response":"b"}`+"\n"), 0o644)
	for _, out := range []string{in, dir} {
		_, err := run(t, "", "encode", "-q", "-t", tokDir, "-o", out, in)
		var ue cliutil.UsageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), "would replace the input") {
			t.Errorf("-o %s: %v", out, err)
		}
	}
	if b, _ := os.ReadFile(in); !strings.HasPrefix(string(b), `{"instruction"`) {
		t.Fatal("the input was replaced")
	}
}

// An interrupted encode (SIGINT/SIGTERM cancel its context) exits as interrupted and leaves
// no output or temporary file.
func TestEncodeInterrupted(t *testing.T) {
	tokDir := gpt2Dir(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "data.jsonl")
	os.WriteFile(in, []byte(`{"instruction":"a","response":"b"}`+"\n"), 0o644)
	outDir := filepath.Join(dir, "out")
	os.Mkdir(outDir, 0o755)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	app := newApp()
	app.Writer, app.ErrWriter = io.Discard, io.Discard
	err := app.RunContext(ctx, []string{"cpo-tokenize", "encode", "-q", "-t", tokDir, "-o", filepath.Join(outDir, "x.parquet"), in})
	if !errors.Is(err, cliutil.ErrInterrupted) {
		t.Fatalf("interrupted encode: %v", err)
	}
	ents, _ := os.ReadDir(outDir)
	for _, e := range ents {
		t.Errorf("left behind: %s", e.Name())
	}
}

// train replaces tokenizer.json whole: a reader holding the old file never sees it cut short.
func TestTrainWritesAtomically(t *testing.T) {
	dir := t.TempDir()
	corpus := filepath.Join(dir, "corpus.txt")
	os.WriteFile(corpus, []byte(strings.Repeat("the quick brown fox jumps over the lazy dog\n", 50)), 0o644)
	out := filepath.Join(dir, "tok")
	os.Mkdir(out, 0o755)
	old := filepath.Join(out, "tokenizer.json")
	os.WriteFile(old, []byte("old tokenizer"), 0o644)
	f, err := os.Open(old)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := run(t, "", "train", "--vocab-size", "300", "-o", out, corpus); err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(f); string(b) != "old tokenizer" {
		t.Errorf("tokenizer.json was rewritten in place: the old file now reads %.40q", b)
	}
	if _, err := tokenizer.Load(old); err != nil {
		t.Fatalf("new tokenizer.json: %v", err)
	}
}

// decode given an example shard without --shards says so, instead of calling the Parquet
// magic "not a token id".
func TestDecodeParquetWithoutShards(t *testing.T) {
	tokDir := gpt2Dir(t)
	dir := t.TempDir()
	p := filepath.Join(dir, "ex.parquet")
	w, err := shard.NewWriter[shard.Example](p, nil, shard.Options{})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(shard.Example{ID: "a", PromptIDs: []int32{1}, ResponseIDs: []int32{2}})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = run(t, "", "decode", "-t", tokDir, p)
	if err == nil || !strings.Contains(err.Error(), "--shards") {
		t.Fatalf("decode of a shard without --shards: %v", err)
	}
}

// convert replaces its output whole, like train.
func TestConvertWritesAtomically(t *testing.T) {
	tokDir := gpt2Dir(t)
	out := filepath.Join(t.TempDir(), "tokenizer.json")
	os.WriteFile(out, []byte("old tokenizer"), 0o644)
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := run(t, "", "convert", "-t", tokDir, "-o", out); err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(f); string(b) != "old tokenizer" {
		t.Errorf("the output was rewritten in place: the old file now reads %.40q", b)
	}
	if _, err := tokenizer.Load(out); err != nil {
		t.Fatalf("converted tokenizer.json: %v", err)
	}
}

// TestEncodeNamedPipe: an input that can be read once (a named pipe, as <(zcat x) gives) is
// spooled, so both readings see every record; `-` given twice reads standard input once.
func TestEncodeNamedPipe(t *testing.T) {
	tokDir := gpt2Dir(t)
	dir := t.TempDir()
	fifo := filepath.Join(dir, "rows.jsonl")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skip("no named pipes here:", err)
	}
	var rows strings.Builder
	for i := range 50 {
		fmt.Fprintf(&rows, `{"instruction":"q%d","context":"","response":"a%d","category":"x"}`+"\n", i, i)
	}
	go func() {
		f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
		if err != nil {
			return
		}
		f.WriteString(rows.String())
		f.Close()
	}()
	out := filepath.Join(dir, "ex.parquet")
	if _, err := run(t, "", "encode", "-q", "-t", tokDir, "--out", out, fifo); err != nil {
		t.Fatal(err)
	}
	if n, err := shard.CountRows([]string{out}); err != nil || n != 50 {
		t.Fatalf("named pipe: %d rows, %v", n, err)
	}
	if _, err := run(t, rows.String(), "encode", "-q", "-t", tokDir, "--out", out, "-", "-"); err != nil {
		t.Fatal(err)
	}
	if n, err := shard.CountRows([]string{out}); err != nil || n != 50 {
		t.Fatalf("stdin twice: %d rows, %v", n, err)
	}
}
