package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
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

// --out naming the starting model (under another spelling too) is refused before training,
// and the model is left as it was.
func TestOutIsStartingModel(t *testing.T) {
	dir, modelDir, cands := fixture(t)
	before, err := os.ReadFile(filepath.Join(modelDir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{modelDir, filepath.Join(dir, ".", "model") + "/"} {
		_, err := run(t, "--objective", "mle", "-m", modelDir, "-o", out, "--batch", "4", "--steps", "1", cands)
		var ue cliutil.UsageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), "is the starting model") {
			t.Errorf("--out %s: %v", out, err)
		}
	}
	after, err := os.ReadFile(filepath.Join(modelDir, "model.safetensors"))
	if err != nil || !bytes.Equal(before, after) {
		t.Errorf("the starting model changed (%v)", err)
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

// syncBuffer is a bytes.Buffer safe for a writer goroutine and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Two signals a moment apart (as `timeout -s INT` sends: to the command, then to its process
// group) interrupt the run once: the context is cancelled so that a checkpoint gets saved, and
// the process does not exit at the second signal. (Before, the second signal called
// os.Exit(130) at once, so a run stopped that way now and then lost everything since its last
// checkpoint; this test binary would have died here.)
func TestTwoQuickSignalsStillSave(t *testing.T) {
	var log syncBuffer
	ctx, cancel := trainSignalContext(&log, time.Minute)
	defer cancel()
	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the signal did not cancel the context")
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the second signal has been handled by now
	if !strings.Contains(log.String(), "saving a checkpoint") {
		t.Errorf("stderr: %q", log.String())
	}
}

// Running the same command twice leaves the metrics of one run, not two runs' steps 1..N in a
// row; a resumed run keeps the lines before its checkpoint.
func TestMetricsFileOfARerun(t *testing.T) {
	dir, modelDir, cands := fixture(t)
	metrics := filepath.Join(dir, "m.jsonl")
	args := []string{"-q", "-m", modelDir, "-o", filepath.Join(dir, "out"), "--batch", "4", "--steps", "3", "--save-every", "2", "--metrics", metrics, cands}
	for range 2 {
		if _, err := run(t, args...); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(metrics)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "\n"); n != 3 {
		t.Errorf("%d metrics lines after running a 3-step run twice:\n%s", n, b)
	}
	if _, err := run(t, "-q", "--resume", filepath.Join(dir, "out-checkpoints", "checkpoint-2"), "-o", filepath.Join(dir, "out"), "--metrics", metrics, cands); err != nil {
		t.Fatal(err)
	}
	b2, _ := os.ReadFile(metrics)
	if n := strings.Count(string(b2), "\n"); n != 3 || !strings.HasPrefix(string(b2), strings.SplitN(string(b), "\n", 2)[0]) {
		t.Errorf("after resuming at step 2:\n%s", b2)
	}
}

// Rows tokenized with another tokenizer than the one in the model directory are refused before
// training (their ids lie in the vocabulary, so nothing else would notice), unless
// --skip-tokenizer-check.
func TestTokenizerFingerprintChecked(t *testing.T) {
	dir, _, cands := fixture(t) // rows carry the tokenizer fingerprint "t"
	tok, err := tokenizer.Train([]string{"the cat sat on the mat", "a dog ran"}, 270)
	if err != nil {
		t.Fatal(err)
	}
	tokFile := filepath.Join(dir, "tokenizer.json")
	if err := tok.SaveHFFile(tokFile); err != nil {
		t.Fatal(err)
	}
	m, err := model.New(model.Config{Arch: model.ArchGPT2, VocabSize: tok.VocabSize(), MaxSeqLen: 32, NLayer: 1, NHead: 2, NKVHead: 2,
		DModel: 16, DFF: 32, NormEps: 1e-5, TieEmbeddings: true, BOS: int(tok.EOS()), EOS: int(tok.EOS())})
	if err != nil {
		t.Fatal(err)
	}
	m.InitGPT2Style(1)
	withTok := filepath.Join(dir, "model-tok")
	if err := checkpoint.Save(m, withTok, safetensors.F32, tokFile); err != nil {
		t.Fatal(err)
	}
	args := []string{"-q", "-m", withTok, "-o", filepath.Join(dir, "out"), "--batch", "4", "--steps", "1", cands}
	if _, err := run(t, args...); err == nil || !strings.Contains(err.Error(), "cands.parquet row 0") || !strings.Contains(err.Error(), "tokenizer") {
		t.Errorf("rows of another tokenizer: %v", err)
	}
	if _, err := run(t, append([]string{"--skip-tokenizer-check"}, args...)...); err != nil {
		t.Errorf("--skip-tokenizer-check: %v", err)
	}
}

// bench with an unknown objective or --loss-tokens is a usage error before any model is loaded.
func TestBenchUnknownObjective(t *testing.T) {
	_, err := run(t, "bench", "--objective", "bogus", "--steps", "1")
	var ue cliutil.UsageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), `--objective "bogus"`) {
		t.Errorf("bench --objective bogus: %v", err)
	}
	_, err = run(t, "bench", "--loss-tokens", "prompt", "--steps", "1")
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), `--loss-tokens "prompt"`) {
		t.Errorf("bench --loss-tokens prompt: %v", err)
	}
}

