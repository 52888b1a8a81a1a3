package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cpo-toolchain/cpo/pkg/checkpoint"
	"github.com/cpo-toolchain/cpo/pkg/embed"
	"github.com/cpo-toolchain/cpo/pkg/model"
	"github.com/cpo-toolchain/cpo/pkg/safetensors"
	"github.com/cpo-toolchain/cpo/pkg/shard"
	"github.com/cpo-toolchain/cpo/pkg/tokenizer"
)

func TestEndToEnd(t *testing.T) {
	dir := t.TempDir()
	texts := []string{"the cat sat on the mat", "a dog ran in the park", "the sun is hot today", "we like green tea"}
	tok, err := tokenizer.Train(texts, 300)
	if err != nil {
		t.Fatal(err)
	}
	tokFile := filepath.Join(dir, "tokenizer.json")
	tok.SaveHFFile(tokFile)
	m, _ := model.New(model.Config{Arch: model.ArchLlama, VocabSize: tok.VocabSize(), MaxSeqLen: 64, NLayer: 1, NHead: 2, NKVHead: 1,
		DModel: 16, DFF: 32, NormEps: 1e-5, RopeTheta: 10000, BOS: -1, EOS: int(tok.EOS())})
	m.InitGPT2Style(2)
	modelDir := filepath.Join(dir, "model")
	if err := checkpoint.Save(m, modelDir, safetensors.F32, tokFile); err != nil {
		t.Fatal(err)
	}
	in := filepath.Join(dir, "cand.parquet")
	w, _ := shard.NewWriter[shard.Candidates](in, nil, shard.Options{})
	var scores strings.Builder
	for i := range 10 {
		r := shard.Candidates{ID: fmt.Sprint("c", i), PromptIDs: tok.Encode(texts[i%4]), Tokenizer: tok.Fingerprint()}
		r.ResponseIDs = tok.Encode(texts[(i+1)%4])
		r.Candidates = []shard.Candidate{{Kind: "gt", IDs: r.ResponseIDs}}
		for j := 1; j < 4; j++ {
			r.Candidates = append(r.Candidates, shard.Candidate{Kind: "bn", IDs: tok.Encode(texts[(i+j+1)%4])})
		}
		for j := range 4 {
			fmt.Fprintf(&scores, `{"id":"c%d","candidate":%d,"score":%d}`+"\n", i, j, (i+j)%4)
		}
		w.Write(r)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "ranked.parquet")
	npy := filepath.Join(dir, "emb.npy")
	if err := newApp().Run([]string{"cpo-embed", "-q", "--model", modelDir, "--pooling", "last", "--write-embeddings", npy, "--out", out, in}); err != nil {
		t.Fatal(err)
	}
	rows, err := shard.ReadAll[shard.Candidates]([]string{out}, nil)
	if err != nil || len(rows) != 10 {
		t.Fatal(len(rows), err)
	}
	fp, _ := checkpoint.Fingerprint(m)
	for _, r := range rows {
		if r.RankBy != "cosine:"+fp+":last:last" || len(r.Ranking) != 4 || r.Ranking[0] != 0 || *r.Candidates[0].Score != 1 {
			t.Fatalf("row %s: %q %v", r.ID, r.RankBy, r.Ranking)
		}
	}
	f, _ := os.Open(npy)
	n, c, _, err := embed.ReadNPY(f)
	f.Close()
	if err != nil || n != 40 || c != 16 {
		t.Fatalf("npy %d×%d %v", n, c, err)
	}
	sfile := filepath.Join(dir, "rm.jsonl")
	os.WriteFile(sfile, []byte(scores.String()), 0o644)
	if err := newApp().Run([]string{"cpo-embed", "-q", "--rank-by-score", sfile, "--out", out, in}); err != nil {
		t.Fatal(err)
	}
	rows, _ = shard.ReadAll[shard.Candidates]([]string{out}, nil)
	if rows[0].RankBy != "score:rm" || fmt.Sprint(rows[0].Ranking) != "[0 3 2 1]" {
		t.Fatalf("by score: %q %v", rows[0].RankBy, rows[0].Ranking)
	}
	// Another tokenizer's fingerprint is refused.
	other, _ := tokenizer.Train([]string{"other words entirely"}, 280)
	of := filepath.Join(dir, "o.json")
	other.SaveHFFile(of)
	err = newApp().Run([]string{"cpo-embed", "-q", "--model", modelDir, "--tokenizer", of, "--out", out, in})
	if err == nil || !strings.Contains(err.Error(), in+" row 0") {
		t.Fatalf("fingerprint: %v", err)
	}
	for _, bad := range [][]string{{}, {"--model", modelDir, "--rank-by-score", sfile}, {"--model", modelDir, "--pooling", "max"}, {"--rank-by-score", sfile, "--pooling", "last"}} {
		if err := newApp().Run(append(append([]string{"cpo-embed", "-q"}, bad...), "--out", out, in)); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

// --quiet silences the final report.
func TestQuietReport(t *testing.T) {
	dir := t.TempDir()
	m, _ := model.New(model.Config{Arch: model.ArchGPT2, VocabSize: 16, MaxSeqLen: 16, NLayer: 1, NHead: 2, NKVHead: 2,
		DModel: 8, DFF: 16, NormEps: 1e-5, TieEmbeddings: true, BOS: -1, EOS: 1})
	m.InitGPT2Style(1)
	modelDir := filepath.Join(dir, "model")
	if err := checkpoint.Save(m, modelDir, safetensors.F32); err != nil {
		t.Fatal(err)
	}
	in := filepath.Join(dir, "cand.parquet")
	w, _ := shard.NewWriter[shard.Candidates](in, nil, shard.Options{})
	w.Write(shard.Candidates{ID: "c", PromptIDs: []int32{2, 3}, ResponseIDs: []int32{4, 1}, Tokenizer: "t",
		Candidates: []shard.Candidate{{Kind: "gt", IDs: []int32{4, 1}}, {Kind: "tn", IDs: []int32{1}}}})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	for _, quiet := range []bool{true, false} {
		app := newApp()
		var stderr strings.Builder
		app.ErrWriter = &stderr
		args := []string{"cpo-embed", "--skip-tokenizer-check", "-m", modelDir, "--out", filepath.Join(dir, "out.parquet"), in}
		if quiet {
			args = append(args[:1], append([]string{"-q"}, args[1:]...)...)
		}
		if err := app.Run(args); err != nil {
			t.Fatal(err)
		}
		if got := stderr.String() != ""; got == quiet {
			t.Errorf("quiet %v: stderr %q", quiet, stderr.String())
		}
	}
}
