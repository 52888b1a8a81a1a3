package train

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// An --out that cannot be written is refused before the first step, not after the whole run.
func TestRunRefusesUnwritableOutputsBeforeTraining(t *testing.T) {
	items := madeUpItems(8, 2, 3)
	dir := t.TempDir()
	notCkpt := filepath.Join(dir, "notes")
	if err := os.MkdirAll(notCkpt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(notCkpt, "notes.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ out, ckpt, want string }{
		{notCkpt, "", "not a checkpoint"},
		{file, "", "not a directory"},
		{filepath.Join(file, "model"), "", "cannot be written"},
		{filepath.Join(dir, "ok"), file, "not a directory"},
	} {
		cfg := Config{Objective: Objective{Name: CPO, Beta: 1}, Batch: 4, Steps: 3, LR: 1e-3, Out: c.out, CheckpointDir: c.ckpt}
		tr := newTrainer(t, cfg, tinyModel(t, 1), items)
		_, err := tr.Run(context.Background())
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("out %s checkpoints %q: error %v, want %q", c.out, c.ckpt, err, c.want)
		}
		if tr.Step() != 0 {
			t.Errorf("out %s: trained %d steps before refusing", c.out, tr.Step())
		}
	}
	if _, err := os.Stat(filepath.Join(notCkpt, "notes.txt")); err != nil {
		t.Errorf("the directory's file is gone: %v", err)
	}
}

// Sequences cut to the model's context are reported: a warning, the count in the summary and
// a "truncated" field in the metrics lines of the steps that cut.
func TestRunReportsTruncation(t *testing.T) {
	items := madeUpItems(8, 2, 3)
	long := make([]int32, tinyCfg.MaxSeqLen+5)
	for i := range long {
		long[i] = int32(2 + i%20)
	}
	items[0].Conts[0] = long
	var log, metrics strings.Builder
	cfg := Config{Objective: Objective{Name: CPO, Beta: 1}, Batch: 8, Steps: 2, LR: 1e-3, Log: &log, Metrics: &metrics}
	sum, err := newTrainer(t, cfg, tinyModel(t, 1), items).Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if sum.Truncated != 2 {
		t.Errorf("summary counts %d truncated sequences, want 2 (one per step)", sum.Truncated)
	}
	if !strings.Contains(log.String(), "cut 1 sequences to the model's context of 24 tokens") {
		t.Errorf("no warning in the log:\n%s", log.String())
	}
	if strings.Count(metrics.String(), `"truncated":1`) != 2 {
		t.Errorf("metrics lines:\n%s", metrics.String())
	}
}

// A ranking that is not a permutation of the candidates is refused before training: with a
// repeated index the Plackett-Luce loss silently counted one candidate twice and left another
// out; with an index out of range it panicked.
func TestRankingMustBeAPermutation(t *testing.T) {
	for _, bad := range [][]int32{{0, 1, 1}, {0, 2, 3}, {0, -1, 2}} {
		items := madeUpItems(4, 3, 1)
		items[2].Ranking = bad
		err := CheckItems(items, CPORank)
		if err == nil || !strings.Contains(err.Error(), "not a permutation") || !strings.Contains(err.Error(), "made-up row 2") {
			t.Errorf("ranking %v: %v", bad, err)
		}
	}
	if err := CheckItems(madeUpItems(4, 3, 1), CPORank); err != nil {
		t.Fatal(err)
	}
}

// Plotting metrics files that hold no step (an empty file, a run that never logged) is an
// error, not a silent success that writes no picture.
func TestPlotNothing(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.jsonl")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	files, err := PlotMetrics([]string{empty}, nil, filepath.Join(dir, "png"))
	if err == nil || !strings.Contains(err.Error(), "nothing to draw") {
		t.Errorf("empty metrics: files %v, error %v", files, err)
	}
}
