package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cpo-toolchain/cpo/pkg/checkpoint"
	"github.com/cpo-toolchain/cpo/pkg/safetensors"
)

// run runs the command in-process with stdin from a string, returning stdout.
func run(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	dir := t.TempDir()
	in := filepath.Join(dir, "in")
	os.WriteFile(in, []byte(stdin), 0o644)
	fi, _ := os.Open(in)
	fo, _ := os.Create(filepath.Join(dir, "out"))
	oldIn, oldOut := os.Stdin, os.Stdout
	os.Stdin, os.Stdout = fi, fo
	err := newApp().Run(append([]string{"cpo-model"}, args...))
	os.Stdin, os.Stdout = oldIn, oldOut
	fi.Close()
	fo.Close()
	b, _ := os.ReadFile(filepath.Join(dir, "out"))
	return string(b), err
}

func TestInfoAndLogprobs(t *testing.T) {
	base, _ := checkpoint.Preset("tiny")
	cfg, err := checkpoint.Sizes{NLayer: 1, DModel: 32, VocabSize: 40, MaxSeqLen: 8}.Apply(base)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := checkpoint.NewRandom(cfg, 1)
	dir := filepath.Join(t.TempDir(), "m")
	if err := checkpoint.Save(m, dir, safetensors.F32); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HF_HUB_OFFLINE", "1")
	t.Setenv("HF_HUB_CACHE", t.TempDir())
	out, err := run(t, "", "info", "--json", dir)
	if err != nil {
		t.Fatal(err)
	}
	var s checkpoint.Summary
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("%v: %q", err, out)
	}
	fp, _ := checkpoint.Fingerprint(m)
	if s.Params != m.NumParams() || s.Fingerprint != fp || s.DType != "F32" {
		t.Errorf("%+v", s)
	}
	out, err = run(t, "1 2 3\n\n4\n", "logprobs", "-m", dir)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || lines[1] != "[]" || lines[2] != "[]" || strings.Count(lines[0], ",") != 1 {
		t.Errorf("logprobs output %q", out)
	}
	if out, err := run(t, "", "path", dir); err != nil || strings.TrimSpace(out) != dir {
		t.Errorf("path: %q %v", out, err)
	}
	if _, err := run(t, "", "info"); err == nil {
		t.Error("info without a model accepted")
	}
	if _, err := run(t, "", "info", "org/absent"); err == nil || !strings.Contains(err.Error(), "offline") {
		t.Errorf("offline hub id: %v", err)
	}
}
