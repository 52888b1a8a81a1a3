package prep

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/cpo-toolchain/cpo/pkg/tokenizer"
)

func trained(t *testing.T) *tokenizer.Tokenizer {
	t.Helper()
	texts := []string{strings.Repeat("the quick brown fox jumps over the lazy dog. ", 50),
		strings.Repeat("Below is an instruction that describes a task. ### Response: ", 30)}
	tok, err := tokenizer.Train(texts, 400)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestTestSet(t *testing.T) {
	s := TestSet(15011, 0.5, 1)
	n := 0
	for _, b := range s {
		if b {
			n++
		}
	}
	if n != 7506 {
		t.Fatalf("%d test rows of 15011, want 7506 (the paper's split)", n)
	}
	if !reflect.DeepEqual(s, TestSet(15011, 0.5, 1)) || reflect.DeepEqual(s, TestSet(15011, 0.5, 2)) {
		t.Fatal("the split must depend on the seed only")
	}
}

func write(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDolly(t *testing.T) {
	tok := trained(t)
	p := write(t, "dolly.jsonl", `{"instruction":"Name a fox.","context":"","response":"Quick.","category":"open_qa"}
{"instruction":"Summarise.","context":"The dog is lazy.","response":"Lazy dog.","category":"summarization"}
`)
	r, err := NewReader(ReadOptions{Format: FormatDolly})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.ReadFile(p, nil); err != nil {
		t.Fatal(err)
	}
	if len(r.Records) != 2 {
		t.Fatalf("%d records", len(r.Records))
	}
	want0 := "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\nName a fox.\n\n### Response:\n"
	if r.Records[0].Prompt != want0 {
		t.Errorf("prompt without context:\n%q\nwant\n%q", r.Records[0].Prompt, want0)
	}
	if !strings.Contains(r.Records[1].Prompt, "Input:\nThe dog is lazy.\n\n### Response:\n") {
		t.Errorf("prompt with context: %q", r.Records[1].Prompt)
	}
	o := Options{Tokenizer: tok, Source: "dolly", EOS: true, TestFrac: 0.5, Seed: 3, Workers: 2}
	exs, rep, err := Build(r.Records, o, false)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Written != 2 || rep.Train != 1 || rep.Test != 1 {
		t.Fatalf("report %+v", rep)
	}
	for _, ex := range exs {
		if ex.ResponseIDs[len(ex.ResponseIDs)-1] != tok.EOS() || ex.Tokenizer != tok.Fingerprint() {
			t.Errorf("example %+v", ex)
		}
		if got, _ := tok.Decode(ex.PromptIDs); got != ex.Prompt {
			t.Errorf("prompt ids decode to %q", got)
		}
	}
	if exs[0].ID != "dolly-000000" {
		t.Errorf("id %q", exs[0].ID)
	}
}

func TestBadRows(t *testing.T) {
	cases := []struct{ line, want string }{
		{`{"instruction":"a","context":""}`, `x.jsonl:2: field "response" is missing`},
		{`{"instruction":"a","response":5}`, `x.jsonl:2: field "response" is a number, not a string`},
		{`{"instruction":"a","response":"  "}`, `x.jsonl:2: field "response" is empty`},
		{"{\"instruction\":\"a\xff\",\"response\":\"b\"}", `x.jsonl:2: invalid UTF-8`},
		{`not json`, `x.jsonl:2: not a JSON object`},
	}
	for _, c := range cases {
		dir := t.TempDir()
		p := filepath.Join(dir, "x.jsonl")
		os.WriteFile(p, []byte(`{"instruction":"ok","response":"fine"}`+"\n"+c.line+"\n"), 0o644)
		r, _ := NewReader(ReadOptions{Format: FormatDolly})
		err := r.ReadFile(p, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.line, err, c.want)
		}
		r, _ = NewReader(ReadOptions{Format: FormatDolly, SkipBad: true})
		if err := r.ReadFile(p, nil); err != nil || len(r.Records) != 1 || len(r.Skipped) != 1 {
			t.Errorf("%s: with SkipBad: %v, %d records, skipped %v", c.line, err, len(r.Records), r.Skipped)
		}
	}
}

func TestGenericJSONLAndText(t *testing.T) {
	tok := trained(t)
	p := write(t, "g.jsonl", `{"q":"the fox?","a":"the dog.","key":"r1"}`+"\n")
	r, err := NewReader(ReadOptions{Format: FormatJSONL, PromptField: "q", ResponseField: "a", IDField: "key"})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.ReadFile(p, nil); err != nil {
		t.Fatal(err)
	}
	if r.Records[0].Prompt != "the fox?" || r.Records[0].ID != "r1" {
		t.Fatalf("%+v", r.Records[0])
	}

	doc := strings.Repeat("the quick brown fox jumps over the lazy dog. ", 10)
	tp := write(t, "t.txt", doc+"\n\nx\n"+doc+"\xff\n")
	r, _ = NewReader(ReadOptions{Format: FormatText, DocPerLine: true})
	if err := r.ReadFile(tp, nil); err == nil || !strings.Contains(err.Error(), "t.txt:4: invalid UTF-8") {
		t.Fatalf("error %v", err)
	}
	r, _ = NewReader(ReadOptions{Format: FormatText, DocPerLine: true, SkipBad: true})
	if err := r.ReadFile(tp, nil); err != nil || len(r.Records) != 2 || r.Skipped["invalid UTF-8"] != 1 {
		t.Fatalf("%v %d %v", err, len(r.Records), r.Skipped)
	}
	o := Options{Tokenizer: tok, Source: "wiki", Text: true, PrefixFrac: 0.15, EOS: true, Workers: 3}
	exs, rep, err := Build(r.Records, o, false)
	if err == nil {
		t.Fatalf("a one-token document was accepted: %+v", rep)
	}
	exs, rep, err = Build(r.Records, o, true)
	if err != nil || len(exs) != 1 || rep.Dropped["document too short"] != 1 {
		t.Fatalf("%v %+v", err, rep)
	}
	ex := exs[0]
	all := tok.Encode(doc)
	k := int(0.15 * float64(len(all)))
	if len(ex.PromptIDs) != k || len(ex.ResponseIDs) != len(all)-k+1 {
		t.Fatalf("prefix %d of %d tokens, want %d", len(ex.PromptIDs), len(all), k)
	}
	if ex.Prompt+ex.Response != doc {
		t.Fatalf("texts %q + %q", ex.Prompt, ex.Response)
	}

	// Limits: truncate keeps the prompt's end and the response's start; drop leaves out.
	o = Options{Tokenizer: tok, Source: "g", MaxPromptTokens: 3, MaxResponseTokens: 2, EOS: true, Workers: 1}
	recs := []Record{{Prompt: doc, Response: doc, File: "f", Line: 1}}
	exs, rep, _ = Build(recs, o, false)
	full := tok.Encode(doc)
	if !reflect.DeepEqual(exs[0].PromptIDs, full[len(full)-3:]) || !reflect.DeepEqual(exs[0].ResponseIDs, full[:2]) || rep.PromptTruncated != 1 || rep.ResponseTruncated != 1 {
		t.Fatalf("truncate: %v %v %+v", exs[0].PromptIDs, exs[0].ResponseIDs, rep)
	}
	o.Overflow = Drop
	exs, rep, _ = Build(recs, o, false)
	if len(exs) != 0 || rep.Dropped["prompt too long"] != 1 {
		t.Fatalf("drop: %+v", rep)
	}
}

// TestWorkersDoNotChangeOutput: the examples do not depend on the worker count.
func TestWorkersDoNotChangeOutput(t *testing.T) {
	tok := trained(t)
	var recs []Record
	for i := range 500 {
		recs = append(recs, Record{Prompt: strings.Repeat("fox ", i%17+1), Response: strings.Repeat("dog ", i%5+1)})
	}
	a, _, _ := Build(recs, Options{Tokenizer: tok, Source: "s", EOS: true, TestFrac: 0.3, Seed: 9, Workers: 1}, false)
	b, _, _ := Build(recs, Options{Tokenizer: tok, Source: "s", EOS: true, TestFrac: 0.3, Seed: 9, Workers: 7}, false)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("output depends on the worker count")
	}
}

