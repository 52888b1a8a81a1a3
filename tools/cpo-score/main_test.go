package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cpo-toolchain/cpo/pkg/checkpoint"
	"github.com/cpo-toolchain/cpo/pkg/hub/hubtest"
	"github.com/cpo-toolchain/cpo/pkg/model"
	"github.com/cpo-toolchain/cpo/pkg/safetensors"
	"github.com/cpo-toolchain/cpo/pkg/shard"
)

// judgments writes a judgment shard of two models under greedy decoding.
func judgments(t *testing.T, dir string) string {
	t.Helper()
	return judgmentsOf(t, dir, "mle", "cpo")
}

// judgmentsOf writes judgments of the models in that order.
func judgmentsOf(t *testing.T, dir string, models ...string) string {
	t.Helper()
	path := filepath.Join(dir, "judgments.parquet")
	w, err := shard.NewWriter[shard.Judgment](path, nil, shard.Options{})
	if err != nil {
		t.Fatal(err)
	}
	outcomes := []string{"win", "loss", "tie", "win", "loss", "win"}
	for _, m := range models {
		for i, o := range outcomes {
			if m == "cpo" && o == "loss" {
				o = "win"
			}
			if err := w.Write(shard.Judgment{ID: string(rune('a' + i)), Model: "fp-" + m, ModelName: m, Decoding: "greedy",
				Judge: "likelihood:x", Template: "likelihood:mean-logp", GenFirst: "A", GenSecond: "B", Outcome: o}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func runApp(t *testing.T, args ...string) error {
	t.Helper()
	app := newApp()
	app.Writer, app.ErrWriter = io.Discard, io.Discard
	return app.Run(append([]string{"cpo-score"}, args...))
}

// --markdown and --csv replace their files whole (a new file renamed into place): a reader of
// the old file never sees it truncated or half written.
func TestTableFilesReplacedAtomically(t *testing.T) {
	dir := t.TempDir()
	js := judgments(t, dir)
	md, csv := filepath.Join(dir, "t.md"), filepath.Join(dir, "t.csv")
	for _, p := range []string{md, csv} {
		if err := os.WriteFile(p, []byte("old table\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	oldMD, err := os.Open(md)
	if err != nil {
		t.Fatal(err)
	}
	defer oldMD.Close()
	if err := runApp(t, "-q", "--bootstrap", "50", "--baseline", "mle", "--markdown", md, "--csv", csv,
		"-o", filepath.Join(dir, "s.parquet"), js); err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(oldMD)
	if string(b) != "old table\n" {
		t.Errorf("the old markdown file was rewritten in place: a reader holding it saw %q", b)
	}
	b, _ = os.ReadFile(md)
	if !strings.Contains(string(b), "| metric (decoding) | mle | cpo |") || !strings.Contains(string(b), "WinRate diff (greedy)") {
		t.Errorf("new markdown:\n%s", b)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp") {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
}

// A failing output (here a figure of a metric that was not computed) fails the command before
// any file is written, so no table of a failed run is left looking like a result.
func TestNoFilesWhenAnOutputFails(t *testing.T) {
	dir := t.TempDir()
	js := judgments(t, dir)
	md, csv, png, out := filepath.Join(dir, "t.md"), filepath.Join(dir, "t.csv"), filepath.Join(dir, "f.png"), filepath.Join(dir, "s.parquet")
	err := runApp(t, "-q", "--bootstrap", "50", "--markdown", md, "--csv", csv, "--plot", png, "--plot-metric", "nll", "-o", out, js)
	if err == nil || !strings.Contains(err.Error(), "nll") {
		t.Fatalf("plot of a missing metric: %v", err)
	}
	for _, p := range []string{md, csv, png, out} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s written by a failed run", filepath.Base(p))
		}
	}
}

// --table-columns decoding lays the table out as the paper's Table 3.
func TestTableColumnsDecoding(t *testing.T) {
	dir := t.TempDir()
	js := judgments(t, dir)
	md := filepath.Join(dir, "t.md")
	if err := runApp(t, "-q", "--bootstrap", "0", "--table-columns", "decoding", "--markdown", md, "-o", filepath.Join(dir, "s.parquet"), js); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(md)
	if !strings.HasPrefix(string(b), "| metric (model) \\ decoding | greedy |\n") || !strings.Contains(string(b), "| WinRate (cpo) | 0.917 |") {
		t.Fatalf("table:\n%s", b)
	}
}

// --out naming an input (judgments or --generations) is refused.
func TestOutputIsInputRefused(t *testing.T) {
	dir := t.TempDir()
	js := judgments(t, dir)
	before, _ := os.ReadFile(js)
	for _, args := range [][]string{{"-o", js, js}, {"-o", dir, js}} {
		if err := runApp(t, append([]string{"-q", "--bootstrap", "10"}, args...)...); err == nil || !strings.Contains(err.Error(), "would replace the input") {
			t.Errorf("%v: %v", args, err)
		}
	}
	if after, _ := os.ReadFile(js); string(after) != string(before) {
		t.Fatal("the judgments were replaced")
	}
}

// The baseline is the first column, as MLE is in the paper's tables, whatever order the
// judgment files came in.
func TestBaselineFirstColumn(t *testing.T) {
	dir := t.TempDir()
	js := judgmentsOf(t, dir, "cpo", "mle")
	md := filepath.Join(dir, "t.md")
	if err := runApp(t, "-q", "--bootstrap", "0", "--baseline", "mle", "--markdown", md, "-o", filepath.Join(dir, "s.parquet"), js); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(md)
	if !strings.HasPrefix(string(b), "| metric (decoding) | mle | cpo |\n") {
		t.Fatalf("table:\n%s", b)
	}
}

// hubModel publishes a tiny random checkpoint as the hub repository org/judge on a fake hub
// and points the hub client at it; it returns a generation shard the model can score.
func hubModel(t *testing.T) (gens string) {
	t.Helper()
	dir := t.TempDir()
	m, err := checkpoint.NewRandom(model.Config{Arch: model.ArchGPT2, VocabSize: 16, MaxSeqLen: 32, NLayer: 1, NHead: 2, NKVHead: 2,
		DModel: 8, DFF: 32, NormEps: 1e-5, TieEmbeddings: true, BOS: 0, EOS: 15}, 1)
	if err != nil {
		t.Fatal(err)
	}
	ckpt := filepath.Join(dir, "ckpt")
	if err := checkpoint.Save(m, ckpt, safetensors.F32); err != nil {
		t.Fatal(err)
	}
	h := hubtest.New(t)
	h.AddDir(t, "org/judge", ckpt)
	h.Use(t, filepath.Join(dir, "hub"))
	gens = filepath.Join(dir, "gen.parquet")
	w, err := shard.NewWriter[shard.Generation](gens, nil, shard.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := w.Write(shard.Generation{ID: string(rune('a' + i)), PromptIDs: []int32{1, 2}, IDs: []int32{3, int32(4 + i), 15}, Finish: "eos",
			Text: "t", Reference: "r", ReferenceIDs: []int32{5, 6, 15}, Tokenizer: "tokfp", Model: "fp", ModelName: "m", Decoding: "greedy", Logp: -3}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return gens
}

// --scorer-model takes a hub id, like every other model argument.
func TestScorerModelFromHub(t *testing.T) {
	gens := hubModel(t)
	out := filepath.Join(t.TempDir(), "s.parquet")
	if err := runApp(t, "-q", "--bootstrap", "0", "--generations", gens, "--scorer-model", "org/judge", "-o", out); err != nil {
		t.Fatal(err)
	}
	rows, err := shard.ReadAll[shard.Score]([]string{out}, nil)
	if err != nil || len(rows) != 2 || rows[1].Metric != "nll" || !(rows[1].Value > 0) {
		t.Fatalf("scores %+v (%v)", rows, err)
	}
}
