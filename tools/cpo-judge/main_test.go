package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cpo-toolchain/cpo/pkg/checkpoint"
	"github.com/cpo-toolchain/cpo/pkg/cliutil"
	"github.com/cpo-toolchain/cpo/pkg/hub/hubtest"
	"github.com/cpo-toolchain/cpo/pkg/model"
	"github.com/cpo-toolchain/cpo/pkg/safetensors"
	"github.com/cpo-toolchain/cpo/pkg/shard"
)

// Numeric flags out of range are usage errors, not silently replaced by a default.
func TestBadNumbersAreUsageErrors(t *testing.T) {
	t.Setenv("CPO_TEST_KEY", "k")
	for _, bad := range [][]string{
		{"--concurrency", "0"}, {"--concurrency", "-2"}, {"--retries", "-1"}, {"--max-tokens", "0"},
		{"--timeout", "0s"}, {"--backoff", "-1s"}, {"--max-conn-failures", "0"}, {"--batch-tokens", "0"},
	} {
		app := newApp()
		app.Writer, app.ErrWriter = io.Discard, io.Discard
		args := append([]string{"cpo-judge", "--judge", "remote", "--model", "m", "--api-key-env", "CPO_TEST_KEY", "--no-cache"}, bad...)
		err := app.Run(append(args, "/nonexistent/gen.parquet"))
		var ue cliutil.UsageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), bad[0]) {
			t.Errorf("%s %s: %v, want a usage error naming %s", bad[0], bad[1], err, bad[0])
		}
	}
}

// --out naming an input (generations or --references) is refused.
func TestOutputIsInputRefused(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "gen.parquet")
	if err := os.WriteFile(in, []byte("generations"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"-o", in, in}, {"-o", dir, in}, {"--references", in, "-o", in, "other.parquet"}} {
		app := newApp()
		app.Writer, app.ErrWriter = io.Discard, io.Discard
		err := app.Run(append([]string{"cpo-judge", "--judge-model", "m"}, args...))
		var ue cliutil.UsageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), "would replace the input") {
			t.Errorf("%v: %v", args, err)
		}
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

// --judge-model takes a hub id, like every other model argument.
func TestJudgeModelFromHub(t *testing.T) {
	gens := hubModel(t)
	out := filepath.Join(t.TempDir(), "j.parquet")
	app := newApp()
	app.Writer, app.ErrWriter = io.Discard, io.Discard
	if err := app.Run([]string{"cpo-judge", "-q", "--judge-model", "org/judge", "-o", out, gens}); err != nil {
		t.Fatal(err)
	}
	js, err := shard.ReadAll[shard.Judgment]([]string{out}, nil)
	if err != nil || len(js) != 3 || js[0].Outcome == "invalid" {
		t.Fatalf("judgments %+v (%v)", js, err)
	}
}

// With -q the remote judge's report appears only when something went wrong (failed or
// unparsed verdicts), on the app's ErrWriter; without -q always.
func TestQuietReport(t *testing.T) {
	answer := "A"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"choices": []any{map[string]any{"message": map[string]any{"content": answer}}}})
	}))
	defer srv.Close()
	gens := hubModel(t)
	judgeRun := func(quiet bool) string {
		t.Helper()
		app := newApp()
		var errw bytes.Buffer
		app.Writer, app.ErrWriter = io.Discard, &errw
		args := []string{"cpo-judge", "--judge", "remote", "--base-url", srv.URL + "/v1", "--model", "m", "--api-key-env", "", "--no-cache",
			"-o", filepath.Join(t.TempDir(), "j.parquet")}
		if quiet {
			args = append(args, "-q")
		}
		if err := app.Run(append(args, gens)); err != nil {
			t.Fatal(err)
		}
		return errw.String()
	}
	if s := judgeRun(true); s != "" {
		t.Errorf("-q, all answered: stderr %q", s)
	}
	if s := judgeRun(false); !strings.Contains(s, "verdicts 6: calls made") {
		t.Errorf("without -q: stderr %q", s)
	}
	answer = "Both."
	if s := judgeRun(true); !strings.Contains(s, "unparsed") || strings.Contains(s, "unparsed 0") {
		t.Errorf("-q, unparsed answers: stderr %q", s)
	}
}
