package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cpo-toolchain/cpo/pkg/checkpoint"
	"github.com/cpo-toolchain/cpo/pkg/cliutil"
	"github.com/cpo-toolchain/cpo/pkg/model"
	"github.com/cpo-toolchain/cpo/pkg/safetensors"
	"github.com/cpo-toolchain/cpo/pkg/shard"
	"github.com/cpo-toolchain/cpo/pkg/tokenizer"
)

// fixture writes a tiny checkpoint with its tokenizer and an example shard tokenized with it.
func fixture(t *testing.T) (dir, modelDir, examples string, tok *tokenizer.Tokenizer) {
	dir = t.TempDir()
	texts := []string{"the cat sat on the mat", "a dog ran in the park", "the sun is hot today", "we like green tea"}
	tok, err := tokenizer.Train(texts, 300)
	if err != nil {
		t.Fatal(err)
	}
	tokFile := filepath.Join(dir, "tokenizer.json")
	if err := tok.SaveHFFile(tokFile); err != nil {
		t.Fatal(err)
	}
	m, err := model.New(model.Config{Arch: model.ArchGPT2, VocabSize: tok.VocabSize(), MaxSeqLen: 64, NLayer: 1, NHead: 2, NKVHead: 2,
		DModel: 16, DFF: 64, NormEps: 1e-5, TieEmbeddings: true, BOS: int(tok.EOS()), EOS: int(tok.EOS())})
	if err != nil {
		t.Fatal(err)
	}
	m.InitGPT2Style(1)
	modelDir = filepath.Join(dir, "model")
	if err := checkpoint.Save(m, modelDir, safetensors.F32, tokFile); err != nil {
		t.Fatal(err)
	}
	examples = filepath.Join(dir, "ex.parquet")
	w, err := shard.NewWriter[shard.Example](examples, nil, shard.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		p, r := texts[i%4], texts[(i+1)%4]+fmt.Sprint(" ", i)
		w.Write(shard.Example{ID: fmt.Sprint("e", i), Prompt: p, Response: r, PromptIDs: tok.Encode(p),
			ResponseIDs: append(tok.Encode(r), tok.EOS()), Tokenizer: tok.Fingerprint()})
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, modelDir, examples, tok
}

func TestEndToEnd(t *testing.T) {
	dir, modelDir, examples, tok := fixture(t)
	out := filepath.Join(dir, "cand.parquet")
	args := []string{"cpo-negatives", "-q", "--mix", "bn=2,mn=2,tn=2,an=1", "--model", modelDir, "--an-max-new", "5", "--seed", "3", "--out", out, examples}
	if err := newApp().Run(args); err != nil {
		t.Fatal(err)
	}
	rows, err := shard.ReadAll[shard.Candidates]([]string{out}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 20 {
		t.Fatalf("%d rows", len(rows))
	}
	for _, r := range rows {
		if len(r.Candidates) != 8 || r.Tokenizer != tok.Fingerprint() || r.Seed == 0 {
			t.Fatalf("row %s: %d candidates, seed %d", r.ID, len(r.Candidates), r.Seed)
		}
		tn := r.Candidates[5].IDs
		if r.Candidates[5].Kind != "tn" || tn[len(tn)-1] != tok.EOS() {
			t.Fatalf("row %s: candidate 5 %+v", r.ID, r.Candidates[5])
		}
	}
	// bn and tn with a tokenizer only: no model needed.
	if err := newApp().Run([]string{"cpo-negatives", "-q", "--mix", "bn=1,tn=1", "--tokenizer", filepath.Join(dir, "tokenizer.json"), "--out", out, examples}); err != nil {
		t.Fatal(err)
	}
	// A tokenizer with another fingerprint is refused, naming the file and row.
	other, _ := tokenizer.Train([]string{"completely different words here"}, 280)
	otherFile := filepath.Join(dir, "other.json")
	other.SaveHFFile(otherFile)
	err = newApp().Run([]string{"cpo-negatives", "-q", "--mix", "tn=1", "--tokenizer", otherFile, "--out", out, examples})
	if err == nil || !strings.Contains(err.Error(), examples+" row 0") || !strings.Contains(err.Error(), "tokenizer") {
		t.Fatalf("fingerprint mismatch: %v", err)
	}
	for _, bad := range [][]string{
		{"--mix", "xn=1"}, {"--mix", "mn=1"}, {"--mix", "tn=1", "--mn-percent", "0"}, {"--mix", "tn=1", "--mn-percent", "150"},
		{"--mix", "an=1", "--model", modelDir, "--an-top-k", "0"},
	} {
		args := append(append([]string{"cpo-negatives", "-q"}, bad...), "--eos", "1", "--out", out, examples)
		if err := newApp().Run(args); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

// --quiet silences the final report unless something was dropped or skipped.
func TestQuietReport(t *testing.T) {
	dir, _, examples, tok := fixture(t)
	out := filepath.Join(dir, "cand.parquet")
	report := func(args ...string) string {
		app := newApp()
		var stderr strings.Builder
		app.ErrWriter = &stderr
		if err := app.Run(append([]string{"cpo-negatives", "--tokenizer", filepath.Join(dir, "tokenizer.json"), "--out", out}, args...)); err != nil {
			t.Fatal(err)
		}
		return stderr.String()
	}
	if r := report("-q", "--mix", "bn=1,tn=1", examples); r != "" {
		t.Errorf("quiet run wrote %q", r)
	}
	if r := report("--mix", "bn=1,tn=1", examples); !strings.Contains(r, "tn: 20 asked, 20 written") {
		t.Errorf("report %q", r)
	}
	// A row with an empty response gets no tn: reported even under -q.
	empty := filepath.Join(dir, "empty.parquet")
	w, err := shard.NewWriter[shard.Example](empty, nil, shard.Options{})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(shard.Example{ID: "e", Prompt: "p", PromptIDs: tok.Encode("the cat"), Tokenizer: tok.Fingerprint()})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if r := report("-q", "--mix", "tn=1", empty); !strings.Contains(r, "skipped tn: empty response: 1") {
		t.Errorf("quiet report of a skip: %q", r)
	}
}

// A top-k larger than the model's vocabulary is a usage error found before any row is read.
func TestTopKAboveVocabulary(t *testing.T) {
	dir, modelDir, examples, tok := fixture(t)
	app := newApp()
	var stderr strings.Builder
	app.ErrWriter = &stderr
	k := fmt.Sprint(tok.VocabSize() + 1)
	err := app.Run([]string{"cpo-negatives", "--mix", "an=1", "--model", modelDir, "--an-top-k", k, "--out", filepath.Join(dir, "c.parquet"), examples})
	var ue cliutil.UsageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "--an-top-k "+k) {
		t.Errorf("top-k %s: %v", k, err)
	}
	if stderr.Len() != 0 {
		t.Errorf("ran before refusing: %q", stderr.String())
	}
}
