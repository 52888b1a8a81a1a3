package main

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cpo-toolchain/cpo/pkg/checkpoint"
	"github.com/cpo-toolchain/cpo/pkg/cliutil"
	"github.com/cpo-toolchain/cpo/pkg/model"
	"github.com/cpo-toolchain/cpo/pkg/safetensors"
	"github.com/cpo-toolchain/cpo/pkg/shard"
	"github.com/cpo-toolchain/cpo/pkg/tokenizer"
)

// TestMain lets a test run the command itself in a child process (the test binary re-executed
// with CPO_GENERATE_AS_MAIN=1), to send it real signals.
func TestMain(m *testing.M) {
	if os.Getenv("CPO_GENERATE_AS_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

const spModel = "../../testdata/tokenizer/sp/llama.model"

// fixture writes a tiny random Llama checkpoint with the test SentencePiece tokenizer and an
// example shard of n prompts, and returns their paths.
func fixture(t *testing.T, n int) (ckpt, examples string) {
	t.Helper()
	dir := t.TempDir()
	tok, err := tokenizer.Load(spModel)
	if err != nil {
		t.Fatal(err)
	}
	cfg := model.Config{Arch: model.ArchLlama, VocabSize: tok.VocabSize(), MaxSeqLen: 256, NLayer: 1, NHead: 2, NKVHead: 2,
		DModel: 16, DFF: 32, NormEps: 1e-5, RopeTheta: 10000, BOS: int(tok.BOS()), EOS: int(tok.EOS())}
	m, err := checkpoint.NewRandom(cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	ckpt = filepath.Join(dir, "model")
	if err := checkpoint.Save(m, ckpt, safetensors.F32); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(spModel)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ckpt, "tokenizer.model"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	examples = filepath.Join(dir, "examples.parquet")
	w, err := shard.NewWriter[shard.Example](examples, nil, shard.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		p := "Tell me about the number " + strings.Repeat("nine ", i%7)
		if err := w.Write(shard.Example{ID: "ex" + string(rune('A'+i%26)) + strings.Repeat("x", i/26), Prompt: p, Response: "r",
			PromptIDs: tok.Encode(p), ResponseIDs: tok.Encode("r"), Tokenizer: tok.Fingerprint()}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return ckpt, examples
}

// A run stopped by SIGTERM (or SIGINT) exits 130 and leaves neither the output nor its
// temporary file behind.
func TestSignalLeavesNoPartialOutput(t *testing.T) {
	ckpt, examples := fixture(t, 400)
	outDir := t.TempDir()
	out := filepath.Join(outDir, "gen.parquet")
	cmd := exec.Command(os.Args[0], "-q", "-m", ckpt, "--strategy", "sample", "--num-samples", "8", "--max-new-tokens", "200",
		"--batch", "2", "--workers", "1", "-o", out, examples)
	cmd.Env = append(os.Environ(), "CPO_GENERATE_AS_MAIN=1")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	// Wait until the output's temporary file exists: generation is under way.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if ents, _ := os.ReadDir(outDir); len(ents) > 0 {
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("exited before the signal: %v; stderr: %s", err, stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("no temporary output after 30 s; stderr: %s", stderr.String())
		}
	}
	time.Sleep(50 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := <-exited
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Errorf("exit after SIGTERM: %v (want exit status 130); stderr: %s", err, stderr.String())
	}
	ents, _ := os.ReadDir(outDir)
	for _, e := range ents {
		t.Errorf("left behind: %s", e.Name())
	}
}

// --batch below 1 is a usage error, not silently decoded one sequence at a time.
func TestBadBatchIsUsageError(t *testing.T) {
	ckpt, examples := fixture(t, 3)
	for _, b := range []string{"0", "-3"} {
		app := newApp()
		app.Writer, app.ErrWriter = io.Discard, io.Discard
		err := app.Run([]string{"cpo-generate", "-q", "-m", ckpt, "--max-new-tokens", "4", "--batch", b, "-o", filepath.Join(t.TempDir(), "g.parquet"), examples})
		var ue cliutil.UsageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), "--batch") {
			t.Errorf("--batch %s: %v, want a usage error about --batch", b, err)
		}
	}
}

// --out naming an input (or a directory holding one) is refused: the output would replace the
// prompts when complete.
func TestOutputIsInputRefused(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "test.parquet")
	if err := os.WriteFile(in, []byte("prompts"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{in, dir, filepath.Join(dir, ".", "test.parquet")} {
		app := newApp()
		app.Writer, app.ErrWriter = io.Discard, io.Discard
		err := app.Run([]string{"cpo-generate", "-q", "-m", "some-model", "-o", out, in})
		var ue cliutil.UsageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), "would replace the input") {
			t.Errorf("-o %s %s: %v", out, in, err)
		}
	}
	if b, _ := os.ReadFile(in); string(b) != "prompts" {
		t.Fatal("the input was touched")
	}
}