func TestParseDollyPrompt(t *testing.T) {
	tpl, err := ParseTemplate("dolly default", DefaultDollyTemplate)
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range []map[string]string{
		{"instruction": "Who wrote Hamlet?"},
		{"instruction": "Summarise this.", "context": "Hamlet is a tragedy\nby Shakespeare."},
		{"instruction": "Odd\n\nInput:\nin the instruction", "context": "ctx"},
		{"instruction": "  spaces  \n", "context": ""},
	} {
		var sb strings.Builder
		if err := tpl.Execute(&sb, row); err != nil {
			t.Fatal(err)
		}
		ins, ctx, ok := ParseDollyPrompt(sb.String())
		if !ok {
			t.Fatalf("%q not parsed", sb.String())
		}
		var back strings.Builder
		tpl.Execute(&back, map[string]string{"instruction": ins, "context": ctx})
		if back.String() != sb.String() {
			t.Errorf("%v: parsed (%q, %q) renders %q, want %q", row, ins, ctx, back.String(), sb.String())
		}
		if row["instruction"] == "Who wrote Hamlet?" && (ins != row["instruction"] || ctx != "" || DollyQuery(sb.String()) != "Who wrote Hamlet?") {
			t.Errorf("plain row: (%q, %q), query %q", ins, ctx, DollyQuery(sb.String()))
		}
		if row["context"] == "Hamlet is a tragedy\nby Shakespeare." && DollyQuery(sb.String()) != "Summarise this.\n\nHamlet is a tragedy\nby Shakespeare." {
			t.Errorf("row with context: query %q", DollyQuery(sb.String()))
		}
	}
	for _, p := range []string{"Q: Add 2 and 3.\nA:\n", "The first 15% of a document", dollyHead + "cut short by trunc"} {
		if _, _, ok := ParseDollyPrompt(p); ok || DollyQuery(p) != p {
			t.Errorf("%q parsed as a Dolly prompt", p)
		}
	}
}