// Flags out of range are usage errors (exit 2) before anything is loaded; a negative weight
// decay or alpha used to train.
func TestFlagRanges(t *testing.T) {
	for _, bad := range [][]string{{"--batch", "0"}, {"--steps", "-1"}, {"--lr", "-1"}, {"--beta", "0"}, {"--warmup", "-1"},
		{"--schedule", "step"}, {"--micro-batch", "-3"}, {"--keep", "-1"}, {"--min-lr-ratio", "2"}, {"--weight-decay", "-0.1"},
		{"--alpha", "-1"}, {"--adam-beta2", "1"}, {"--lr", "NaN"}} {
		_, err := run(t, append(append([]string{"-m", "no-such-model", "-o", "out"}, bad...), "no-such.parquet")...)
		var ue cliutil.UsageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), bad[0]) {
			t.Errorf("%v: %v", bad, err)
		}
	}
}

// precompute-ref refuses rows of another tokenizer than the model directory's, naming the row.
func TestPrecomputeRefChecksTheTokenizer(t *testing.T) {
	dir, _, cands := fixture(t) // rows carry the tokenizer fingerprint "t"
	tok, err := tokenizer.Train([]string{"the cat sat on the mat", "a dog ran"}, 270)
	if err != nil {
		t.Fatal(err)
	}
	tokFile := filepath.Join(dir, "tokenizer.json")
	if err := tok.SaveHFFile(tokFile); err != nil {
		t.Fatal(err)
	}
	m, err := model.New(model.Config{Arch: model.ArchGPT2, VocabSize: tok.VocabSize(), MaxSeqLen: 32, NLayer: 1, NHead: 2, NKVHead: 2,
		DModel: 16, DFF: 32, NormEps: 1e-5, TieEmbeddings: true, BOS: int(tok.EOS()), EOS: int(tok.EOS())})
	if err != nil {
		t.Fatal(err)
	}
	m.InitGPT2Style(1)
	withTok := filepath.Join(dir, "model-tok")
	if err := checkpoint.Save(m, withTok, safetensors.F32, tokFile); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "ref.parquet")
	if _, err := run(t, "precompute-ref", "-q", "-m", withTok, "-o", out, cands); err == nil || !strings.Contains(err.Error(), "cands.parquet row 0") || !strings.Contains(err.Error(), "tokenizer") {
		t.Errorf("rows of another tokenizer: %v", err)
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("%s written after the error", out)
	}
	if _, err := run(t, "precompute-ref", "-q", "--skip-tokenizer-check", "-m", withTok, "-o", out, cands); err != nil {
		t.Errorf("--skip-tokenizer-check: %v", err)
	}
}

// --device cpu (the default, given explicitly) trains, in float32 unless --precision bf16 asks
// for mixed precision; an unknown device or precision, and --gpu on the CPU, are usage errors
// before anything is loaded.
func TestDeviceFlags(t *testing.T) {
	dir, modelDir, cands := fixture(t)
	log, err := run(t, "--device", "cpu", "-m", modelDir, "-o", filepath.Join(dir, "out"), "--batch", "4", "--steps", "1", cands)
	if err != nil || !strings.Contains(log, "examples on cpu\n") {
		t.Errorf("--device cpu: %v\n%s", err, log)
	}
	log, err = run(t, "--precision", "bf16", "-m", modelDir, "-o", filepath.Join(dir, "out-bf16"), "--batch", "4", "--steps", "1", cands)
	if err != nil || !strings.Contains(log, "examples on cpu (bf16 products") {
		t.Errorf("--precision bf16 on the cpu: %v\n%s", err, log)
	}
	for _, bad := range [][]string{{"--device", "tpu"}, {"--device", "cuda", "--precision", "fp8"}, {"--device", "cuda", "--gpu", "-1"},
		{"--precision", "fp8"}, {"--gpu", "1"}} {
		for _, cmd := range [][]string{nil, {"precompute-ref"}, {"bench"}} {
			args := append(append(append([]string(nil), cmd...), bad...), "-m", "no-such-model", "-o", "out", "no-such.parquet")
			if cmd != nil && cmd[0] == "bench" {
				args = append(append([]string{"bench"}, bad...), "-m", "no-such-model")
			}
			_, err := run(t, args...)
			var ue cliutil.UsageError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), bad[len(bad)-2]) {
				t.Errorf("%v: %v", args, err)
			}
		}
	}
}
