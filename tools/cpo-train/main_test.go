package main

import (
	"bytes"
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
)

// fixture writes a tiny model checkpoint and a ranked candidates shard (K = 3) for it.
func fixture(t *testing.T) (dir, modelDir, cands string) {
	t.Helper()
	dir = t.TempDir()
	m, err := model.New(model.Config{Arch: model.ArchGPT2, VocabSize: 32, MaxSeqLen: 32, NLayer: 1, NHead: 2, NKVHead: 2,
		DModel: 16, DFF: 32, NormEps: 1e-5, TieEmbeddings: true, BOS: 1, EOS: 1})
	if err != nil {
		t.Fatal(err)
	}
	m.InitGPT2Style(1)
	modelDir = filepath.Join(dir, "model")
	if err := checkpoint.Save(m, modelDir, safetensors.F32); err != nil {
		t.Fatal(err)
	}
	cands = filepath.Join(dir, "cands.parquet")
	w, err := shard.NewWriter[shard.Candidates](cands, nil, shard.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 12 {
		p := []int32{int32(2 + i%7), int32(3 + i%5)}
		gt := []int32{int32(4 + i%9), int32(5 + i%3), 1}
		row := shard.Candidates{ID: fmt.Sprint("r", i), PromptIDs: p, ResponseIDs: gt, Tokenizer: "t", Ranking: []int32{0, 2, 1}, RankBy: "test"}
		row.Candidates = []shard.Candidate{{Kind: shard.KindGT, IDs: gt}, {Kind: shard.KindTN, IDs: []int32{gt[0], 1}}, {Kind: shard.KindBN, IDs: []int32{9, 9, 1}}}
		if err := w.Write(row); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, modelDir, cands
}

// run runs the tool with args and returns what it wrote to stderr.
func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	app := newApp()
	var stderr bytes.Buffer
	app.ErrWriter = &stderr
	err := app.Run(append([]string{"cpo-train"}, args...))
	return stderr.String(), err
}

// A resumed run takes its objective from the checkpoint, and says so.
func TestResumeReportsTheRunsObjective(t *testing.T) {
	dir, modelDir, cands := fixture(t)
	out := filepath.Join(dir, "out")
	if _, err := run(t, "--objective", "cpo-rank", "-m", modelDir, "-o", out, "--batch", "4", "--steps", "2", "--save-every", "1", cands); err != nil {
		t.Fatal(err)
	}
	log, err := run(t, "--resume", filepath.Join(dir, "out-checkpoints", "checkpoint-1"), "-o", out, cands)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log, "cpo-rank on 12 candidates rows") {
		t.Errorf("the resumed run's report names another objective:\n%s", log)
	}
}

// plot without --out is a usage error that says what is missing.
func TestPlotWithoutOut(t *testing.T) {
	_, err := run(t, "plot", "metrics.jsonl")
	var ue cliutil.UsageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "--out") {
		t.Errorf("plot without --out: %v", err)
	}
}