// A UTF-8 byte order mark (files saved by Windows editors) starts the file, not the first
// JSON row or the first document.
func TestByteOrderMark(t *testing.T) {
	p := write(t, "bom.jsonl", "\ufeff"+`{"instruction":"Name a fox.","response":"Quick."}`+"\n")
	r, _ := NewReader(ReadOptions{Format: FormatDolly})
	if err := r.ReadFile(p, nil); err != nil {
		t.Fatalf("JSONL with a BOM: %v", err)
	}
	if len(r.Records) != 1 || r.Records[0].Response != "Quick." {
		t.Fatalf("records %+v", r.Records)
	}
	for _, perLine := range []bool{true, false} {
		p = write(t, "bom.txt", "\ufeffA document.\nAnother.\n")
		r, _ = NewReader(ReadOptions{Format: FormatText, DocPerLine: perLine})
		if err := r.ReadFile(p, nil); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(r.Records[0].Prompt, "A document.") {
			t.Errorf("per line %v: first document %q", perLine, r.Records[0].Prompt)
		}
	}
}

// Ids are unique in a shard (generations, judgments and scores are joined by id): a repeated
// id is a bad row naming its file and line, or skipped and counted with skipBad.
func TestDuplicateIDs(t *testing.T) {
	tok := trained(t)
	recs := []Record{
		{ID: "a", Prompt: "p1", Response: "r1", File: "x.jsonl", Line: 1},
		{ID: "b", Prompt: "p2", Response: "r2", File: "x.jsonl", Line: 2},
		{ID: "a", Prompt: "p3", Response: "r3", File: "y.jsonl", Line: 7},
	}
	o := Options{Tokenizer: tok, Source: "s", Workers: 1}
	if _, _, err := Build(recs, o, false); err == nil || !strings.Contains(err.Error(), "y.jsonl:7") || !strings.Contains(err.Error(), `"a"`) {
		t.Fatalf("duplicate id: %v", err)
	}
	exs, rep, err := Build(recs, o, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(exs) != 2 || exs[1].ID != "b" || rep.Dropped["duplicate id"] != 1 {
		t.Fatalf("skip: %d examples, report %+v", len(exs), rep)
	}
}
