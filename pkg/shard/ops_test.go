package shard

import (
	"bytes"
	"math/rand"
	"path/filepath"
	"strings"
	"testing"
)

func writeExamples(t *testing.T, path string, rows []Example) {
	t.Helper()
	w, err := NewWriter[Example](path, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rows...); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestOpsCopySampleSplitStats(t *testing.T) {
	dir := t.TempDir()
	rows := sampleExamples(100, rand.New(rand.NewSource(9)))
	in := filepath.Join(dir, "in.parquet")
	writeExamples(t, in, rows)
	op, err := OpsFor("example")
	if err != nil {
		t.Fatal(err)
	}
	// Copy every third row.
	out := filepath.Join(dir, "third.parquet")
	n, err := op.Copy([]string{in}, nil, out, nil, Options{}, func(i int64) bool { return i%3 == 0 })
	if err != nil || n != 34 {
		t.Fatalf("copy wrote %d rows, err %v", n, err)
	}
	got, _ := ReadAll[Example]([]string{out}, nil)
	if got[1].ID != rows[3].ID {
		t.Fatalf("copy kept %s, want %s", got[1].ID, rows[3].ID)
	}
	// A seeded sample is reproducible, of the asked size, in input order, and stdin works.
	var a, b bytes.Buffer
	raw, _ := readFileBytes(in)
	if _, err := op.Sample(nil, bytes.NewReader(raw), "", &a, Options{}, 10, 7); err != nil {
		t.Fatal(err)
	}
	op.Sample([]string{in}, nil, "", &b, Options{}, 10, 7)
	sa, _ := ReadAll[Example](nil, bytes.NewReader(a.Bytes()))
	sb, _ := ReadAll[Example](nil, bytes.NewReader(b.Bytes()))
	if len(sa) != 10 || len(sb) != 10 {
		t.Fatalf("sample sizes %d %d", len(sa), len(sb))
	}
	for i := range sa {
		if sa[i].ID != sb[i].ID {
			t.Fatal("same seed gave different samples")
		}
	}
	// Split into 3 near-equal parts that concatenate back to the input.
	sdir := filepath.Join(dir, "split")
	if err := op.Split([]string{in}, nil, sdir, Options{}, 3); err != nil {
		t.Fatal(err)
	}
	parts, _ := filepath.Glob(filepath.Join(sdir, "*.parquet"))
	back, _ := ReadAll[Example]([]string{sdir}, nil)
	if len(parts) != 3 || len(back) != 100 || back[99].ID != rows[99].ID {
		t.Fatalf("split: %d parts, %d rows", len(parts), len(back))
	}
	if n, err := CountRows([]string{in, sdir}); err != nil || n != 200 {
		t.Fatalf("CountRows = %d, %v; want 200", n, err)
	}
	st, err := op.Stats([]string{in}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var tok, hist int64
	for _, r := range rows {
		tok += int64(len(r.PromptIDs) + len(r.ResponseIDs))
	}
	for _, h := range st.Hist {
		hist += h
	}
	if st.Rows != 100 || st.Tokens != tok || hist != 100 || len(st.Edges) != len(st.Hist)+1 {
		t.Fatalf("stats %+v, want %d tokens", st, tok)
	}
}

func TestFromJSONLErrors(t *testing.T) {
	op, _ := OpsFor("example")
	cases := map[string]string{
		"{\"id\":\"a\",\"prompt_ids\":[1],\"response_ids\":[2],\"tokenizer\":\"t\"}\nnot json\n":   "x.jsonl line 2: not a JSON object",
		"{\"id\":\"a\",\"prompt_ids\":[1],\"tokenizer\":\"t\"}\n":                                  "x.jsonl line 1: missing required field \"response_ids\"",
		"{\"id\":\"a\",\"prompt_ids\":[1],\"response_ids\":[\"x\"],\"tokenizer\":\"t\"}\n":         "x.jsonl line 1:",
		"{\"id\":\"a\",\"prompt_ids\":[1],\"response_ids\":[2],\"tokenizer\":\"t\",\"extra\":1}\n": "unknown field",
		"\n": "no rows",
	}
	for in, want := range cases {
		var out bytes.Buffer
		_, err := op.FromJSONL(strings.NewReader(in), "x.jsonl", "", &out, Options{})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("input %q: error %v, want %q", in, err, want)
		}
	}
	var out bytes.Buffer
	n, err := op.FromJSONL(strings.NewReader("{\"id\":\"a\",\"prompt_ids\":[1],\"response_ids\":[2],\"tokenizer\":\"t\"}\n"), "x", "", &out, Options{})
	if err != nil || n != 1 {
		t.Fatal(n, err)
	}
	if _, err := OpsFor("nope"); err == nil {
		t.Fatal("unknown schema accepted")
	}
}

func TestFilter(t *testing.T) {
	dir := t.TempDir()
	rows := sampleExamples(20, rand.New(rand.NewSource(3)))
	for i := range rows {
		if i%4 == 0 {
			rows[i].Split = "test"
		}
	}
	in := filepath.Join(dir, "in.parquet")
	writeExamples(t, in, rows)
	op, _ := OpsFor("example")
	var out bytes.Buffer
	n, err := op.Filter([]string{in}, nil, "", &out, Options{}, "split", "test")
	if err != nil || n != 5 {
		t.Fatalf("filter kept %d rows, err %v", n, err)
	}
	got, _ := ReadAll[Example](nil, bytes.NewReader(out.Bytes()))
	for _, r := range got {
		if r.Split != "test" {
			t.Fatalf("kept a %s row", r.Split)
		}
	}
	if _, err := op.Filter([]string{in}, nil, "", &out, Options{}, "prompt_ids", "x"); err == nil {
		t.Fatal("filter on a non-string column accepted")
	}
}
